"""Code-quality figures for generated programs, and one 0-10 quality score.

Used by evaluation (metrics.json "quality"), by the reports and as a PPO reward term. Program text is
untrusted, so the trusted process never parses it here: the `ast` + radon figures come from a killable
worker process (`radon_worker`), ruff runs as its own subprocess over a temp dir holding the batch, at
the same time, and both run under a time budget per program and per batch. A batch costs ONE ruff run.

Figures per program:
- cyclomatic: mean McCabe complexity of its functions and methods (radon `cc_visit`); a program with
  no functions gets the complexity of its module body (1 + decision points).
- maintainability: radon's maintainability index (`mi_visit`, 0-100, higher is better).
- ruff_per_100_lines: ruff findings (rules `RUFF_RULES`) per 100 non-blank lines, `# noqa` and
  `# ruff: noqa` comments ignored (under RL a policy would otherwise buy the lint term with one comment);
  NaN when ruff died on the batch or ran out of time (the lint sub-score is then left out, see below).
- docstring_coverage: share of functions and classes with a docstring; NaN when it has none.

Score (0-10), a weighted mean of four sub-scores, each mapped linearly to 0-10 and clipped:
- complexity (weight 0.3): 10 at a mean complexity <= 5, 0 at >= 20 (radon's rank A ends at 5,
  rank C at 20);
- maintainability (0.2): MI / 10;
- lint (0.3): 10 at 0 findings per 100 lines, 0 at >= 10;
- docstrings (0.2): 10 * coverage.
A NaN sub-score (no functions, so no docstring coverage) is left out and the other weights are
rescaled.

A program without figures scores 0, every figure NaN, and says why in `Quality.reason` (`REASONS`).
Two reasons are the program's own fault and count as a 0 in the batch's mean score: it does not parse
(`syntax_error`), or holds no statement (`empty`): an empty program must not earn a quality reward. The
others mean the figures could not be computed (too large, not encodable, too deep, out of time or
memory, the worker crashed): the score is still 0, so a reward built on it stays finite and a program
cannot earn quality by stalling the scorer, but `summarize` leaves such programs out of every mean and
counts them by reason.
"""

from __future__ import annotations

import atexit
import math
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from execrl.harness.scoring import radon_worker
from execrl.harness.scoring.radon_worker import RadonWorker

# pycodestyle errors/warnings, pyflakes, bugbear; line length as in this project.
RUFF_RULES = "E,W,F,B"
RUFF_LINE_LENGTH = 119

WEIGHTS = {"complexity": 0.3, "maintainability": 0.2, "lint": 0.3, "docstrings": 0.2}
COMPLEXITY_GOOD, COMPLEXITY_BAD = 5.0, 20.0
LINT_BAD = 10.0

MAX_CHARS = 200_000
"""Longer programs are not scored (`too_large`). HumanEval's longest canonical program is ~3,000 chars."""
SAMPLE_TIMEOUT = 5.0
"""Seconds of worker time per program (HumanEval programs take ~1 ms; radon's quadratic tokenising of a
long statement reaches 5 s at ~1,500 lines)."""
BATCH_TIMEOUT, BATCH_TIMEOUT_PER_PROGRAM = 30.0, 0.05
"""A batch of n programs gets BATCH_TIMEOUT + n * BATCH_TIMEOUT_PER_PROGRAM seconds in all (500
programs: 55 s, against ~0.5 s for 500 normal ones); what is left when it runs out is `budget`."""

TOO_LARGE, UNENCODABLE = "too_large", "unencodable"
REASONS = {
    radon_worker.SYNTAX_ERROR: "does not parse (NUL bytes included); counts as score 0",
    radon_worker.EMPTY: "no statement; counts as score 0",
    TOO_LARGE: f"more than MAX_CHARS ({MAX_CHARS:,}) characters",
    UNENCODABLE: "not encodable as UTF-8 (a lone surrogate)",
    radon_worker.TOO_DEEP: "nested too deeply for ast or radon (RecursionError)",
    radon_worker.MEMORY: "parsing it ran out of memory (the parser's stack, or the worker's address space)",
    radon_worker.TIMEOUT: f"took the worker more than SAMPLE_TIMEOUT ({SAMPLE_TIMEOUT} s)",
    radon_worker.BUDGET: "the batch's time ran out before its turn",
    radon_worker.CRASHED: "the worker died or failed on it",
}
"""Why a program has no figures. The first two are the program's fault; the others: not computed."""
PROGRAM_FAULTS = (radon_worker.SYNTAX_ERROR, radon_worker.EMPTY)

_WORKER = RadonWorker()
_WORKER_LOCK = threading.Lock()  # one batch at a time on the shared worker (PPO may score from a thread)
atexit.register(_WORKER.close)


@dataclass(frozen=True)
class Quality:
    cyclomatic: float
    maintainability: float
    ruff_per_100_lines: float
    docstring_coverage: float
    score: float
    reason: str | None = None
    """Why the figures are missing (a key of REASONS); None when they were computed."""

    @property
    def computed(self) -> bool:
        """Whether the score means something: figures computed, or a program fault that counts as 0."""
        return self.reason is None or self.reason in PROGRAM_FAULTS


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


def _screen(program: str) -> str | None:
    """The reason to skip `program` before any tool sees it, or None."""
    if len(program) > MAX_CHARS:
        return TOO_LARGE
    try:
        program.encode("utf-8")
    except UnicodeEncodeError:
        return UNENCODABLE
    return None


class _Ruff:
    """One ruff run over files p000000.py... in `folder`, started now, its concise output in a file.

    Ruff itself can die on a program (a stack overflow on thousands of nested operators, SIGABRT). Then
    the batch is split in halves and each half tried again, so only the programs that kill ruff get NaN
    (their lint sub-score is left out) and one hostile program cannot crash the metrics or the reward.
    Out of time, every program of the run gets NaN.
    """

    def __init__(self, folder: Path, names: list[str]) -> None:
        self.folder, self.names = folder, names
        self.proc = self._start(names, 0) if names else None

    def _start(self, names: list[str], part: int) -> subprocess.Popen[bytes] | None:
        from ruff import find_ruff_bin  # the ruff wheel ships its binary and this locator

        cmd = [find_ruff_bin(), "check", "--isolated", "--no-cache", "--exit-zero", "--output-format", "concise",
               "--ignore-noqa", "--select", RUFF_RULES, "--line-length", str(RUFF_LINE_LENGTH), *names]  # fmt: skip
        with open(self.folder / f"ruff-{part}.out", "wb") as out:  # a file, not a pipe: never blocks ruff
            try:
                return subprocess.Popen(cmd, cwd=self.folder, stdout=out, stderr=subprocess.DEVNULL)
            except OSError:  # no process to be had: no lint figures
                return None

    def counts(self, deadline: float) -> list[float]:
        """Findings per file, in order; waits for ruff until `deadline` (time.monotonic())."""
        if not self.names:
            return []
        return self._finish(self.proc, self.names, 0, deadline)

    def _finish(
        self, proc: subprocess.Popen[bytes] | None, names: list[str], part: int, deadline: float
    ) -> list[float]:
        if proc is None:
            return [math.nan] * len(names)
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return [math.nan] * len(names)
        if proc.returncode != 0:
            if len(names) == 1:
                return [math.nan]
            half = len(names) // 2
            first = self._finish(self._start(names[:half], 2 * part + 1), names[:half], 2 * part + 1, deadline)
            second = self._finish(self._start(names[half:], 2 * part + 2), names[half:], 2 * part + 2, deadline)
            return first + second
        index = {name: i for i, name in enumerate(names)}
        counts = [0.0] * len(names)
        with open(self.folder / f"ruff-{part}.out", "rb") as out:
            for line in out:  # "p000003.py:1:2: E501 ..."; streamed, however many findings there are
                i = index.get(line.split(b":", 1)[0].decode("ascii", "replace"))
                if i is not None:
                    counts[i] += 1
        return counts


def quality_many(
    programs: Sequence[str], *, sample_timeout: float | None = None, batch_timeout: float | None = None
) -> list[Quality]:
    """Quality of each program, in order (one ruff run and one worker round for the whole batch).

    Never raises on program text and never runs past the batch budget (defaults: SAMPLE_TIMEOUT and
    BATCH_TIMEOUT + BATCH_TIMEOUT_PER_PROGRAM per program); a program it cannot score has a `reason`.
    """
    sample_timeout = SAMPLE_TIMEOUT if sample_timeout is None else sample_timeout
    if batch_timeout is None:
        batch_timeout = BATCH_TIMEOUT + BATCH_TIMEOUT_PER_PROGRAM * len(programs)
    deadline = time.monotonic() + batch_timeout
    reasons = [_screen(program) for program in programs]
    todo = [i for i, reason in enumerate(reasons) if reason is None]
    figures: dict[int, dict[str, Any]] = {}
    findings: dict[int, float] = {}
    if todo:
        with _WORKER_LOCK, tempfile.TemporaryDirectory(prefix="execrl-quality-") as tmp:
            names = [f"p{i:06d}.py" for i in todo]
            for i, name in zip(todo, names, strict=True):
                Path(tmp, name).write_text(programs[i], encoding="utf-8")
            ruff = _Ruff(Path(tmp), names)  # runs while the worker measures
            answers = _WORKER.measure_many([programs[i] for i in todo], sample_timeout, deadline)
            figures = dict(zip(todo, answers, strict=True))
            findings = dict(zip(todo, ruff.counts(deadline), strict=True))
    out = []
    for i, program in enumerate(programs):
        answer = figures.get(i, {"reason": reasons[i]})
        if "reason" in answer:
            out.append(Quality(math.nan, math.nan, math.nan, math.nan, 0.0, str(answer["reason"])))
            continue
        cyclomatic, maintainability = float(answer["cyclomatic"]), float(answer["maintainability"])
        coverage = float(answer["docstring_coverage"])
        lines = max(sum(bool(line.strip()) for line in program.splitlines()), 1)
        per_100 = 100.0 * findings[i] / lines
        out.append(
            Quality(
                cyclomatic, maintainability, per_100, coverage, score(cyclomatic, maintainability, per_100, coverage)
            )
        )
    return out


def summarize(qualities: Sequence[Quality]) -> dict[str, Any]:
    """Means over programs (NaN figures left out; NaN when no program has the figure); quality_score over the
    programs whose score is `computed`. `unscored` counts the programs without figures by reason, and
    `lint_unavailable` those scored without their lint term (ruff died or ran out of time)."""

    def mean(values: list[float]) -> float:
        kept = [v for v in values if not math.isnan(v)]
        return float(np.mean(kept)) if kept else math.nan

    unscored: dict[str, int] = {}
    for q in qualities:
        if q.reason is not None:
            unscored[q.reason] = unscored.get(q.reason, 0) + 1
    return {
        "cyclomatic_complexity": mean([q.cyclomatic for q in qualities]),
        "maintainability_index": mean([q.maintainability for q in qualities]),
        "ruff_per_100_lines": mean([q.ruff_per_100_lines for q in qualities]),
        "docstring_coverage": mean([q.docstring_coverage for q in qualities]),
        "quality_score": mean([q.score for q in qualities if q.computed]),
        "unscored": dict(sorted(unscored.items())),
        "lint_unavailable": sum(q.reason is None and math.isnan(q.ruff_per_100_lines) for q in qualities),
    }


def quality_summary(programs: Sequence[str]) -> dict[str, Any]:
    """`summarize(quality_many(programs))`: cyclomatic_complexity, maintainability_index, ruff_per_100_lines,
    docstring_coverage, quality_score (unparseable programs count as score 0 and are left out of the rest),
    unscored {reason: n}, lint_unavailable."""
    return summarize(quality_many(programs))
