"""Memory: HumanEval canonical solutions x200 (32,800 samples) through `execrl evaluate`, sampling the peak
RSS of the whole process tree (evaluate, its workers, their sandboxed children) from /proc. Goal: < 500 MB
and flat (the peak in the last tenth of the run no higher than in the first tenth, give or take).

    .venv/bin/python tests/perf/bench_memory.py [--repeats 200] [--workers N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import ROOT, bench_args, evaluate_cmd, write_samples  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root_pid: int) -> int:
    """Sum of resident pages of root_pid and all its descendants, in bytes."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * PAGE  # field 24 of stat: rss in pages
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def main() -> None:
    args = bench_args(__doc__, repeats=200)
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.jsonl"
        n = write_samples(samples, args.repeats)
        cmd = evaluate_cmd(samples, Path(tmp) / "run", args.workers, "1,10,100")
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        trace: list[tuple[float, int]] = []
        while proc.poll() is None:
            trace.append((time.perf_counter() - start, tree_rss(proc.pid)))
            time.sleep(0.25)
        summary = proc.stdout.read().strip()
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"evaluate failed ({proc.returncode})")
    mb = [r / 1e6 for _, r in trace]
    tenth = max(1, len(mb) // 10)
    print(summary)
    print(
        f"samples: {n}, workers: {args.workers}, {elapsed:.0f} s ({n / elapsed:.0f} samples/s), "
        f"load avg {os.getloadavg()[0]:.1f}"
    )
    print(f"peak RSS of the process tree: {max(mb):.0f} MB (goal < 500 MB)")
    middle = mb[len(mb) // 2 : len(mb) // 2 + tenth]
    print(
        f"peak in first tenth: {max(mb[:tenth]):.0f} MB, middle: {max(middle):.0f} MB, "
        f"last tenth: {max(mb[-tenth:]):.0f} MB"
    )


if __name__ == "__main__":
    main()
