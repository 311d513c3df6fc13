"""A third arm in a comparison report: its pass@1 differences to both arms, its budget, and hostile --extra input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from execrl.reports.arms import calls_per_program, compare_arms
from execrl.reports.compare import paired_bootstrap_ci
from execrl.reports.runs import load_run

from tests.commands import command

report_main = command("report")


def _outcomes(n_tasks: int, solved: set[int], n: int = 1) -> dict[str, list[bool]]:
    return {f"synth/{i}": [i in solved] * n for i in range(n_tasks)}


def _three(make_run):
    base = make_run("sft", _outcomes(20, {0, 1, 2}, n=4))
    cand = make_run("ppo", _outcomes(20, {0, 1, 2, 3, 4, 5}, n=4))
    budget = {"model_calls": 130, "problems": 20}
    arm = make_run("cs", _outcomes(20, set(range(12))), config={"budget": budget, "strategy": "critic-sampling"})
    return base, cand, arm


def test_an_extra_arm_is_compared_with_both_on_the_problems_they_share(make_run) -> None:
    base, cand, arm = _three(make_run)
    arms = compare_arms(load_run(base), load_run(cand), [load_run(arm)], n_boot=400, seed=0)
    entry = arms["cs"]["synth"]
    assert entry["pass@1"] == pytest.approx(12 / 20)
    assert entry["vs_baseline"]["delta"] == pytest.approx(12 / 20 - 3 / 20)
    assert entry["vs_candidate"]["delta"] == pytest.approx(12 / 20 - 6 / 20)
    # the CI is the paired bootstrap of the per-problem differences, as the main comparison computes it
    diffs = np.array([float(i < 12) for i in range(20)]), np.array([float(i < 6) for i in range(20)])
    assert entry["vs_candidate"]["ci95"] == pytest.approx(list(paired_bootstrap_ci(diffs[1], diffs[0], 400, 0)))
    assert entry["vs_baseline"]["p_value"] < 0.01 and entry["vs_baseline"]["n_common"] == 20
    assert entry["calls_per_program"] == pytest.approx(6.5)


def test_plain_sampling_spends_one_call_per_submitted_program(make_run) -> None:
    base, _, arm = _three(make_run)
    assert calls_per_program(load_run(base).benchmarks["synth"]) == 1.0
    assert calls_per_program(load_run(arm).benchmarks["synth"]) == pytest.approx(130 / 20)


def test_the_report_shows_all_arms_and_comparison_json_holds_them(make_run, tmp_path) -> None:
    base, cand, arm = _three(make_run)
    out = tmp_path / "report"
    argv = ["compare", str(base), str(cand), "--names", "SFT", "PPO", "--extra", str(arm),
            "--extra-names", "PPO + critic sampling", "--out", str(out), "--bootstrap", "200"]  # fmt: skip
    assert report_main(argv) == 0
    data = json.loads((out / "comparison.json").read_text())
    assert set(data["arms"]) == {"PPO + critic sampling"}
    assert data["arms"]["PPO + critic sampling"]["synth"]["vs_baseline"]["delta"] == pytest.approx(0.45)
    md = (out / "report.md").read_text()
    assert "## All arms" in md and "PPO + critic sampling" in md and "6.5" in md
    assert "PPO + critic sampling" in (out / "report.html").read_text()
    # rerun on the same folder: resumes, nothing recomputed or refused
    assert report_main(argv) == 0


def test_a_two_arm_report_is_unchanged_by_the_feature(make_run, tmp_path) -> None:
    base, cand, _ = _three(make_run)
    out = tmp_path / "two"
    assert report_main(["compare", str(base), str(cand), "--out", str(out), "--bootstrap", "100"]) == 0
    assert "arms" not in json.loads((out / "comparison.json").read_text())
    assert "All arms" not in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("extra_args", "message"),
    [
        # two names for one run: which name is whose?
        (lambda arm: ["--extra", arm, "--extra-names", "a", "b"], "2 names for 1 --extra runs"),
        # an extra arm named like the baseline would make its rows indistinguishable in the table
        (lambda arm: ["--extra", arm, "--extra-names", "SFT"], "already an arm's"),
        # the candidate given again as an extra arm under its own folder name
        (lambda arm: ["--extra", str(Path(arm).with_name("ppo")), "--extra-names", "PPO"], "already an arm's"),
        # a folder that is not a run at all
        (lambda arm: ["--extra", arm + "-missing"], "no such"),
    ],
    ids=["name-count", "baseline-name", "candidate-name", "missing-folder"],
)
def test_hostile_extra_arms_are_refused_naming_the_flag(make_run, tmp_path, capsys, extra_args, message) -> None:
    base, cand, arm = _three(make_run)
    argv = ["compare", str(base), str(cand), "--names", "SFT", "PPO", *extra_args(str(arm)),
            "--out", str(tmp_path / "r"), "--bootstrap", "50"]  # fmt: skip
    assert report_main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r" / "comparison.json").exists()
