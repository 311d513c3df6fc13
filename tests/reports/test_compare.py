"""Paired bootstrap, permutation test and flips: against references, and on constructed run folders."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from execrl.reports.compare import compare_runs, find_flips, paired_bootstrap_ci, paired_permutation_p
from execrl.reports.runs import load_run

from tests.commands import command

report_main = command("report")


def test_bootstrap_ci_matches_the_normal_approximation_on_many_problems() -> None:
    rng = np.random.default_rng(7)
    base = rng.random(2000)
    cand = base + rng.normal(0.05, 0.2, 2000)
    diffs = cand - base
    half = 1.96 * diffs.std() / np.sqrt(len(diffs))  # CLT reference for the percentile interval
    lo, hi = paired_bootstrap_ci(base, cand, 4000, seed=1)
    assert lo == pytest.approx(diffs.mean() - half, abs=0.15 * half)
    assert hi == pytest.approx(diffs.mean() + half, abs=0.15 * half)


def test_permutation_p_value_matches_exact_enumeration_of_sign_flips() -> None:
    diffs = np.array([0.5, 0.25, 1.0, -0.25, 0.75, 0.5, -0.5, 1.0, 0.25, 0.5])
    observed = abs(diffs.mean())
    flips = [
        abs((np.array(signs) * diffs).mean()) >= observed - 1e-12
        for signs in itertools.product([-1, 1], repeat=len(diffs))
    ]
    exact = np.mean(flips)
    p = paired_permutation_p(np.zeros_like(diffs), diffs, 20000, seed=3)
    assert p == pytest.approx(exact, abs=0.01)


@pytest.mark.parametrize(
    "base, cand, gained, lost",
    [
        ({"t/1": 0.0, "t/2": 1.0}, {"t/1": 1.0, "t/2": 1.0}, ["t/1"], []),
        ({"t/1": 1.0, "t/2": 1.0}, {"t/1": 1.0, "t/2": 0.0}, [], ["t/2"]),
        ({"t/1": 0.4}, {"t/1": 0.5}, ["t/1"], []),
        ({"t/1": 0.2}, {"t/1": 0.45}, [], []),
        ({"t/1": 0.0}, {"t/1": 1.0, "t/9": 1.0}, ["t/1"], []),
        ({"t/10": 0.0, "t/9": 0.0}, {"t/10": 1.0, "t/9": 1.0}, ["t/9", "t/10"], []),
    ],
    ids=[
        "gained",
        "lost",
        "half-the-samples-counts-as-solved",
        "below-half-is-unsolved-in-both",
        "problem-of-one-run-only-is-ignored",
        "listed-in-natural-order",
    ],
)
def test_flips_list_problems_solved_by_one_run_only(base: dict, cand: dict, gained: list, lost: list) -> None:
    assert find_flips(base, cand) == {"gained": gained, "lost": lost}


def _outcomes(n_tasks: int, solved: set[int], n: int = 1) -> dict[str, list[bool]]:
    return {f"synth/{i}": [i in solved] * n for i in range(n_tasks)}


def test_identical_runs_have_zero_delta_ci_containing_zero_and_p_one(make_run) -> None:
    outcomes = {f"synth/{i}": [i % 2 == 0, i % 3 == 0, True] for i in range(30)}
    a, b = load_run(make_run("a", outcomes)), load_run(make_run("b", outcomes))
    bench = compare_runs(a, b, n_boot=500).benchmarks["synth"]
    for metric in ("pass@1", "pass@2", "syntax_rate", "mean_completion_chars", "quality_score"):
        values = bench.metrics[metric]
        assert values["delta"] == 0
        assert values["ci95"][0] <= 0 <= values["ci95"][1]
    assert bench.significance["p_value"] == 1.0
    assert bench.flips == {"gained": [], "lost": []}


def test_clearly_better_run_has_ci_excluding_zero_and_small_p_value(make_run) -> None:
    base = make_run("base", _outcomes(40, solved=set(range(0, 40, 4))))
    cand = make_run("cand", _outcomes(40, solved=set(range(0, 40, 4)) | set(range(1, 40, 2))))
    bench = compare_runs(load_run(base), load_run(cand), n_boot=2000).benchmarks["synth"]
    assert bench.metrics["pass@1"]["delta"] == pytest.approx(0.5)
    assert bench.metrics["pass@1"]["ci95"][0] > 0
    assert bench.significance["p_value"] < 0.001
    assert bench.flips["gained"] == [f"synth/{i}" for i in range(1, 40, 2)] and bench.flips["lost"] == []


def test_known_flips_and_dropped_problems_on_constructed_runs(make_run) -> None:
    base = make_run(
        "base", {"synth/1": [True, True], "synth/2": [False, False], "synth/3": [True, False], "synth/4": [True, True]}
    )
    cand = make_run(
        "cand", {"synth/1": [False, False], "synth/2": [True, True], "synth/3": [False, True], "synth/5": [True, True]}
    )
    bench = compare_runs(load_run(base), load_run(cand), n_boot=200).benchmarks["synth"]
    assert bench.flips == {"gained": ["synth/2"], "lost": ["synth/1"]}
    assert bench.n_common == 3 and bench.only_baseline == ["synth/4"] and bench.only_candidate == ["synth/5"]
    # recomputed over the 3 common problems only: base (1 + 0 + .5) / 3, cand (0 + 1 + .5) / 3
    assert bench.metrics["pass@1"]["baseline"] == pytest.approx(0.5)
    assert bench.metrics["pass@1"]["candidate"] == pytest.approx(0.5)


def test_pass_at_k_beyond_the_smallest_sample_count_is_not_compared(make_run) -> None:
    base = make_run("base", {"synth/1": [True] * 5, "synth/2": [False] * 5})
    cand = make_run("cand", {"synth/1": [True, False], "synth/2": [False, True]})
    bench = compare_runs(load_run(base), load_run(cand), n_boot=100).benchmarks["synth"]
    assert "pass@1" in bench.metrics and "pass@2" in bench.metrics and "pass@5" not in bench.metrics


def test_comparison_json_has_exactly_the_documented_schema(make_run, tmp_path) -> None:
    base = make_run("base", _outcomes(12, {0, 1, 2}, n=2))
    cand = make_run("cand", _outcomes(12, {1, 2, 3, 4}, n=2))
    assert (
        report_main(
            [
                "compare",
                str(base),
                str(cand),
                "--names",
                "sft",
                "ppo",
                "--out",
                str(tmp_path / "cmp"),
                "--bootstrap",
                "300",
            ]
        )
        == 0
    )
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert set(data) == {"baseline", "candidate", "metrics", "significance", "flips"}
    assert (data["baseline"], data["candidate"]) == ("sft", "ppo")
    assert set(data["metrics"]) == set(data["significance"]) == set(data["flips"]) == {"synth"}
    for values in data["metrics"]["synth"].values():
        assert set(values) == {"baseline", "candidate", "delta", "ci95"}
        assert values["delta"] == pytest.approx(values["candidate"] - values["baseline"])
        assert len(values["ci95"]) == 2 and values["ci95"][0] <= values["ci95"][1]
    assert data["metrics"]["synth"]["pass@1"]["delta"] == pytest.approx(1 / 12)
    assert set(data["significance"]["synth"]) == {"test", "p_value"}
    assert data["flips"]["synth"] == {"gained": ["synth/3", "synth/4"], "lost": ["synth/0"]}


def test_same_seed_gives_the_same_ci_and_benchmarks_of_one_run_are_skipped(make_run, tmp_path) -> None:
    a = make_run("a", _outcomes(20, {1, 2, 3}))
    b = make_run("b", _outcomes(20, {2, 3, 4, 5, 6}))
    first = compare_runs(load_run(a), load_run(b), n_boot=300, seed=5).to_json()
    assert first == compare_runs(load_run(a), load_run(b), n_boot=300, seed=5).to_json()
    multi = tmp_path / "multi"
    for bench in ("synth", "humaneval"):
        make_run(f"multi/{bench}", _outcomes(20, {1}), benchmark=bench)
    comparison = compare_runs(load_run(a), load_run(multi), n_boot=100)
    assert list(comparison.benchmarks) == ["synth"] and comparison.skipped_benchmarks == ["humaneval"]


def test_compare_shows_the_hack_attempt_rate_and_each_kind_a_run_recorded(make_run, tmp_path) -> None:
    # A PPO checkpoint that tries to cheat more than its SFT parent: a flip a reviewer must see.
    tasks = [f"synth/{i}" for i in range(10)]
    base = make_run("sft", {t: [False] for t in tasks}, hacks={t: [{}] for t in tasks})
    cand = make_run("ppo", {t: [False] for t in tasks},
                    hacks={t: [{"opaque_answer": 2} if i < 6 else {}] for i, t in enumerate(tasks)})  # fmt: skip
    out = tmp_path / "cmp"
    assert report_main(["compare", str(base), str(cand), "--out", str(out), "--bootstrap", "200"]) == 0
    metrics = json.loads((out / "comparison.json").read_text())["metrics"]["synth"]
    assert metrics["hack_attempt_rate"]["baseline"] == 0.0
    assert metrics["hack_attempt_rate"]["candidate"] == pytest.approx(0.6)
    assert metrics["hack/opaque_answer"]["delta"] == pytest.approx(0.6)
    assert "hack/network" not in metrics, "kinds neither run recorded stay out of the table"
    rows = [line for line in (out / "report.md").read_text().splitlines() if "hack" in line]
    assert any(line.startswith("| hack_attempt_rate") for line in rows), rows
    assert any(line.startswith("| hack/opaque_answer") for line in rows), rows


def test_runs_evaluated_before_the_containment_field_compare_without_a_hack_rate(make_run) -> None:
    base, cand = make_run("a", _outcomes(6, {1})), make_run("b", _outcomes(6, {2}))
    metrics = compare_runs(load_run(base), load_run(cand), n_boot=100).benchmarks["synth"].metrics
    assert "hack_attempt_rate" not in metrics
