"""APPS output comparison, done by the judge on plain values (never by the candidate's objects).

The conventions follow what the APPS evaluator accepts (Hendrycks et al. 2021, "Measuring Coding
Challenge Competence With APPS", `testing_util.py`), rewritten here from its documented behaviour:

- standard input/output: outputs match if, after stripping surrounding whitespace, the lines match
  with trailing whitespace ignored; or the whitespace-separated tokens match (line breaks ignored);
  or the tokens pair up one to one where each pair is equal as text or is a number close enough.
  (The APPS evaluator's last-resort "same *set* of tokens" check is not reproduced: it accepts
  outputs in the wrong order.)
- numbers are stricter than in the APPS evaluator, which compares every token as a float: where the
  expected token is an integer (`[+-]?[0-9]+`), the output token must be the same text, optionally
  followed by a point and zeros (`5.0` for `5`, never `+5`, `005`, `5e0` or `4.9999999`), so leading
  zeros count (binary strings) and an integer past 2**53 is never matched through float rounding.
  A tolerance (relative or absolute 1e-6) applies only where the expected token is itself a decimal
  float (`0.5`, `2.50`, `1e-6`) and the output token is one too, in ASCII digits.
- call-based: the returned value equals the expected one, where tuples count as lists (JSON has
  no tuples) and an expected one-element list also accepts its sole element (APPS stores some
  outputs wrapped in a list).

Every comparison uses exact-type checks, so only genuine builtins decoded from the wire can match.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

REL_TOL = 1e-6
ABS_TOL = 1e-6


def stdout_matches(got: str, expected: str) -> bool:
    """Whether program output `got` is an accepted answer for `expected` under APPS conventions."""
    if type(got) is not str or type(expected) is not str:
        return False
    got_lines = [line.rstrip() for line in got.strip().splitlines()]
    expected_lines = [line.rstrip() for line in expected.strip().splitlines()]
    if got_lines == expected_lines:
        return True
    got_tokens, expected_tokens = got.split(), expected.split()
    if got_tokens == expected_tokens:
        return True
    if len(got_tokens) != len(expected_tokens):
        return False
    return all(g == e or _close_numbers(g, e) for g, e in zip(got_tokens, expected_tokens, strict=True))


def _close_numbers(got: str, expected: str) -> bool:
    if _INTEGER.fullmatch(expected):
        # An integer answer is its digits: leading zeros are part of it (binary strings: "010" is not "10"),
        # and no tolerance applies (999999999 for 1000000006 is a reward hack under RL; float rounding
        # matched 2**53 + 1 with "9007199254740992.0"). Only ".0" after the very same digits is the same.
        return got.startswith(expected) and _FLOAT_ZEROS.fullmatch(got, len(expected)) is not None
    if not (_FLOAT.fullmatch(expected) and _FLOAT.fullmatch(got)):
        return False  # words, and float() spellings such as "nan", "inf" or "1_0", compare as text only
    return math.isclose(float(got), float(expected), rel_tol=REL_TOL, abs_tol=ABS_TOL)


# ASCII digits only: `\d` of a str pattern matches every script's digits, and float() reads them, so
# "\u0660.\u0665" (Arabic-Indic) passed for 0.5 (found by a red-team review). A judge compares the answer's text.
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)  # unambiguous: linear, even failing
_FLOAT_ZEROS = re.compile(r"\.0*")


def call_output_matches(got: Any, expected: Any) -> bool:
    """Whether a returned value `got` is an accepted answer for `expected` under APPS conventions."""
    if plain_equal(got, expected):
        return True
    return type(expected) is list and len(expected) == 1 and plain_equal(got, expected[0])


def plain_equal(a: Any, b: Any, depth: int = 0) -> bool:
    """Structural equality of plain values with tuples as lists and ints equal to equal floats."""
    if depth > 200:
        return False
    ta, tb = type(a), type(b)
    if ta is tuple:
        a, ta = list(a), list
    if tb is tuple:
        b, tb = list(b), list
    if ta is list and tb is list:
        return len(a) == len(b) and all(plain_equal(x, y, depth + 1) for x, y in zip(a, b, strict=True))
    if ta is dict and tb is dict:
        return a.keys() == b.keys() and all(plain_equal(a[k], b[k], depth + 1) for k in a)
    if ta is tb and ta in (bool, str, bytes, type(None), complex, set, frozenset):
        return a == b
    return ta in (int, float) and tb in (int, float) and a == b


# LiveCodeBench (Jain et al. 2024, arXiv:2403.07974), `lcb_runner/evaluation/testing_util.py`, rewritten from its
# documented behaviour: stdin problems compare line by line after stripping the whole output and each line; the
# line counts must agree; a line that differs as text passes only when every token on both sides is a number and
# the numbers are equal as `Decimal`s (exact: no tolerance, so 0.5 is 0.50 but never 0.5000001).
# Two differences, both stricter, for the reasons `_close_numbers` gives: a number compares as a number only when
# it is written in ASCII digits (no "nan", "Infinity", "1_0" or other scripts' digits), and an integer answer is
# its digits (`5.0` passes for 5, `05`, `+5` and `5e0` do not, where LiveCodeBench's Decimal takes all three).


def lcb_stdout_matches(got: str, expected: str) -> bool:
    """Whether program output `got` is an accepted answer for `expected` under LiveCodeBench's stdin rule."""
    if type(got) is not str or type(expected) is not str:
        return False
    got_lines = [line.strip() for line in got.strip().split("\n")]
    expected_lines = [line.strip() for line in expected.strip().split("\n")]
    if len(got_lines) != len(expected_lines):
        return False
    return all(g == e or _same_numbers(g, e) for g, e in zip(got_lines, expected_lines, strict=True))


def _same_numbers(got_line: str, expected_line: str) -> bool:
    got_tokens, expected_tokens = got_line.split(), expected_line.split()
    if len(got_tokens) != len(expected_tokens):
        return False
    for g, e in zip(got_tokens, expected_tokens, strict=True):
        if not (_FLOAT.fullmatch(g) and _FLOAT.fullmatch(e)):
            return False
        if _INTEGER.fullmatch(e):
            if not (g.startswith(e) and _FLOAT_ZEROS.fullmatch(g, len(e)) is not None) and g != e:
                return False
        elif Decimal(g) != Decimal(e):
            return False
    return True


def lcb_call_matches(got: Any, expected: Any) -> bool:
    """LiveCodeBench functional problems: the returned value equals the JSON-decoded expected one, tuples counting
    as lists (LiveCodeBench turns a returned tuple into a list; JSON has none at any depth). Stricter than its
    Python `==` in one way: a bool never equals an int (LeetCode's own judge prints `true`, not `1`)."""
    return plain_equal(got, expected)
