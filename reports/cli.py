"""`execrl report`: compare two runs, rank runs on a leaderboard, check a candidate for regressions.

    execrl report compare RUN_A RUN_B [--names A B] [--extra RUN... [--extra-names NAME...]] --out DIR
        [--bootstrap 2000] [--seed 0] [--data-dir D] [--force]
    execrl report leaderboard RUN... --out DIR [--force]
    execrl report check --baseline RUN|metrics.json --candidate RUN|metrics.json --metric pass@1 --max-drop 0.02

The compare command lives here (statistics in `execrl.reports.compare`, plots in `execrl.reports.plots`); the other
two are `execrl.reports.leaderboard.main` and `execrl.reports.check.main`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import tyro
from execrl.benchmarks.registry import default_data_dir
from execrl.harness.cli import dispatch
from execrl.harness.flags import OutputFlags, parse
from execrl.reports import plots
from execrl.reports.arms import arms_blocks, compare_arms
from execrl.reports.compare import SIGNIFICANCE_TEST, Comparison, compare_runs
from execrl.reports.headline import both_zero, build_headline
from execrl.reports.health import build_health
from execrl.reports.problems import build_drilldown
from execrl.reports.render import Block, Heading, Image, Table, Text, claim_output, write_report
from execrl.reports.runs import Run, RunError, load_run
from tqdm import tqdm

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "compare": (
        "execrl.reports.cli:compare_main",
        "compare two runs: bootstrap CIs, significance, flips, plots, report.md/html",
    ),
    "leaderboard": ("execrl.reports.leaderboard", "rank runs per benchmark and metric: leaderboard.md/html/csv"),
    "check": ("execrl.reports.check", "CI regression check: exit 1 when the candidate drops more than --max-drop"),
}


@dataclass(kw_only=True)
class CompareConfig(OutputFlags):
    """Compare two evaluated runs problem by problem: --out gets report.md, report.html, comparison.json, plots."""

    runs: Annotated[tuple[Path, Path], tyro.conf.Positional]
    """The baseline run folder, then the candidate run folder."""
    names: tuple[str, str] | None = None
    """Display names of the baseline and the candidate (default: the folder names)."""
    extra: list[Path] = field(default_factory=list)
    """More arms (run folders) shown next to the two: pass@1 and its difference to each, with CIs and p-values."""
    extra_names: list[str] | None = None
    """Display names of the --extra runs, one each (default: the folder names)."""
    bootstrap: int = 2000
    """Bootstrap resamples for the 95% CIs (also the number of permutations of the significance test)."""
    seed: int = 0
    """Seed of the bootstrap and permutation draws."""
    data_dir: Path | None = None
    """Data folder for the drill-down's MBPP/APPS problem statements (default: $EXECRL_DATA_DIR; others need none)."""


PLOTS = {
    "pass_at_k.png": ("pass@k per benchmark", plots.plot_pass_at_k),
    "verdicts.png": ("Verdict distribution", plots.plot_verdicts),
    "quality.png": ("Quality score distribution", plots.plot_quality),
    "difficulty.png": ("pass@1 per difficulty", plots.plot_difficulty),
}


def evidence_blocks(comparison: Comparison, n_boot: int) -> list[Block]:
    """Per benchmark: every metric with its CI, the p-value, the flips (the tables behind the headline)."""
    base, cand = comparison.baseline, comparison.candidate
    blocks: list[Block] = [
        Heading("Evidence per benchmark"),
        Text(
            f"95% CIs: paired bootstrap over problems ({n_boot} resamples, percentile interval). "
            f"Significance: {SIGNIFICANCE_TEST} ({n_boot} permutations). A problem is solved when its "
            "pass@1 >= 0.5. Values are recomputed over the problems both runs hold."
        ),
    ]
    # in the headline's order: benchmarks where both runs score zero last, not leading the page
    for name, bench in sorted(comparison.benchmarks.items(), key=lambda item: both_zero(item[1])):
        blocks.append(Heading(name, 3))
        blocks.append(
            Text(
                f"{bench.n_common} problems compared; dropped {len(bench.only_baseline)} only in "
                f"{base} and {len(bench.only_candidate)} only in {cand}."
            )
        )
        if not bench.metrics:
            continue
        blocks.append(
            Table(
                ["metric", base, cand, "delta", "95% CI of delta"],
                [[m, v["baseline"], v["candidate"], v["delta"], tuple(v["ci95"])] for m, v in bench.metrics.items()],
            )
        )
        blocks.append(Text(f"pass@1 difference: p = {bench.significance['p_value']:.4f}."))
        blocks.append(
            Table(
                ["flip", "count", "task ids"],
                [
                    ["gained", len(bench.flips["gained"]), " ".join(bench.flips["gained"]) or "–"],
                    ["lost", len(bench.flips["lost"]), " ".join(bench.flips["lost"]) or "–"],
                ],
            )
        )
    return blocks


def comparison_blocks(
    comparison: Comparison,
    runs: list[Run],
    images: list[Image],
    n_boot: int,
    training: dict[str, Path | None] | None = None,
    data_dir: Path | None = None,
    arms: dict[str, Any] | None = None,
) -> list[Block]:
    """The report, in the order a reviewer reads it: the verdict, the evidence, the programs behind the
    flips, training health, plots. `training` maps a run's name to its training-curves PNG (None: not drawn);
    `arms` (`execrl.reports.arms.compare_arms`) adds the extra arms' section after the evidence."""
    training = training or {}
    healths = [h for run in runs if (h := build_health(run, training.get(run.name))) is not None]
    warned = [f"training ({h.run}): {w}" for h in healths for w in h.warnings]
    blocks: list[Block] = [build_headline(comparison, runs, warned), *evidence_blocks(comparison, n_boot)]
    blocks += arms_blocks(runs[0], runs[1], arms or {})
    blocks += [Heading("Problems behind the flips"), build_drilldown(comparison, (runs[0], runs[1]), data_dir)]
    if healths:
        blocks += [Heading("Training health"), *healths]
    if images:
        blocks.append(Heading("Plots"))
        blocks += images
    return blocks


def compare_main(argv: list[str]) -> int:
    cfg = parse(CompareConfig, argv)
    if cfg.bootstrap < 1:
        raise RunError("--bootstrap must be >= 1")
    names = cfg.names or (None, None)
    runs = [load_run(folder, name) for folder, name in zip(cfg.runs, names, strict=True)]
    if runs[0].name == runs[1].name:
        runs[1].name += " (candidate)"
    extras = load_extras(cfg, {r.name for r in runs})
    stamp = {
        "runs": [str(p.resolve()) for p in cfg.runs],
        "names": [r.name for r in runs],
        "bootstrap": cfg.bootstrap,
        "seed": cfg.seed,
    }
    if extras:  # a two-arm report's stamp stays what it was, so an existing report folder still resumes
        stamp |= {"extra": [str(p.resolve()) for p in cfg.extra], "extra_names": [r.name for r in extras]}
    train_plots = {f"training_{i}.png": run for i, run in enumerate(runs)}
    outputs = ["comparison.json", "report.md", "report.html", *PLOTS, *train_plots]
    claim_output(cfg.out, stamp, outputs, cfg.force, "--force")

    json_file = cfg.out / "comparison.json"
    if json_file.exists():  # same inputs: the bootstrap is already done
        comparison = None
    else:
        comparison = compare_runs(runs[0], runs[1], cfg.bootstrap, cfg.seed)
        written = comparison.to_json()
        if extras:
            written["arms"] = compare_arms(runs[0], runs[1], extras, cfg.bootstrap, cfg.seed)
        json_file.write_text(json.dumps(written, indent=1) + "\n")
    images, training = [], {}
    todo = [(file, title, None, lambda p, f=fn: f(runs + extras, p)) for file, (title, fn) in PLOTS.items()]
    todo += [
        (file, f"Training curves: {run.name}", run.name, lambda p, r=run: plots.plot_training(r, p))
        for file, run in train_plots.items()
    ]
    for file, title, run_name, plot in tqdm(todo, desc="plots", file=sys.stderr):
        path = cfg.out / file
        drawn = path.exists() or plot(path)
        if run_name is not None:
            training[run_name] = path if drawn else None
        elif drawn:
            images.append(Image(title, path))
    if not ((cfg.out / "report.md").exists() and (cfg.out / "report.html").exists()):
        comparison = comparison or compare_runs(runs[0], runs[1], cfg.bootstrap, cfg.seed)
        data_dir = cfg.data_dir or default_data_dir()
        arms = json.loads(json_file.read_text()).get("arms", {})  # computed once, with comparison.json
        blocks = comparison_blocks(comparison, runs, images, cfg.bootstrap, training, data_dir, arms)
        write_report(cfg.out, "report", blocks, f"{runs[0].name} vs {runs[1].name}")
    print(f"wrote {cfg.out / 'report.html'}", file=sys.stderr)
    return 0


def load_extras(cfg: CompareConfig, taken: set[str]) -> list[Run]:
    """The --extra runs, named by --extra-names (one each) or their folders; a name may not repeat another arm's."""
    if cfg.extra_names is not None and len(cfg.extra_names) != len(cfg.extra):
        raise RunError(f"--extra-names: {len(cfg.extra_names)} names for {len(cfg.extra)} --extra runs")
    names = cfg.extra_names or [None] * len(cfg.extra)
    extras = [load_run(folder, name) for folder, name in zip(cfg.extra, names, strict=True)]
    for run in extras:
        if run.name in taken:
            raise RunError(f"--extra {run.folder}: the name {run.name!r} is already an arm's (give --extra-names)")
        taken.add(run.name)
    return extras


def main(argv: list[str]) -> int:
    return dispatch("execrl report", SUBCOMMANDS, argv)
