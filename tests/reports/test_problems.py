"""The drill-down's data: which samples are shown, and where problem statements come from."""

from __future__ import annotations

import pytest
from execrl.benchmarks.registry import load_problems
from execrl.reports.compare import compare_runs
from execrl.reports.problems import build_drilldown, pick_samples
from execrl.reports.runs import load_run


@pytest.mark.parametrize(
    "passed, shown",
    [
        ([False, False, True, False, True], [0, 2]),  # the first fail and the first pass, in completion order
        ([True, True, True], [0, 1]),
        ([False, False, False], [0, 1]),
        ([False], [0]),
    ],
    ids=["first-fail-and-first-pass", "all-pass-first-two", "all-fail-first-two", "single-sample"],
)
def test_pick_samples_shows_a_pass_and_a_fail_where_there_are_both(passed, shown) -> None:
    rows = [{"task_id": "t", "completion_id": i, "passed": p} for i, p in enumerate(passed)]
    assert [r["completion_id"] for r in pick_samples(rows)] == shown


def test_statements_come_from_the_benchmark_and_flips_lead(make_run) -> None:
    ids = [p.task_id for p in load_problems("synth")[:6]]
    base = make_run("a", {t: [i < 3] for i, t in enumerate(ids)})
    cand = make_run("b", {t: [i % 2 == 0] for i, t in enumerate(ids)})
    runs = load_run(base, "SFT"), load_run(cand, "PPO")
    drill = build_drilldown(compare_runs(*runs, n_boot=50), runs)
    flips = [(p.task_id, p.flip) for p in drill.problems if p.flip]
    assert flips == [(ids[1], "lost"), (ids[4], "gained")]
    assert [p.task_id for p in drill.problems[:2]] == [ids[1], ids[4]]  # flips first, lost before gained
    statement = {p.task_id: p.statement for p in drill.problems}[ids[0]]
    assert statement == load_problems("synth")[0].prompt
    assert [s.run for s in drill.problems[0].sides] == ["SFT", "PPO"]
