"""Quality figures on fixture programs: orderings, bounds, NaN handling, one ruff run per batch."""

from __future__ import annotations

import math
import subprocess

import pytest
from execrl.harness.scoring import quality
from execrl.harness.scoring.quality import Quality, quality_many, quality_summary, score

CLEAN = '''"""Small, documented helpers."""


def clamp(value, low, high):
    """Return value limited to [low, high]."""
    return max(low, min(value, high))


class Counter:
    """Counts calls."""

    def __init__(self):
        """Start at zero."""
        self.calls = 0
'''

MESSY = """import os, sys
def f(x,y):
  if x:
    if y:
      for i in range(x):
        if i%2: x+=1
        elif i%3: x-=1
        else:
          while y>0: y-=1
  try: pass
  except: pass
  return x==None
"""

THREE_IFS = "def g(a, b, c):\n" + "".join(f"    if {v}:\n        pass\n" for v in "abc") + "    return 0\n"


def test_clean_program_scores_higher_than_messy_program() -> None:
    clean, messy = quality_many([CLEAN, MESSY])
    assert clean.score > messy.score + 2
    assert clean.ruff_per_100_lines == 0 and messy.ruff_per_100_lines > 10
    assert clean.cyclomatic < messy.cyclomatic
    assert clean.maintainability > messy.maintainability


@pytest.mark.parametrize("program", [CLEAN, MESSY, THREE_IFS, "x = 1\n"], ids=["clean", "messy", "ifs", "no-defs"])
def test_every_figure_is_in_its_range(program: str) -> None:
    (q,) = quality_many([program])
    assert 0 <= q.score <= 10
    assert 0 <= q.maintainability <= 100
    assert q.cyclomatic >= 1
    assert q.ruff_per_100_lines >= 0


@pytest.mark.parametrize(
    "program, coverage",
    [
        (CLEAN, 1.0),
        ('def a():\n    """Doc."""\n\n\ndef b():\n    return 1\n', 0.5),
        ("def a():\n    return 1\n", 0.0),
        ("x = 1\n", math.nan),
    ],
    ids=["all-documented", "one-of-two", "none-documented", "no-functions-is-undefined"],
)
def test_docstring_coverage_is_the_share_of_documented_defs(program: str, coverage: float) -> None:
    (q,) = quality_many([program])
    assert q.docstring_coverage == pytest.approx(coverage, nan_ok=True)


def test_cyclomatic_complexity_counts_decision_points_plus_one() -> None:
    (q,) = quality_many([THREE_IFS])  # McCabe 1976: three `if`s -> 1 + 3
    assert q.cyclomatic == 4


@pytest.mark.parametrize(
    "program",
    ["def broken(:\n    pass\n", "", "   \n\n", "# only a comment\n"],
    ids=["syntax-error", "empty", "blank", "comment-only"],
)
def test_unparseable_or_empty_program_scores_zero_with_nan_figures(program: str) -> None:
    (q,) = quality_many([program])
    assert q.score == 0
    assert all(math.isnan(v) for v in (q.cyclomatic, q.maintainability, q.ruff_per_100_lines, q.docstring_coverage))


@pytest.mark.parametrize(
    "figures, expected",
    [
        ((1.0, 100.0, 0.0, 1.0), 10.0),
        ((25.0, 0.0, 50.0, 0.0), 0.0),
        ((1.0, 100.0, 0.0, math.nan), 10.0),
        ((12.5, 50.0, 5.0, 0.5), 5.0),
    ],
    ids=["best-on-every-term", "worst-on-every-term", "nan-term-dropped-not-zeroed", "midpoint-of-every-scale"],
)
def test_score_maps_each_term_between_its_stated_thresholds(figures: tuple, expected: float) -> None:
    assert score(*figures) == pytest.approx(expected)


def test_batch_runs_ruff_once_and_matches_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    programs = [CLEAN, MESSY, THREE_IFS, "def broken(:\n"] * 5
    singles = [quality_many([p])[0] for p in programs[:4]]
    ruff_runs = []
    real_popen = subprocess.Popen

    def popen(cmd, *args, **kwargs):
        if "check" in cmd:
            ruff_runs.append(cmd)
        return real_popen(cmd, *args, **kwargs)

    monkeypatch.setattr(quality.subprocess, "Popen", popen)
    batch = quality_many(programs)
    assert len(ruff_runs) == 1
    for got, want in zip(batch, singles * 5, strict=True):
        assert _as_tuple(got) == pytest.approx(_as_tuple(want), nan_ok=True)


def _as_tuple(q: Quality) -> tuple[float, ...]:
    return (q.cyclomatic, q.maintainability, q.ruff_per_100_lines, q.docstring_coverage, q.score)


def test_summary_is_the_mean_over_programs_with_unparseable_counting_zero_score() -> None:
    summary = quality_summary([CLEAN, "def broken(:\n"])
    (clean,) = quality_many([CLEAN])
    assert set(summary) == {
        "cyclomatic_complexity",
        "maintainability_index",
        "ruff_per_100_lines",
        "docstring_coverage",
        "quality_score",
        "unscored",
        "lint_unavailable",
    }
    assert summary["quality_score"] == pytest.approx(clean.score / 2)
    assert summary["unscored"] == {"syntax_error": 1} and summary["lint_unavailable"] == 0
    assert summary["maintainability_index"] == pytest.approx(clean.maintainability)


def test_empty_batch_gives_nothing_and_nan_summary() -> None:
    assert quality_many([]) == []
    summary = quality_summary([])
    assert summary.pop("unscored") == {} and summary.pop("lint_unavailable") == 0
    assert all(math.isnan(v) for v in summary.values())


def test_a_program_that_kills_ruff_gets_nan_findings_and_the_rest_are_still_counted(tmp_path, monkeypatch) -> None:
    """Ruff can die on a hostile program (a stack overflow on thousands of nested operators). The batch is
    split until that program is alone: one program must not crash the metrics or the quality reward."""
    import stat

    import ruff

    real = ruff.find_ruff_bin()
    fake = tmp_path / "ruff"
    fake.write_text(f'#!/bin/sh\nfor f in "$@"; do grep -qs KILL-RUFF "$f" && kill -ABRT $$; done\nexec {real} "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(ruff, "find_ruff_bin", lambda: str(fake))
    qualities = quality_many(["import os\n", "x = 2  # KILL-RUFF\n", "x = 1\n", "import sys\n"])
    assert [q.ruff_per_100_lines for q in qualities] == pytest.approx([100.0, math.nan, 0.0, 100.0], nan_ok=True)
    assert qualities[1].reason is None and qualities[1].score > 0  # scored without its lint term
    assert quality.summarize(qualities)["lint_unavailable"] == 1
