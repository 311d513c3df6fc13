"""Reading an evaluated run folder back: problems, samples and results joined; the response a reward model scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execrl.benchmarks.errors import UserError
from execrl.benchmarks.synth import load_synth
from execrl.harness.run_programs import read_run

from tests.evaluated_runs import write_humaneval_run


def test_a_humaneval_run_joins_each_sample_with_its_problem_and_result(tmp_path: Path) -> None:
    run = write_humaneval_run(tmp_path / "run", {"HumanEval/0": ["passed", "failed"], "HumanEval/3": ["timeout"]})
    programs = list(read_run(run))
    assert [(p.sample.task_id, p.verdict) for p in programs] == [
        ("HumanEval/0", "passed"), ("HumanEval/0", "failed"), ("HumanEval/3", "timeout"),
    ]  # fmt: skip
    first = programs[0]
    assert first.response == first.sample.completion and first.program == first.problem.prompt + first.response


def test_the_pipelines_layout_and_a_synth_whole_program_lose_the_repeated_def_line(tmp_path: Path) -> None:
    problem = load_synth("test")[0]
    folder = tmp_path / "run" / "synth"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"evaluate": {"benchmark": "synth", "split": "test"}}))
    (folder / "samples.jsonl").write_text(json.dumps({"task_id": problem.task_id, "completion": problem.solutions[0]}))
    row = {"task_id": problem.task_id, "completion_id": 0, "verdict": "passed", "tests": []}
    (folder / "results.jsonl").write_text(json.dumps(row) + "\n")
    (program,) = read_run(tmp_path / "run")
    def_line, body = problem.solutions[0].split("\n", 1)
    assert problem.prompt.rstrip("\n").endswith(def_line) and program.response == body
    assert program.program == problem.solutions[0]


@pytest.mark.parametrize(
    ("results", "needle"),
    [
        (None, "no results.jsonl"),  # not an evaluated run
        ('{"task_id": "HumanEval/0"}\n', "results.jsonl:1: not a result row"),  # a row without its keys
    ],
    ids=["no-results", "bad-row"],
)
def test_a_folder_that_is_not_an_evaluated_run_is_named(tmp_path: Path, results: str | None, needle: str) -> None:
    run = write_humaneval_run(tmp_path / "run", {"HumanEval/0": ["passed"]})
    if results is None:
        (run / "results.jsonl").unlink()
    else:
        (run / "results.jsonl").write_text(results)
    with pytest.raises(UserError, match=needle):
        list(read_run(run))
