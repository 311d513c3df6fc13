"""Per core: our sandbox against a SandboxFusion-style runner on the same programs, side by side.

    .venv/bin/python tests/perf/bench_sandboxfusion_style.py [--repeats 3]

The programs are HumanEval's canonical solutions made whole scripts (prompt + solution + `test` + `check(...)`).
SandboxFusion's python runner writes the code to a file in a fresh temporary folder and runs `python FILE`
(sandbox/runners/major.py, `run_python`; its default `isolation: none`), one subprocess per request: that is the
reference here, one at a time. Ours, with one worker (one core): (1) the judged path, the HumanEval problem and its
completion through `execute_many`; (2) the raw path /run_code uses, the same whole script as one STDIO run with no
expected output. Prints programs/s of each and the ratios; the machine is shared, so the three alternate rounds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from execrl.benchmarks.humaneval import load_humaneval
from execrl.benchmarks.problem import Problem
from execrl.harness.sandbox.executor import raw_problem
from execrl.harness.sandbox.pool import SandboxPool, execute_many


def scripts(problems: list[Problem]) -> list[str]:
    return [f"{p.prompt}{p.solutions[0]}\n\n{p.check_code}\n\ncheck({p.entry_point})\n" for p in problems]


def fresh_python(codes: list[str]) -> float:
    """SandboxFusion's run_python, one request after another: programs/s."""
    start = time.monotonic()
    for code in codes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "main.py"
            path.write_text(code)
            done = subprocess.run([sys.executable, str(path)], cwd=tmp, capture_output=True, timeout=60)
            assert done.returncode == 0, done.stderr[-500:]
    return len(codes) / (time.monotonic() - start)


def ours(pool: SandboxPool, problems: list[Problem], programs: list[str]) -> float:
    start = time.monotonic()
    results = execute_many(problems, programs, pool=pool)
    assert all(r.passed for r in results), [r.error for r in results if not r.passed][:3]
    return len(programs) / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    problems = load_humaneval()
    codes = scripts(problems)
    raw = [raw_problem("", f"raw/{i}") for i in range(len(codes))]
    rounds: dict[str, list[float]] = {"fresh python": [], "ours, judged": [], "ours, raw run": []}
    with SandboxPool(1) as pool:
        for _ in range(args.repeats):
            rounds["fresh python"].append(fresh_python(codes))
            rounds["ours, judged"].append(ours(pool, problems, [p.prompt + p.solutions[0] for p in problems]))
            rounds["ours, raw run"].append(ours(pool, raw, codes))
    best = {name: max(values) for name, values in rounds.items()}
    for name, values in rounds.items():
        print(f"{name}: {' / '.join(f'{v:.1f}' for v in values)} programs/s per core (best {best[name]:.1f})")
    print(
        f"ratio ours judged / fresh python: {best['ours, judged'] / best['fresh python']:.1f}x; "
        f"raw run / fresh python: {best['ours, raw run'] / best['fresh python']:.1f}x"
    )


if __name__ == "__main__":
    main()
