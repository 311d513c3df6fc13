"""PNG plots for comparison reports (matplotlib `Figure` objects, saved with the Agg canvas; no pyplot state).

Each function takes the runs, writes one PNG and returns its path, or None when the runs hold nothing
to plot (no per-difficulty metrics, no training log...).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from execrl.harness.records import Verdict
from execrl.reports.health import CURVES, eval_series, series
from execrl.reports.runs import Run, printable
from matplotlib.figure import Figure

TRAIN_PREFIXES = ("ppo/", "code/")


def _grid(n: int, width: float = 5.0, height: float = 3.6) -> tuple[Figure, list]:
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _benchmarks(runs: Sequence[Run]) -> list[str]:
    return sorted({b for run in runs for b in run.benchmarks})


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=90)
    return path


def plot_pass_at_k(runs: Sequence[Run], path: Path) -> Path | None:
    """pass@k against k, one panel per benchmark, one line per run (from metrics.json)."""
    benchmarks = _benchmarks(runs)
    if not benchmarks:
        return None
    fig, axes = _grid(len(benchmarks))
    for ax, benchmark in zip(axes, benchmarks, strict=True):
        all_ks: set[int] = set()
        for run in runs:
            if benchmark not in run.benchmarks:
                continue
            metrics = run.benchmarks[benchmark].metrics.get("metrics", {})
            ks = sorted(int(m[5:]) for m in metrics if re.fullmatch(r"pass@\d+", m) and metrics[m] is not None)
            ax.plot(ks, [metrics[f"pass@{k}"] for k in ks], marker="o", label=run.name)
            all_ks.update(ks)
        ax.set(title=benchmark, xlabel="k", ylabel="pass@k", ylim=(0, 1.02))
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(all_ks), [str(k) for k in sorted(all_ks)])
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def plot_verdicts(runs: Sequence[Run], path: Path) -> Path | None:
    """Share of samples per verdict, stacked, one bar per (benchmark, run)."""
    bars = [
        (f"{b}\n{run.name}", run.benchmarks[b].verdicts)
        for b in _benchmarks(runs)
        for run in runs
        if b in run.benchmarks and run.benchmarks[b].verdicts
    ]
    if not bars:
        return None
    fig = Figure(figsize=(9, 1.2 + 0.6 * len(bars)), layout="constrained")
    ax = fig.subplots()
    left = np.zeros(len(bars))
    for verdict in Verdict:
        shares = np.array([counts.get(verdict.value, 0) / max(sum(counts.values()), 1) for _, counts in bars])
        if shares.any():
            ax.barh(range(len(bars)), shares, left=left, label=verdict.value)
            left += shares
    ax.set_yticks(range(len(bars)), [label for label, _ in bars])
    ax.invert_yaxis()
    ax.set(xlabel="share of samples", xlim=(0, 1), title="Verdicts")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return _save(fig, path)


def plot_quality(runs: Sequence[Run], path: Path) -> Path | None:
    """Histogram of per-sample quality scores (0-10), one panel per benchmark."""
    data = {
        b: {
            run.name: [
                v for vs in run.benchmarks[b].per_sample("quality_score").values() for v in vs if not math.isnan(v)
            ]
            for run in runs
            if b in run.benchmarks
        }
        for b in _benchmarks(runs)
    }
    data = {b: per_run for b, per_run in data.items() if any(per_run.values())}
    if not data:
        return None
    fig, axes = _grid(len(data))
    bins = np.linspace(0, 10, 21)
    for ax, (benchmark, per_run) in zip(axes, data.items(), strict=True):
        for name, values in per_run.items():
            ax.hist(values, bins=bins, alpha=0.55, label=f"{name} (mean {np.mean(values):.2f})" if values else name)
        ax.set(title=f"{benchmark}: quality score", xlabel="score (0-10)", ylabel="samples")
        ax.legend(fontsize="small")
    return _save(fig, path)


def plot_difficulty(runs: Sequence[Run], path: Path) -> Path | None:
    """pass@1 per difficulty level (metrics.json by_difficulty), grouped bars, one panel per benchmark."""
    data = {}
    for benchmark in _benchmarks(runs):
        per_run = {
            run.name: {
                d: v.get("metrics", {}).get("pass@1", math.nan)
                for d, v in run.benchmarks[benchmark].metrics.get("by_difficulty", {}).items()
            }
            for run in runs
            if benchmark in run.benchmarks
        }
        if any(per_run.values()):
            data[benchmark] = per_run
    if not data:
        return None
    fig, axes = _grid(len(data))
    for ax, (benchmark, per_run) in zip(axes, data.items(), strict=True):
        levels = sorted({d for values in per_run.values() for d in values})
        width = 0.8 / len(per_run)
        for i, (name, values) in enumerate(per_run.items()):
            x = np.arange(len(levels)) + (i - (len(per_run) - 1) / 2) * width
            ax.bar(x, [values.get(d, math.nan) for d in levels], width, label=name)
        ax.set_xticks(range(len(levels)), [printable(d) for d in levels])  # metrics.json's own keys
        ax.set(title=f"{benchmark}: pass@1 by difficulty", ylabel="pass@1", ylim=(0, 1.02))
        ax.legend(fontsize="small")
    return _save(fig, path)


def plot_training(run: Run, path: Path) -> Path | None:
    """Training curves against step: the health curves first (`execrl.reports.health.CURVES`, those the log
    has), then every other `ppo/*` and `code/*` metric; the in-loop evaluation steps are dotted lines on
    every panel and its held-out pass@1 is drawn on the pass-rate panel."""
    logged = {k for row in run.train_log for k in row if k.startswith(TRAIN_PREFIXES)}
    keys = [k for k in CURVES if k in logged] + sorted(logged - CURVES.keys())
    if not keys:
        return None
    evals = eval_series(run.train_log)
    eval_steps = sorted({s for values in evals.values() for s, _ in values})
    fig, axes = _grid(len(keys), width=4.0, height=2.8)
    for ax, key in zip(axes, keys, strict=True):
        points = series(run.train_log, key)
        ax.plot([s for s, _ in points], [v for _, v in points], label="rollouts" if key == "code/pass_rate" else None)
        for step in eval_steps:
            ax.axvline(step, color="0.6", linestyle=":", linewidth=1)
        if key == "code/pass_rate":
            for name, values in evals.items():
                ax.plot([s for s, _ in values], [v for _, v in values], "o--", label=f"held-out ({printable(name)})")
            if evals:
                ax.legend(fontsize="x-small")
        ax.set(title=printable(f"{CURVES.get(key, key)} ({key})" if key in CURVES else key), xlabel="step")
        ax.grid(alpha=0.3)
    fig.suptitle(f"Training: {run.name}" + ("  (dotted: in-loop evaluation)" if eval_steps else ""))
    return _save(fig, path)
