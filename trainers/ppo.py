"""PPO with execution reward (`execrl train ppo`): the sandbox verdict of each sampled program is the reward.

Policy = causal LM + scalar value head; reference = frozen copy of the initial policy. Each iteration samples
G programs for each of B / G train prompts (synth, any benchmark's train split, or a problem file: see
`execrl.trainers.ppo_setup`), runs them in the sandbox (one warm pool for the whole run),
turns verdicts into rewards (`execrl.trainers.rewards`), adds a per-token KL penalty to the reference
(Ziegler et al. 2019, arXiv:1909.08593), estimates advantages with GAE and takes clipped PPO steps
(Schulman et al. 2017, arXiv:1707.06347). The iteration follows cleanrl's ppo.py phase by phase.
OUT ends as a Hugging Face model folder (+ `value_head.pt`), with `metrics.jsonl`, `tb/`, `checkpoint/`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from execrl.trainers.data import finish_output
from execrl.trainers.ppo_config import PPOConfig, check_config, parse_config, run_config
from execrl.trainers.ppo_math import (
    compute_gae,
    explained_variance,
    kl_estimate,
    masked_mean,
    masked_whiten,
    policy_loss,
    value_loss,
)
from execrl.trainers.ppo_setup import Run, evaluate_pass_at_1, prepare_out, run_problems, setup_run
from execrl.trainers.rewards import (
    HackAttemptRate,
    SandboxErrorRate,
    check_hack_rate,
    check_sandbox_errors,
    hack_rates,
)
from execrl.trainers.rollout import position_ids, response_logprobs, response_values


def ppo_iteration(cfg: PPOConfig, run: Run) -> dict[str, float]:
    """One PPO iteration: rollout, execute, reward, advantages, update. Returns its metrics."""
    policy, accelerator = run.policy, run.accelerator
    start = time.monotonic()

    # 1. rollout: G samples for each of B / G prompts, then log-probs, values and reference log-probs
    problems = [p for p in run.rng.sample(run.problems, cfg.batch_size // cfg.samples_per_prompt)]
    rollout = run.sample(problems, cfg.samples_per_prompt, cfg.temperature)
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
        # sandbox faults get no reward (see check_sandbox_errors); the reports' training health plots this share
        "code/sandbox_error_rate": _mean([r.verdict.value == "sandbox_error" for r in results]),
        "code/quality_score": _mean([q.score for q in qualities]),
        **hack_rates(results),  # code/hack_attempt_rate, code/hack/<kind>: what the sandbox contained
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
    sources = run_problems(cfg)  # a refused problem source (overlap, missing data) must not claim OUT first
    state = prepare_out(out, config, cfg.resume, cfg.force)
    if state == "done":
        return out
    with setup_run(cfg, out, config, resume=state == "resume", sources=sources) as run:
        done_here = 0
        bar = tqdm(total=cfg.iterations, initial=run.step, desc="ppo", file=sys.stderr)
        while run.step < cfg.iterations and not run.plateaued(cfg):
            metrics = ppo_iteration(cfg, run)
            run.step += 1
            run.track_plateau(metrics["ppo/mean_reward"], cfg)
            last = run.step == cfg.iterations or run.plateaued(cfg)
            if cfg.eval_every and (run.step % cfg.eval_every == 0 or last):
                metrics |= evaluate_pass_at_1(cfg, run)
            run.tracker.log(run.step, metrics)
            check_hack_rate(metrics["code/hack_attempt_rate"], cfg.max_hack_rate)  # logged first: the curve shows it
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
    finish_output(out, config)
    return out


def main(argv: list[str]) -> int:
    cfg = parse_config(argv)
    check_config(cfg)
    try:
        out = train_ppo(cfg)
    except (SandboxErrorRate, HackAttemptRate) as e:  # the last checkpoint is kept: --resume continues from it
        print(f"execrl train ppo: stopped: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0
