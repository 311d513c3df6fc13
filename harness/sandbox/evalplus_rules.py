"""evalplus's rules for one answer: `answer_matches(got, expected, args, atol=, oracle=)`, done by the judge.

Re-implemented from evalplus v0.3.1 (`evalplus/eval/__init__.py` `unsafe_execute` and `is_floats`,
`eval/_special_oracle.py`), on the plain values the wire decodes (never on the candidate's objects):

- an answer passes when `got == expected` (Python equality: 1 == 1.0 and True == 1, but a tuple is not a list);
- otherwise, when the problem's `atol` is non-zero, or is zero and the expected answer is a float or a non-empty
  list/tuple of floats (then atol = 1e-6): same type, same length for a list/tuple, and
  `numpy.allclose(got, expected, rtol=1e-7, atol=atol)`;
- special-case oracles, by dataset and entry point (`execrl.benchmarks.evalplus.ORACLES`):
  `poly_root` (HumanEval/32 find_zero): |sum(c * x**i)| <= atol at the returned x, whatever `expected` is;
  `any_answer` (Mbpp/164): any returned value; `or_zero` (Mbpp/295): the answer, or 0;
  `surface_area` (Mbpp/581), `digit_distance` (Mbpp/558): the answer, or what evalplus's second reading of the
  task gives (within atol for the area); `set_equal` (8 MBPP tasks): the same set of items;
  `not_none` (3 MBPP tasks whose answers are re.Match objects): a bool must equal the expected bool, anything
  else must be None exactly when the expected answer is False.

One difference, on purpose: evalplus's release-file checker, once a float answer raised atol from 0 to 1e-6,
keeps 1e-6 for the later inputs of that problem (the rebinding inside its loop); its hub test programs
(`assertion(out, exp, atol)`) do not. Here atol is decided per input, as in the hub programs.
"""

from __future__ import annotations

import math
from typing import Any

FLOAT_ATOL = 1e-6
RTOL = 1e-7


def is_floats(value: Any) -> bool:
    """evalplus's test for a float answer: a float, or a non-empty list or tuple of floats only."""
    if type(value) is float:
        return True
    if type(value) in (list, tuple) and value:
        return all(type(item) is float for item in value)
    return False


def answer_matches(got: Any, expected: Any, args: list[Any], *, atol: float, oracle: str | None) -> bool:
    """Whether `got` (returned for `args`) is accepted for `expected` under evalplus's rules."""
    if oracle == "poly_root":
        return _is_number(got) and _is_number_list(args[0]) and abs(_poly(args[0], got)) <= atol
    exact = _equal(got, expected)
    if oracle == "any_answer":
        exact = True
    elif oracle == "or_zero":
        exact = exact or _equal(got, 0)
    elif oracle == "surface_area":
        exact = exact or _within(got, _surface_area(*args), atol)
    elif oracle == "digit_distance":
        exact = exact or _equal(got, _digit_distance(*args))
    elif oracle == "set_equal":
        exact = _same_set(got, expected)
    elif oracle == "not_none":
        exact = got == expected if type(got) is bool else expected == (got is not None)
    if atol == 0 and is_floats(expected):
        atol = FLOAT_ATOL
    if exact or atol == 0:
        return exact
    return _close(got, expected, atol)


def _equal(got: Any, expected: Any) -> bool:
    try:
        return bool(got == expected)
    except (RecursionError, TypeError, ValueError):
        return False


def _within(got: Any, value: float, atol: float) -> bool:
    try:
        return bool(abs(got - value) <= atol)
    except (TypeError, OverflowError):
        return False


def _same_set(got: Any, expected: Any) -> bool:
    try:
        return set(got) == set(expected)
    except (TypeError, RecursionError):
        return False


def _close(got: Any, expected: Any, atol: float) -> bool:
    """evalplus's fallback: same type, same length, numpy.allclose with its rtol."""
    if type(got) is not type(expected):
        return False
    if type(expected) in (list, tuple) and len(got) != len(expected):
        return False
    import numpy as np  # only where a tolerance applies

    try:
        with np.errstate(all="ignore"):
            return bool(np.allclose(got, expected, rtol=RTOL, atol=atol))
    except (TypeError, ValueError, OverflowError, RecursionError, MemoryError):
        return False


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _is_number_list(value: Any) -> bool:
    return type(value) is list and all(_is_number(item) for item in value)


def _poly(coefficients: list[float], x: float) -> float:
    # evalplus's _poly: sum of c * math.pow(x, i) (a plain sum, as there); an overflow is a wrong root
    try:
        return sum(c * math.pow(x, i) for i, c in enumerate(coefficients))
    except (OverflowError, ValueError):
        return math.inf


def _surface_area(base_edge: Any, height: Any) -> float:
    """Mbpp/581's second reading (evalplus): `height` is the pyramid's height, not its slant height."""
    try:
        slant = math.sqrt((base_edge / 2) ** 2 + height**2)
        return round(base_edge**2 + 2 * base_edge * slant)
    except (TypeError, ValueError, OverflowError, ZeroDivisionError):
        return math.nan


def _digit_distance(a: Any, b: Any) -> int | None:
    """Mbpp/558's second reading (evalplus): the shorter number is padded with leading zeros."""
    left, right = str(a), str(b)
    width = max(len(left), len(right))
    try:
        return sum(abs(int(x) - int(y)) for x, y in zip(left.zfill(width), right.zfill(width), strict=True))
    except ValueError:
        return None
