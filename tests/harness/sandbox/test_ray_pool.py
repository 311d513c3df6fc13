"""Execution on a Ray cluster: a real two-node cluster started by the test itself on this machine (`ray start
--head` and `ray start --address`, one CPU each), evaluating HumanEval's canonical solutions twice over with the
results of the local pool, and again with a third node killed mid-run."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from execrl.benchmarks.humaneval import load_humaneval
from execrl.harness.evaluate import evaluate
from execrl.harness.sandbox.ray_pool import actor_plan, degraded_warnings, summarise_nodes

pytest.importorskip("ray", reason="the [ray] extra is not installed")

from tests.harness.sandbox.ray_cluster import LocalCluster  # noqa: E402

PLANS = [
    ("one actor per node, a worker per whole CPU", [("a", 4.0), ("b", 2.5)], None, [("a", 4), ("b", 2)]),
    ("a node without a whole CPU gets no actor", [("head", 0.0), ("b", 2.0)], None, [("b", 2)]),
    ("--workers N: one actor per N CPUs", [("a", 8.0)], 3, [("a", 3), ("a", 3)]),
    ("a node smaller than N still gets one, smaller", [("a", 2.0)], 4, [("a", 2)]),
]


@pytest.mark.parametrize(("nodes", "workers", "plan"), [p[1:] for p in PLANS], ids=[p[0] for p in PLANS])
def test_actor_plan(nodes, workers, plan) -> None:
    assert actor_plan(nodes, workers) == plan


def test_a_degraded_node_is_named_and_the_pool_counts_only_what_every_node_has() -> None:
    full = {"net": True, "mount": True, "uid": True}
    infos = [{"node_id": "a" * 40, "host": "gpu-1", "isolation": full},
             {"node_id": "b" * 40, "host": "gpu-2", "isolation": {**full, "mount": False, "uid": False}}]  # fmt: skip
    nodes, isolation = summarise_nodes(infos)
    assert [n["degraded"] for n in nodes] == [[], ["mount", "uid"]]
    assert isolation == {"net": True, "mount": False, "uid": False}
    warning = f"WARNING: Ray node gpu-2 ({'b' * 12}) runs its sandbox WITHOUT mount, uid isolation"
    assert degraded_warnings(nodes) == [warning]


@pytest.fixture(scope="module")
def cluster():
    cluster = LocalCluster()
    try:
        cluster.start_head(cpus=1)
        cluster.add_node(cpus=1)
        cluster.wait_for(alive=2)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def humaneval_twice(tmp_path_factory) -> tuple[list, Path]:
    problems = load_humaneval()
    samples = tmp_path_factory.mktemp("samples") / "samples.jsonl"
    rows = [{"task_id": p.task_id, "completion": p.solutions[0]} for p in problems for _ in range(2)]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return problems, samples


def _outcomes(out: Path) -> dict[tuple[str, int], tuple]:
    """What a results.jsonl says of each sample (durations aside); refuses a doubled line."""
    found: dict[tuple[str, int], tuple] = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        key = (row["task_id"], row["completion_id"])
        assert key not in found, f"{key} judged twice"
        found[key] = (row["verdict"], row["n_passed"], tuple(t["verdict"] for t in row["tests"]))
    return found


@pytest.fixture(scope="module")
def local_outcomes(humaneval_twice, tmp_path_factory) -> dict:
    problems, samples = humaneval_twice
    out = tmp_path_factory.mktemp("local")
    evaluate(problems, samples, out, workers=2, ks=[1, 2], progress=False)
    outcomes = _outcomes(out)
    assert len(outcomes) == 2 * len(problems)
    return outcomes


def test_evaluate_on_a_two_node_cluster_gives_the_local_pools_results(
    cluster, humaneval_twice, local_outcomes, tmp_path
) -> None:
    problems, samples = humaneval_twice
    metrics = evaluate(problems, samples, tmp_path, ks=[1, 2], sandbox="ray", ray_address=cluster.address,
                       progress=False)  # fmt: skip
    assert _outcomes(tmp_path) == local_outcomes
    assert len({node["node_id"] for node in metrics["nodes"]}) == 2
    assert all(node["isolation"] and node["degraded"] == [] for node in metrics["nodes"])
    assert metrics["lost_nodes"] == []


def test_a_node_killed_mid_run_has_its_programs_rerun_elsewhere(
    cluster, humaneval_twice, local_outcomes, tmp_path, capfd
) -> None:
    problems, samples = humaneval_twice
    doomed = cluster.add_node(cpus=1)
    cluster.wait_for(alive=3)
    metrics: dict = {}
    run = threading.Thread(
        target=lambda: metrics.update(
            evaluate(
                problems, samples, tmp_path, ks=[1, 2], sandbox="ray", ray_address=cluster.address, progress=False
            )  # fmt: skip
        )
    )
    run.start()
    results = tmp_path / "results.jsonl"
    while run.is_alive() and (not results.exists() or results.read_text().count("\n") < 40):
        time.sleep(0.02)
    cluster.kill(doomed)
    run.join(timeout=240)
    assert not run.is_alive()
    assert _outcomes(tmp_path) == local_outcomes
    assert len(metrics["nodes"]) == 3 and len(metrics["lost_nodes"]) == 1
    assert "was lost" in capfd.readouterr().err
