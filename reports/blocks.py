"""The blocks a report is made of, rendered twice: as Markdown (`execrl.reports.markdown`) and as HTML
(`execrl.reports.html`), so report.md and report.html always say the same thing in the same order.

Plain blocks: `Heading`, `Text`, `Table`, `Image`. Report blocks: `Headline` (the verdict box that opens a
comparison), `Drilldown` (per-problem evidence: statements, both runs' programs, verdicts, tests, errors),
`Health` (training curves and warnings) and `Tabs` (one panel per benchmark, the leaderboard site).

Every string a block holds may come from a run folder — program text, error text, task ids, problem
statements, run and model names are hostile input — so the renderers escape every field; no block carries
pre-rendered markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


@dataclass(frozen=True)
class Heading:
    kind: ClassVar[str] = "heading"
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    kind: ClassVar[str] = "text"
    text: str
    warning: bool = False
    """Shown as a warning (HTML: highlighted; Markdown: in bold)."""


@dataclass(frozen=True)
class Table:
    kind: ClassVar[str] = "table"
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    sortable: bool = False
    """HTML only: clicking a header sorts the rows by that column."""


@dataclass(frozen=True)
class Interval:
    """A confidence interval of a level (not of a difference): `[lo, hi]`, unsigned."""

    lo: float
    hi: float

    def __str__(self) -> str:
        return f"[{self.lo:.3f}, {self.hi:.3f}]"


@dataclass(frozen=True)
class Image:
    kind: ClassVar[str] = "image"
    title: str
    path: Path


@dataclass(frozen=True)
class HeadlineRow:
    """One benchmark's primary metric, baseline vs candidate."""

    benchmark: str
    metric: str
    baseline: float
    candidate: float
    delta: float
    ci95: tuple[float, float]
    p_value: float | None
    n_problems: int
    direction: str
    """"better" or "worse" (significant at `ALPHA` in `execrl.reports.headline`), else "unchanged"."""

    @property
    def verdict(self) -> str:
        return DIRECTION_TEXT[self.direction]


DIRECTION_TEXT = {
    "better": "better (significant)",
    "worse": "worse (significant)",
    "unchanged": "no significant change",
}


@dataclass(frozen=True)
class Headline:
    kind: ClassVar[str] = "headline"
    title: str
    rows: Sequence[HeadlineRow]
    collapsed: Sequence[str] = ()
    """One line per benchmark left out of the box (e.g. both runs score zero), saying why."""
    notes: Sequence[str] = ()
    """Other lines a reviewer must see first (hack attempts, training warnings)."""
    provenance: Table | None = None
    """Model, data, settings, commit, date of each run: in the HTML behind one click."""


@dataclass(frozen=True)
class Attempt:
    """One sample of one run, as shown in the drill-down."""

    completion_id: int
    verdict: str
    program: str
    error: str
    tests: Sequence[tuple[str, str]]
    """(verdict, error text) per test, in order."""
    truncated: int = 0
    """Characters of the program left out (0: shown whole)."""


@dataclass(frozen=True)
class RunSide:
    """What one run did on one problem."""

    run: str
    n: int
    passed: int
    attempts: Sequence[Attempt]
    verdicts: Sequence[str]
    """Distinct verdicts over all of the run's samples of the problem (not only the ones shown)."""


@dataclass(frozen=True)
class ProblemView:
    benchmark: str
    task_id: str
    difficulty: str
    flip: str
    """"gained", "lost" or "" (no flip)."""
    statement: str | None
    sides: tuple[RunSide, RunSide]

    @property
    def verdicts(self) -> list[str]:
        return sorted({v for side in self.sides for v in side.verdicts})


@dataclass(frozen=True)
class Drilldown:
    kind: ClassVar[str] = "drilldown"
    problems: Sequence[ProblemView]
    notes: Sequence[str] = ()

    # the filters' choices
    @property
    def benchmarks(self) -> list[str]:
        return sorted({p.benchmark for p in self.problems})

    @property
    def difficulties(self) -> list[str]:
        return sorted({p.difficulty for p in self.problems if p.difficulty})

    @property
    def verdicts(self) -> list[str]:
        return sorted({v for p in self.problems for v in p.verdicts})


@dataclass(frozen=True)
class Health:
    kind: ClassVar[str] = "health"
    run: str
    warnings: Sequence[str]
    summary: Table
    image: Image | None = None


@dataclass(frozen=True)
class Tab:
    title: str
    blocks: Sequence[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Tabs:
    kind: ClassVar[str] = "tabs"
    tabs: Sequence[Tab]


Block = Heading | Text | Table | Image | Headline | Drilldown | Health | Tabs


def fmt(value: Any) -> str:
    """Cells: floats with 3 decimals (NaN and None as an en dash), CIs as [lo, hi], the rest as str."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return f"[{value[0]:+.3f}, {value[1]:+.3f}]"
    return str(value)


def points(value: float) -> str:
    """A difference of two rates in percentage points, signed: 0.2283 -> "+22.8"."""
    return f"{100 * value:+.1f}"
