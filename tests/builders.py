"""Small `Problem`s for tests: one function called with arguments, or one function checked by asserts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from execrl.benchmarks.problem import Problem, TestKind


def call_problem(
    task_id: str, fn: str, inputs: Sequence[Any], outputs: Sequence[Any], *, benchmark: str = "synth", **fields: Any
) -> Problem:
    """A CALL problem: `fn(*inputs[i])` must return `outputs[i]`; `fields` are any other `Problem` fields."""
    fields = {"prompt": "", "entry_point": fn} | fields
    return Problem(
        task_id=task_id, benchmark=benchmark, test_kind=TestKind.CALL, fn_name=fn, inputs=tuple(inputs),
        outputs=tuple(outputs), **fields,
    )  # fmt: skip


def assert_problem(
    task_id: str, entry_point: str, tests: Sequence[str], *, benchmark: str = "mbpp", **fields: Any
) -> Problem:
    """An ASSERT problem (MBPP style): each of `tests` is one assert statement on `entry_point`."""
    fields = {"prompt": ""} | fields
    return Problem(
        task_id=task_id, benchmark=benchmark, test_kind=TestKind.ASSERT, entry_point=entry_point, tests=tuple(tests),
        **fields,
    )  # fmt: skip
