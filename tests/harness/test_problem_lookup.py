"""Task ids and inline problems into Problems, and raw outputs into the programs `evaluate` would run."""

from __future__ import annotations

import json

import pytest
from execrl.benchmarks.datafiles import DataError
from execrl.benchmarks.humaneval import load_humaneval
from execrl.harness.extract import extract
from execrl.harness.problem_lookup import ProblemLookup, program_for
from execrl.harness.samples import Sample

ROW = {"task_id": "mine/add", "prompt": "def add(a, b):\n", "completion": "body", "tests": ["assert add(1, 2) == 3"],
       "entry_point": "add"}  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "task_id", "why"),
    [
        ("HumanEval/7", "HumanEval/7", "a HumanEval task id"),
        ("humaneval/7", "HumanEval/7", "the prefix in any case, as normalize_task_id allows"),
        ("synth/test/add/0", None, "a synth id names its own split"),
        (ROW, "mine/add", "an inline problem-file row"),
        (json.dumps(ROW), "mine/add", "the same row as JSON text (OpenRLHF labels are strings)"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_specs_resolve_to_problems(spec, task_id, why) -> None:
    lookup = ProblemLookup()
    if task_id is None:  # synth: take a real id of its test split
        from execrl.benchmarks.synth import load_synth

        spec = task_id = load_synth("test")[3].task_id
    assert lookup.resolve(spec).task_id == task_id


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("Nope/1", "an unknown prefix"),
        ("HumanEval/9999", "an id past the benchmark's end"),
        ("no-slash", "not a task id at all"),
        ("{not json", "broken JSON text"),
        (12, "a number"),
        ({"task_id": "x", "tests": ["assert f() =="]}, "inline tests that do not parse"),
        ({"task_id": "x", "tests": ["assert 1"], "bogus": 1}, "an unknown field of the problem file"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_bad_specs_are_data_errors_naming_the_problem(spec, why) -> None:
    with pytest.raises(DataError):
        ProblemLookup().resolve(spec)


@pytest.mark.parametrize("chat", [False, True])
def test_programs_match_generate_then_evaluate(chat: bool) -> None:
    problem = load_humaneval()[0]
    for raw in ("    return False\n", f"```python\n{problem.prompt}    return False\n```", "prose only"):
        payload = extract(problem, raw, chat=chat)
        sample = Sample(problem.task_id, 0, payload.get("completion", payload.get("solution", "")), 1,
                        whole_program="solution" in payload)  # fmt: skip
        assert program_for(problem, raw, chat=chat) == sample.program(problem)


def test_a_body_style_inline_problem_puts_the_prompt_first_and_stops_at_its_stop_sequence() -> None:
    problem = ProblemLookup().resolve({**ROW, "stop": ["\ndef "]})
    output = "    return a + b\ndef junk(:\n"
    assert program_for(problem, output, chat=False) == "def add(a, b):\n    return a + b"
