"""PPO with execution reward (`execrl train ppo`): the sandbox verdict of each sampled program is the reward.

Policy = causal LM (+ a scalar value head for GAE); reference = frozen copy of the initial policy (with `--lora-r`:
the same base weights with the adapters disabled, `execrl.trainers.lora`). Each iteration
samples G programs for each of B / G train prompts (synth, any benchmark's train split, or a problem file: see
`execrl.trainers.ppo_setup`), runs them in the sandbox (one warm pool for the whole run),
turns verdicts into rewards (`execrl.trainers.rewards`), adds a per-token KL penalty to the reference
(Ziegler et al. 2019, arXiv:1909.08593) or a KL loss term, estimates advantages — GAE on the value head, or a
critic-free estimator: GRPO, Dr. GRPO, RLOO, REINFORCE++ (`--advantage`, `execrl.trainers.ppo_math`) — and takes
clipped PPO steps (Schulman et al. 2017, arXiv:1707.06347). `--dynamic-sampling` drops prompt groups whose
rewards are all equal and refills the batch (DAPO). The iteration follows cleanrl's ppo.py phase by phase.
OUT ends as a Hugging Face model folder (+ `value_head.pt` with GAE), with `metrics.jsonl`, `tb/`, `checkpoint/`.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from execrl.benchmarks.problem import Problem
from execrl.harness.records import ExecResult
from execrl.trainers import distributed
from execrl.trainers.data import finish_output
from execrl.trainers.overlap import overlapped_draw, sequential_draw
from execrl.trainers.ppo_config import PPOConfig, check_config, parse_config, run_config
from execrl.trainers.ppo_math import (
    aggregate_loss,
    compute_gae,
    dr_grpo_advantages,
    explained_variance,
    grpo_advantages,
    kl_estimate,
    logprob_diff,
    masked_mean,
    masked_whiten,
    policy_loss,
    reinforce_pp_advantages,
    rloo_advantages,
    truncated_is_weights,
    value_loss,
    zero_advantage_groups,
)
from execrl.trainers.ppo_models import update_mode
from execrl.trainers.ppo_setup import Run, evaluate_pass_at_1, prepare_out, run_problems, setup_run
from execrl.trainers.rewards import (
    HackAttemptRate,
    SandboxErrorRate,
    check_hack_rate,
    check_sandbox_errors,
    hack_rates,
)
from execrl.trainers.rollout import (
    Rollout,
    concat_rollouts,
    position_ids,
    response_logprobs,
    response_values,
    select_rows,
)


@dataclass
class Draw:
    """One round of rollouts: G programs for each of some prompts, executed in the sandbox and scored."""

    problems: list[Problem]
    """Each prompt's problem G times, consecutively, like the rollout's rows."""
    rollout: Rollout
    programs: list[str]
    results: list[ExecResult]
    scores: list[float | None]
    """The reward of each program; None = no verdict (sandbox error), left out."""
    t_sample: float = 0.0
    t_sandbox: float = 0.0
    """The sandbox's busy time on these programs."""
    t_sandbox_wait: float = 0.0
    """The trainer's wait for their results after generation finished (`execrl.trainers.overlap.DrawTimes`)."""


def draw(cfg: PPOConfig, run: Run, prompts: list[Problem]) -> Draw:
    """Sample G programs for each prompt, run them through the same sandbox path as evaluation, score them; with
    --overlap-scoring the sandbox runs each chunk of prompts' programs while the next chunk generates."""
    group, temperature = cfg.samples_per_prompt, cfg.temperature
    if cfg.overlap_scoring:
        rollout, programs, results, times = overlapped_draw(run, prompts, group, temperature, cfg.overlap_chunks)
    else:
        rollout, programs, results, times = sequential_draw(run, prompts, group, temperature)
    problems = [p for p in prompts for _ in range(group)]
    check_sandbox_errors(results, cfg.max_sandbox_errors)
    scores = run.score(problems, programs, results)
    return Draw(problems, rollout, programs, results, scores, times.sample, times.sandbox, times.sandbox_wait)


def collect(cfg: PPOConfig, run: Run) -> tuple[Draw, Draw, dict[str, float]]:
    """(the batch to learn from, the first draw, metrics): B / G prompts drawn once, and with --dynamic-sampling
    refilled (DAPO, arXiv:2503.14476 sec. 3.2): groups whose rewards are all equal are dropped, and each extra
    round draws unseen prompts, as many as the keep rate so far says will fill the batch, until B / G groups are
    kept or --max-refill-rounds have run (then the batch is trained short). A full batch is cut to B / G groups."""
    group, n_groups = cfg.samples_per_prompt, cfg.batch_size // cfg.samples_per_prompt
    first = draw(cfg, run, run.rng.sample(run.problems, n_groups))
    flat = zero_advantage_groups(first.scores, group)
    metrics = {"ppo/zero_adv_share": sum(flat) / len(flat)}
    if not cfg.dynamic_sampling:
        return first, first, metrics
    draws, kept = [first], [(0, g) for g, f in enumerate(flat) if not f]  # (draw, group) pairs
    seen, drawn, rounds = {p.task_id for p in first.problems}, len(flat), 0
    while len(kept) < n_groups and rounds < cfg.max_refill_rounds:
        remaining = [p for p in run.problems if p.task_id not in seen]
        if not remaining:
            break
        wanted = n_groups if not kept else math.ceil((n_groups - len(kept)) * drawn / len(kept))
        prompts = run.rng.sample(remaining, min(wanted, n_groups, len(remaining)))
        draws.append(draw(cfg, run, prompts))
        kept += [(len(draws) - 1, g) for g, f in enumerate(zero_advantage_groups(draws[-1].scores, group)) if not f]
        seen |= {p.task_id for p in prompts}
        drawn, rounds = drawn + len(prompts), rounds + 1
    kept = kept[:n_groups]
    metrics |= {"ppo/refill_rounds": rounds, "ppo/kept_groups": len(kept), "ppo/drawn_groups": drawn}
    return kept_groups(draws, kept, group, run.tokenizer.pad_token_id), first, metrics


def kept_groups(draws: list[Draw], kept: list[tuple[int, int]], group: int, pad_id: int) -> Draw:
    """One draw of the `kept` (draw index, group index) groups of `draws`, in that order."""
    rows = [(draws[d], range(g * group, (g + 1) * group)) for d, g in kept]
    pick = [(d, i) for d, r in rows for i in r]
    rollout = (
        concat_rollouts([select_rows(d.rollout, r) for d, r in rows], pad_id)
        if rows
        else select_rows(draws[0].rollout, [])
    )
    return Draw(
        [d.problems[i] for d, i in pick],
        rollout,
        [d.programs[i] for d, i in pick],
        [d.results[i] for d, i in pick],
        [d.scores[i] for d, i in pick],
        sum(d.t_sample for d in draws),
        sum(d.t_sandbox for d in draws),
        sum(d.t_sandbox_wait for d in draws),
    )


def rollout_logprobs(cfg: PPOConfig, run: Run, rollout: Rollout) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log-probs, values, reference log-probs) of the rollout's response tokens, each (B, A); the values are 0
    without a value head."""
    n_query = rollout.query_ids.shape[1]
    input_ids, attention_mask = rollout.input_ids, rollout.attention_mask  # (B, Q + A)
    chunks = []
    # autocast: the reference computes in the precision the policy does (the policy's own forward is autocast by
    # accelerate), so a LoRA policy with zero adapters matches its reference; a no-op in fp32
    with torch.no_grad(), run.accelerator.autocast():
        for i in range(0, len(input_ids), cfg.minibatch_size):
            mb = slice(i, i + cfg.minibatch_size)
            logits, values = run.policy(input_ids[mb], attention_mask[mb])
            logprobs, _ = response_logprobs(logits, rollout.response_ids[mb], n_query, cfg.temperature)
            ref_logits = run.ref(
                input_ids=input_ids[mb],
                attention_mask=attention_mask[mb],
                position_ids=position_ids(attention_mask[mb]),
            ).logits
            ref_logprobs, _ = response_logprobs(ref_logits, rollout.response_ids[mb], n_query, cfg.temperature)
            values = response_values(values, n_query) if values is not None else torch.zeros_like(logprobs)
            chunks.append((logprobs, values, ref_logprobs))
    if not chunks:
        empty = torch.zeros(rollout.response_ids.shape)
        return empty, empty, empty
    return tuple(torch.cat(c) for c in zip(*chunks, strict=True))  # type: ignore[return-value]


# The critic-free estimators with a group baseline, on each sequence's return (ppo_math).
GROUP_BASELINES = {"grpo": grpo_advantages, "dr_grpo": dr_grpo_advantages, "rloo": rloo_advantages}


def ppo_iteration(cfg: PPOConfig, run: Run) -> dict[str, float]:
    """One PPO iteration: rollout, execute, reward, advantages, update. Returns its metrics."""
    policy, accelerator = run.policy, run.accelerator
    start = time.monotonic()

    # 1. rollout and 2. execute: G programs for each of B / G prompts, run in the sandbox and scored (`collect`:
    # with --dynamic-sampling, groups of all-equal rewards are dropped and refilled); then their log-probs, values
    # and reference log-probs
    batch, first, draw_metrics = collect(cfg, run)
    rollout, scores = batch.rollout, batch.scores
    n_query = rollout.query_ids.shape[1]
    b_input_ids, b_attention_mask = rollout.input_ids, rollout.attention_mask  # (B, Q + A)
    start_logprobs = time.monotonic()
    b_logprobs, b_values, b_ref_logprobs = rollout_logprobs(cfg, run, rollout)  # (B, A) each
    t_rollout = batch.t_sample + time.monotonic() - start_logprobs
    b_engine_logprobs = rollout.logprobs  # (B, A) the rollout engine's own, or None
    b_tis = (  # (B, A) --tis-cap: weights for the engine/trainer mismatch
        truncated_is_weights(b_logprobs, b_engine_logprobs, cfg.tis_cap)
        if cfg.tis_cap and b_engine_logprobs is not None
        else None
    )

    # 3. reward: sandbox score on the last response token, minus the KL penalty on every token unless the
    # penalty is a loss term (--kl-penalty)
    kept = torch.tensor([s is not None for s in scores], dtype=torch.float32)
    b_mask = rollout.response_mask.float() * kept[:, None]  # (B, A)
    score_t = torch.tensor([s if s is not None else 0.0 for s in scores])  # (B,)
    kl = kl_estimate(b_logprobs - b_ref_logprobs, cfg.kl_estimator) * b_mask  # (B, A)
    b_rewards = torch.zeros_like(kl) if cfg.kl_in_loss else -run.kl_ctl.value * kl
    last = rollout.response_mask.sum(1).long() - 1  # (B,) index of each response's last token
    b_rewards[torch.arange(len(scores)), last] += score_t * kept
    if cfg.whiten_rewards:
        b_rewards = masked_whiten(b_rewards, b_mask, shift_mean=False)

    # 4. advantages: GAE on the value head, or a critic-free estimator
    b_returns = b_values
    if cfg.advantage == "gae":
        b_advantages, b_returns = compute_gae(b_rewards, b_values, b_mask, cfg.gamma, cfg.lam)
        mean_advantage = masked_mean(b_advantages, b_mask).item()
        b_advantages = masked_whiten(b_advantages, b_mask)
    else:
        if cfg.advantage == "reinforce_pp":
            b_advantages = reinforce_pp_advantages(b_rewards, b_mask, cfg.gamma)
        else:  # the whole response is one action: its return is the summed reward (score less any KL penalty)
            seq_returns = b_rewards.sum(1)  # (B,)
            seq_advantages = GROUP_BASELINES[cfg.advantage](seq_returns, kept.bool(), cfg.samples_per_prompt)
            b_advantages = seq_advantages[:, None] * b_mask  # (B, A)
        mean_advantage = masked_mean(b_advantages, b_mask).item()

    # 5. update: PPO epochs over shuffled minibatches, stopping early past target_kl. With no sample kept
    # (all sandbox errors, which --max-sandbox-errors 1 lets through) there is nothing to learn from.
    start_update = time.monotonic()
    agg, horizon = cfg.loss_agg_mode, cfg.max_new_tokens
    names = ("pg_loss", "v_loss", "kl_loss", "entropy", "clipfrac", "approx_kl")
    stats: dict[str, list[float]] = {k: [] for k in names}
    b_ratios = []
    b_inds = torch.nonzero(kept).squeeze(1)
    update_mode(policy, cfg.gradient_checkpointing, training=True)  # checkpointing acts only in train mode
    # Under data parallel every rank takes the same number of steps, and stops at the same one (`distributed`).
    for _epoch in range(cfg.ppo_epochs if distributed.every_rank_has(accelerator, len(b_inds)) else 0):
        b_inds = b_inds[torch.randperm(len(b_inds))]
        for mb_inds, mb_weight in distributed.minibatches(accelerator, b_inds, cfg.minibatch_size):
            mb_mask = b_mask[mb_inds]
            with accelerator.autocast():
                logits, values = policy(b_input_ids[mb_inds], b_attention_mask[mb_inds])
            new_logprobs, entropy = response_logprobs(logits, rollout.response_ids[mb_inds], n_query, cfg.temperature)
            logratio = new_logprobs - b_logprobs[mb_inds]
            with torch.no_grad():
                # KL(old || new) from samples of the old policy: k3 with ref = new (cleanrl's approx_kl).
                approx_kl = masked_mean(kl_estimate(-logratio, "k3"), mb_mask).item()
                approx_kl = distributed.mean_across(accelerator, approx_kl)  # the global batch's
            pg_loss, clipfrac, ratio = policy_loss(
                new_logprobs, b_logprobs[mb_inds], b_advantages[mb_inds], mb_mask, cfg.clip, agg, horizon,
                is_weights=b_tis[mb_inds] if b_tis is not None else None,
            )  # fmt: skip
            loss = pg_loss - cfg.ent_coef * aggregate_loss(entropy, mb_mask, agg, horizon)
            if cfg.kl_in_loss:
                # k3, not k1: E_pi[grad log pi] = 0, so a k1 term in the loss would pull nothing toward the reference
                # (GRPO's eq. 4 estimator; veRL's low_var_kl).
                kl_loss = aggregate_loss(
                    kl_estimate(new_logprobs - b_ref_logprobs[mb_inds], "k3"), mb_mask, agg, horizon
                )
                loss = loss + run.kl_ctl.value * kl_loss
                stats["kl_loss"].append(kl_loss.item())
            if values is not None:
                newvalues = response_values(values, n_query)
                v_loss, _ = value_loss(newvalues, b_values[mb_inds], b_returns[mb_inds], mb_mask, cfg.vf_clip)
                loss = loss + cfg.vf_coef * v_loss
                stats["v_loss"].append(v_loss.item())
            run.optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss * mb_weight)
            accelerator.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
            run.optimizer.step()
            losses = (pg_loss, masked_mean(entropy.detach(), mb_mask), clipfrac)
            for name, value in zip(("pg_loss", "entropy", "clipfrac"), losses, strict=True):
                stats[name].append(value.item())
            stats["approx_kl"].append(approx_kl)
            b_ratios.append(ratio.detach()[mb_mask.bool()])
            if cfg.target_kl and approx_kl > cfg.target_kl:
                break
        if cfg.target_kl and stats["approx_kl"][-1] > cfg.target_kl:
            break
    update_mode(policy, cfg.gradient_checkpointing, training=False)
    lr = run.scheduler.get_last_lr()[0]
    run.scheduler.step()
    kl_sum, n_kept, n_scores = distributed.sum_across(accelerator, [(kl.sum(1) * kept).sum(), kept.sum(), len(scores)])
    seq_kl = kl_sum / max(n_kept, 1.0)  # over the global batch, so every rank's coefficient moves alike
    if n_kept:  # an empty batch measured no KL; it must not pull an adaptive coefficient down
        run.kl_ctl.update(seq_kl, int(n_scores))
    start_sync = time.monotonic()
    run.sync_engine()  # the next rollout samples from the updated policy
    t_sync = time.monotonic() - start_sync
    t_update = time.monotonic() - start_update

    # 6. log: rewards and code/* describe the policy's first draw, before dynamic sampling filtered it
    scores, programs, results = first.scores, first.programs, first.results
    ratios = torch.cat(b_ratios) if b_ratios else torch.ones(1)
    given = [s for s in scores if s is not None]
    rewards_t = torch.tensor(given or [float("nan")])
    qualities = run.quality(programs)
    # Without a value head there is no value loss nor explained variance: they are left out, not logged as NaN.
    critic_metrics = {
        "ppo/value_loss": _mean(stats["v_loss"]),
        "ppo/explained_variance": explained_variance(b_values, b_returns, b_mask),
    }
    metrics = {
        "ppo/policy_loss": _mean(stats["pg_loss"]),
        **(critic_metrics if cfg.value_head else {}),
        **({"ppo/kl_loss": _mean(stats["kl_loss"])} if cfg.kl_in_loss else {}),
        "ppo/entropy": _mean(stats["entropy"]),
        "ppo/kl": seq_kl,
        "ppo/clipfrac": _mean(stats["clipfrac"]),
        "ppo/ratio_mean": ratios.mean().item(),
        "ppo/ratio_std": ratios.std().item() if ratios.numel() > 1 else 0.0,
        "ppo/mean_reward": rewards_t.mean().item(),
        "ppo/reward_std": rewards_t.std().item() if len(given) > 1 else 0.0,
        "ppo/mean_advantage": mean_advantage,
        "ppo/approx_kl": _mean(stats["approx_kl"]),
        "ppo/kl_coef": run.kl_ctl.value,
        "ppo/lr": lr,
        "ppo/minibatch_steps": len(stats["pg_loss"]),
        **draw_metrics,
        "code/syntax_rate": _mean([r.verdict.value != "syntax_error" for r in results]),
        "code/pass_rate": _mean([r.passed for r in results]),
        # sandbox faults get no reward (see check_sandbox_errors); the reports' training health plots this share
        "code/sandbox_error_rate": _mean([r.verdict.value == "sandbox_error" for r in results]),
        "code/quality_score": _mean([q.score for q in qualities]),
        **hack_rates(results),  # code/hack_attempt_rate, code/hack/<kind>: what the sandbox contained
        "time/rollout": t_rollout,
        "time/sandbox": batch.t_sandbox,
        "time/sandbox_wait": batch.t_sandbox_wait,
        "time/update": t_update,
        "time/weight_sync": t_sync,
        **(
            {"rollout/logprob_diff": logprob_diff(b_logprobs, b_engine_logprobs, b_mask)}
            if b_engine_logprobs is not None
            else {}
        ),
        "time/total": time.monotonic() - start,
    }
    return distributed.global_metrics(accelerator, metrics, given)  # the global batch's under data parallel


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def train_ppo(cfg: PPOConfig) -> Path:
    """Run PPO into `cfg.out` (resuming with `cfg.resume`); returns `cfg.out`."""
    from tqdm import tqdm

    out = Path(cfg.out)
    config = run_config(cfg)
    sources = run_problems(cfg)  # a refused problem source (overlap, missing data) must not claim OUT first
    state = distributed.main_first(cfg.device, lambda: prepare_out(out, config, cfg.resume, cfg.force))
    if state == "done":
        return out
    with setup_run(cfg, out, config, resume=state == "resume", sources=sources) as run:
        done_here = 0
        main = run.accelerator.is_main_process
        bar = tqdm(total=cfg.iterations, initial=run.step, desc="ppo", file=sys.stderr, disable=not main)
        while run.step < cfg.iterations and not run.plateaued(cfg):
            metrics = ppo_iteration(cfg, run)
            run.write_rollouts()
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
        if main:
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
