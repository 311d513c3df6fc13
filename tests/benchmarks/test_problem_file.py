"""The problem file: every test form loads and is judged by the sandbox; every bad row names its line and field."""

from __future__ import annotations

import json

import pytest
from execrl.benchmarks.datafiles import DataError
from execrl.benchmarks.problem import TestKind as Kind  # the alias keeps pytest from collecting TestKind
from execrl.benchmarks.problem_file import load_problem_file, problem_from_row
from execrl.harness.records import Verdict
from execrl.harness.sandbox.pool import SandboxPool, execute_many

ASSERT_ROW = {
    "task_id": "mine/add",
    "prompt": "def add(a, b):\n",
    "completion": "body",
    "entry_point": "add",
    "tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"],
    "solutions": ["def add(a, b):\n    return a + b\n"],
    "public_tests": ["assert add(0, 0) == 0"],
}
STDIO_ROW = {
    "task_id": "mine/echo",
    "prompt": "Read a line and print it twice.",
    "stdio": [{"input": "hi\n", "output": "hi\nhi\n"}, {"input": "x\n", "output": "x\nx\n"}],
    "solutions": ["s = input()\nprint(s)\nprint(s)\n"],
    "difficulty": "easy",
}
CALL_ROW = {
    "task_id": "mine/neg",
    "prompt": "Write neg(x).",
    "fn_name": "neg",
    "calls": [{"args": [2], "output": -2}, {"args": [-3], "output": 3}],
    "public_tests": [{"args": [0], "output": 0}],
}


def _write(tmp_path, rows):
    path = tmp_path / "problems.jsonl"
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def test_three_forms_load_into_their_test_kinds(tmp_path):
    problems = load_problem_file(_write(tmp_path, [ASSERT_ROW, STDIO_ROW, CALL_ROW]))
    assert [(p.task_id, p.test_kind) for p in problems] == [
        ("mine/add", Kind.ASSERT),
        ("mine/echo", Kind.STDIO),
        ("mine/neg", Kind.CALL),
    ]
    add, echo, neg = problems
    assert add.tests == tuple(ASSERT_ROW["tests"]) and add.entry_point == "add"
    assert echo.inputs == ("hi\n", "x\n") and echo.outputs == ("hi\nhi\n", "x\nx\n") and echo.difficulty == "easy"
    assert neg.inputs == ([2], [-3]) and neg.outputs == (-2, 3) and neg.fn_name == neg.entry_point == "neg"


def test_public_tests_are_kept_apart_from_the_hidden_ones(tmp_path):
    add, _, neg = load_problem_file(_write(tmp_path, [ASSERT_ROW, STDIO_ROW, CALL_ROW]))
    assert add.metadata["public_tests"] == ("assert add(0, 0) == 0",)
    assert "assert add(0, 0) == 0" not in add.tests
    assert neg.metadata["public_tests"] == (([0], 0),)
    assert [0] not in neg.inputs


def test_body_completion_is_appended_to_the_prompt_and_program_completion_is_whole(tmp_path):
    add, echo, _ = load_problem_file(_write(tmp_path, [ASSERT_ROW, STDIO_ROW, CALL_ROW]))
    assert add.program("    return a + b\n") == "def add(a, b):\n    return a + b\n"
    assert echo.program("print(1)\n") == "print(1)\n"


def test_sandbox_judges_each_form_by_its_own_tests(tmp_path):
    add, echo, neg = load_problem_file(_write(tmp_path, [ASSERT_ROW, STDIO_ROW, CALL_ROW]))
    cases = [
        (add, add.program("    return a + b\n"), Verdict.PASSED),
        (add, add.program("    return a - b\n"), Verdict.FAILED),
        (echo, STDIO_ROW["solutions"][0], Verdict.PASSED),
        (echo, "print(input())\n", Verdict.FAILED),
        (neg, "def neg(x):\n    return -x\n", Verdict.PASSED),
        (neg, "def neg(x):\n    return x\n", Verdict.FAILED),
    ]
    with SandboxPool(2) as pool:
        results = execute_many([c[0] for c in cases], [c[1] for c in cases], pool=pool)
    assert [r.verdict for r in results] == [c[2] for c in cases]
    assert [len(r.tests) for r in results] == [2, 2, 2, 2, 2, 2]


# Each row: (what the row gets wrong, the row, words the error must hold). Every error also names file and line.
BAD_ROWS = [
    ("not an object", "[1, 2]", "expected a JSON object"),
    ("not JSON", "{task_id: 1}", "not valid JSON"),
    ("no task_id", {"prompt": "p", "tests": ["assert 1"]}, "missing field 'task_id'"),
    ("empty task_id", {"task_id": " ", "prompt": "p", "tests": ["assert 1"]}, "'task_id' is empty"),
    ("task_id not a string", {"task_id": 3, "prompt": "p", "tests": ["assert 1"]}, "'task_id' must be a string"),
    ("no prompt", {"task_id": "a", "tests": ["assert 1"]}, "missing field 'prompt'"),
    ("no tests at all", {"task_id": "a", "prompt": "p"}, "exactly one of 'tests', 'stdio', 'calls' (got none)"),
    (
        "two test forms",
        {"task_id": "a", "prompt": "p", "tests": ["assert 1"], "stdio": [{"input": "", "output": ""}]},
        "(got tests, stdio)",
    ),
    ("empty hidden tests", {"task_id": "a", "prompt": "p", "tests": []}, "no tests"),
    ("tests not a list", {"task_id": "a", "prompt": "p", "tests": "assert 1"}, "field 'tests': expected a list"),
    ("an assert that does not parse", {"task_id": "a", "prompt": "p", "tests": ["assert ("]}, "[0]: not valid Python"),
    ("a NUL byte in an assert", {"task_id": "a", "prompt": "p", "tests": ["assert 1\x00"]}, "not valid Python"),
    (
        "stdio pair with a wrong key",
        {"task_id": "a", "prompt": "p", "stdio": [{"in": "x", "output": "y"}]},
        "field 'stdio'[0]: expected an object with exactly the keys 'input' and 'output'",
    ),
    (
        "stdio output not a string",
        {"task_id": "a", "prompt": "p", "stdio": [{"input": "x", "output": 3}]},
        "must be strings",
    ),
    (
        "calls without fn_name",
        {"task_id": "a", "prompt": "p", "calls": [{"args": [1], "output": 1}]},
        "'fn_name' is required",
    ),
    (
        "call args not a list",
        {"task_id": "a", "prompt": "p", "fn_name": "f", "calls": [{"args": 1, "output": 1}]},
        "'args' must be a list",
    ),
    ("misspelt field", {"task_id": "a", "prompt": "p", "tests": ["assert 1"], "soluton": []}, "mean 'solutions'"),
    (
        "unknown completion style",
        {"task_id": "a", "prompt": "p", "tests": ["assert 1"], "completion": "chat"},
        "'completion' must be one of program, body",
    ),
    (
        "solutions not strings",
        {"task_id": "a", "prompt": "p", "tests": ["assert 1"], "solutions": [1]},
        "'solutions' must be a list of strings",
    ),
    (
        "public tests in another form",
        {"task_id": "a", "prompt": "p", "tests": ["assert 1"], "public_tests": [{"input": "", "output": ""}]},
        "field 'public_tests'[0]: expected an assert statement",
    ),
]


@pytest.mark.parametrize(("attack", "row", "message"), BAD_ROWS, ids=[r[0] for r in BAD_ROWS])
def test_bad_row_is_refused_naming_line_and_field(tmp_path, attack, row, message):
    path = _write(tmp_path, [STDIO_ROW, row])
    with pytest.raises(DataError) as caught:
        load_problem_file(path)
    assert f"{path}:2" in str(caught.value)
    assert message in str(caught.value)


def test_repeated_task_id_names_both_lines(tmp_path):
    path = _write(tmp_path, [STDIO_ROW, CALL_ROW, STDIO_ROW])
    with pytest.raises(DataError, match=r":3: task_id 'mine/echo' repeats line 1"):
        load_problem_file(path)


def test_empty_file_is_refused(tmp_path):
    with pytest.raises(DataError, match="no problems"):
        load_problem_file(_write(tmp_path, []))


def test_inline_row_error_starts_with_the_callers_where():
    with pytest.raises(DataError, match=r"^labels\[3\]: missing field 'prompt'"):
        problem_from_row({"task_id": "a", "tests": ["assert 1"]}, "labels[3]")
