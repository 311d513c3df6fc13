"""`execrl report leaderboard RUN... --out DIR`: rank runs per benchmark and metric.

Writes `leaderboard.csv` (long format: one row per benchmark, metric and run, with its rank),
`leaderboard.md` and `leaderboard.html` (a self-contained page: a tab per benchmark, runs sorted by pass@1,
sortable columns). Every metric in metrics.json "metrics" is ranked higher-is-better except those in
`LOWER_IS_BETTER`; ties share the best rank ("min" method). pass@k values carry a 95% CI (percentile
bootstrap over the run's problems). Each row carries the run's model, date (config.json, else the folder's
modification time) and the settings that make rows comparable (`COMPARABLE`: split, problems, samples per
problem, temperature, top_p, token budget, sandbox and its limits); a benchmark whose rows differ on any of
them gets a warning naming them.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import tyro
from execrl.harness.flags import OutputFlags, parse
from execrl.reports.blocks import Interval, Tab, Tabs
from execrl.reports.compare import LOWER_IS_BETTER, bootstrap_ci, problem_values
from execrl.reports.render import Heading, Table, Text, claim_output, write_report
from execrl.reports.runs import BenchmarkRun, Run, RunError, load_run

PRIMARY = "pass@1"
CI_BOOTSTRAP = 1000
"""Resamples of the pass@k CIs (percentile bootstrap over the run's problems, seed 0)."""
COMPARABLE = (
    "split", "n_problems", "n", "temperature", "top_p", "max_new_tokens", "sandbox", "timeout_s", "memory_gib",
)  # fmt: skip
"""Settings that must agree for two rows of one benchmark to be comparable; the page warns when they differ."""


@dataclass(kw_only=True)
class LeaderboardConfig(OutputFlags):
    """Rank evaluated runs per benchmark and metric: --out gets leaderboard.md, leaderboard.html, leaderboard.csv."""

    runs: Annotated[tuple[Path, ...], tyro.conf.Positional]
    """Run folders (or metrics.json files) to rank."""


def _first(configs: list[dict[str, Any]], *keys: str) -> Any:
    for config in configs:
        for key in keys:
            if config.get(key) is not None:
                return config[key]
    return None


def row_settings(run: Run, bench: BenchmarkRun) -> dict[str, Any]:
    """The settings of one (run, benchmark) row: the benchmark's own config first, then the run's."""
    configs = [bench.config, run.config]  # a sibling benchmark's settings are not this row's
    n_samples, n_problems = bench.metrics.get("n_samples"), bench.metrics.get("n_problems")
    n = n_samples // n_problems if n_samples and n_problems and n_samples % n_problems == 0 else None
    limits = _first(configs, "limits")
    limits = limits if isinstance(limits, dict) else {}
    return {
        "model": run.model,
        "date": run.date,
        "split": bench.metrics.get("split") or _first(configs, "split"),
        "n_problems": n_problems if n_problems is not None else (len(bench.per_problem) or None),
        "n": _first(configs, "n", "n_samples", "samples_per_problem") or n,
        "temperature": _first(configs, "temperature"),
        "top_p": _first(configs, "top_p"),
        "max_new_tokens": _first(configs, "max_new_tokens"),
        # older evaluations recorded the sandbox backend as "backend"
        "sandbox": _first([bench.metrics, *configs], "sandbox", "backend"),
        "timeout_s": limits.get("timeout"),
        "memory_gib": limits["memory"] / 1024**3 if isinstance(limits.get("memory"), (int, float)) else None,
    }


def metric_ci(bench: BenchmarkRun, metric: str) -> tuple[float, float] | tuple[None, None]:
    """95% CI of a pass@k metric from the run's per-problem values, else (None, None)."""
    if not metric.startswith("pass@"):
        return None, None
    values = list(problem_values(bench, metric).values())
    return bootstrap_ci(np.array(values), CI_BOOTSTRAP, 0) if values else (None, None)


SETTING_COLUMNS = ["model", "date", *COMPARABLE]


def leaderboard_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per (benchmark, metric, run) with value, rank (1 = best within benchmark and metric), 95% CI
    (pass@k) and the row's settings."""
    rows = []
    for run in runs:
        for benchmark, bench in run.benchmarks.items():
            settings = row_settings(run, bench)
            for metric, value in bench.metrics.get("metrics", {}).items():
                if isinstance(value, (int, float)):
                    lo, hi = metric_ci(bench, metric)
                    rows.append(
                        {
                            "benchmark": benchmark,
                            "metric": metric,
                            "run": run.name,
                            "value": float(value),
                            "ci_lo": lo,
                            "ci_hi": hi,
                            **settings,
                            "folder": str(run.folder),
                        }
                    )
    columns = ["benchmark", "metric", "run", "value", "ci_lo", "ci_hi", *SETTING_COLUMNS, "folder"]
    frame = pd.DataFrame(rows, columns=columns)
    ascending = frame["metric"].isin(LOWER_IS_BETTER)
    rank_high = frame.groupby(["benchmark", "metric"])["value"].rank(method="min", ascending=False)
    rank_low = frame.groupby(["benchmark", "metric"])["value"].rank(method="min", ascending=True)
    frame.insert(3, "rank", rank_low.where(ascending, rank_high).astype("Int64"))
    return frame.sort_values(["benchmark", "metric", "rank", "run"], kind="stable").reset_index(drop=True)


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:g}" if isinstance(value, float) else str(value)


def settings_mismatch(info: pd.DataFrame) -> str | None:
    """A warning naming each comparable setting on which the rows of one benchmark differ, else None."""
    parts = []
    for column in COMPARABLE:
        groups: dict[str, list[str]] = {}
        for run, value in info[column].items():
            groups.setdefault(_shown(value), []).append(str(run))
        if len(groups) > 1:
            parts.append(f"{column} (" + "; ".join(f"{v}: {', '.join(r)}" for v, r in groups.items()) + ")")
    if not parts:
        return None
    return f"WARNING: rows were evaluated under different settings, not directly comparable: {', '.join(parts)}."


def _ci(lo: Any, hi: Any) -> Interval | None:
    return None if lo is None or pd.isna(lo) else Interval(float(lo), float(hi))


def _metric_order(metric: str) -> tuple[int, int, str]:
    """pass@1 first, then pass@k by k, then the other metrics by name."""
    match = re.fullmatch(r"pass@(\d+)", metric)
    return (0, int(match[1]), "") if match else (1, 0, metric)


def benchmark_blocks(group: pd.DataFrame) -> list:
    """One benchmark's panel: the settings warning (if any), then its runs best first by pass@1."""
    wide = group.pivot_table(index="run", columns="metric", values="value", aggfunc="first")
    info = group.drop_duplicates("run").set_index("run")[SETTING_COLUMNS]
    primary = group[group.metric == PRIMARY].set_index("run")
    wide = info.join(wide)
    if PRIMARY in wide:
        wide = wide.sort_values(PRIMARY, ascending=False, kind="stable")
    metrics = [m for m in wide.columns if m not in info.columns]
    metrics.sort(key=_metric_order)
    ci_header = [f"{PRIMARY} 95% CI"] if PRIMARY in metrics else []
    # the two settings that most often differ sit beside the primary metric, where a wide table is still visible
    near, far = ["n", "temperature"], [c for c in SETTING_COLUMNS if c not in ("n", "temperature")]
    header = ["#", "run", *metrics[:1], *ci_header, *near, *metrics[1:], *far]
    rows = []
    for i, (name, row) in enumerate(wide.iterrows(), 1):
        ci = [_ci(primary.at[name, "ci_lo"], primary.at[name, "ci_hi"])] if ci_header else []
        values = [None if pd.isna(row[m]) else float(row[m]) for m in metrics]
        given = {c: _cell(row[c]) for c in SETTING_COLUMNS}
        rows.append([i, name, *values[:1], *ci, *(given[c] for c in near), *values[1:], *(given[c] for c in far)])
    warning = settings_mismatch(info)
    return [*([Text(warning, warning=True)] if warning else []), Table(header, rows, sortable=True)]


def _cell(value: Any) -> Any:
    """Settings cells: numbers stay numbers (sortable), a missing value is None (an en dash)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def leaderboard_blocks(frame: pd.DataFrame) -> list:
    blocks: list = [
        Heading("Leaderboard", 1),
        Text(
            f"Runs sorted by {PRIMARY} (higher is better; lower is better for "
            f"{', '.join(sorted(LOWER_IS_BETTER))}); click a column to sort by it. 95% CIs: percentile bootstrap "
            f"over each run's problems ({CI_BOOTSTRAP} resamples). Ranks per metric are in leaderboard.csv."
        ),
    ]
    tabs = [Tab(str(benchmark), benchmark_blocks(group)) for benchmark, group in frame.groupby("benchmark", sort=True)]
    return [*blocks, Tabs(tabs)]


def main(argv: list[str]) -> int:
    cfg = parse(LeaderboardConfig, argv)
    if not cfg.runs:
        raise RunError("name at least one run folder")
    return write_leaderboard(cfg)


def write_leaderboard(cfg: LeaderboardConfig) -> int:
    runs = [load_run(path) for path in cfg.runs]
    seen: dict[str, int] = {}
    for run in runs:  # two folders with the same name (a/run, b/run) get distinct labels
        seen[run.name] = seen.get(run.name, 0) + 1
        if seen[run.name] > 1:
            run.name = f"{run.name}#{seen[run.name]}"
    outputs = ["leaderboard.csv", "leaderboard.md", "leaderboard.html"]
    claim_output(cfg.out, {"runs": [str(p.resolve()) for p in cfg.runs]}, outputs, cfg.force, "--force")
    frame = leaderboard_frame(runs)
    if not (cfg.out / "leaderboard.csv").exists():
        frame.to_csv(cfg.out / "leaderboard.csv", index=False)
    write_report(cfg.out, "leaderboard", leaderboard_blocks(frame), "execrl leaderboard")
    print(f"wrote {cfg.out / 'leaderboard.html'}", file=sys.stderr)
    return 0
