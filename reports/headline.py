"""The verdict box that opens a comparison report: per benchmark, the primary metric's delta, its CI and
significance, coloured by direction; benchmarks where both runs score zero collapsed into a note; the
lines a reviewer must not miss (hack attempts, degraded isolation, sandbox errors, training warnings);
the runs' provenance one click away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from execrl.reports.blocks import Headline, HeadlineRow, Table
from execrl.reports.compare import BenchmarkComparison, Comparison
from execrl.reports.runs import Run

PRIMARY = "pass@1"
ALPHA = 0.05
"""Significance level of the headline's colours (two-sided, the comparison's permutation test)."""
_ORDER = {"worse": 0, "better": 1, "unchanged": 2}  # a regression is what a reviewer must see first


def direction(delta: float, p_value: float | None, alpha: float = ALPHA) -> str:
    """ "better"/"worse" when the change is significant at `alpha`, else "unchanged"."""
    if p_value is None or p_value >= alpha or delta == 0:
        return "unchanged"
    return "better" if delta > 0 else "worse"


def both_zero(bench: BenchmarkComparison, metric: str = PRIMARY) -> bool:
    value = bench.metrics.get(metric)
    return value is not None and value["baseline"] == 0 and value["candidate"] == 0


def headline_rows(comparison: Comparison, metric: str = PRIMARY) -> tuple[list[HeadlineRow], list[str]]:
    """(rows of the box, worst first; one line per benchmark collapsed out of it and why)."""
    rows, collapsed = [], []
    for name, bench in comparison.benchmarks.items():
        value = bench.metrics.get(metric)
        if value is None:
            collapsed.append(f"{name}: no {metric} to compare ({bench.n_common} problems in common).")
            continue
        if both_zero(bench, metric):
            collapsed.append(
                f"{name}: both runs score 0 on {metric} over {bench.n_common} problems; nothing to compare "
                "(details below)."
            )
            continue
        p_value = bench.significance.get("p_value") if metric == PRIMARY else None
        rows.append(
            HeadlineRow(
                benchmark=name,
                metric=metric,
                baseline=value["baseline"],
                candidate=value["candidate"],
                delta=value["delta"],
                ci95=(value["ci95"][0], value["ci95"][1]),
                p_value=p_value,
                n_problems=bench.n_common,
                direction=direction(value["delta"], p_value),
            )
        )
    collapsed += [f"{name}: held by one run only, not compared." for name in comparison.skipped_benchmarks]
    return sorted(rows, key=lambda r: _ORDER[r.direction]), collapsed


def _rate(value: Any) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "–"


def _counts(value: Any) -> dict[str, float]:
    """The non-zero numeric entries of a metrics.json counts dict (`containment`); other shapes are ignored."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and v}


def evaluation_notes(runs: Sequence[Run]) -> list[str]:
    """Lines from the runs' metrics.json a reviewer must see first: hack attempts and containment (when the
    evaluation recorded them), degraded sandbox isolation, sandbox errors (they say nothing of the program)."""
    notes = []
    for name in sorted({b for run in runs for b in run.benchmarks}):
        held = [(run, run.benchmarks[name]) for run in runs if name in run.benchmarks]
        rates = [bench.metrics.get("hack_attempt_rate") for _, bench in held]
        if any(isinstance(r, (int, float)) for r in rates):
            pairs = ", ".join(f"{run.name} {_rate(r)}" for (run, _), r in zip(held, rates, strict=True))
            notes.append(f"{name}: hack-attempt rate {pairs}.")
        for run, bench in held:
            contained = _counts(bench.metrics.get("containment"))
            if contained:
                events = ", ".join(f"{k} {v:g}" for k, v in sorted(contained.items()))
                notes.append(f"{name}: {run.name}'s programs were contained: {events}.")
            degraded = bench.metrics.get("degraded") or []
            if degraded:
                off = ", ".join(map(str, degraded))
                notes.append(f"{name}: {run.name} ran with sandbox isolation degraded ({off} not in force).")
            errors = bench.verdicts.get("sandbox_error", 0)
            if errors:
                total = sum(bench.verdicts.values())
                notes.append(f"{name}: {errors} of {total} of {run.name}'s samples ended in sandbox_error.")
    return notes


def _limits(run: Run) -> str:
    limits = run.setting("limits")
    if not isinstance(limits, Mapping):
        return "–"
    parts = []
    if isinstance(limits.get("timeout"), (int, float)):
        parts.append(f"timeout {limits['timeout']:g} s/test")
    if isinstance(limits.get("memory"), (int, float)):
        parts.append(f"memory {limits['memory'] / 1024**3:g} GiB")
    return ", ".join(parts) or "–"


def _default_split(benchmark: str) -> str:
    """The split `load_problems` reads when none is named (what evaluate records as null)."""
    from execrl.benchmarks.registry import DEFAULT_SPLIT

    return f"{DEFAULT_SPLIT[benchmark]} (default)" if benchmark in DEFAULT_SPLIT else "?"


def _data(run: Run) -> str:
    return "; ".join(
        f"{name} ({bench.metrics.get('split') or bench.config.get('split') or _default_split(name)}, "
        f"{len(bench.per_problem)} problems)"
        for name, bench in run.benchmarks.items()
    )


def provenance(runs: Sequence[Run]) -> Table:
    """Model, data, settings, commit and date, one column per run."""
    fields: list[tuple[str, Any]] = [
        ("folder", lambda r: str(r.folder)),
        ("model", lambda r: r.model),
        ("data", _data),
        ("samples per problem", lambda r: r.setting("n", "n_samples", "samples_per_problem")),
        ("temperature", lambda r: r.setting("temperature")),
        ("top_p", lambda r: r.setting("top_p")),
        ("max new tokens", lambda r: r.setting("max_new_tokens")),
        ("sandbox", lambda r: r.setting("sandbox", "backend")),
        ("limits", _limits),
        ("git commit", lambda r: r.setting("git_commit", "commit", "git") or "not recorded"),
        ("date", lambda r: r.date),
    ]
    rows = [[label, *(_text(get(run)) for run in runs)] for label, get in fields]
    return Table(["", *(run.name for run in runs)], rows)


def _text(value: Any) -> str:
    """Provenance cells are text (left-aligned), whatever their type."""
    return "–" if value is None else str(value)


def build_headline(comparison: Comparison, runs: Sequence[Run], extra_notes: Sequence[str] = ()) -> Headline:
    rows, collapsed = headline_rows(comparison)
    return Headline(
        title=f"{comparison.candidate} vs {comparison.baseline}: {PRIMARY} per benchmark",
        rows=rows,
        collapsed=collapsed,
        notes=[*evaluation_notes(runs), *extra_notes],
        provenance=provenance(runs),
    )
