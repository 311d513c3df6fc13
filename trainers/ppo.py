"""PPO with execution reward (`execrl train ppo`): the sandbox verdict of each sampled program is the reward.

Policy = causal LM + scalar value head; reference = frozen copy of the initial policy. Each iteration samples
G programs for each of B / G synth train prompts, runs them in the sandbox (one warm pool for the whole run),
turns verdicts into rewards (`execrl.trainers.rewards`), adds a per-token KL penalty to the reference
(Ziegler et al. 2019, arXiv:1909.08593), estimates advantages with GAE and takes clipped PPO steps
(Schulman et al. 2017, arXiv:1707.06347). The iteration follows cleanrl's ppo.py phase by phase.
OUT ends as a Hugging Face model folder (+ `value_head.pt`), with `metrics.jsonl`, `tb/`, `checkpoint/`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from execrl.trainers.data import UsageError, config_record
from execrl.trainers.ppo_math import (
    compute_gae,
    explained_variance,
    kl_estimate,
    masked_mean,
    masked_whiten,
    policy_loss,
    value_loss,
)
from execrl.trainers.ppo_setup import Run, evaluate_pass_at_1, prepare_out, setup_run
from execrl.trainers.rewards import REWARDS, SandboxErrorRate, check_sandbox_errors
from execrl.trainers.rollout import position_ids, response_logprobs, response_values, sample


@dataclass
class PPOConfig:
    """PPO on synth train problems with the sandbox verdict as reward."""

    model: str
    """Model folder (usually the SFT output) or hub id: the initial policy and the frozen reference."""
    out: Path
    """Output folder: final model, value_head.pt, metrics.jsonl, tb/, checkpoint/, ppo_config.json."""
    preset: str = ""
    """`cpu-tiny`: the tuned settings for the embedded tiny model on CPU (flags given explicitly still win)."""
    synth_seed: int = 0
    """Seed of the synth benchmark (train prompts and held-out eval problems)."""
    families: str = ""
    """Comma-separated synth families to train on (e.g. `clamp,sum_cmp`); empty = all."""
    reward: str = "coderl"
    """Reward function: coderl, partial, weighted or binary (see trainers/rewards.py)."""
    reward_model: str = ""
    """Optional reward model folder (execrl train rm) whose score is mixed into the reward."""
    reward_model_weight: float = 0.0
    """Weight of the reward model's score in the reward."""
    critic: str = ""
    """Optional CodeRL critic folder (execrl train critic) whose P(passed) is mixed into the reward."""
    critic_weight: float = 0.0
    """Weight of the critic's P(passed) in the reward (Le et al. 2022 use the critic for shaping)."""
    iterations: int = 200
    """Maximum PPO iterations (rollout + update)."""
    batch_size: int = 256
    """Sampled programs per iteration (B), = prompts x samples-per-prompt."""
    samples_per_prompt: int = 4
    """Programs sampled per prompt (G)."""
    minibatch_size: int = 32
    """Programs per gradient step."""
    ppo_epochs: int = 4
    """Passes over each iteration's batch."""
    lr: float = 1e-5
    """Peak learning rate (policy and value head)."""
    warmup_share: float = 0.05
    """Share of iterations with linear LR warmup; cosine decay to 0 after."""
    clip: float = 0.2
    """Policy ratio clip range (epsilon)."""
    vf_clip: float = 0.2
    """Value clip range around the rollout's values."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Gradient clipping by global norm."""
    target_kl: float = 0.01
    """Stop an iteration's update early once approx_kl to the rollout policy exceeds this (0: never)."""
    gamma: float = 0.99
    """Discount."""
    lam: float = 0.95
    """GAE lambda."""
    kl_coef: float = 0.05
    """Coefficient of the per-token KL penalty to the reference (initial value when adaptive)."""
    adaptive_kl: bool = False
    """Adapt the KL coefficient toward --kl-target (Ziegler et al. 2019)."""
    kl_target: float = 6.0
    """Target sequence KL (nats) for the adaptive controller."""
    kl_horizon: int = 10000
    """Horizon (samples) of the adaptive controller."""
    kl_estimator: str = "k1"
    """Per-token KL estimator in the penalty: k1 or k3 (Schulman 2020)."""
    whiten_rewards: bool = False
    """Whiten per-token rewards before GAE."""
    max_new_tokens: int = 128
    """Longest response in tokens."""
    max_prompt_tokens: int = 384
    """Prompts longer than this keep their last tokens."""
    temperature: float = 1.0
    """Sampling temperature of rollouts (log-probs use the same temperature)."""
    eval_every: int = 10
    """Evaluate pass@1 on held-out synth test problems every N iterations (and at the end); 0 disables."""
    eval_problems: int = 110
    """Held-out synth test problems in the in-loop evaluation."""
    eval_samples: int = 2
    """Samples per problem in the in-loop evaluation."""
    eval_temperature: float = 1.0
    """Sampling temperature of the in-loop evaluation."""
    patience: int = 0
    """Stop when the mean reward (moving average) has not improved for this many iterations; 0 disables."""
    plateau_window: int = 5
    """Iterations in the moving average that --patience watches."""
    min_improvement: float = 0.01
    """Improvement of the moving-average reward that resets --patience."""
    save_every: int = 10
    """Write a checkpoint every N iterations (always at the end)."""
    stop_after: int = 0
    """Stop this invocation after N iterations (checkpointed), to be continued with --resume; 0 = run to the end."""
    workers: int = 2
    """Sandbox worker processes."""
    timeout: float = 3.0
    """Sandbox wall-clock limit per test (seconds)."""
    max_sandbox_errors: float = 0.05
    """Stop when more than this share of a batch ends in sandbox_error: those samples get no reward, so a
    policy that learned to cause one would escape its penalty."""
    seed: int = 0
    """Seed of sampling, prompt order and minibatch order."""
    device: str = "auto"
    """auto (CUDA when present), cpu, cuda or cuda:N."""
    precision: str = "auto"
    """auto (bf16/fp16 on GPU, fp32 on CPU), fp32, bf16 or fp16 (through accelerate)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""
    resume: bool = False
    """Continue the run in --out from its last checkpoint."""
    force: bool = False
    """Start over in a non-empty --out."""


# Tuned for the embedded tiny model on 2 CPU cores (see BENCHMARKS.md); used by `execrl pipeline`.
# Measured from the pipeline's SFT model (in-loop pass@1, 110 held-out problems x 2 at T=1, after 60 iterations):
# lr 3e-4 / KL 0.02 / batch 64 swung into high-entropy episodes (sequence KL 30-50 nats, syntax rate 0.5);
# lr 1e-4 with 4 epochs, and lr 2e-4 at batch 64, did too. Batch 128 (32 prompts x 4), minibatch 32,
# KL 0.1 and grad norm 0.5 stayed stable: 0.56 at lr 1e-4, 0.60 at lr 2e-4 (the SFT model: about 0.41).
# With 80 iterations, `execrl pipeline` (200 test problems x 4, T=1): SFT 0.409 -> PPO 0.638, and with seed 1
# everywhere 0.506 -> 0.781; syntax rate unchanged (0.95).
PRESETS: dict[str, dict[str, Any]] = {
    "cpu-tiny": {
        "iterations": 80,
        "batch_size": 128,
        "samples_per_prompt": 4,
        "minibatch_size": 32,
        "ppo_epochs": 2,
        "lr": 2e-4,
        "warmup_share": 0.05,
        "kl_coef": 0.1,
        "target_kl": 0.05,
        "ent_coef": 0.0,
        "gamma": 1.0,
        "max_new_tokens": 64,
        "max_prompt_tokens": 128,
        "timeout": 1.0,
        "eval_every": 20,
        "eval_problems": 110,
        "eval_samples": 2,
        "save_every": 20,
        "max_grad_norm": 0.5,
    },
}
# Flags that do not change what the run computes: a resumed run may differ in them.
RUN_CONTROL = ("resume", "force", "stop_after")


def run_config(cfg: PPOConfig) -> dict[str, Any]:
    return config_record(cfg, RUN_CONTROL)


def ppo_iteration(cfg: PPOConfig, run: Run) -> dict[str, float]:
    """One PPO iteration: rollout, execute, reward, advantages, update. Returns its metrics."""
    policy, unwrapped, accelerator = run.policy, run.unwrapped, run.accelerator
    start = time.monotonic()

    # 1. rollout: G samples for each of B / G prompts, then log-probs, values and reference log-probs
    problems = [p for p in run.rng.sample(run.problems, cfg.batch_size // cfg.samples_per_prompt)]
    rollout = sample(
        unwrapped.lm,
        run.tokenizer,
        [p.prompt for p in problems],
        [p.metadata["stop"] for p in problems],
        samples_per_prompt=cfg.samples_per_prompt,
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature,
        max_prompt_tokens=cfg.max_prompt_tokens,
    )
    problems = [p for p in problems for _ in range(cfg.samples_per_prompt)]
    n_query = rollout.query_ids.shape[1]
    b_input_ids, b_attention_mask = rollout.input_ids, rollout.attention_mask  # (B, Q + A)
    with torch.no_grad():
        chunks = []
        for i in range(0, len(problems), cfg.minibatch_size):
            mb = slice(i, i + cfg.minibatch_size)
            logits, values = policy(b_input_ids[mb], b_attention_mask[mb])
            logprobs, _ = response_logprobs(logits, rollout.response_ids[mb], n_query, cfg.temperature)
            ref_logits = run.ref(
                input_ids=b_input_ids[mb],
                attention_mask=b_attention_mask[mb],
                position_ids=position_ids(b_attention_mask[mb]),
            ).logits
            ref_logprobs, _ = response_logprobs(ref_logits, rollout.response_ids[mb], n_query, cfg.temperature)
            chunks.append((logprobs, response_values(values, n_query), ref_logprobs))
        b_logprobs, b_values, b_ref_logprobs = (torch.cat(c) for c in zip(*chunks, strict=True))  # (B, A) each
    t_rollout = time.monotonic() - start

    # 2. execute: the same sandbox path as evaluation
    start_sandbox = time.monotonic()
    programs = [run.to_program(p, text) for p, text in zip(problems, rollout.texts, strict=True)]
    results = run.execute(problems, programs)
    check_sandbox_errors(results, cfg.max_sandbox_errors)
    t_sandbox = time.monotonic() - start_sandbox

    # 3. reward: sandbox score on the last response token, minus the KL penalty on every token
    scores = run.score(problems, programs, results)  # list[float | None]; None = no verdict, left out
    kept = torch.tensor([s is not None for s in scores], dtype=torch.float32)
    b_mask = rollout.response_mask.float() * kept[:, None]  # (B, A)
    score_t = torch.tensor([s if s is not None else 0.0 for s in scores])  # (B,)
    kl = kl_estimate(b_logprobs - b_ref_logprobs, cfg.kl_estimator) * b_mask  # (B, A)
    b_rewards = -run.kl_ctl.value * kl
    last = rollout.response_mask.sum(1).long() - 1  # (B,) index of each response's last token
    b_rewards[torch.arange(len(scores)), last] += score_t * kept
    if cfg.whiten_rewards:
        b_rewards = masked_whiten(b_rewards, b_mask, shift_mean=False)

    # 4. advantages
    b_advantages, b_returns = compute_gae(b_rewards, b_values, b_mask, cfg.gamma, cfg.lam)
    mean_advantage = masked_mean(b_advantages, b_mask).item()
    b_advantages = masked_whiten(b_advantages, b_mask)

    # 5. update: PPO epochs over shuffled minibatches, stopping early past target_kl. With no sample kept
    # (all sandbox errors, which --max-sandbox-errors 1 lets through) there is nothing to learn from.
    start_update = time.monotonic()
    stats: dict[str, list[float]] = {k: [] for k in ("pg_loss", "v_loss", "entropy", "clipfrac", "approx_kl")}
    b_ratios = []
    b_inds = torch.nonzero(kept).squeeze(1)
    for _epoch in range(cfg.ppo_epochs if len(b_inds) else 0):
        b_inds = b_inds[torch.randperm(len(b_inds))]
        for i in range(0, len(b_inds), cfg.minibatch_size):
            mb_inds = b_inds[i : i + cfg.minibatch_size]
            mb_mask = b_mask[mb_inds]
            with accelerator.autocast():
                logits, values = policy(b_input_ids[mb_inds], b_attention_mask[mb_inds])
            new_logprobs, entropy = response_logprobs(logits, rollout.response_ids[mb_inds], n_query, cfg.temperature)
            newvalues = response_values(values, n_query)
            logratio = new_logprobs - b_logprobs[mb_inds]
            with torch.no_grad():
                # KL(old || new) from samples of the old policy: k3 with ref = new (cleanrl's approx_kl).
                approx_kl = masked_mean(kl_estimate(-logratio, "k3"), mb_mask).item()
            pg_loss, clipfrac, ratio = policy_loss(
                new_logprobs, b_logprobs[mb_inds], b_advantages[mb_inds], mb_mask, cfg.clip
            )
            v_loss, _ = value_loss(newvalues, b_values[mb_inds], b_returns[mb_inds], mb_mask, cfg.vf_clip)
            entropy_loss = masked_mean(entropy, mb_mask)
            loss = pg_loss - cfg.ent_coef * entropy_loss + cfg.vf_coef * v_loss
            run.optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
            run.optimizer.step()
            losses = (pg_loss, v_loss, entropy_loss, clipfrac)
            for name, value in zip(("pg_loss", "v_loss", "entropy", "clipfrac"), losses, strict=True):
                stats[name].append(value.item())
            stats["approx_kl"].append(approx_kl)
            b_ratios.append(ratio.detach()[mb_mask.bool()])
            if cfg.target_kl and approx_kl > cfg.target_kl:
                break
        if cfg.target_kl and stats["approx_kl"][-1] > cfg.target_kl:
            break
    lr = run.scheduler.get_last_lr()[0]
    run.scheduler.step()
    seq_kl = (kl.sum(1) * kept).sum().item() / max(kept.sum().item(), 1.0)
    if len(b_inds):  # an empty batch measured no KL; it must not pull an adaptive coefficient down
        run.kl_ctl.update(seq_kl, len(scores))
    t_update = time.monotonic() - start_update

    # 6. log
    ratios = torch.cat(b_ratios) if b_ratios else torch.ones(1)
    given = [s for s in scores if s is not None]
    rewards_t = torch.tensor(given or [float("nan")])
    qualities = run.quality(programs)
    return {
        "ppo/policy_loss": _mean(stats["pg_loss"]),
        "ppo/value_loss": _mean(stats["v_loss"]),
        "ppo/entropy": _mean(stats["entropy"]),
        "ppo/kl": seq_kl,
        "ppo/clipfrac": _mean(stats["clipfrac"]),
        "ppo/ratio_mean": ratios.mean().item(),
        "ppo/ratio_std": ratios.std().item() if ratios.numel() > 1 else 0.0,
        "ppo/explained_variance": explained_variance(b_values, b_returns, b_mask),
        "ppo/mean_reward": rewards_t.mean().item(),
        "ppo/reward_std": rewards_t.std().item() if len(given) > 1 else 0.0,
        "ppo/mean_advantage": mean_advantage,
        "ppo/approx_kl": _mean(stats["approx_kl"]),
        "ppo/kl_coef": run.kl_ctl.value,
        "ppo/lr": lr,
        "ppo/minibatch_steps": len(stats["pg_loss"]),
        "code/syntax_rate": _mean([r.verdict.value != "syntax_error" for r in results]),
        "code/pass_rate": _mean([r.passed for r in results]),
        "code/quality_score": _mean([q.score for q in qualities]),
        "time/rollout": t_rollout,
        "time/sandbox": t_sandbox,
        "time/update": t_update,
        "time/total": time.monotonic() - start,
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def train_ppo(cfg: PPOConfig) -> Path:
    """Run PPO into `cfg.out` (resuming with `cfg.resume`); returns `cfg.out`."""
    from tqdm import tqdm

    out = Path(cfg.out)
    config = run_config(cfg)
    state = prepare_out(out, config, cfg.resume, cfg.force)
    if state == "done":
        return out
    with setup_run(cfg, out, config, resume=state == "resume") as run:
        done_here = 0
        bar = tqdm(total=cfg.iterations, initial=run.step, desc="ppo", file=sys.stderr)
        while run.step < cfg.iterations and not run.plateaued(cfg):
            metrics = ppo_iteration(cfg, run)
            run.step += 1
            run.track_plateau(metrics["ppo/mean_reward"], cfg)
            last = run.step == cfg.iterations or run.plateaued(cfg)
            if cfg.eval_every and (run.step % cfg.eval_every == 0 or last):
                metrics["eval/synth/pass@1"] = evaluate_pass_at_1(cfg, run)
            run.tracker.log(run.step, metrics)
            done_here += 1
            bar.update()
            bar.set_postfix(reward=f"{metrics['ppo/mean_reward']:.3f}", passed=f"{metrics['code/pass_rate']:.2f}")
            stopping = bool(cfg.stop_after) and done_here >= cfg.stop_after
            if run.step % cfg.save_every == 0 or last or stopping:
                run.save_checkpoint()
            if stopping:
                bar.close()
                return out
        bar.close()
        run.save_checkpoint()
        run.save_final()
    (out / "train_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out


def parse_config(argv: list[str]) -> PPOConfig:
    """Parse flags, with `--preset`'s values as defaults (explicit flags win)."""
    import tyro

    description = __doc__.splitlines()[0]
    preset = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--preset"), None)
    preset = preset or next((a.split("=", 1)[1] for a in argv if a.startswith("--preset=")), "")
    if preset and preset not in PRESETS:
        raise UsageError(f"--preset {preset}: expected one of {', '.join(PRESETS)}")
    if not preset:
        return tyro.cli(PPOConfig, args=argv, description=description)
    default = PPOConfig(model=tyro.MISSING, out=tyro.MISSING, preset=preset, **PRESETS[preset])
    return tyro.cli(PPOConfig, args=argv, default=default, description=description)


def check_config(cfg: PPOConfig) -> None:
    """Refuse flag values that cannot work, naming the flag."""
    if cfg.reward not in REWARDS:
        raise UsageError(f"--reward {cfg.reward}: expected one of {', '.join(REWARDS)}")
    for folder, weight, flag in (
        (cfg.reward_model, cfg.reward_model_weight, "reward-model"),
        (cfg.critic, cfg.critic_weight, "critic"),
    ):
        if weight and not folder:
            raise UsageError(f"--{flag}-weight {weight} needs --{flag} DIR")
        if folder and not Path(folder).is_dir():
            raise UsageError(f"--{flag} {folder}: no such folder")
    if not 0 <= cfg.max_sandbox_errors <= 1:
        raise UsageError(f"--max-sandbox-errors {cfg.max_sandbox_errors}: a share, from 0 to 1")
    if cfg.kl_estimator not in ("k1", "k3"):
        raise UsageError(f"--kl-estimator {cfg.kl_estimator}: expected k1 or k3")
    if cfg.samples_per_prompt < 1 or cfg.batch_size < cfg.samples_per_prompt:
        raise UsageError(f"--batch-size {cfg.batch_size}: must be at least --samples-per-prompt (>= 1)")
    if cfg.minibatch_size < 1 or cfg.ppo_epochs < 1 or cfg.iterations < 1:
        raise UsageError("--minibatch-size, --ppo-epochs and --iterations must be >= 1")
    if cfg.temperature <= 0:
        raise UsageError(f"--temperature {cfg.temperature}: PPO samples, so it must be > 0")
    if cfg.save_every < 1:
        raise UsageError(f"--save-every {cfg.save_every}: must be >= 1")


def main(argv: list[str]) -> int:
    try:
        cfg = parse_config(argv)
        check_config(cfg)
        out = train_ppo(cfg)
    except UsageError as e:
        print(f"execrl train ppo: {e}", file=sys.stderr)
        return 2
    except SandboxErrorRate as e:  # the last checkpoint is kept: --resume continues once it is fixed
        print(f"execrl train ppo: stopped: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0
