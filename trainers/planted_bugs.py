"""Planted-bug mutants of reference solutions: the tiny default's device (synth's `wrong_share`, a subtly wrong
variant of a problem's solution in the SFT corpus) for benchmarks that ship only right solutions, such as MBPP.

A mutant changes one token of the reference (an operator, `max`/`min`-style name or integer constant) and is kept
only if it still parses and fails the problem's own tests in the sandbox, so the wrong variant is really wrong.
An SFT corpus mixing a problem's reference and its mutant gives RL a systematic error to remove, which an SFT on
references alone does not (BENCHMARKS.md, "Learning check on MBPP's own tests").
"""

from __future__ import annotations

import ast
import io
import random
import tokenize

from execrl.benchmarks.problem import Problem
from execrl.harness.extract import program_of
from execrl.harness.sandbox.pool import execute_many
from execrl.trainers.sources import reference_rows

# One-token planted bugs (the tiny default's device, synth's `wrong_share`, applied to MBPP): each entry lists
# what a token may become; a mutant is kept only if it parses and fails the problem's asserts in the sandbox.
OP_SWAPS = {
    "+": ("-",), "-": ("+",), "*": ("/", "+"), "/": ("*", "//"), "//": ("/",),
    "<": ("<=", ">"), "<=": ("<",), ">": (">=", "<"), ">=": (">",), "==": ("!=",), "!=": ("==",),
}  # fmt: skip
NAME_SWAPS = {"max": "min", "min": "max", "and": "or", "or": "and", "True": "False", "False": "True",
              "upper": "lower", "lower": "upper"}  # fmt: skip


def token_mutants(source: str) -> list[str]:
    """Every one-token change of `source` from the swap tables (and each integer constant ±1) that still parses."""
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.OP:
            replacements = OP_SWAPS.get(tok.string, ())
        elif tok.type == tokenize.NAME:
            replacements = (NAME_SWAPS[tok.string],) if tok.string in NAME_SWAPS else ()
        elif tok.type == tokenize.NUMBER and tok.string.isdigit():
            replacements = tuple(str(int(tok.string) + d) for d in (1, -1) if int(tok.string) + d >= 0)
        else:
            continue
        start = offsets[tok.start[0] - 1] + tok.start[1]
        end = offsets[tok.end[0] - 1] + tok.end[1]
        for new in replacements:
            mutant = source[:start] + new + source[end:]
            try:
                ast.parse(mutant)
            except SyntaxError:
                continue
            out.append(mutant)
    return out


def planted_bug(problem: Problem, completion: str, seed: int) -> str | None:
    """A one-token mutant of the reference `completion` that parses and FAILS the problem's MBPP asserts in the
    sandbox (so the wrong variant is really wrong), chosen at random among those; None if there is none."""
    candidates = token_mutants(completion)
    random.Random(f"{problem.task_id}/{seed}").shuffle(candidates)
    results = execute_many([problem] * len(candidates), [program_of(problem, c) for c in candidates], workers=2)
    failing = [c for c, r in zip(candidates, results, strict=True) if not r.passed]
    return failing[0] if failing else None


def planted_bug_rows(problems: list[Problem], wrong_share: float, copies: int, seed: int) -> tuple[list[dict], dict]:
    """`copies` rows per problem, `round(wrong_share * copies)` of them its planted-bug mutant (all reference
    rows for a problem without one); returns the rows and, per problem, the mutant used (or None)."""
    rows, mutants = [], {}
    for problem, row in zip(problems, reference_rows(problems, 1), strict=True):
        mutant = planted_bug(problem, row["completion"], seed)
        mutants[problem.task_id] = mutant
        n_wrong = round(wrong_share * copies) if mutant is not None else 0
        rows += [{"prompt": row["prompt"], "completion": mutant} for _ in range(n_wrong)]
        rows += [dict(row) for _ in range(copies - n_wrong)]
    return rows, mutants
