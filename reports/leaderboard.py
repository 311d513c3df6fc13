"""`execrl report leaderboard RUN... --out DIR`: rank runs per benchmark and metric.

Writes `leaderboard.csv` (long format: one row per benchmark, metric and run, with its rank),
`leaderboard.md` and `leaderboard.html` (one table per benchmark, runs sorted by pass@1). Every metric
in metrics.json "metrics" is ranked higher-is-better except those in `LOWER_IS_BETTER`; ties share the
best rank ("min" method). Each row carries the run's model, date (config.json, else the folder's
modification time) and settings (temperature, samples per problem).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pandas as pd
import tyro
from execrl.harness.flags import OutputFlags, parse
from execrl.reports.compare import LOWER_IS_BETTER
from execrl.reports.render import Heading, Table, Text, claim_output, write_report
from execrl.reports.runs import Run, RunError, load_run

PRIMARY = "pass@1"


@dataclass(kw_only=True)
class LeaderboardConfig(OutputFlags):
    """Rank evaluated runs per benchmark and metric: --out gets leaderboard.md, leaderboard.html, leaderboard.csv."""

    runs: Annotated[tuple[Path, ...], tyro.conf.Positional]
    """Run folders (or metrics.json files) to rank."""


def leaderboard_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per (benchmark, metric, run) with value and rank (1 = best within benchmark and metric)."""
    rows = []
    for run in runs:
        for benchmark, bench in run.benchmarks.items():
            n_samples, n_problems = bench.metrics.get("n_samples"), bench.metrics.get("n_problems")
            n = n_samples // n_problems if n_samples and n_problems and n_samples % n_problems == 0 else None
            settings = {
                "model": run.model,
                "date": run.date,
                "temperature": run.setting("temperature"),
                "n": run.setting("n", "n_samples", "samples_per_problem") or n,
            }
            for metric, value in bench.metrics.get("metrics", {}).items():
                if isinstance(value, (int, float)):
                    rows.append(
                        {
                            "benchmark": benchmark,
                            "metric": metric,
                            "run": run.name,
                            "value": float(value),
                            **settings,
                            "folder": str(run.folder),
                        }
                    )
    frame = pd.DataFrame(
        rows, columns=["benchmark", "metric", "run", "value", "model", "date", "temperature", "n", "folder"]
    )
    ascending = frame["metric"].isin(LOWER_IS_BETTER)
    rank_high = frame.groupby(["benchmark", "metric"])["value"].rank(method="min", ascending=False)
    rank_low = frame.groupby(["benchmark", "metric"])["value"].rank(method="min", ascending=True)
    frame.insert(3, "rank", rank_low.where(ascending, rank_high).astype("Int64"))
    return frame.sort_values(["benchmark", "metric", "rank", "run"], kind="stable").reset_index(drop=True)


def leaderboard_blocks(frame: pd.DataFrame) -> list:
    blocks: list = [
        Heading("Leaderboard", 1),
        Text(
            f"Runs sorted by {PRIMARY} (higher is better; lower is better for "
            f"{', '.join(sorted(LOWER_IS_BETTER))}). Ranks per metric are in leaderboard.csv."
        ),
    ]
    for benchmark, group in frame.groupby("benchmark", sort=True):
        wide = group.pivot_table(index="run", columns="metric", values="value", aggfunc="first")
        info = group.drop_duplicates("run").set_index("run")[["model", "date", "temperature", "n"]]
        wide = info.join(wide)
        if PRIMARY in wide:
            wide = wide.sort_values(PRIMARY, ascending=False, kind="stable")
        metrics = [m for m in wide.columns if m not in info.columns]
        header = ["#", "run", "model", "date", "temperature", "n", *metrics]
        rows = [
            [i, name, row["model"], row["date"], row["temperature"], row["n"], *(row[m] for m in metrics)]
            for i, (name, row) in enumerate(wide.iterrows(), 1)
        ]
        blocks += [Heading(str(benchmark)), Table(header, rows)]
    return blocks


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
