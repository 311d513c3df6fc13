"""What the container costs: programs/s of the docker backend against the local one, HumanEval canonical solutions
through a pool of the same size, same programs, alternating in one session; and the start of one container.

    .venv/bin/python tests/perf/bench_docker.py [--repeats 3] [--workers 2] [--rounds 2]

The engine is started and the image built if needed (outside the timed part). The machine is shared: read the
ratio of neighbouring runs, not the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="samples per HumanEval problem")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="local/docker alternations (best of each is reported)")
    args = parser.parse_args()

    from execrl.benchmarks.humaneval import load_humaneval
    from execrl.harness.sandbox import docker_engine
    from execrl.harness.sandbox.pool import Job, SandboxPool

    docker_engine.build_image()
    problems = load_humaneval()
    jobs = [Job((p.task_id, i), p, p.program(p.solutions[0])) for p in problems for i in range(args.repeats)]
    best: dict[str, float] = {}
    starts = []
    for _ in range(args.rounds):
        for backend in ("local", "docker"):
            opened = time.perf_counter()
            with SandboxPool(args.workers, backend=backend) as pool:
                if backend == "docker":
                    starts.append(time.perf_counter() - opened)
                start = time.perf_counter()
                verdicts = [r.verdict.value for _, r in pool.run(jobs)]
                elapsed = time.perf_counter() - start
            assert len(verdicts) == len(jobs) and set(verdicts) == {"passed"}, backend
            best[backend] = min(best.get(backend, float("inf")), elapsed)
            print(f"{backend}: {len(jobs) / elapsed:.1f} programs/s ({elapsed:.2f} s)", file=sys.stderr)
    print(json.dumps({"programs": len(jobs), "workers": args.workers,
                      "local_programs_per_s": round(len(jobs) / best["local"], 1),
                      "docker_programs_per_s": round(len(jobs) / best["docker"], 1),
                      "docker_vs_local": round(best["local"] / best["docker"], 3),
                      "pool_start_s": round(min(starts), 2)}))  # fmt: skip


if __name__ == "__main__":
    main()
