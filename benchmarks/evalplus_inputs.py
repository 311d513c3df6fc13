"""MBPP+ release-file inputs back to the Python types the tasks take: `mbpp_plus_inputs(task_number, inputs)`.

The release file `MbppPlus.jsonl.gz` stores inputs as JSON, so tuples, sets and complex numbers arrive as
lists and strings. evalplus rebuilds them per task before running anything (`evalplus/data/mbpp.py`,
`mbpp_deserialize_inputs`, v0.3.1); the task numbers and the conversion each gets are the facts below,
re-implemented here. The hub rows (`evalplus/mbppplus`) need none of this: their inputs are Python reprs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Args = list[Any]


def _each_arg_tuple(args: Args) -> Args:
    return [tuple(arg) for arg in args]


def _each_arg_items_tuples(args: Args) -> Args:
    return [[tuple(item) for item in arg] for arg in args]


def _first_arg_items_tuples(args: Args) -> Args:
    return [[tuple(item) for item in args[0]], *args[1:2]]


def _second_arg_tuple(args: Args) -> Args:
    return [args[0], tuple(args[1])]


def _first_arg_tuple(args: Args) -> Args:
    return [tuple(args[0]), *args[1:2]]


def _each_arg_tuple_of_tuples(args: Args) -> Args:
    return [tuple(tuple(item) for item in arg) for arg in args]


def _first_arg_sets(args: Args) -> Args:
    # An empty list becomes `{}` (a dict), as evalplus does; the task only counts empty containers.
    return [[set(item) if isinstance(item, list) and item else {} for item in args[0]]]


def _float_and_complex(args: Args) -> Args:
    return [float(args[0]), complex(args[1])]


def _one_complex(args: Args) -> Args:
    return [complex(args[0])]


def _nested_item_tuples_in_tuple(args: Args) -> Args:
    return [tuple(tuple(item) if isinstance(item, list) else item for item in args[0])]


def _first_tuple_then_two(args: Args) -> Args:
    return [tuple(args[0]), args[1], args[2]]


def _dict_values_tuples(args: Args) -> Args:
    return [{key: tuple(value) for key, value in args[0].items()}, *args[1:]]


def _all_tuples(value: Any) -> Any:
    return tuple(_all_tuples(item) for item in value) if isinstance(value, list) else value


_RULES: list[tuple[tuple[int, ...], Callable[[Args], Any]]] = [
    ((2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740, 744, 809),
     _each_arg_tuple),
    ((63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780), _each_arg_items_tuples),
    ((75, 413, 444, 753), _first_arg_items_tuples),
    ((106, 750), _second_arg_tuple),
    ((115,), _first_arg_sets),
    ((124,), _float_and_complex),
    ((250, 405, 446, 617, 720, 763, 808), _first_arg_tuple),
    ((259, 401, 445), _each_arg_tuple_of_tuples),
    ((278,), _nested_item_tuples_in_tuple),
    ((307,), _first_tuple_then_two),
    ((722,), _dict_values_tuples),
    ((252,), _one_complex),
    ((580, 615, 791), _all_tuples),
]  # fmt: skip
RULE_OF_TASK: dict[int, Callable[[Args], Any]] = {number: rule for numbers, rule in _RULES for number in numbers}


def mbpp_plus_inputs(task_number: int, inputs: list[Any]) -> list[list[Any]]:
    """The argument lists of one MBPP+ task's release-file inputs, in the types the task takes."""
    rule = RULE_OF_TASK.get(task_number)
    return [list(rule(args) if rule else args) for args in inputs]
