"""Learning check on a real benchmark's tests: SFT the tiny model on MBPP train reference solutions, then PPO on
those MBPP prompts, and compare the pass rate of fresh samples before and after PPO (one-sided z-test).

    EXECRL_DATA_DIR=../shared/data .venv/bin/python tests/perf/bench_mbpp_learning.py [--problems 16]
        [--sft-steps 250] [--iterations 15] [--samples 16] [--out /tmp/mbpp-learning]

The `--problems` shortest MBPP train problems (prompt + reference solution, task ids 601-974) are written as a
problem file with MBPP's own prompt (`build_prompt`), asserts and stop sequences, so SFT and PPO see exactly what
`--benchmark mbpp` shows the model, on a subset small enough for CPU. The tiny model (trainers/tiny.py) is built
on those rows and SFT'd until it reproduces some solutions; PPO (the cpu-tiny preset, partial-credit reward from
the per-assert outcomes) then trains on the same prompts. Pass rates are measured on fresh samples at temperature
1 (`--samples` per problem, one seed for both models). What it shows: RL with execution reward on MBPP's tests
raises how often the model writes a passing program for problems it was trained on; it says nothing about
generalisation to unseen problems (a tiny model memorises, it does not learn to program). Minutes on 2 CPU cores.

`--wrong-share S` applies the tiny default's device (synth's `wrong_share`) to MBPP: each problem gets `--copies`
SFT rows, `round(S * copies)` of them a planted-bug mutant of its reference (one token changed: `+`/`-`, `<`/`<=`,
`max`/`min`, an integer ±1, ...; kept only if it parses and fails the problem's asserts in the sandbox), so the
SFT model writes sometimes the right and sometimes a systematically wrong variant. On plain references (S = 0)
its failures are unsystematic slips, and PPO does not raise the pass rate (BENCHMARKS.md, issue 10).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from execrl.benchmarks.problem import Problem
from execrl.benchmarks.problem_file import load_problem_file
from execrl.benchmarks.prompts import build_prompt, stop_sequences
from execrl.benchmarks.registry import default_data_dir, load_problems
from execrl.harness.extract import program_of
from execrl.harness.sandbox.pool import execute_many
from execrl.trainers.data import write_jsonl
from execrl.trainers.planted_bugs import planted_bug_rows
from execrl.trainers.ppo import train_ppo
from execrl.trainers.ppo_config import PRESETS, PPOConfig
from execrl.trainers.rollout import sample
from execrl.trainers.sft import SFTConfig, train_sft
from execrl.trainers.sources import reference_rows
from execrl.trainers.tiny import build_tiny_model

MAX_NEW_TOKENS, MAX_LENGTH = 128, 320


def problem_row(problem: Problem) -> dict:
    """An MBPP problem as a problem-file row that prompts, stops and tests exactly like `--benchmark mbpp`."""
    return {
        "task_id": problem.task_id,
        "prompt": build_prompt(problem),
        "tests": list(problem.tests),
        "setup": problem.test_setup,
        "entry_point": problem.entry_point,
        "solutions": [s.replace("\r\n", "\n") for s in problem.solutions],
        "stop": stop_sequences(problem),
    }


def pass_count(
    model_dir: Path, problems: list[Problem], n: int, seed: int, mutants: dict[str, str | None] | None = None
) -> tuple[int, int, int]:
    """(passed, samples, samples that are their problem's planted-bug mutant verbatim, up to surrounding blank
    space: how many failures are the systematic wrong variant rather than a slip)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lm, tokenizer = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(seed)
    rollout = sample(
        lm, tokenizer, [build_prompt(p) for p in problems], [stop_sequences(p) for p in problems],
        samples_per_prompt=n, max_new_tokens=MAX_NEW_TOKENS, temperature=1.0, max_prompt_tokens=256,
    )  # fmt: skip
    repeated = [p for p in problems for _ in range(n)]
    programs = [program_of(p, t) for p, t in zip(repeated, rollout.texts, strict=True)]
    results = execute_many(repeated, programs, workers=2)
    mutant_of = mutants or {}
    planted = sum(
        1 for p, t in zip(repeated, rollout.texts, strict=True)
        if mutant_of.get(p.task_id) is not None and t.strip() == mutant_of[p.task_id].strip()
    )  # fmt: skip
    return sum(r.passed for r in results), len(results), planted


def one_sided_p(passed_0: int, n_0: int, passed_1: int, n_1: int) -> float:
    """P-value of after > before, two-proportion z-test with the pooled rate."""
    pooled = (passed_0 + passed_1) / (n_0 + n_1)
    if pooled in (0.0, 1.0):
        return 1.0
    z = (passed_1 / n_1 - passed_0 / n_0) / math.sqrt(pooled * (1 - pooled) * (1 / n_0 + 1 / n_1))
    return 0.5 * math.erfc(z / math.sqrt(2))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--sft-steps", type=int, default=250)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--samples-per-prompt", type=int, default=4, help="G: PPO samples per prompt")
    parser.add_argument("--minibatch-size", type=int, default=16)
    parser.add_argument("--ppo-epochs", type=int, default=PRESETS["cpu-tiny"]["ppo_epochs"])
    parser.add_argument("--kl-coef", type=float, default=PRESETS["cpu-tiny"]["kl_coef"])
    parser.add_argument("--lr", type=float, default=PRESETS["cpu-tiny"]["lr"])
    parser.add_argument("--reward", default="partial")
    parser.add_argument("--lam", type=float, default=0.95, help="GAE lambda (1.0: Monte Carlo returns)")
    parser.add_argument("--advantage", default="gae", help="the PPO estimator: gae, grpo, dr_grpo, rloo, reinforce_pp")
    parser.add_argument("--sft-model", type=Path, default=None, help="an SFT output of an earlier run: skip SFT")
    parser.add_argument(
        "--wrong-share", type=float, default=0.0,
        help="share of each problem's SFT rows that carry a planted-bug mutant of its reference (0: references only)",
    )  # fmt: skip
    parser.add_argument("--copies", type=int, default=10, help="with --wrong-share: SFT rows per problem")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/mbpp-learning"))
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()

    # 1. the problems: the shortest MBPP train problems, as a problem file
    mbpp = load_problems("mbpp", "train", default_data_dir())
    chosen = sorted(mbpp, key=lambda p: len(build_prompt(p)) + len(p.solutions[0]))[: args.problems]
    write_jsonl(out / "problems.jsonl", [problem_row(p) for p in chosen])
    problems = load_problem_file(out / "problems.jsonl")

    mutants = None
    if args.wrong_share > 0:
        rows, mutants = planted_bug_rows(problems, args.wrong_share, args.copies, args.seed)

    # 2. SFT the tiny model on their reference solutions (or take an earlier run's)
    if args.sft_model is None:
        if args.wrong_share > 0:
            write_jsonl(out / "sft_rows.jsonl", rows)
            print(json.dumps({"mutants": mutants}, indent=1), flush=True)
            source = {"data": str(out / "sft_rows.jsonl")}
        else:
            rows, source = reference_rows(problems, 1), {"problems": out / "problems.jsonl"}
        model0 = build_tiny_model(
            out / "model0", [r["prompt"] + r["completion"] for r in rows], vocab_size=400, n_layer=2, d_model=64,
            n_head=4, max_positions=MAX_LENGTH + MAX_NEW_TOKENS, seed=args.seed,
        )  # fmt: skip
        sft = train_sft(
            SFTConfig(
                model=str(model0),
                out=out / "sft",
                **source,
                max_steps=args.sft_steps,
                batch_size=8,
                lr=3e-3,
                device="cpu",
                max_length=MAX_LENGTH,
                seed=args.seed,
                force=True,
            )  # fmt: skip
        )
    else:
        sft = args.sft_model
    t_sft = time.monotonic() - start
    *before, planted_before = pass_count(sft, problems, args.samples, seed=123, mutants=mutants)
    print(
        f"after SFT ({t_sft:.0f} s): {before[0]}/{before[1]} fresh samples pass, {planted_before} are the planted bug",
        flush=True,
    )

    # 3. PPO on the same prompts
    start_ppo = time.monotonic()
    settings = {
        **PRESETS["cpu-tiny"],
        "iterations": args.iterations, "batch_size": args.batch_size, "samples_per_prompt": args.samples_per_prompt,
        "minibatch_size": args.minibatch_size, "ppo_epochs": args.ppo_epochs,
        "max_new_tokens": MAX_NEW_TOKENS, "max_prompt_tokens": 256, "eval_every": 0, "reward": args.reward,
        "workers": 2, "device": "cpu", "seed": args.seed, "force": True, "kl_coef": args.kl_coef, "lr": args.lr,
        "lam": args.lam, "advantage": args.advantage,
    }  # fmt: skip
    ppo = train_ppo(PPOConfig(model=str(sft), out=out / "ppo", problems=out / "problems.jsonl", **settings))
    t_ppo = time.monotonic() - start_ppo
    *after, planted_after = pass_count(ppo, problems, args.samples, seed=123, mutants=mutants)

    figures = {
        "problems": [p.task_id for p in problems],
        "sft_steps": args.sft_steps,
        "wrong_share": args.wrong_share,
        "ppo_iterations": args.iterations,
        "ppo_batch_size": args.batch_size,
        "samples_per_prompt": args.samples_per_prompt,
        "minibatch_size": args.minibatch_size,
        "ppo_epochs": args.ppo_epochs,
        "kl_coef": args.kl_coef,
        "lr": args.lr,
        "reward": args.reward,
        "lam": args.lam,
        "advantage": args.advantage,
        "pass_before": before,
        "pass_after": after,
        "planted_bug_before": planted_before,
        "planted_bug_after": planted_after,
        "rate_before": round(before[0] / before[1], 4),
        "rate_after": round(after[0] / after[1], 4),
        "one_sided_p": one_sided_p(*before, *after),
        "seconds_sft": round(t_sft, 1),
        "seconds_ppo": round(t_ppo, 1),
        "seconds_total": round(time.monotonic() - start, 1),
    }
    print(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    main()
