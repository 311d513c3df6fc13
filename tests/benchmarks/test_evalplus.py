"""HumanEval+ / MBPP+ loaders on fixture files in both upstream formats: ids, split, tolerances, oracles, inputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from execrl.benchmarks.datafiles import DataError
from execrl.benchmarks.evalplus import evalplus_problem, load_evalplus
from execrl.benchmarks.problem import TestKind
from execrl.benchmarks.prompts import build_prompt, chat_messages, stop_sequences
from execrl.benchmarks.registry import load_problems, normalize_task_id

from tests.benchmarks.upstream_fixtures import MBPP_PLUS, write_hub, write_release


@pytest.mark.parametrize("fmt", ["release", "hub"])
def test_humanevalplus_keeps_evalplus_ids_inputs_atol_and_the_body_completion_convention(tmp_path: Path, fmt) -> None:
    (write_release if fmt == "release" else write_hub)(tmp_path, "humanevalplus")
    problems = load_problems("humanevalplus", data_dir=tmp_path)
    assert [p.task_id for p in problems] == ["HumanEval/0", "HumanEval/2", "HumanEval/32"]
    by_id = {p.task_id: p for p in problems}
    truncate, find_zero = by_id["HumanEval/2"], by_id["HumanEval/32"]
    assert truncate.test_kind is TestKind.CALL and truncate.fn_name == "truncate_number"
    assert truncate.inputs == ([3.5], [1.25], [123.456], [0.0001])
    assert truncate.metadata["atol"] == 0.0 and truncate.metadata["oracle"] is None
    assert find_zero.metadata["atol"] == pytest.approx(1e-4) and find_zero.metadata["oracle"] == "poly_root"
    # a HumanEval+ completion is the body after the prompt, as in HumanEval
    assert truncate.program("    return 0.5\n") == truncate.prompt + "    return 0.5\n"
    assert truncate.metadata["expected_from_reference"] is (fmt == "release")
    if fmt == "hub":
        assert truncate.outputs == (0.5, 0.25, pytest.approx(0.456), pytest.approx(0.0001))
    assert build_prompt(truncate) == truncate.prompt and "\ndef " in stop_sequences(truncate)


@pytest.mark.parametrize("fmt", ["release", "hub"])
def test_mbppplus_serves_ids_outside_mbpps_test_range_under_the_default_split(tmp_path: Path, fmt) -> None:
    # issue 12: MBPP+ task ids outside 11-510 were refused under the default split
    (write_release if fmt == "release" else write_hub)(tmp_path, "mbppplus")
    problems = load_problems("mbppplus", data_dir=tmp_path)
    assert [p.task_id for p in problems] == ["Mbpp/2", "Mbpp/17", "Mbpp/809"]
    assert normalize_task_id("mbppplus", 809) == "Mbpp/809" and normalize_task_id("mbppplus", "Mbpp/2") == "Mbpp/2"
    by_id = {p.task_id: p for p in problems}
    # MBPP+ tuples come back as tuples (release: evalplus's per-task rule; hub: the repr)
    assert by_id["Mbpp/809"].inputs[0] == [(1, 2, 3), (2, 3, 4)]
    assert by_id["Mbpp/2"].inputs[0] == [(3, 4, 5, 6), (5, 7, 4, 10)]
    assert by_id["Mbpp/2"].metadata["oracle"] == "set_equal"
    assert by_id["Mbpp/17"].inputs == ([10], [5], [2.5], [0.1]) and by_id["Mbpp/17"].metadata["atol"] == 1e-4
    prompt = build_prompt(by_id["Mbpp/17"])
    assert prompt.startswith('"""\nWrite a function that returns the perimeter')
    assert "assert square_perimeter(10)" in prompt
    assert "```" in chat_messages(by_id["Mbpp/17"])[1]["content"]
    with pytest.raises(DataError, match="only 'test'"):
        load_problems("mbppplus", "validation", data_dir=tmp_path)


def test_humanevalplus_refuses_a_bare_number_as_task_id() -> None:
    with pytest.raises(ValueError, match="HumanEval/N"):
        normalize_task_id("humanevalplus", "2")


def test_evalplus_override_variables_are_honoured_before_the_data_dir(tmp_path: Path, monkeypatch) -> None:
    release = write_release(tmp_path / "elsewhere", "mbppplus")
    only_two = tmp_path / "MbppPlus-two.jsonl"
    only_two.write_text("".join(json.dumps(row) + "\n" for row in MBPP_PLUS[:2]))
    write_release(tmp_path / "data", "mbppplus")
    monkeypatch.setenv("MBPP_OVERRIDE_PATH", str(only_two))
    assert [p.task_id for p in load_problems("mbppplus", data_dir=tmp_path / "data")] == ["Mbpp/2", "Mbpp/17"]
    monkeypatch.setenv("MBPP_OVERRIDE_PATH", str(release))
    assert len(load_problems("mbppplus")) == 3  # no data dir needed at all


def test_a_missing_file_says_where_to_put_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("HUMANEVAL_OVERRIDE_PATH", raising=False)
    with pytest.raises(DataError, match=r"humanevalplus/HumanEvalPlus.jsonl.gz.*HUMANEVAL_OVERRIDE_PATH.*--online"):
        load_evalplus("humanevalplus", data_dir=tmp_path)


def test_hub_literals_with_infinities_nans_empty_sets_and_complex_numbers_are_read_without_running_them() -> None:
    test = (
        "from math import inf\ninputs = [[inf, -inf], [set(), (1+2j)], [nan, None]]\n"
        "results = [True, False, None]\nfor i, (inp, exp) in enumerate(zip(inputs, results)):\n"
        "    assertion(f(*inp), exp, 0)\n"
    )
    row = {"task_id": 5, "code": "def f(a, b):\n    return a\n", "prompt": "Return a.",
           "test_list": ["assert f(1, 2) == 1"], "test": test}  # fmt: skip
    problem = evalplus_problem("mbppplus", row)
    assert problem is not None and problem.task_id == "Mbpp/5" and problem.fn_name == "f"
    assert problem.inputs[0] == [math.inf, -math.inf] and problem.inputs[1] == [set(), 1 + 2j]
    assert math.isnan(problem.inputs[2][0]) and problem.outputs == (True, False, None)


PWNED = "/tmp/execrl-evalplus-pwned"
_GOOD_HUB = {"task_id": 5, "code": "def f(a):\n    return a\n", "prompt": "p", "test_list": ["assert f(1) == 1"]}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({**_GOOD_HUB, "test": f"inputs = [[__import__('os').system('touch {PWNED}')]]\nassertion(f(*inp), 1, 0)"},
         "a call inside the inputs: the test code is never run, only literals are read"),
        ({**_GOOD_HUB, "test": "inputs = 5\nassertion(f(*inp), 1, 0)"}, "inputs that are not a list"),
        ({**_GOOD_HUB, "test": "results = [1]\nassertion(f(*inp), 1, 0)"}, "no inputs at all"),
        ({**_GOOD_HUB, "test": "inputs = [[1]]\nresults = [1, 2]\nassertion(f(*inp), 1, 0)"},
         "more results than inputs"),
        ({**_GOOD_HUB, "test": "inputs = [[1]]\nassertion(f(*inp), 1, -1)"}, "a negative atol"),
        ({**_GOOD_HUB, "test": "inputs = [[1]]\nassertion(f(*inp), 1, 'x')"}, "an atol that is not a number"),
        ({**_GOOD_HUB, "test": "inputs = [[1]\n"}, "test code that does not parse"),
        ({**_GOOD_HUB, "test": 7}, "test code that is not a string"),
        ({"task_id": "HumanEval/1", "base_input": "[[1]]", "plus_input": [], "entry_point": "f", "prompt": "",
          "canonical_solution": "", "atol": 0}, "release inputs that are a string"),
        ({"task_id": "HumanEval/1", "base_input": [[1]], "plus_input": [], "entry_point": "os.system('x')",
          "prompt": "", "canonical_solution": "", "atol": 0}, "an entry point that is not a name"),
        ({"task_id": "Mbpp/x", "base_input": [[1]], "plus_input": [], "entry_point": "f", "prompt": "",
          "canonical_solution": "", "atol": 0}, "a task id without a number"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)  # fmt: skip
def test_hostile_or_broken_rows_are_skipped_with_a_warning(row: dict, reason: str) -> None:
    benchmark = "humanevalplus" if str(row["task_id"]).startswith("HumanEval") else "mbppplus"
    with pytest.warns(UserWarning, match="skipped"):
        assert evalplus_problem(benchmark, row) is None, reason
    assert not Path(PWNED).exists()


def test_hub_find_zero_has_no_assertion_call_and_its_atol_is_the_bound_of_its_assert() -> None:
    # the shape evalplus's to_original_fmt writes for HumanEval/32 (its poly oracle has no `assertion`)
    test = (
        "import math\n\ndef _poly(xs, x):\n    return sum([c * math.pow(x, i) for i, c in enumerate(xs)])\n\n"
        "def check(candidate):\n    inputs = [[[1, 2]]]\n    results = [-0.5]\n"
        "    for i, (inp, exp) in enumerate(zip(inputs, results)):\n"
        "        assert _poly(*candidate(*inp), inp) <= 0.0001\n"
    )
    row = {"task_id": "HumanEval/32", "prompt": "def find_zero(xs):\n", "canonical_solution": "    return -0.5\n",
           "entry_point": "find_zero", "test": test}  # fmt: skip
    problem = evalplus_problem("humanevalplus", row)
    assert problem is not None and problem.metadata["atol"] == 1e-4 and problem.metadata["oracle"] == "poly_root"
    assert problem.inputs == ([[1, 2]],) and problem.outputs == (-0.5,)
