"""Where the sandbox's CPU goes per sample: the judge, the zygote and the children, one worker, in process.

Runs `execute` on every HumanEval canonical solution `--repeats` times in a row (as a samples file with
n samples per task does), on slot 0, and reads CPU from the kernel: this process's own rusage (the judge),
the zygote's utime/stime and its reaped children's cutime/cstime (/proc/<zygote>/stat). Beside it, the
same programs run in this process with exec() (no sandbox, no fork: the programs' own work).

    .venv/bin/python tests/perf/bench_cpu_split.py [--repeats 5] [--skip HumanEval/75]

HumanEval/75's reference takes ~0.2 s per run, a fifth of the whole file's program work; --skip leaves it
out to show the per-sample overhead more clearly.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from execrl.benchmarks.registry import load_problems  # noqa: E402
from execrl.harness.sandbox import executor, isolation  # noqa: E402


def _zygote_cpu(pid: int) -> tuple[float, float]:
    """(the zygote's own CPU, its reaped children's CPU) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip", action="append", default=[], help="task ids to leave out")
    args = parser.parse_args()
    problems = [p for p in load_problems("humaneval", None, None) if p.task_id not in args.skip]
    programs = [p.program(p.solutions[0]) for p in problems]
    executor.execute(problems[0], programs[0])  # start the zygote
    zygote = isolation._zygotes[0].proc.pid
    own, (zyg, kids), start = _own_cpu(), _zygote_cpu(zygote), time.perf_counter()
    for problem, program in zip(problems, programs, strict=True):
        for _ in range(args.repeats):
            result = executor.execute(problem, program)
            if not result.passed:
                sys.exit(f"{problem.task_id}: {result.verdict.value}: {result.error}")
    n = len(problems) * args.repeats
    wall = time.perf_counter() - start
    own, (zyg, kids) = _own_cpu() - own, tuple(b - a for a, b in zip((zyg, kids), _zygote_cpu(zygote), strict=True))
    codes = [compile(program + "\n" + (problem.check_code or "") + f"\ncheck({problem.entry_point})\n", "x", "exec")
             for problem, program in zip(problems, programs, strict=True)]  # fmt: skip
    for _ in range(2):  # the second pass is warm (imports done), as a child of the warm zygote is
        reference = _own_cpu()
        for code in codes:
            exec(code, {"__name__": "__reference__"})  # noqa: S102 - trusted reference solutions
        reference = (_own_cpu() - reference) / len(problems)
    total = own + zyg + kids
    print(f"{n} samples on one worker, {n / wall:.0f} samples/s; CPU ms per sample:")
    for name, seconds in (("judge", own), ("zygote", zyg), ("children", kids), ("total", total)):
        print(f"  {name:9s} {1e3 * seconds / n:7.3f}")
    print(
        f"  programs' own work in process (exec, no sandbox): {1e3 * reference:.3f} "
        f"({1e3 * total / n / (1e3 * reference):.1f}x of it is the sandbox total)"
    )


if __name__ == "__main__":
    main()
