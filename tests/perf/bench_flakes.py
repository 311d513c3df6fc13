"""Verdicts that do not depend on load: the same samples judged three times while a CPU hog runs on every core.

Samples: HumanEval's 164 canonical solutions, MBPP's 974 references (when the shared data folder is there),
and every program of the adversarial table (with its own limits). Prints every sample whose verdict differs
between the rounds (a flake; goal: none) and every one that differs from what it should be (a canonical
solution passes, except MBPP's one known failure; an attack ends as its row says), then the counts.

    .venv/bin/python tests/perf/bench_flakes.py [--rounds 3] [--workers 2] [--no-hog] [--no-mbpp]

Issue 12 item 2: under load the row "gradual memory bomb" came back `timeout` instead of `memory_exceeded`.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from execrl.benchmarks.registry import default_data_dir, load_problems  # noqa: E402
from execrl.harness.records import Limits, Verdict  # noqa: E402
from execrl.harness.sandbox.pool import Job, SandboxPool  # noqa: E402

from tests.harness.sandbox.adversarial_table import ATTACKS, LIMITS, SECRET, with_names  # noqa: E402

HOG = "while True:\n    pass\n"


def samples(data_dir: Path | None, port: int, secret_file: str) -> list[tuple[str, Job, str]]:
    """(label, job, expected verdict) for every sample; the label names it in the report."""
    out = []
    problems = load_problems("humaneval")
    if data_dir is not None and (data_dir / "mbpp").is_dir():
        problems += load_problems("mbpp", "all", data_dir, variant="full")
    for p in problems:
        out.append((p.task_id, Job(p.task_id, p, p.program(p.solutions[0])), Verdict.PASSED.value))
    for name, problem, program, expected in ATTACKS:
        job = Job(name, problem, with_names(program, port, secret_file), LIMITS)
        out.append((f"attack: {name}", job, expected.value))
    return out


def judge(pool: SandboxPool, jobs: list[Job]) -> dict[str, str]:
    return {job.key: result.verdict.value for job, result in pool.run(jobs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-hog", action="store_true", help="run without the CPU hog (a control)")
    parser.add_argument("--no-mbpp", action="store_true")
    args = parser.parse_args()

    data_dir = None if args.no_mbpp else (default_data_dir() or ROOT.parent / "shared" / "data")
    hidden = Path(tempfile.mkdtemp(prefix="execrl-flakes-"))
    (hidden / "secret.txt").write_text(SECRET)
    os.environ["EXECRL_ADVERSARIAL_SECRET"] = SECRET
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    table = samples(data_dir, listener.getsockname()[1], str(hidden / "secret.txt"))
    expected = {job.key: want for _, job, want in table}
    labels = {job.key: label for label, job, _ in table}
    # A session (so an autogroup) per hog: the kernel shares CPU between autogroups first, and a sandboxed
    # program calls setsid, so hogs sharing the runner's group would leave it a whole core.
    hog = [sys.executable, "-c", HOG]
    hogs = [] if args.no_hog else [subprocess.Popen(hog, start_new_session=True) for _ in range(os.cpu_count() or 2)]
    rounds: list[dict[str, str]] = []
    try:
        with SandboxPool(workers=args.workers, limits=Limits(), hidden=[str(hidden)]) as pool:
            print(f"{len(table)} samples, {args.rounds} rounds, {len(hogs)} CPU hogs, {args.workers} workers; "
                  f"isolation {pool.isolation}", flush=True)  # fmt: skip
            for i in range(args.rounds):
                start = time.monotonic()
                rounds.append(judge(pool, [job for _, job, _ in table]))
                load = os.getloadavg()[0]
                print(f"round {i + 1}: {time.monotonic() - start:.1f} s, load average {load:.1f}, "
                      f"verdicts {dict(Counter(rounds[-1].values()))}", flush=True)  # fmt: skip
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        listener.close()
    flakes = {k: [r[k] for r in rounds] for k in expected if len({r[k] for r in rounds}) > 1}
    wrong = {k: [r[k] for r in rounds] for k in expected if any(r[k] != expected[k] for r in rounds)}
    for key, seen in flakes.items():
        print(f"FLAKE {labels[key]}: {seen}")
    for key, seen in wrong.items():
        if key not in flakes:
            print(f"NOT AS EXPECTED (every round) {labels[key]}: {seen[0]}, expected {expected[key]}")
    print(f"flakes: {len(flakes)} of {len(expected)} samples ({100 * len(flakes) / len(expected):.2f}%); "
          f"not as expected in some round: {len(wrong)}")  # fmt: skip


if __name__ == "__main__":
    main()
