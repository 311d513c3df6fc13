"""Critic sampling against plain sampling with the same number of model calls, on the held-out synth split.

    .venv/bin/python tests/perf/bench_critic_sampling.py --work /tmp/bench-cs [--sft DIR]

Steps, each a real execrl command (reruns resume): the tiny model and SFT as the main job makes them (unless
`--sft` names an SFT folder); a critic trained on the SFT model's execution-labelled samples of synth *train*
problems; then three arms on the 200 synth *test* problems, each allowed B = n + rounds x refine x repairs model
calls per problem:

- plain: B samples per problem, pass@1 = the mean over problems of c / B (the expected pass rate of submitting
  one sample at random);
- first-passing: critic sampling with the ranker "first that passes the public examples" (no critic);
- critic: critic sampling with the critic ranking what to refine and what to submit.

Critic sampling spends at most B calls (repairs only for problems no draft solves on the examples); the mean it
spent is printed. pass@1 of a critic-sampling arm is the share of problems whose submitted program passes the
hidden tests. CIs: 95% percentile bootstrap over problems (paired for the differences, 2,000 resamples).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

EXECRL = [sys.executable, "-c", "import sys; from execrl.harness.cli import main; sys.exit(main(sys.argv[1:]))"]


def sh(*args: str) -> None:
    print("$ execrl", " ".join(args), file=sys.stderr, flush=True)
    subprocess.run([*EXECRL, *args], check=True)


def per_problem(eval_dir: Path) -> dict[str, float]:
    """task_id -> share of its samples that passed."""
    data = json.loads((eval_dir / "metrics.json").read_text())
    return {tid: row["c"] / row["n"] for tid, row in data["per_problem"].items()}


def bootstrap(values: list[float], base: list[float] | None = None, reps: int = 2000, seed: int = 0) -> tuple:
    rng = random.Random(seed)
    n = len(values)
    diffs = [v - (base[i] if base else 0.0) for i, v in enumerate(values)]
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(reps))
    return sum(diffs) / n, means[int(0.025 * reps)], means[int(0.975 * reps) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--sft", type=Path, default=None, help="an SFT model folder (default: train one)")
    parser.add_argument("--n", type=int, default=4, help="critic sampling's drafts per problem")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--refine", type=int, default=2)
    parser.add_argument("--repairs", type=int, default=2)
    parser.add_argument("--critic-problems", type=int, default=400, help="synth train problems for the critic's data")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    budget = args.n + args.rounds * args.refine * args.repairs
    sampling = ["--temperature", "1.0", "--top-p", "1.0", "--max-new-tokens", "64"]  # the main job's protocol
    started = time.monotonic()

    # 1. the SFT model, as the main job makes it
    sft = args.sft
    if sft is None:
        from execrl.benchmarks.synth import load_synth, sft_corpus
        from execrl.trainers.tiny import build_tiny_model

        if not (work / "model0" / "config.json").exists():
            rows = sft_corpus(load_synth("train"), wrong_share=0.3)
            build_tiny_model(work / "model0", [r["prompt"] + r["completion"] for r in rows])
        sft = work / "sft"
        sh("train", "sft", "--model", str(work / "model0"), "--data", "synth", "--out", str(sft),
           "--max-steps", "800", "--batch-size", "16", "--lr", "2e-3", "--wrong-share", "0.3")  # fmt: skip

    # 2. the critic, on execution-labelled samples of synth train problems
    labelled = work / "critic_samples"
    sh("generate", "--model", str(sft), "--benchmark", "synth", "--split", "train", "--limit",
       str(args.critic_problems), "--n", "4", "--out", str(labelled), *sampling)  # fmt: skip
    sh("evaluate", "--benchmark", "synth", "--split", "train", "--samples", str(labelled / "samples.jsonl"),
       "--out", str(labelled), "--workers", str(args.workers))  # fmt: skip
    from execrl.benchmarks.registry import load_problems
    from execrl.trainers.critic import rows_from_run

    rows = rows_from_run(work / "critic_samples", load_problems("synth", "train"))
    (work / "critic.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    sh("train", "critic", "--model", str(sft), "--data", str(work / "critic.jsonl"), "--out", str(work / "critic"),
       "--max-steps", "400", "--batch-size", "16")  # fmt: skip

    # 3. the arms on the held-out test split
    timings = {}
    t = time.monotonic()
    sh("generate", "--model", str(sft), "--benchmark", "synth", "--n", str(budget), "--out", str(work / "plain"),
       *sampling)  # fmt: skip
    sh("evaluate", "--benchmark", "synth", "--samples", str(work / "plain" / "samples.jsonl"), "--out",
       str(work / "plain"), "--workers", str(args.workers))  # fmt: skip
    timings["plain"] = time.monotonic() - t
    strategy = ["--n", str(args.n), "--rounds", str(args.rounds), "--refine", str(args.refine),
                "--repairs", str(args.repairs)]  # fmt: skip
    for arm, extra in (("first-passing", []), ("critic", ["--critic", str(work / "critic")])):
        t = time.monotonic()
        sh("generate", "--strategy", "critic-sampling", "--model", str(sft), "--benchmark", "synth", *strategy,
           *extra, *sampling, "--workers", str(args.workers), "--out", str(work / f"arm-{arm}"))  # fmt: skip
        sh("evaluate", "--benchmark", "synth", "--samples", str(work / f"arm-{arm}" / "samples.jsonl"), "--out",
           str(work / f"arm-{arm}" / "eval"), "--workers", str(args.workers))  # fmt: skip
        timings[arm] = time.monotonic() - t

    # 4. figures
    plain = per_problem(work / "plain")
    ids = sorted(plain)
    base = [plain[i] for i in ids]
    print(f"\nsynth test, {len(ids)} problems, budget B = {budget} model calls per problem "
          f"(critic sampling: n={args.n}, rounds={args.rounds}, refine={args.refine}, "
          f"repairs={args.repairs})")  # fmt: skip
    header = f"{'arm':<15} {'pass@1':>7} {'95% CI':>16} {'vs plain':>9} {'95% CI':>16} {'calls/problem':>14}"
    print(header + f" {'s':>6}")
    mean, lo, hi = bootstrap(base)
    print(f"{'plain':<15} {mean:7.3f} [{lo:6.3f}, {hi:6.3f}] {'':>9} {'':>16} {budget:14.2f} {timings['plain']:6.0f}")
    results = {"budget": budget, "plain": {"pass@1": mean, "ci": [lo, hi]}}
    for arm in ("first-passing", "critic"):
        got = per_problem(work / f"arm-{arm}" / "eval")
        values = [got[i] for i in ids]
        spent = json.loads((work / f"arm-{arm}" / "budget.json").read_text())
        calls = spent["model_calls"] / spent["problems"]
        mean, lo, hi = bootstrap(values)
        d, dlo, dhi = bootstrap(values, base)
        print(f"{arm:<15} {mean:7.3f} [{lo:6.3f}, {hi:6.3f}] {d:+9.3f} [{dlo:+6.3f}, {dhi:+6.3f}] {calls:14.2f} "
              f"{timings[arm]:6.0f}")  # fmt: skip
        results[arm] = {"pass@1": mean, "ci": [lo, hi], "delta": d, "delta_ci": [dlo, dhi], "calls": calls,
                        "from_repair": spent["submitted_from_repair"]}  # fmt: skip
    c, f = results["critic"], results["first-passing"]
    d, dlo, dhi = bootstrap([per_problem(work / "arm-critic" / "eval")[i] for i in ids],
                            [per_problem(work / "arm-first-passing" / "eval")[i] for i in ids])  # fmt: skip
    print(f"critic vs first-passing: {d:+.3f} [{dlo:+.3f}, {dhi:+.3f}]; submitted from a repair: "
          f"{c['from_repair']} (critic), {f['from_repair']} (first-passing); "
          f"total {time.monotonic() - started:.0f} s")  # fmt: skip
    (work / "figures.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
