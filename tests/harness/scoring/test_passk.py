"""pass@k against the naive combinatorial definition."""

from __future__ import annotations

import math

import pytest
from execrl.harness.scoring.passk import pass_at_k


def _naive(n: int, c: int, k: int) -> float:
    """Chen et al. 2021, sec. 2.1, written with exact binomials."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@pytest.mark.parametrize("n", [1, 2, 5, 10, 37, 200])
def test_matches_the_binomial_definition_over_a_grid(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_naive(n, c, k), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (10, 0, 1, 0.0),
        (10, 0, 10, 0.0),
        (10, 10, 1, 1.0),
        (10, 1, 10, 1.0),
        (10, 3, 1, 0.3),
        (2, 1, 2, 1.0),
    ],
    ids=[
        "no correct sample never passes",
        "no correct sample never passes even with k=n",
        "all correct always passes",
        "k=n contains the one correct sample",
        "pass@1 is the plain success rate",
        "k=n with one correct",
    ],
)
def test_edge_cases(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("n", "c", "k"),
    [(5, 1, 6), (3, 0, 0), (3, 4, 1), (3, -1, 1)],
    ids=["fewer samples than k", "k below 1", "more correct than samples", "negative correct count"],
)
def test_impossible_arguments_raise(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_is_stable_where_the_binomials_overflow_floats() -> None:
    value = pass_at_k(2000, 3, 1000)
    assert 0.0 < value <= 1.0
    assert value == pytest.approx(_naive(2000, 3, 1000), rel=1e-9)
