"""`execrl report check`: the CI regression gate.

    execrl report check --baseline RUN|metrics.json --candidate RUN|metrics.json \\
        --metric pass@1 --max-drop 0.02 [--benchmark B] [--require-significance]

Prints one verdict line to stdout and exits 1 when the candidate is worse than the baseline by more
than --max-drop on a checked benchmark (with --require-significance, only when that drop is also
significant), 0 otherwise, and 2 on unusable input (missing file, metric absent, no common benchmark).
"Worse" is a lower value, or a higher one for the metrics in `LOWER_IS_BETTER` (`--metric hack_attempt_rate`: a
candidate that tries to cheat the check more often, by more than --max-drop, fails). The values compared are
the ones metrics.json reports. Without --benchmark every benchmark both runs hold is checked, and the
line names the worst one. Significance is the paired sign-flip permutation test of `execrl.reports.compare`
on per-problem values of the metric over the common problems: pass@k needs per-problem counts
(results.jsonl, or metrics.json "per_problem"); other metrics need run folders with results.jsonl.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from execrl.harness.flags import parse
from execrl.reports.compare import LOWER_IS_BETTER, paired_permutation_p, problem_values
from execrl.reports.runs import BenchmarkRun, RunError, load_run


@dataclass
class CheckConfig:
    baseline: Path
    """Baseline run folder or its metrics.json."""
    candidate: Path
    """Candidate run folder or its metrics.json."""
    metric: str = "pass@1"
    """Metric to gate on, as named in metrics.json "metrics" (e.g. hack_attempt_rate, where an increase is the
    regression)."""
    max_drop: float = 0.02
    """Largest tolerated worsening, in the metric's units (absolute, not relative)."""
    benchmark: str | None = None
    """Check only this benchmark (default: every benchmark both runs hold)."""
    require_significance: bool = False
    """Fail only when the drop is also significant at --alpha (needs per-problem data)."""
    alpha: float = 0.05
    """Significance level for --require-significance."""
    permutations: int = 2000
    """Permutations of the significance test."""
    seed: int = 0
    """Seed of the permutation draws."""


@dataclass(frozen=True)
class Outcome:
    benchmark: str
    baseline: float
    candidate: float
    drop: float
    """How much worse the candidate is (negative: better)."""
    p_value: float | None
    failed: bool


def _value(bench: BenchmarkRun, metric: str, role: str) -> float:
    value = bench.metrics.get("metrics", {}).get(metric)
    if not isinstance(value, (int, float)):
        raise RunError(f"{role} {bench.folder}: metric {metric!r} absent for benchmark {bench.benchmark!r}")
    return float(value)


def _p_value(base: BenchmarkRun, cand: BenchmarkRun, metric: str, permutations: int, seed: int) -> float:
    base_values, cand_values = problem_values(base, metric), problem_values(cand, metric)
    common = sorted(base_values.keys() & cand_values.keys())
    if not common:
        raise RunError(
            f"--require-significance needs per-problem {metric} in both runs "
            f"(run folders with results.jsonl, or metrics.json per_problem for pass@k)"
        )
    x = np.array([base_values[t] for t in common])
    y = np.array([cand_values[t] for t in common])
    return paired_permutation_p(x, y, permutations, seed)


def check_benchmark(base: BenchmarkRun, cand: BenchmarkRun, cfg: CheckConfig) -> Outcome:
    x, y = _value(base, cfg.metric, "baseline"), _value(cand, cfg.metric, "candidate")
    drop = y - x if cfg.metric in LOWER_IS_BETTER else x - y
    p_value = _p_value(base, cand, cfg.metric, cfg.permutations, cfg.seed) if cfg.require_significance else None
    failed = drop > cfg.max_drop and (p_value is None or p_value < cfg.alpha)
    return Outcome(base.benchmark, x, y, drop, p_value, failed)


def verdict_line(outcome: Outcome, cfg: CheckConfig) -> str:
    change = f"dropped {outcome.drop:.3f}" if outcome.drop >= 0 else f"improved {-outcome.drop:.3f}"
    line = f"{cfg.metric} {change} ({outcome.baseline:.3f} -> {outcome.candidate:.3f})"
    if outcome.drop > cfg.max_drop:
        line += f" > max-drop {cfg.max_drop:.3f} on {outcome.benchmark}"
    else:
        line += f" <= max-drop {cfg.max_drop:.3f} on {outcome.benchmark}"
    if outcome.p_value is not None:
        significant = "significant" if outcome.p_value < cfg.alpha else "not significant"
        line += f", {significant} (p={outcome.p_value:.4f}, alpha {cfg.alpha})"
    return ("FAIL " if outcome.failed else "OK ") + line


def run_check(cfg: CheckConfig) -> tuple[int, str]:
    """(exit code, verdict line); raises RunError on unusable input."""
    base, cand = load_run(cfg.baseline), load_run(cfg.candidate)
    if cfg.benchmark is not None:
        for run, role in ((base, "baseline"), (cand, "candidate")):
            if cfg.benchmark not in run.benchmarks:
                raise RunError(
                    f"{role} {run.folder} has no benchmark {cfg.benchmark!r} (it has "
                    f"{', '.join(sorted(run.benchmarks))})"
                )
        names = [cfg.benchmark]
    else:
        names = sorted(base.benchmarks.keys() & cand.benchmarks.keys())
        if not names:
            raise RunError(
                f"benchmark mismatch: baseline has {', '.join(sorted(base.benchmarks))}, "
                f"candidate has {', '.join(sorted(cand.benchmarks))}"
            )
    outcomes = [check_benchmark(base.benchmarks[b], cand.benchmarks[b], cfg) for b in names]
    worst = max(outcomes, key=lambda o: (o.failed, o.drop))
    return int(worst.failed), verdict_line(worst, cfg)


def main(argv: list[str]) -> int:
    cfg = parse(CheckConfig, argv, description="Fail (exit 1) when a candidate run regresses on a metric.")
    if cfg.max_drop < 0 or not 0 < cfg.alpha < 1 or cfg.permutations < 1:
        raise RunError("--max-drop must be >= 0, --alpha in (0, 1), --permutations >= 1")
    code, line = run_check(cfg)
    print(line)
    return code
