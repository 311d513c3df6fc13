"""Comparing two runs problem by problem: paired bootstrap CIs, a paired significance test, flips.

Only problems present in both runs are compared; the rest are counted as dropped (the report says how
many). Every metric is a mean over problems of a per-problem value, so both runs are resampled on the
same problem ids:
- pass@k per problem: the unbiased estimator (Chen et al. 2021) on that problem's (n, c);
- syntax_rate, mean_completion_chars, quality_score per problem: the mean over its samples;
- hack_attempt_rate (samples whose run recorded any containment event) and hack/<kind> (each kind either run
  recorded) per problem: the share of its samples. Lower is better: a PPO checkpoint that tries to cheat more
  than its SFT parent shows as a positive delta.

ci95: paired bootstrap over problems (Efron & Tibshirani 1993, ch. 13, percentile interval): draw the
common problem ids with replacement, take candidate mean - baseline mean on that same draw, repeat
`n_boot` times, report the 2.5th and 97.5th percentiles of the deltas.

Significance: a paired sign-flip permutation test on per-problem pass@1 differences (Good, "Permutation
Tests", 2000, sec. 3.1): under H0 each problem's difference is as likely to have either sign; the
statistic is |mean difference|, the p-value (1 + #{|T*| >= |T|}) / (1 + n_perm), two-sided.

Flips: a problem counts as solved when its pass@1 >= 0.5 (most samples pass; with one sample per
problem this is "the sample passed"). `gained` = solved by the candidate only, `lost` = by the baseline only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from execrl.harness.scoring.passk import pass_at_k
from execrl.reports.runs import BenchmarkRun, Run

SOLVED_AT = 0.5
# Metrics where a smaller value is the better one (everything else: higher is better).
LOWER_IS_BETTER = frozenset(
    {"ruff_per_100_lines", "cyclomatic_complexity", "mean_completion_chars", "hack_attempt_rate"}
)
PER_SAMPLE_METRICS = {"syntax_rate": "syntax_ok", "mean_completion_chars": "chars", "quality_score": "quality_score",
                      "hack_attempt_rate": "hacked"}  # fmt: skip
SIGNIFICANCE_TEST = "paired sign-flip permutation test on per-problem pass@1"
_CHUNK = 256  # resamples per vectorised block, to bound memory on large benchmarks


def natural_key(task_id: str) -> list[Any]:
    """Sort `HumanEval/9` before `HumanEval/10`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", task_id)]


def problem_values(bench: BenchmarkRun, metric: str) -> dict[str, float]:
    """task_id -> the per-problem value whose mean over problems is `metric` (empty when unavailable)."""
    if metric.startswith("pass@"):
        k = int(metric.removeprefix("pass@"))
        return {t: pass_at_k(n, c, k) for t, (n, c) in bench.per_problem.items() if n >= k}
    if metric in PER_SAMPLE_METRICS or metric.startswith("hack/"):
        out = {}
        for task_id, values in bench.per_sample(PER_SAMPLE_METRICS.get(metric, metric)).items():
            kept = [v for v in values if not math.isnan(v)]
            if kept:
                out[task_id] = float(np.mean(kept))
        return out
    return {}


def bootstrap_ci(values: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """95% percentile interval of mean(values) over problems resampled with replacement."""
    values = np.asarray(values, dtype=float)  # (P,)
    rng = np.random.default_rng(seed)
    means = []
    for start in range(0, n_boot, _CHUNK):
        idx = rng.integers(0, len(values), size=(min(_CHUNK, n_boot - start), len(values)))  # (B, P)
        means.append(values[idx].mean(axis=1))
    lo, hi = np.percentile(np.concatenate(means), [2.5, 97.5])
    return float(lo), float(hi)


def paired_bootstrap_ci(baseline: np.ndarray, candidate: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """95% percentile interval of mean(candidate - baseline) over problems resampled with replacement (pairs
    stay together: the bootstrap of the per-problem differences)."""
    return bootstrap_ci(np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float), n_boot, seed)


def paired_permutation_p(baseline: np.ndarray, candidate: np.ndarray, n_perm: int, seed: int) -> float:
    """Two-sided p-value of the sign-flip permutation test on paired differences."""
    diffs = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)  # (P,)
    observed = abs(diffs.mean())
    rng = np.random.default_rng(seed)
    at_least = 0
    for start in range(0, n_perm, _CHUNK):
        signs = rng.choice([-1.0, 1.0], size=(min(_CHUNK, n_perm - start), len(diffs)))  # (B, P)
        # a small tolerance so float noise in equal statistics counts as "as extreme"
        at_least += int((np.abs((signs * diffs).mean(axis=1)) >= observed - 1e-12).sum())
    return (1 + at_least) / (1 + n_perm)


def find_flips(baseline_pass1: dict[str, float], candidate_pass1: dict[str, float]) -> dict[str, list[str]]:
    """Problems solved (pass@1 >= 0.5) by one run only, over the problems both runs have."""
    common = baseline_pass1.keys() & candidate_pass1.keys()
    base = {t for t in common if baseline_pass1[t] >= SOLVED_AT}
    cand = {t for t in common if candidate_pass1[t] >= SOLVED_AT}
    return {"gained": sorted(cand - base, key=natural_key), "lost": sorted(base - cand, key=natural_key)}


@dataclass
class BenchmarkComparison:
    benchmark: str
    n_common: int
    only_baseline: list[str]
    only_candidate: list[str]
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    significance: dict[str, Any] = field(default_factory=dict)
    flips: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Comparison:
    baseline: str
    candidate: str
    benchmarks: dict[str, BenchmarkComparison]
    skipped_benchmarks: list[str]
    """Benchmarks that only one of the runs has."""

    def to_json(self) -> dict[str, Any]:
        """comparison.json, exactly the schema in ARCHITECTURE.md."""
        return {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "metrics": {name: b.metrics for name, b in self.benchmarks.items()},
            "significance": {name: b.significance for name, b in self.benchmarks.items()},
            "flips": {name: b.flips for name, b in self.benchmarks.items()},
        }


def _metric_names(base: BenchmarkRun, cand: BenchmarkRun, common: list[str]) -> list[str]:
    """pass@k for every k both metrics.json report (and every common problem has n >= k), then the rest."""
    ks = {1}
    for bench in (base, cand):
        ks |= {int(m.removeprefix("pass@")) for m in bench.metrics.get("metrics", {}) if re.fullmatch(r"pass@\d+", m)}
    min_n = min(min(base.per_problem[t][0], cand.per_problem[t][0]) for t in common)
    kinds = sorted({k for b in (base, cand) for k, events in b.metrics.get("containment", {}).items() if events})
    return [f"pass@{k}" for k in sorted(ks) if k <= min_n] + list(PER_SAMPLE_METRICS) + [f"hack/{k}" for k in kinds]


def compare_benchmark(base: BenchmarkRun, cand: BenchmarkRun, n_boot: int, seed: int) -> BenchmarkComparison:
    common = sorted(base.per_problem.keys() & cand.per_problem.keys(), key=natural_key)
    out = BenchmarkComparison(
        benchmark=base.benchmark,
        n_common=len(common),
        only_baseline=sorted(base.per_problem.keys() - cand.per_problem.keys(), key=natural_key),
        only_candidate=sorted(cand.per_problem.keys() - base.per_problem.keys(), key=natural_key),
    )
    if not common:
        return out
    for metric in _metric_names(base, cand, common):
        base_values, cand_values = problem_values(base, metric), problem_values(cand, metric)
        ids = [t for t in common if t in base_values and t in cand_values]
        if not ids:
            continue  # e.g. quality_score of a run folder without samples
        x = np.array([base_values[t] for t in ids])
        y = np.array([cand_values[t] for t in ids])
        lo, hi = paired_bootstrap_ci(x, y, n_boot, seed)
        out.metrics[metric] = {
            "baseline": float(x.mean()),
            "candidate": float(y.mean()),
            "delta": float(y.mean() - x.mean()),
            "ci95": [lo, hi],
        }
    base_pass1, cand_pass1 = problem_values(base, "pass@1"), problem_values(cand, "pass@1")
    x = np.array([base_pass1[t] for t in common])
    y = np.array([cand_pass1[t] for t in common])
    out.significance = {"test": SIGNIFICANCE_TEST, "p_value": paired_permutation_p(x, y, n_boot, seed)}
    out.flips = find_flips(base_pass1, cand_pass1)
    return out


def compare_runs(baseline: Run, candidate: Run, n_boot: int = 2000, seed: int = 0) -> Comparison:
    """Compare every benchmark both runs hold (the others are listed in `skipped_benchmarks`)."""
    names = [b for b in baseline.benchmarks if b in candidate.benchmarks]
    skipped = sorted(baseline.benchmarks.keys() ^ candidate.benchmarks.keys())
    benchmarks = {b: compare_benchmark(baseline.benchmarks[b], candidate.benchmarks[b], n_boot, seed) for b in names}
    return Comparison(baseline.name, candidate.name, benchmarks, skipped)
