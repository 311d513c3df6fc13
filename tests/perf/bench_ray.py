"""Ray overhead: `evaluate` of HumanEval canonical solutions on a local two-node Ray cluster (`--sandbox ray`, one
actor per node, one CPU and one worker each) against the local pool with the same two workers, on the same
samples file in the same session, alternating. Prints samples/s of each and the overhead (goal: at most 15%).

    .venv/bin/python tests/perf/bench_ray.py [--repeats 5] [--rounds 2]

The cluster is started here (`ray start --head` and `ray start --address`, as the tests do) and stopped after;
its start and the actors' start are outside the timed part (a pool starts once per run). The machine is shared:
read the ratio of neighbouring runs, not the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.harness.sandbox.ray_cluster import LocalCluster  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="samples per HumanEval problem")
    parser.add_argument("--rounds", type=int, default=2, help="local/ray alternations (best of each is reported)")
    args = parser.parse_args()

    from execrl.benchmarks.humaneval import load_humaneval
    from execrl.harness.sandbox.pool import Job, open_pool

    problems = load_humaneval()
    jobs = [Job((p.task_id, i), p, p.program(p.solutions[0])) for p in problems for i in range(args.repeats)]
    cluster = LocalCluster()
    try:
        cluster.start_head(cpus=1)
        cluster.add_node(cpus=1)
        cluster.wait_for(alive=2)
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, pool_args in (("local", ("local", 2)), ("ray", ("ray", None))):
                with open_pool(*pool_args, ray_address=cluster.address) as pool:
                    start = time.perf_counter()
                    verdicts = {job.key: r.verdict.value for job, r in pool.run(jobs)}
                    elapsed = time.perf_counter() - start
                assert len(verdicts) == len(jobs) and set(verdicts.values()) == {"passed"}, name
                best[name] = min(best.get(name, float("inf")), elapsed)
                print(f"{name}: {len(jobs) / elapsed:.1f} samples/s ({elapsed:.2f} s)", file=sys.stderr)
    finally:
        cluster.stop()
    overhead = best["ray"] / best["local"] - 1
    rates = {name: round(len(jobs) / seconds, 1) for name, seconds in best.items()}
    print(json.dumps({"samples": len(jobs), "samples_per_s": rates, "ray_overhead": round(overhead, 3)}))


if __name__ == "__main__":
    main()
