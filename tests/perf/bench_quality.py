"""Quality scoring speed: `quality_many` on HumanEval canonical solutions (prompt + body), x N copies.

    .venv/bin/python tests/perf/bench_quality.py [--copies 3] [--rounds 5]

Prints seconds per batch (median and best of `rounds`) and programs per second. The first call of a
process also pays for starting anything the scorer keeps warm; it is printed apart as `cold`. The machine's
load moves the figures, so compare before/after within one session.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from execrl.benchmarks.registry import load_problems
from execrl.harness.scoring.quality import quality_many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    problems = load_problems("humaneval", None, None)
    programs = [p.program(p.solutions[0]) for p in problems] * args.copies
    t0 = time.perf_counter()
    quality_many(programs[: len(problems)])
    cold = time.perf_counter() - t0
    times = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        scores = quality_many(programs)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    mean_score = sum(q.score for q in scores) / len(scores)
    print(
        json.dumps(
            {
                "programs": len(programs),
                "cold_first_call_s": round(cold, 3),
                "median_s": round(median, 3),
                "best_s": round(min(times), 3),
                "programs_per_s": round(len(programs) / median, 1),
                "mean_score": round(mean_score, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
