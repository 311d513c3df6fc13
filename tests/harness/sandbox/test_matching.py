"""APPS output comparison conventions (stdout and call-based), each row with its reason."""

from __future__ import annotations

import pytest
from execrl.harness.sandbox.matching import call_output_matches, plain_equal, stdout_matches

STDOUT = [
    ("identical", "3\n", "3\n", True),
    ("surrounding whitespace and a missing final newline", "  3", "3\n\n", True),
    ("trailing spaces on lines", "1 2 \n3\n", "1 2\n3", True),
    ("line breaks differ but tokens match", "1\n2\n3\n", "1 2 3\n", True),
    ("numbers within tolerance", "0.3333333\n", "0.33333333\n", True),
    ("integer printed as float", "2.0\n", "2\n", True),
    ("numbers outside tolerance", "0.33\n", "0.3333\n", False),
    ("different token", "YES\n", "NO\n", False),
    ("case matters", "yes\n", "YES\n", False),
    ("extra token", "1 2 3\n", "1 2\n", False),
    ("same tokens in another order (APPS's set check is not reproduced)", "2 1\n", "1 2\n", False),
    ("empty output for a non-empty answer", "", "1\n", False),
    ("nan is never close to anything", "nan\n", "nan1\n", False),
    ("an integer answer is exact: no tolerance near 1e9 (a reward hack)", "999999999\n", "1000000006\n", False),
    ("a tiny float for an integer zero", "1e-7\n", "0\n", False),
    ("a big integer spelled exactly", "123456789012345678901\n", "123456789012345678901\n", True),
    ("a big integer off by one beyond float precision", "123456789012345678902\n", "123456789012345678901\n", False),
    ("an integer is its text: no explicit plus sign", "+5\n", "5\n", False),
    ("an integer is its text: leading zeros count", "007\n", "7\n", False),
    ("an integer is its text: -0 is not 0", "-0\n", "0\n", False),
    ("binary strings: 10 is not 010 (leading zeros were stripped)", "10\n", "010\n", False),
    ("binary strings: 000010 is not 010", "000010\n", "010\n", False),
    ("binary strings: the same digits match", "0 010\n", "0 010\n", True),
    ("an integer printed with point and zeros, same digits", "5.000 -3.0 7.\n", "5 -3 7\n", True),
    (
        "2**53 + 1 printed off by one as a float: float rounding made them equal",
        "9007199254740992.0\n",
        "9007199254740993\n",
        False,
    ),
    ("2**53 off by one the other way", "9007199254740993.0\n", "9007199254740992\n", False),
    ("an integer in exponent notation is not the integer", "5e0\n", "5\n", False),
    ("an integer within float tolerance of the answer is not the answer", "4.9999999\n", "5\n", False),
    ("an integer for a float answer: the tolerance applies (the expected token is a float)", "3\n", "3.0\n", True),
    ("float answers keep their tolerance, in exponent notation too", "1.0000001e-3\n", "0.001\n", True),
    ("float() spellings that are not decimals compare as text: nan", "nan\n", "0.5\n", False),
    ("float() spellings that are not decimals compare as text: underscores", "1_0.5\n", "10.5\n", False),
    ("float() spellings that are not decimals compare as text: infinity", "inf\n", "1e400\n", False),
    ("5,000 digits for a small integer: wrong, not a crash (int() refuses > 4,300 digits)", "1" * 5000, "3\n", False),
    ("5,000 digits, exactly right", "9" * 5000, "9" * 5000 + "\n", True),
    ("5,000 digits, off in the last one", "9" * 4999 + "8", "9" * 5000, False),
    # found by a red-team review: `\\d` matched any script's digits and float() reads them, so these passed
    ("a float answer in Arabic-Indic digits is not its decimal text", "\u0660.\u0665\n", "0.5\n", False),
    ("a float answer in full-width digits is not its decimal text", "\uff10.\uff15\n", "0.5\n", False),
    ("an integer answer in Arabic-Indic digits", "\u0665\n", "5\n", False),
    ("an integer answer followed by Arabic-Indic zeros after its point", "5.\u0660\n", "5\n", False),
]


@pytest.mark.parametrize(
    ("got", "expected"),
    [("1" * 10**6 + "x", "0.5"), ("1" * 10**6 + ".", "0.5\n"), ("." + "1" * 10**6 + "e", "2.5"), ("9" * 10**6, "7")],
)
def test_a_megabyte_token_is_compared_in_linear_time(got: str, expected: str) -> None:
    """The float pattern was ambiguous (`\\d+\\.?\\d*`): a failing match on n digits took O(n^2), 2.8 s for
    8,000 digits, hours for the megabyte of stdout a program may print."""
    import time

    start = time.perf_counter()
    assert stdout_matches(got, expected) is False
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(("got", "expected", "ok"), [r[1:] for r in STDOUT], ids=[r[0] for r in STDOUT])
def test_stdout_matches_follows_apps_conventions(got, expected, ok) -> None:
    assert stdout_matches(got, expected) is ok


CALLS = [
    ("equal ints", 3, 3, True),
    ("tuple returned where JSON stored a list", (1, [2, 3]), [1, [2, 3]], True),
    ("expected wrapped in a one-element list", 5, [5], True),
    ("int equals equal float", 2, 2.0, True),
    ("bool is not an int", True, 1, False),
    ("int is not a bool", 1, True, False),
    ("str is not a list of chars", "ab", ["a", "b"], False),
    ("wrong length", [1, 2], [1, 2, 3], False),
    ("dict keys must match", {"a": 1}, {"a": 1, "b": 2}, False),
    ("None only equals None", None, [], False),
    ("two-element list is not unwrapped", 1, [1, 1], False),
]


@pytest.mark.parametrize(("got", "expected", "ok"), [r[1:] for r in CALLS], ids=[r[0] for r in CALLS])
def test_call_output_matches_follows_apps_conventions(got, expected, ok) -> None:
    assert call_output_matches(got, expected) is ok


def test_plain_equal_refuses_non_plain_objects_even_with_a_rigged_eq() -> None:
    class Always:
        def __eq__(self, other: object) -> bool:
            return True

    assert Always() == 3
    assert plain_equal(Always(), 3) is False
    assert plain_equal([Always()], [3]) is False
