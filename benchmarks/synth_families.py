"""The task families of the `synth` benchmark: templates, bug variants, semantics and hidden-test inputs.

Every family writes one single-argument function. A family is four plain functions of a parameter dict
`p` (always holding `fn`, the function name, and `arg`, the argument name, plus the family's constants):

- `render(p) -> Template`: the one-line spec comment, the correct body, and the subtly wrong bodies. A
  wrong body differs from the correct one by one local edit (a comparison's strictness, `+ 1` on a bound,
  a dropped edge-case line) so a tiny model's output stays syntactically valid and PPO has one thing to fix.
- `reference(p, value)`: the family's meaning, written independently of the template (plain loops where
  the template uses a comprehension) so a test can check the template against it.
- `cases(rng, p)`: argument values for the hidden tests. The first few are the edge cases that expose each
  wrong body (values equal to a bound, empty lists, sorted lists with duplicates); random values fill the
  rest.
- `grid`: the constants' value sets; the benchmark enumerates `fn_names x arg_names x grid`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LIST_ARGS = ("xs", "nums", "lst", "values", "data", "seq", "arr", "vals")
INT_ARGS = ("x", "n", "v", "value", "num", "k")
STR_ARGS = ("s", "text", "word", "name")


@dataclass(frozen=True)
class Template:
    comment: str
    """The spec, without the leading `# `."""
    body: str
    """The correct body: indented lines, each ending in a newline."""
    wrong: dict[str, str]
    """Bug label -> wrong body."""


@dataclass(frozen=True)
class Family:
    name: str
    difficulty: str
    fn_names: tuple[str, ...]
    arg_names: tuple[str, ...]
    grid: dict[str, tuple[Any, ...]]
    render: Callable[[dict[str, Any]], Template]
    reference: Callable[[dict[str, Any], Any], Any]
    cases: Callable[[random.Random, dict[str, Any]], list[Any]]


def _ints(rng: random.Random, lo: int, hi: int, max_len: int = 8) -> list[int]:
    return [rng.randint(lo, hi) for _ in range(rng.randint(0, max_len))]


# Comparison words, their operator, and the operator with the opposite strictness (the off-by-one bug).
COMPARISONS = {
    "greater than": (">", ">="),
    "at least": (">=", ">"),
    "less than": ("<", "<="),
    "at most": ("<=", "<"),
}


def _holds(op: str, a: int, b: int) -> bool:
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


# --- easy -------------------------------------------------------------------------------------------------


def _sum_cmp_render(p: dict[str, Any]) -> Template:
    a, k = p["arg"], p["k"]
    op, flipped = COMPARISONS[p["cmp"]]
    return Template(
        f"return the sum of the items in {a} that are {p['cmp']} {k}",
        f"    return sum(x for x in {a} if x {op} {k})\n",
        {"strictness": f"    return sum(x for x in {a} if x {flipped} {k})\n"},
    )


def _sum_cmp_reference(p: dict[str, Any], xs: list[int]) -> int:
    total = 0
    for x in xs:
        if _holds(COMPARISONS[p["cmp"]][0], x, p["k"]):
            total += x
    return total


def _sum_cmp_cases(rng: random.Random, p: dict[str, Any]) -> list[Any]:
    k = p["k"]
    return [[], [k], [k - 1, k, k + 1], [k, k, 0]] + [_ints(rng, k - 4, k + 4) for _ in range(6)]


def _divisible_render(p: dict[str, Any]) -> Template:
    a, k = p["arg"], p["k"]
    test = "== 0" if p["kind"] == "divisible by" else "!= 0"
    return Template(
        f"return how many items in {a} are {p['kind']} {k}",
        f"    return sum(1 for x in {a} if x % {k} {test})\n",
        {"skips_first": f"    return sum(1 for x in {a}[1:] if x % {k} {test})\n"},
    )


def _divisible_reference(p: dict[str, Any], xs: list[int]) -> int:
    count = 0
    for x in xs:
        if (x % p["k"] == 0) == (p["kind"] == "divisible by"):
            count += 1
    return count


def _divisible_cases(rng: random.Random, p: dict[str, Any]) -> list[Any]:
    k = p["k"]
    return [[], [k, 1], [1, k], [2 * k, k + 1, 3 * k]] + [_ints(rng, -3 * k, 3 * k) for _ in range(6)]


def _clamp_render(p: dict[str, Any]) -> Template:
    a, lo, hi = p["arg"], p["lo"], p["lo"] + p["width"]
    return Template(
        f"return {a} limited to the range {lo} to {hi}",
        f"    return max({lo}, min({a}, {hi}))\n",
        {"exclusive_high": f"    return max({lo}, min({a}, {hi} - 1))\n"},
    )


def _clamp_reference(p: dict[str, Any], x: int) -> int:
    lo, hi = p["lo"], p["lo"] + p["width"]
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


def _clamp_cases(rng: random.Random, p: dict[str, Any]) -> list[Any]:
    lo, hi = p["lo"], p["lo"] + p["width"]
    return [lo, hi, lo - 1, hi + 1, (lo + hi) // 2] + [rng.randint(lo - 10, hi + 10) for _ in range(5)]


# kind -> (spec phrase with {a} and {k}, correct expression, wrong expression)
SLICES = {
    "first": ("the first {k} characters of {a}", "{a}[:{k}]", "{a}[:{k} + 1]"),
    "last": ("the last {k} characters of {a}", "{a}[-{k}:]", "{a}[-{k} - 1:]"),
    "drop_first": ("{a} without its first {k} characters", "{a}[{k}:]", "{a}[{k} + 1:]"),
    "drop_last": ("{a} without its last {k} characters", "{a}[:-{k}]", "{a}[:-{k} - 1]"),
}


def _slice_render(p: dict[str, Any]) -> Template:
    phrase, good, bad = (text.format(a=p["arg"], k=p["k"]) for text in SLICES[p["kind"]])
    return Template(f"return {phrase}", f"    return {good}\n", {"off_by_one": f"    return {bad}\n"})


def _slice_reference(p: dict[str, Any], s: str) -> str:
    k, cut = p["k"], max(len(s) - p["k"], 0)
    return {"first": s[: min(k, len(s))], "last": s[cut:], "drop_first": s[min(k, len(s)) :], "drop_last": s[:cut]}[
        p["kind"]
    ]


def _slice_cases(rng: random.Random, p: dict[str, Any]) -> list[Any]:
    k = p["k"]

    def word(n: int) -> str:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))

    return ["", word(k), word(k + 1), word(k + 3)] + [word(rng.randint(0, k + 6)) for _ in range(6)]


# --- medium -----------------------------------------------------------------------------------------------


def _between_render(p: dict[str, Any]) -> Template:
    a, lo, hi = p["arg"], p["lo"], p["lo"] + p["width"]
    return Template(
        f"return how many items in {a} are between {lo} and {hi} inclusive",
        f"    return sum(1 for x in {a} if {lo} <= x <= {hi})\n",
        {
            "exclusive_low": f"    return sum(1 for x in {a} if {lo} < x <= {hi})\n",
            "exclusive_high": f"    return sum(1 for x in {a} if {lo} <= x < {hi})\n",
        },
    )


def _between_reference(p: dict[str, Any], xs: list[int]) -> int:
    lo, hi = p["lo"], p["lo"] + p["width"]
    return len([x for x in xs if x >= lo and not x > hi])


def _between_cases(rng: random.Random, p: dict[str, Any]) -> list[Any]:
    lo, hi = p["lo"], p["lo"] + p["width"]
    return [[], [lo], [hi], [lo - 1, lo, hi, hi + 1]] + [_ints(rng, lo - 3, hi + 3) for _ in range(6)]


def _range_sum_render(p: dict[str, Any]) -> Template:
    a, start = p["arg"], p["start"]
    lo, hi = (start, a) if p["kind"] == "up" else (a, start)
    return Template(
        f"return the sum of the integers from {lo} to {hi} inclusive",
        f"    return sum(range({lo}, {hi} + 1))\n",
        {"exclusive_end": f"    return sum(range({lo}, {hi}))\n"},
    )


def _range_sum_reference(p: dict[str, Any], n: int) -> int:
    lo, hi = (p["start"], n) if p["kind"] == "up" else (n, p["start"])
    total, i = 0, lo
    while i <= hi:
        total += i
        i += 1
    return total


def _range_sum_cases(rng: random.Random, p: dict[str, Any]) -> list[Any]:
    s = p["start"]
    return [s, s + 1, s - 1, s + 5, s - 5] + [rng.randint(s - 15, s + 15) for _ in range(5)]


def _indices_render(p: dict[str, Any]) -> Template:
    a, k = p["arg"], p["k"]
    return Template(
        f"return the indices of the items in {a} that are equal to {k}",
        f"    return [i for i, x in enumerate({a}) if x == {k}]\n",
        {"one_based": f"    return [i for i, x in enumerate({a}, 1) if x == {k}]\n"},
    )


def _indices_reference(p: dict[str, Any], xs: list[int]) -> list[int]:
    found = []
    for i in range(len(xs)):
        if xs[i] == p["k"]:
            found.append(i)
    return found


def _indices_cases(rng: random.Random, p: dict[str, Any]) -> list[Any]:
    k = p["k"]
    return [[], [k], [k + 1, k, k], [k - 1, k + 1]] + [_ints(rng, k - 2, k + 2) for _ in range(6)]


def _max_default_render(p: dict[str, Any]) -> Template:
    a, d, fn = p["arg"], p["default"], "max" if p["kind"] == "largest" else "min"
    return Template(
        f"return the {p['kind']} item in {a}, or {d} if {a} is empty",
        f"    if not {a}:\n        return {d}\n    return {fn}({a})\n",
        {"no_empty_check": f"    return {fn}({a})\n"},
    )


def _max_default_reference(p: dict[str, Any], xs: list[int]) -> int:
    best = p["default"]
    for i, x in enumerate(xs):
        if i == 0 or (x > best if p["kind"] == "largest" else x < best):
            best = x
    return best


def _max_default_cases(rng: random.Random, p: dict[str, Any]) -> list[Any]:
    d = p["default"]
    nonempty = [[rng.randint(d - 9, d + 9) for _ in range(rng.randint(1, 8))] for _ in range(6)]
    return [[], [d + 3], [d - 3, d + 3]] + nonempty + [[]]


# --- hard -------------------------------------------------------------------------------------------------

# order words -> (operator between neighbours, the operator with the opposite strictness)
ORDERS = {
    "non-decreasing": ("<=", "<"),
    "strictly increasing": ("<", "<="),
    "non-increasing": (">=", ">"),
    "strictly decreasing": (">", ">="),
}


def _sorted_render(p: dict[str, Any]) -> Template:
    a = p["arg"]
    op, flipped = ORDERS[p["order"]]
    return Template(
        f"return True if {a} is in {p['order']} order",
        f"    return all({a}[i] {op} {a}[i + 1] for i in range(len({a}) - 1))\n",
        {
            "strictness": f"    return all({a}[i] {flipped} {a}[i + 1] for i in range(len({a}) - 1))\n",
            "index_past_end": f"    return all({a}[i] {op} {a}[i + 1] for i in range(len({a})))\n",
        },
    )


def _sorted_reference(p: dict[str, Any], xs: list[int]) -> bool:
    op = ORDERS[p["order"]][0]
    return all(_holds(op, left, right) for left, right in zip(xs, xs[1:], strict=False))


def _sorted_cases(rng: random.Random, p: dict[str, Any]) -> list[Any]:
    descending = p["order"] in ("non-increasing", "strictly decreasing")

    def ordered(values: list[int]) -> list[int]:
        return sorted(values, reverse=descending)

    base = rng.randint(-5, 5)
    return [
        [],
        [base],
        ordered([base, base + 2, base + 5]),  # strictly ordered: every variant but index_past_end agrees
        ordered([base, base, base + 3]),  # a tie: only the non-strict orders hold
        ordered([base, base + 4])[::-1],  # out of order
    ] + [ordered(_ints(rng, -9, 9)) if rng.random() < 0.5 else _ints(rng, -9, 9) for _ in range(5)]


def _first_index_render(p: dict[str, Any]) -> Template:
    a, k = p["arg"], p["k"]
    op, flipped = COMPARISONS[p["cmp"]]
    body = "    for i, x in enumerate({a}):\n        if x {op} {k}:\n            return i\n"
    return Template(
        f"return the index of the first item in {a} that is {p['cmp']} {k}, or -1 if there is none",
        body.format(a=a, op=op, k=k) + "    return -1\n",
        {
            "strictness": body.format(a=a, op=flipped, k=k) + "    return -1\n",
            "no_default": body.format(a=a, op=op, k=k),
        },
    )


def _first_index_reference(p: dict[str, Any], xs: list[int]) -> int:
    matches = [i for i in range(len(xs)) if _holds(COMPARISONS[p["cmp"]][0], xs[i], p["k"])]
    return matches[0] if matches else -1


def _first_index_cases(rng: random.Random, p: dict[str, Any]) -> list[Any]:
    k = p["k"]
    return [[], [k], [k - 9, k, k + 9], [k + 9, k, k - 9], [k, k - 1, k + 1]] + [
        _ints(rng, k - 5, k + 5) for _ in range(5)
    ]


def _adjacent_render(p: dict[str, Any]) -> Template:
    a, k = p["arg"], p["k"]
    return Template(
        f"return how many adjacent pairs in {a} differ by exactly {k}",
        f"    return sum(1 for a, b in zip({a}, {a}[1:]) if abs(b - a) == {k})\n",
        {"no_abs": f"    return sum(1 for a, b in zip({a}, {a}[1:]) if b - a == {k})\n"},
    )


def _adjacent_reference(p: dict[str, Any], xs: list[int]) -> int:
    count = 0
    for i in range(1, len(xs)):
        if xs[i] - xs[i - 1] in (p["k"], -p["k"]):
            count += 1
    return count


def _adjacent_cases(rng: random.Random, p: dict[str, Any]) -> list[Any]:
    k, base = p["k"], rng.randint(-5, 5)
    return [[], [base], [base, base + k, base + 2 * k], [base + k, base], [base, base + k, base]] + [
        [rng.choice([-k, k, 0, 1]) + i for i in range(rng.randint(0, 8))] for _ in range(5)
    ]


# A table: one family per block reads better than one argument per line.
# fmt: off
FAMILIES: tuple[Family, ...] = (
    Family(
        "sum_cmp", "easy", ("total_if", "sum_where", "pick_sum", "add_some", "sum_filtered", "sum_cmp"),
        LIST_ARGS, {"cmp": tuple(COMPARISONS), "k": tuple(range(1, 21))},
        _sum_cmp_render, _sum_cmp_reference, _sum_cmp_cases,
    ),
    Family(
        "count_divisible", "easy", ("count_div", "how_many", "tally", "count_mod", "num_div", "div_count"),
        LIST_ARGS, {"kind": ("divisible by", "not divisible by"), "k": tuple(range(2, 13))},
        _divisible_render, _divisible_reference, _divisible_cases,
    ),
    Family(
        "clamp", "easy", ("clamp", "limit", "bound", "clip", "squeeze", "keep_in"),
        INT_ARGS, {"lo": tuple(range(-10, 11)), "width": tuple(range(1, 13))},
        _clamp_render, _clamp_reference, _clamp_cases,
    ),
    Family(
        "str_slice", "easy", ("cut", "trim", "part", "piece", "chop", "snip"),
        STR_ARGS, {"kind": tuple(SLICES), "k": tuple(range(1, 13))},
        _slice_render, _slice_reference, _slice_cases,
    ),
    Family(
        "count_between", "medium", ("count_in", "in_range", "count_range", "between", "how_many_in", "span_count"),
        LIST_ARGS, {"lo": tuple(range(0, 16)), "width": tuple(range(1, 11))},
        _between_render, _between_reference, _between_cases,
    ),
    Family(
        "range_sum", "medium", ("range_total", "span_sum", "add_range", "series_sum", "sum_upto", "run_total"),
        INT_ARGS, {"kind": ("up", "down"), "start": tuple(range(1, 21))},
        _range_sum_render, _range_sum_reference, _range_sum_cases,
    ),
    Family(
        "indices_of", "medium", ("indices", "find_all", "positions", "where", "locate", "spots"),
        LIST_ARGS, {"k": tuple(range(-5, 21))},
        _indices_render, _indices_reference, _indices_cases,
    ),
    Family(
        "max_or_default", "medium", ("extreme", "pick", "best", "top", "choose", "select"),
        LIST_ARGS, {"kind": ("largest", "smallest"), "default": tuple(range(-5, 21))},
        _max_default_render, _max_default_reference, _max_default_cases,
    ),
    Family(
        "is_sorted", "hard",
        (
            "in_order", "is_ordered", "order_ok", "check_order", "sorted_check", "monotone",
            "ordered", "follows", "is_sorted", "sorted_ok", "arranged", "in_sequence",
        ),
        LIST_ARGS, {"order": tuple(ORDERS)},
        _sorted_render, _sorted_reference, _sorted_cases,
    ),
    Family(
        "first_index", "hard", ("first_at", "find_first", "first_pos", "index_of", "seek", "scan"),
        LIST_ARGS, {"cmp": tuple(COMPARISONS), "k": tuple(range(1, 21))},
        _first_index_render, _first_index_reference, _first_index_cases,
    ),
    Family(
        "adjacent_diff", "hard", ("steps", "jumps", "pair_gaps", "count_steps", "gap_count", "hops"),
        LIST_ARGS, {"k": tuple(range(1, 11))},
        _adjacent_render, _adjacent_reference, _adjacent_cases,
    ),
)
# fmt: on
