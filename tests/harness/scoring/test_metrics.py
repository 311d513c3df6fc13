"""compute_metrics: pass@k over problems, syntax rate, verdict histogram, difficulty split, omitted k."""

from __future__ import annotations

import json

import pytest
from execrl.benchmarks.problem import Problem, TestKind
from execrl.harness.records import Verdict
from execrl.harness.scoring.metrics import compute_metrics
from execrl.harness.scoring.passk import pass_at_k


def _problem(i: int, difficulty: str | None = None) -> Problem:
    return Problem(task_id=f"APPS/{i}", benchmark="apps", prompt="", test_kind=TestKind.STDIO, difficulty=difficulty)


def _rows(task_id: str, verdicts: list[str]) -> list[dict]:
    return [{"task_id": task_id, "verdict": v, "completion": "x = 1\n" * (i + 1)} for i, v in enumerate(verdicts)]


@pytest.fixture
def metrics() -> dict:
    problems = [_problem(0, "introductory"), _problem(1, "interview"), _problem(2, "interview")]
    rows = (
        _rows("APPS/0", ["passed", "failed", "passed", "syntax_error"])
        + _rows("APPS/1", ["failed", "timeout", "runtime_error", "failed"])
        + _rows("APPS/2", ["passed", "passed", "passed", "passed"])
    )
    return compute_metrics(problems, iter(rows), ks=[1, 2, 10])


def test_pass_at_k_is_the_mean_of_the_per_problem_estimates(metrics: dict) -> None:
    for k in (1, 2):
        expected = (pass_at_k(4, 2, k) + pass_at_k(4, 0, k) + pass_at_k(4, 4, k)) / 3
        assert metrics["metrics"][f"pass@{k}"] == pytest.approx(expected)


def test_k_above_the_samples_per_problem_is_omitted_with_a_note(metrics: dict) -> None:
    assert "pass@10" not in metrics["metrics"]
    assert any("pass@10 omitted" in note for note in metrics["notes"])


def test_histogram_lists_every_verdict_and_syntax_rate_counts_non_syntax_errors(metrics: dict) -> None:
    assert set(metrics["verdicts"]) == {v.value for v in Verdict}
    assert metrics["verdicts"]["passed"] == 6 and metrics["verdicts"]["memory_exceeded"] == 0
    assert metrics["metrics"]["syntax_rate"] == pytest.approx(11 / 12)


def test_difficulty_groups_hold_their_own_problems(metrics: dict) -> None:
    interview = metrics["by_difficulty"]["interview"]
    assert interview["n_problems"] == 2
    assert interview["metrics"]["pass@1"] == pytest.approx(0.5)
    assert sum(interview["verdicts"].values()) == 8
    assert metrics["per_problem"]["APPS/0"] == {"n": 4, "c": 2, "difficulty": "introductory"}


def test_completion_length_and_quality_come_from_the_texts(metrics: dict) -> None:
    assert metrics["metrics"]["mean_completion_chars"] == pytest.approx(6 * 2.5)
    assert metrics["quality"]["n_programs"] == 4  # distinct programs only
    assert 0.0 <= metrics["metrics"]["quality_score"] <= 10.0


def test_problems_without_samples_are_counted_not_scored() -> None:
    problems = [_problem(0), _problem(1)]
    m = compute_metrics(problems, iter(_rows("APPS/0", ["passed"])), ks=[1])
    assert m["n_problems"] == 1 and m["n_problems_without_samples"] == 1
    assert m["metrics"]["pass@1"] == 1.0


def test_uneven_samples_omit_the_k_the_smallest_problem_cannot_support() -> None:
    rows = _rows("APPS/0", ["passed"] * 3) + _rows("APPS/1", ["failed"])
    m = compute_metrics([_problem(0), _problem(1)], iter(rows), ks=[1, 2])
    assert m["metrics"]["pass@1"] == pytest.approx(0.5)
    assert "pass@2" not in m["metrics"]
    assert m["samples_per_problem"] == {"min": 1, "max": 3}


def test_empty_input_is_valid_json_with_nulls_not_nan() -> None:
    m = compute_metrics([_problem(0)], iter([]), ks=[1])
    text = json.dumps(m, allow_nan=False)
    assert m["metrics"]["syntax_rate"] is None and "NaN" not in text


def test_containment_events_are_summed_per_kind_and_the_hack_rate_is_the_share_of_samples_with_any() -> None:
    rows = [
        {"task_id": "APPS/0", "verdict": "failed", "containment": {"opaque_answer": 3}},
        {"task_id": "APPS/0", "verdict": "failed", "containment": {"opaque_answer": 1, "network": 2}},
        {"task_id": "APPS/0", "verdict": "passed", "containment": {}},
        {"task_id": "APPS/0", "verdict": "timeout", "containment": {}},
    ]
    metrics = compute_metrics([_problem(0)], iter(rows), ks=[1])
    assert metrics["metrics"]["hack_attempt_rate"] == 0.5
    assert metrics["containment"]["opaque_answer"] == 4 and metrics["containment"]["network"] == 2
    assert metrics["containment"]["early_exit"] == 0, "every kind is listed, zeros included"


def test_results_written_before_the_containment_field_give_an_unknown_hack_rate_not_zero() -> None:
    metrics = compute_metrics([_problem(0)], iter([{"task_id": "APPS/0", "verdict": "failed"}]), ks=[1])
    assert metrics["metrics"]["hack_attempt_rate"] is None
