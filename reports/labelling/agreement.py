"""Agreement between labellers, as plain functions of their choices.

- `majority`: a pair's label, the choice most labellers made, and the share that made it (no label on a tie
  for first place).
- `fleiss_kappa`: Fleiss (1971), "Measuring nominal scale agreement among many raters", Psychological
  Bulletin 76(5), eq. 2-9, in the usual form for a varying number of raters per item: P_i = (sum_j n_ij^2 -
  n_i) / (n_i (n_i - 1)), p_j = sum_i n_ij / sum_i n_i, kappa = (mean P_i - sum_j p_j^2) / (1 - sum_j p_j^2).
  Items with fewer than two raters say nothing about agreement and are left out.
- `cohen_kappa`: Cohen (1960), "A coefficient of agreement for nominal scales", kappa = (p_o - p_e) / (1 - p_e),
  for two labellers over the pairs both labelled.
NaN where the figure is undefined (no items, or chance agreement already 1).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def majority(choices: Sequence[str]) -> tuple[str | None, float]:
    """(the most frequent choice, or None when two choices tie for first; its share of `choices`)."""
    if not choices:
        return None, math.nan
    ranked = Counter(choices).most_common()
    top, count = ranked[0]
    if len(ranked) > 1 and ranked[1][1] == count:
        return None, count / len(choices)
    return top, count / len(choices)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float:
    """Fleiss' kappa of an items x categories table of how many raters chose each category for each item."""
    rows = [row for row in counts if sum(row) >= 2]
    if not rows:
        return math.nan
    p_items = [(sum(n * n for n in row) - sum(row)) / (sum(row) * (sum(row) - 1)) for row in rows]
    total = sum(sum(row) for row in rows)
    p_categories = [sum(row[j] for row in rows) / total for j in range(len(rows[0]))]
    p_bar, p_e = sum(p_items) / len(p_items), sum(p * p for p in p_categories)
    return math.nan if p_e >= 1.0 else (p_bar - p_e) / (1.0 - p_e)


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float:
    """Cohen's kappa of two labellers' choices over the same items (in the same order)."""
    if len(first) != len(second):
        raise ValueError(f"{len(first)} and {len(second)} choices: expected the same items")
    if not first:
        return math.nan
    n = len(first)
    p_o = sum(x == y for x, y in zip(first, second, strict=True)) / n
    count_1, count_2 = Counter(first), Counter(second)
    p_e = sum(count_1[c] * count_2[c] for c in count_1) / (n * n)
    return math.nan if p_e >= 1.0 else (p_o - p_e) / (1.0 - p_e)
