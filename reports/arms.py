"""More arms than two in one comparison report (`execrl report compare BASE CAND --extra RUN...`).

The report's main comparison stays baseline against candidate (the headline, the flips, the drill-down). Each
extra arm (the pipeline's "PPO + critic sampling") is compared on pass@1 with the same statistics as the main
comparison (`execrl.reports.compare`: paired bootstrap CI of the difference over the problems both runs hold,
paired sign-flip permutation test), against the baseline and against the candidate.

Arms may spend different numbers of model calls for the program they submit: plain sampling's pass@1 is the pass
rate of one sample (one call), a strategy such as critic sampling draws several programs and repairs and submits
one. `calls_per_program` says which: the strategy's recorded budget (`budget` in the run's config.json: model
calls over problems), else 1. A reader comparing arms must weigh that column with the deltas.
"""

from __future__ import annotations

from typing import Any

from execrl.reports.compare import compare_runs
from execrl.reports.render import Block, Heading, Table, Text
from execrl.reports.runs import BenchmarkRun, Run


def calls_per_program(bench: BenchmarkRun) -> float:
    """Model calls spent per submitted program: a strategy's recorded budget, else 1 (plain sampling)."""
    budget = bench.config.get("budget")
    if isinstance(budget, dict) and budget.get("problems"):
        return float(budget["model_calls"]) / float(budget["problems"])
    return 1.0


def _pass1_versus(reference: Run, arm: Run, n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    """benchmark -> {delta, ci95, p_value, n_common} of arm - reference on pass@1, for the benchmarks both hold."""
    comparison = compare_runs(reference, arm, n_boot, seed)
    out = {}
    for name, bench in comparison.benchmarks.items():
        if "pass@1" not in bench.metrics:
            continue
        metric = bench.metrics["pass@1"]
        out[name] = {
            "delta": metric["delta"],
            "ci95": metric["ci95"],
            "p_value": bench.significance["p_value"],
            "n_common": bench.n_common,
        }
    return out


def compare_arms(baseline: Run, candidate: Run, extras: list[Run], n_boot: int, seed: int) -> dict[str, Any]:
    """comparison.json's `arms`: arm name -> benchmark -> its pass@1, model calls per submitted program, and its
    pass@1 difference to the baseline and to the candidate (delta, ci95, p_value, n_common)."""
    arms: dict[str, Any] = {}
    for arm in extras:
        versus = {
            "vs_baseline": _pass1_versus(baseline, arm, n_boot, seed),
            "vs_candidate": _pass1_versus(candidate, arm, n_boot, seed),
        }
        per_benchmark = {}
        for name, bench in arm.benchmarks.items():
            value = bench.metrics.get("metrics", {}).get("pass@1")
            per_benchmark[name] = {
                "pass@1": value,
                "calls_per_program": calls_per_program(bench),
                **{key: table.get(name) for key, table in versus.items()},
            }
        arms[arm.name] = per_benchmark
    return arms


def _delta_cells(entry: dict[str, Any] | None) -> list[Any]:
    if entry is None:
        return ["–", "–", "–"]
    return [entry["delta"], tuple(entry["ci95"]), f"{entry['p_value']:.4f}"]


def arms_blocks(baseline: Run, candidate: Run, arms: dict[str, Any]) -> list[Block]:
    """The report's "All arms" section: per benchmark one row per run, the extras with their deltas."""
    if not arms:
        return []
    base, cand = baseline.name, candidate.name
    blocks: list[Block] = [
        Heading("All arms"),
        Text(
            f"pass@1 of every arm, and each extra arm's difference to {base} and to {cand} (paired bootstrap 95% CI "
            "over the problems both hold, paired sign-flip permutation p-value). 'calls per program' is the model "
            "calls spent per submitted program: 1 for plain sampling (pass@1 is the pass rate of one sample); a "
            "strategy that draws and repairs several programs to submit one spends more, so weigh its gain "
            "against that budget."
        ),
    ]
    benchmarks = [b for b in baseline.benchmarks if b in candidate.benchmarks]
    header = ["arm", "pass@1", "calls per program", f"Δ vs {base}", "95% CI", "p", f"Δ vs {cand}", "95% CI", "p"]
    for name in benchmarks:
        rows: list[list[Any]] = []
        for run in (baseline, candidate):
            bench = run.benchmarks[name]
            value = bench.metrics.get("metrics", {}).get("pass@1")
            rows.append([run.name, value if value is not None else "–", calls_per_program(bench), *["–"] * 6])
        for arm_name, per_benchmark in arms.items():
            entry = per_benchmark.get(name)
            if entry is None:
                continue
            value = entry["pass@1"] if entry["pass@1"] is not None else "–"
            rows.append([arm_name, value, entry["calls_per_program"],
                         *_delta_cells(entry["vs_baseline"]), *_delta_cells(entry["vs_candidate"])])  # fmt: skip
        blocks += [Heading(name, 3), Table(header, rows)]
    return blocks
