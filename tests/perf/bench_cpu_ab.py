"""CPU per sample of `execrl evaluate`, this checkout against another one, alternating, in one session.

The whole process tree (evaluate, its workers, their zygotes and every sandboxed child) runs in a cpuacct
cgroup (v1) made for each run, so the figure is CPU time, steadier than samples/s on a shared machine.
Each checkout runs with its own `.venv/bin/execrl`, so the other one can be any older commit:

    git worktree add /tmp/base <rev> && (cd /tmp/base && python3 -m venv .venv && .venv/bin/pip install -e .)
    sudo .venv/bin/python tests/perf/bench_cpu_ab.py --base /tmp/base [--rounds 6] [--repeats 10]

Needs root and a cgroup v1 cpuacct hierarchy at /sys/fs/cgroup/cpuacct.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import write_samples  # noqa: E402

HERE = Path(__file__).resolve().parents[2]
CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def run_once(checkout: Path, samples: Path, out: Path, group: Path, workers: int) -> tuple[float, float]:
    """(CPU seconds of the whole tree, wall seconds) of one `execrl evaluate` of `samples`."""
    group.mkdir()
    cmd = [str(checkout / ".venv/bin/execrl"), "evaluate", "--benchmark", "humaneval", "--samples", str(samples),
           "--out", str(out), "--workers", str(workers)]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh", *cmd], cwd=checkout,
                   check=True, capture_output=True)  # fmt: skip
    wall = time.perf_counter() - start
    cpu = int((group / "cpuacct.usage").read_text()) / 1e9
    for _ in range(100):  # the last children may still be leaving
        try:
            group.rmdir()
            break
        except OSError:
            time.sleep(0.05)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (with its own .venv)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=10, help="HumanEval canonical solutions x REPEATS")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not (CPUACCT / "cgroup.procs").exists():
        sys.exit(f"no cgroup v1 cpuacct hierarchy at {CPUACCT}")
    sides = {"base": args.base.resolve(), "this": HERE}
    tmp = Path(tempfile.mkdtemp(prefix="execrl-cpu-ab-"))
    samples = tmp / "samples.jsonl"
    n = write_samples(samples, args.repeats)
    cpu_ms: dict[str, list[float]] = {side: [] for side in sides}
    for r in range(args.rounds):
        order = list(sides.items()) if r % 2 == 0 else list(reversed(sides.items()))  # alternate who goes first
        for side, checkout in order:
            group = CPUACCT / f"execrl-ab-{os.getpid()}-{side}-{r}"
            cpu, wall = run_once(checkout, samples, tmp / f"run-{side}-{r}", group, args.workers)
            cpu_ms[side].append(1e3 * cpu / n)
            print(f"round {r} {side:>4}: {1e3 * cpu / n:.3f} ms CPU/sample, {n / wall:.0f} samples/s, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    median = {side: sorted(v)[len(v) // 2] for side, v in cpu_ms.items()}
    for side, v in cpu_ms.items():
        print(f"{side:>4}: median {median[side]:.3f} ms CPU/sample ({', '.join(f'{x:.3f}' for x in sorted(v))})")
    print(f"this / base, CPU per sample: {median['this'] / median['base']:.3f}")


if __name__ == "__main__":
    main()
