"""HumanEval+, MBPP+ and LiveCodeBench fixture problems judged end to end in the sandbox: verdicts under each
benchmark's rules, expected answers from the reference (release files) equal to the stored ones (hub rows), time
limits relative to the reference, and — where the `evalplus` package is installed — the same verdicts as its own
checker on the same problems and programs."""

from __future__ import annotations

import pytest
from execrl.benchmarks.problem import Problem
from execrl.benchmarks.registry import load_problems
from execrl.harness.evaluate import benchmark_limits
from execrl.harness.records import Limits, Verdict
from execrl.harness.sandbox.executor import execute
from execrl.harness.sandbox.reference import reference_run, time_limits

from tests.benchmarks.upstream_fixtures import write_hub, write_livecodebench, write_release

LIMITS = Limits(retry_timeouts=False)


@pytest.fixture(scope="module")
def plus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Problem]]:
    """format -> task id -> problem, for both evalplus benchmarks."""
    out: dict[str, dict[str, Problem]] = {}
    for fmt, write in (("release", write_release), ("hub", write_hub)):
        root = tmp_path_factory.mktemp(fmt)
        for benchmark in ("humanevalplus", "mbppplus"):
            write(root, benchmark)
        out[fmt] = {p.task_id: p for b in ("humanevalplus", "mbppplus") for p in load_problems(b, data_dir=root)}
    return out


# (reason, task id, program: a body for HumanEval+, a whole program for MBPP+, verdict)
PLUS_CASES = [
    ("the reference itself passes", "HumanEval/2", "    return number % 1.0\n", Verdict.PASSED),
    ("a float within the default 1e-6 of the answer passes", "HumanEval/2", "    return number % 1.0 + 1e-9\n",
     Verdict.PASSED),
    ("a float outside the default 1e-6 of the answer fails", "HumanEval/2", "    return number % 1.0 + 1e-5\n",
     Verdict.FAILED),
    ("find_zero: another root than the reference's passes (the poly oracle)", "HumanEval/32",
     "    x = 10.0\n    for _ in range(200):\n        d = sum(i * c * x ** (i - 1) for i, c in enumerate(xs) if i)\n"
     "        x -= poly(xs, x) / d\n    return x\n", Verdict.PASSED),
    ("find_zero: not a root fails", "HumanEval/32", "    return 0.0\n", Verdict.FAILED),
    ("bool answers are exact", "HumanEval/0", "    return True\n", Verdict.FAILED),
    ("within the problem's atol 1e-4 passes", "Mbpp/17",
     "def square_perimeter(a):\n    return 4 * a + (5e-5 if type(a) is float else 0)\n", Verdict.PASSED),
    ("a float within atol of an int answer fails: once a tolerance applies the types must agree", "Mbpp/17",
     "def square_perimeter(a):\n    return 4 * a + 5e-5\n", Verdict.FAILED),
    ("outside the problem's atol 1e-4 fails", "Mbpp/17", "def square_perimeter(a):\n    return 4 * a + 1e-3\n",
     Verdict.FAILED),
    ("set tasks accept the items in any order and container", "Mbpp/2",
     "def similar_elements(a, b):\n    return sorted(set(a) & set(b), reverse=True)\n", Verdict.PASSED),
    ("MBPP+ tuples arrive as tuples", "Mbpp/809",
     "def check_smaller(a, b):\n    assert type(a) is tuple and type(b) is tuple\n"
     "    return all(x > y for x, y in zip(a, b))\n", Verdict.PASSED),
    ("a wrong answer on the plus inputs only fails", "Mbpp/809",
     "def check_smaller(a, b):\n    return a[0] > b[0] and a[0] < 10\n", Verdict.FAILED),
    ("past the time limit (1 s floor, the reference takes microseconds)", "HumanEval/0",
     "    import time\n    if not numbers:\n        time.sleep(2.5)\n"
     "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1 :])\n",
     Verdict.TIMEOUT),
]  # fmt: skip


@pytest.mark.parametrize("fmt", ["release", "hub"])
@pytest.mark.parametrize(("reason", "task_id", "program", "verdict"), PLUS_CASES, ids=[c[0] for c in PLUS_CASES])
def test_evalplus_verdicts(plus, fmt, reason, task_id, program, verdict) -> None:
    problem = plus[fmt][task_id]
    result = execute(problem, problem.program(program), LIMITS, slot=0)
    assert result.verdict is verdict, f"{reason}: {result.error}"
    assert len(result.tests) == len(problem.inputs)


def test_release_answers_from_the_reference_equal_the_hub_rows_stored_results(plus) -> None:
    for task_id, hub in plus["hub"].items():
        if hub.metadata["oracle"] == "poly_root":
            continue  # find_zero's stored value is not compared (any root passes)
        run = reference_run(plus["release"][task_id], slot=0)
        assert run.outputs == hub.outputs, task_id


def test_time_limits_follow_evalplus_rule(plus) -> None:
    problem = plus["release"]["HumanEval/0"]
    limits, budget = time_limits(problem, reference_run(problem, slot=0))
    assert limits == [1.0, 1.0, 1.0]  # max(1 s, 4 x microseconds)
    assert budget == 4.0  # min(60, 3 x 1 s) + 1


def test_a_failing_reference_is_a_sandbox_error_not_a_verdict_on_the_program(plus) -> None:
    from dataclasses import replace

    wrong = ("def square_perimeter(a):\n    1/0\n",)
    broken = replace(plus["release"]["Mbpp/17"], task_id="Mbpp/9017", solutions=wrong)
    result = execute(broken, "def square_perimeter(a):\n    return 4 * a\n", LIMITS, slot=0)
    assert result.verdict is Verdict.SANDBOX_ERROR and "reference failed on input 0" in result.error


def test_same_verdicts_as_evalplus_own_checker_on_the_fixtures(plus) -> None:
    evalplus_eval = pytest.importorskip("evalplus.eval", reason="the evalplus package is not installed")
    from evalplus.gen.util import trusted_exec

    for reason, task_id, program, _ in PLUS_CASES:
        problem = plus["release"][task_id]
        if problem.metadata["oracle"] == "poly_root":
            continue  # evalplus 0.3.1 fails every find_zero answer (fixed upstream in #241)
        whole = problem.program(program)
        reference = problem.program(problem.solutions[0])
        expected, ref_time = trusted_exec(reference, list(problem.inputs), problem.fn_name, record_time=True)
        dataset = "humaneval" if problem.benchmark == "humanevalplus" else "mbpp"
        status, _ = evalplus_eval.untrusted_check(
            dataset, whole, list(problem.inputs), problem.fn_name, expected, problem.metadata["atol"], ref_time
        )
        ours = execute(problem, whole, LIMITS, slot=0).verdict
        # evalplus reports an input past its time limit as "fail" (only a killed process is "timeout")
        assert (status == "pass") is (ours is Verdict.PASSED), reason


@pytest.fixture(scope="module")
def lcb(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Problem]:
    root = tmp_path_factory.mktemp("lcb")
    write_livecodebench(root)
    return {p.task_id: p for p in load_problems("livecodebench", data_dir=root)}


LCB_CASES = [
    ("stdin: a right answer", "LCB/abc301_a", "a, b = map(int, input().split())\nprint(a + b)\n", Verdict.PASSED),
    ("stdin: an integer printed as a float", "LCB/abc301_a", "a, b = map(int, input().split())\nprint(float(a + b))\n",
     Verdict.PASSED),
    ("stdin: leading zeros are not the integer", "LCB/abc301_a",
     "a, b = map(int, input().split())\nprint(f'{a + b:03}')\n", Verdict.FAILED),
    ("stdin: a float answer as an equal Decimal", "LCB/1873_A", "print(f'{int(input()) / 2:.2f}')\n", Verdict.PASSED),
    ("stdin: no tolerance on a float answer", "LCB/1873_A", "print(int(input()) / 2 + 1e-7)\n", Verdict.FAILED),
    ("functional: a class Solution method", "LCB/2727",
     "class Solution:\n    def addTwo(self, a: int, b: int) -> int:\n        return a + b\n", Verdict.PASSED),
    ("functional: a bool is not an int", "LCB/2727",
     "class Solution:\n    def addTwo(self, a: int, b: int) -> int:\n        return True\n", Verdict.FAILED),
]  # fmt: skip


@pytest.mark.parametrize(("reason", "task_id", "program", "verdict"), LCB_CASES, ids=[c[0] for c in LCB_CASES])
def test_livecodebench_verdicts(lcb, reason, task_id, program, verdict) -> None:
    problem = lcb[task_id]
    limits = benchmark_limits(problem, LIMITS)
    assert limits is not None and limits.timeout == 6.0
    result = execute(problem, program, limits, slot=0)
    assert result.verdict is verdict, f"{reason}: {result.error}"
