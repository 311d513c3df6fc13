"""execute() end to end on small problems of every kind: verdicts, per-test outcomes, Remote objects."""

from __future__ import annotations

import textwrap

import pytest
from execrl.benchmarks.problem import Problem, TestKind
from execrl.harness.records import Limits, Verdict
from execrl.harness.sandbox.executor import execute, n_tests

from tests.builders import assert_problem

LIMITS = Limits(timeout=1.0, program_timeout=5.0, retry_timeouts=False)
HE = Problem(
    task_id="t/he", benchmark="humaneval", prompt='def inc(x):\n    """Add one."""\n', test_kind=TestKind.ASSERT,
    entry_point="inc",
    check_code="def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(5) == 6\n",
    solutions=("    return x + 1\n",),
)  # fmt: skip
TREE = Problem(
    task_id="t/tree", benchmark="mbpp", prompt="", test_kind=TestKind.ASSERT, entry_point="height",
    test_setup="root = Node(1)\nroot.left = Node(2)\nroot.left.left = Node(3)\n",
    tests=("assert height(root) == 3", "assert height(None) == 0", "assert height(Node(7)) == 1"),
)  # fmt: skip
TREE_PROGRAM = textwrap.dedent("""
    class Node:
        def __init__(self, v):
            self.v, self.left, self.right = v, None, None
    def height(n):
        return 0 if n is None else 1 + max(height(n.left), height(n.right))
""")
CALL = Problem(task_id="t/call", benchmark="apps", prompt="", test_kind=TestKind.CALL, fn_name="twice",
               inputs=([1], [[1, 2]], ["ab"]), outputs=([2], [[1, 2, 1, 2]], "abab"))  # fmt: skip
STDIO = Problem(task_id="t/io", benchmark="apps", prompt="", test_kind=TestKind.STDIO,
                inputs=("2\n", "10\n"), outputs=("4\n", "20\n"))  # fmt: skip

SET_UP = Problem(
    task_id="t/set-up", benchmark="humaneval", prompt="def inc(x):\n", test_kind=TestKind.ASSERT, entry_point="inc",
    check_code=textwrap.dedent("""
        def check(candidate):
            import random
            rng = random.Random(42)
            assert candidate(1) == 2
            assert True, 'This prints if this assert fails (good for debugging!)'
    """),
)  # fmt: skip
"""HumanEval/32's shape: imports and set-up in `check`'s body, and HumanEval/64's `assert True`."""

CASES = [
    ("humaneval canonical passes", HE, "def inc(x):\n    return x + 1\n", Verdict.PASSED, 2),
    ("humaneval partly right: one test of two", HE, "def inc(x):\n    return 2 if x == 1 else 0\n", Verdict.FAILED, 1),
    ("exception in the candidate is a runtime error", HE, "def inc(x):\n    raise KeyError(x)\n",
     Verdict.RUNTIME_ERROR, 0),
    ("syntax error found without running", HE, "def inc(x) return x\n", Verdict.SYNTAX_ERROR, 0),
    ("timeout in one test fails the rest", HE, "def inc(x):\n    while True: pass\n", Verdict.TIMEOUT, 0),
    ("mbpp tree built through Remote objects", TREE, TREE_PROGRAM, Verdict.PASSED, 3),
    ("mbpp setup failing on the candidate's class is a runtime error", TREE, "class Node:\n    pass\n",
     Verdict.RUNTIME_ERROR, 0),
    ("call-based: function", CALL, "def twice(x):\n    return x * 2\n", Verdict.PASSED, 3),
    ("call-based: class Solution method", CALL,
     "class Solution:\n    def twice(self, x):\n        return x + x\n", Verdict.PASSED, 3),
    ("call-based: annotations are postponed, so LeetCode's bare List needs no import", CALL,
     "class Solution:\n    def twice(self, x: List[int]) -> List[int]:\n        return x + x\n", Verdict.PASSED, 3),
    ("call-based: wrong for lists only", CALL, "def twice(x):\n    return x * 2 if x != [1, 2] else []\n",
     Verdict.FAILED, 2),
    ("stdio passes", STDIO, "print(int(input()) * 2)\n", Verdict.PASSED, 2),
    ("stdio top-level return and exit() are legal", STDIO,
     "n = int(input())\nprint(n * 2)\nif n:\n    exit()\nreturn\n", Verdict.PASSED, 2),
    ("stdio wrong on one input", STDIO, "n = int(input())\nprint(4 if n == 2 else 0)\n", Verdict.FAILED, 1),
    ("stdio crash is a runtime error", STDIO, "print(1 / 0)\n", Verdict.RUNTIME_ERROR, 0),
    ("set-up and `assert True` in check pass no test for a program that returns nothing (red-team review: "
     "3 of 4 passed)", SET_UP, "def inc(x):\n    return None\n", Verdict.FAILED, 0),
    ("set-up and `assert True` in check: a right program passes every test", SET_UP,
     "def inc(x):\n    return x + 1\n", Verdict.PASSED, 1),
]  # fmt: skip


@pytest.mark.parametrize(("problem", "program", "verdict", "n_passed"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_execute_gives_the_expected_verdict_and_per_test_outcomes(problem, program, verdict, n_passed) -> None:
    result = execute(problem, program, LIMITS)
    assert result.verdict is verdict, result.error
    assert result.n_passed == n_passed
    assert len(result.tests) == n_tests(problem)
    assert (result.error == "") is (verdict is Verdict.PASSED)


def test_humaneval_reports_one_outcome_per_statement_of_check() -> None:
    assert n_tests(HE) == 2
    assert n_tests(TREE) == 3


def test_a_timeout_is_retried_once_when_asked() -> None:
    slow_once = "import os\ndef inc(x):\n    while True: pass\n"
    limits = Limits(timeout=0.3, program_timeout=2.0, retry_timeouts=True)
    result = execute(HE, slow_once, limits)
    assert result.verdict is Verdict.TIMEOUT
    assert result.duration < 1.0  # retries are excluded from the reported duration


def test_a_harness_fault_is_a_sandbox_error_not_an_exception() -> None:
    broken = Problem(task_id="t/broken", benchmark="humaneval", prompt="", test_kind=TestKind.ASSERT,
                     entry_point="f", check_code="def not_check(c):\n    pass\n")  # fmt: skip
    result = execute(broken, "def f():\n    return 1\n", LIMITS)
    assert result.verdict is Verdict.SANDBOX_ERROR
    assert "check" in result.error


MATCHER = assert_problem("t/match", "starts_ab", ['assert starts_ab("abc")', 'assert not starts_ab("xyz")'])
TRUTH_CASES = [
    (
        "import re\ndef starts_ab(s):\n    return re.match('ab', s)\n",
        Verdict.PASSED,
        "a re.Match (MBPP 737/787/794) has the truth value the child computes",
    ),
    (
        "import re\ndef starts_ab(s):\n    return re.match('zz', s) or 'ab'\n",
        Verdict.FAILED,
        "a truthy answer where a falsy one is expected still fails",
    ),
    (
        "class Sly:\n    def __bool__(self):\n        raise RuntimeError('no')\ndef starts_ab(s):\n    return Sly()\n",
        Verdict.RUNTIME_ERROR,
        "a __bool__ that raises is the candidate's runtime error",
    ),
]


@pytest.mark.parametrize("program,verdict,reason", TRUTH_CASES, ids=[r for *_, r in TRUTH_CASES])
def test_truth_value_of_a_candidate_object_is_asked_of_the_child(program: str, verdict: Verdict, reason: str) -> None:
    assert execute(MATCHER, program).verdict is verdict, reason


def test_a_runtime_error_shows_the_candidates_frames_and_none_of_the_sandboxs() -> None:
    import execrl.harness.sandbox as sandbox_package

    problem = Problem("t/0", "synth", "", TestKind.CALL, entry_point="f", inputs=([1],), outputs=(1,), fn_name="f")
    result = execute(problem, "def f(x):\n    return x[0]\n")
    error = result.tests[0].error
    assert result.verdict is Verdict.RUNTIME_ERROR and "TypeError" in error
    assert 'File "<candidate>", line 2, in f' in error
    assert sandbox_package.__path__[0] not in error and "child.py" not in error
