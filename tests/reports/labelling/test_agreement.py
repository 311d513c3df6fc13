"""Agreement math against published worked examples and a naive loop over rater pairs."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from execrl.reports.labelling.agreement import cohen_kappa, fleiss_kappa, majority

# Fleiss (1971)'s worked example as reproduced on Wikipedia ("Fleiss' kappa"): 10 items, 14 raters, 5 categories.
FLEISS_EXAMPLE = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]  # fmt: skip


def test_fleiss_kappa_matches_the_worked_example() -> None:
    assert fleiss_kappa(FLEISS_EXAMPLE) == pytest.approx(0.210, abs=5e-4)


def naive_fleiss(items: list[list[str]], categories: list[str]) -> float:
    """Observed agreement as the share of agreeing ordered rater pairs per item; chance from pooled shares."""
    observed = []
    for choices in items:
        pairs = list(itertools.permutations(range(len(choices)), 2))
        observed.append(sum(choices[i] == choices[j] for i, j in pairs) / len(pairs))
    pooled = [c for choices in items for c in choices]
    chance = sum((pooled.count(c) / len(pooled)) ** 2 for c in categories)
    return (sum(observed) / len(observed) - chance) / (1 - chance)


def test_fleiss_kappa_with_varying_raters_matches_a_naive_loop() -> None:
    rng, categories = random.Random(3), ["a", "b", "tie", "both_bad"]
    items = [[rng.choice(categories[: rng.randint(1, 4)]) for _ in range(rng.randint(2, 5))] for _ in range(40)]
    counts = [[choices.count(c) for c in categories] for choices in items]
    assert fleiss_kappa(counts) == pytest.approx(naive_fleiss(items, categories), rel=1e-9)


def test_fleiss_kappa_ignores_items_with_one_rater_and_is_nan_without_any() -> None:
    assert fleiss_kappa([[1, 0], [0, 1]]) != fleiss_kappa([[1, 0], [0, 1]])  # NaN
    assert fleiss_kappa([[2, 0], [0, 2], [1, 0]]) == pytest.approx(1.0)


def test_cohen_kappa_matches_the_textbook_example() -> None:
    # 50 items: both yes 20, first yes second no 5, first no second yes 10, both no 15: p_o 0.7, p_e 0.5, kappa 0.4
    first = ["y"] * 25 + ["n"] * 25
    second = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)
    assert math.isnan(cohen_kappa(["a", "a"], ["a", "a"]))  # chance agreement is already 1


@pytest.mark.parametrize(
    ("choices", "expected"),
    [
        (["a", "a", "b"], ("a", 2 / 3)),  # a clear majority
        (["a", "b"], (None, 0.5)),  # split evenly: no label
        (["tie"], ("tie", 1.0)),  # one labeller decides alone
    ],
    ids=["majority", "split", "single"],
)
def test_majority_is_the_unique_most_frequent_choice(choices: list[str], expected: tuple) -> None:
    assert majority(choices) == expected
