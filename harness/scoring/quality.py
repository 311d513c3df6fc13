"""Code-quality figures for generated programs, and one 0-10 quality score.

Used by evaluation (metrics.json "quality") and as a PPO reward term, so a batch costs ONE ruff
subprocess (all programs written to a temp dir, `--output-format json`); radon and `ast` run in process.

Figures per program:
- cyclomatic: mean McCabe complexity of its functions and methods (radon `cc_visit`); a program with
  no functions gets the complexity of its module body (1 + decision points).
- maintainability: radon's maintainability index (`mi_visit`, 0-100, higher is better).
- ruff_per_100_lines: ruff findings (rules `RUFF_RULES`) per 100 non-blank lines.
- docstring_coverage: share of functions and classes with a docstring; NaN when it has none.

Score (0-10), a weighted mean of four sub-scores, each mapped linearly to 0-10 and clipped:
- complexity (weight 0.3): 10 at a mean complexity <= 5, 0 at >= 20 (radon's rank A ends at 5,
  rank C at 20);
- maintainability (0.2): MI / 10;
- lint (0.3): 10 at 0 findings per 100 lines, 0 at >= 10;
- docstrings (0.2): 10 * coverage.
A NaN sub-score (no functions, so no docstring coverage) is left out and the other weights are
rescaled. An unparseable program, or one without a single statement, scores 0 and has every other
figure NaN (an empty program must not earn a quality reward).
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from radon.complexity import cc_visit
from radon.metrics import mi_visit
from radon.visitors import ComplexityVisitor, Function

# pycodestyle errors/warnings, pyflakes, bugbear; line length as in this project.
RUFF_RULES = "E,W,F,B"
RUFF_LINE_LENGTH = 119

WEIGHTS = {"complexity": 0.3, "maintainability": 0.2, "lint": 0.3, "docstrings": 0.2}
COMPLEXITY_GOOD, COMPLEXITY_BAD = 5.0, 20.0
LINT_BAD = 10.0


@dataclass(frozen=True)
class Quality:
    cyclomatic: float
    maintainability: float
    ruff_per_100_lines: float
    docstring_coverage: float
    score: float


def _linear(value: float, good: float, bad: float) -> float:
    """10 at `good`, 0 at `bad`, linear between and clipped (works for good < bad and good > bad)."""
    return float(np.clip(10.0 * (value - bad) / (good - bad), 0.0, 10.0))


def score(cyclomatic: float, maintainability: float, ruff_per_100_lines: float, docstring_coverage: float) -> float:
    """The module docstring's formula: weighted 0-10 sub-scores, NaN terms left out."""
    parts = {
        "complexity": _linear(cyclomatic, COMPLEXITY_GOOD, COMPLEXITY_BAD),
        "maintainability": _linear(maintainability, 100.0, 0.0),
        "lint": _linear(ruff_per_100_lines, 0.0, LINT_BAD),
        "docstrings": 10.0 * docstring_coverage,
    }
    kept = {name: value for name, value in parts.items() if not math.isnan(value)}
    total_weight = sum(WEIGHTS[name] for name in kept)
    return sum(WEIGHTS[name] * value for name, value in kept.items()) / total_weight


def _ruff_counts(programs: Sequence[str]) -> list[float]:
    """Ruff findings per program, from one ruff run over a temp dir holding every program.

    Ruff itself can die on a program (a stack overflow on thousands of nested operators, SIGABRT). Then
    the batch is split in halves and each half tried again, so only the programs that kill ruff get NaN
    (their lint sub-score is left out) and one hostile program cannot crash the metrics or the reward.
    """
    if not programs:
        return []
    with tempfile.TemporaryDirectory(prefix="execrl-quality-") as tmp:
        paths = []
        for i, program in enumerate(programs):
            path = Path(tmp) / f"p{i:06d}.py"
            path.write_text(program, encoding="utf-8")
            paths.append(path)
        return _ruff_run(paths)


def _ruff_run(paths: list[Path]) -> list[float]:
    from ruff import find_ruff_bin  # the ruff wheel ships its binary and this locator

    cmd = [find_ruff_bin(), "check", "--isolated", "--no-cache", "--exit-zero", "--output-format", "json",
           "--select", RUFF_RULES, "--line-length", str(RUFF_LINE_LENGTH), *map(str, paths)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        if len(paths) == 1:
            return [math.nan]
        half = len(paths) // 2
        return _ruff_run(paths[:half]) + _ruff_run(paths[half:])
    index = {path.name: i for i, path in enumerate(paths)}
    counts = [0.0] * len(paths)
    for finding in json.loads(proc.stdout or "[]"):
        counts[index[Path(finding["filename"]).name]] += 1
    return counts


def _docstring_coverage(tree: ast.AST) -> float:
    defs = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    if not defs:
        return math.nan
    return sum(ast.get_docstring(node) is not None for node in defs) / len(defs)


def _cyclomatic(program: str) -> float:
    functions = [block for block in cc_visit(program) if isinstance(block, Function)]
    if not functions:
        return float(ComplexityVisitor.from_code(program).complexity)
    return float(np.mean([f.complexity for f in functions]))


def quality_many(programs: Sequence[str]) -> list[Quality]:
    """Quality of each program, in order (one ruff subprocess for the whole batch)."""
    findings = _ruff_counts(programs)
    out = []
    for program, n_findings in zip(programs, findings, strict=True):
        try:
            tree = ast.parse(program)
            if not tree.body:
                raise SyntaxError("no statements")
            cyclomatic = _cyclomatic(program)
            maintainability = float(mi_visit(program, multi=True))
        except (SyntaxError, ValueError, RecursionError, MemoryError):  # NUL bytes; too deep for ast or radon
            out.append(Quality(math.nan, math.nan, math.nan, math.nan, 0.0))
            continue
        lines = max(sum(bool(line.strip()) for line in program.splitlines()), 1)
        per_100 = 100.0 * n_findings / lines
        coverage = _docstring_coverage(tree)
        out.append(
            Quality(
                cyclomatic, maintainability, per_100, coverage, score(cyclomatic, maintainability, per_100, coverage)
            )
        )
    return out


def summarize(qualities: Sequence[Quality]) -> dict[str, float]:
    """Means over programs (NaN figures left out; NaN when no program has the figure)."""

    def mean(values: list[float]) -> float:
        kept = [v for v in values if not math.isnan(v)]
        return float(np.mean(kept)) if kept else math.nan

    return {
        "cyclomatic_complexity": mean([q.cyclomatic for q in qualities]),
        "maintainability_index": mean([q.maintainability for q in qualities]),
        "ruff_per_100_lines": mean([q.ruff_per_100_lines for q in qualities]),
        "docstring_coverage": mean([q.docstring_coverage for q in qualities]),
        "quality_score": mean([q.score for q in qualities]),
    }


def quality_summary(programs: Sequence[str]) -> dict[str, float]:
    """Mean quality figures of a batch: cyclomatic_complexity, maintainability_index, ruff_per_100_lines,
    docstring_coverage, quality_score (unparseable programs count as score 0 and are left out of the rest)."""
    return summarize(quality_many(programs))
