"""`execrl report check`: the CI regression gate.

    execrl report check --baseline RUN|metrics.json --candidate RUN|metrics.json \\
        --metric pass@1 --max-drop 0.02 [--benchmark B] [--require-significance] [--format md]

Prints one verdict line to stdout (with --format md, a one-paragraph Markdown summary of every checked
benchmark, for posting to a pull request) and exits 1 when the candidate is worse than the baseline by more
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
from typing import Literal

import numpy as np
from execrl.harness.flags import parse
from execrl.reports.blocks import points
from execrl.reports.compare import LOWER_IS_BETTER, paired_permutation_p, problem_values
from execrl.reports.markdown import md_escape
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
    format: Literal["text", "md"] = "text"
    """text: one verdict line; md: a one-paragraph Markdown summary to post (a PR comment), every benchmark."""


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


def markdown_summary(outcomes: list[Outcome], cfg: CheckConfig) -> str:
    """One Markdown paragraph: the gate's verdict on the worst benchmark first, then every other benchmark.
    Benchmark names and paths come from run folders: escaped."""
    worst, *others = sorted(outcomes, key=lambda o: (not o.failed, -o.drop))

    def change(o: Outcome) -> str:
        delta = o.candidate - o.baseline
        scale = (points(delta) + " points") if cfg.metric.startswith("pass@") else f"{delta:+.3f}"
        return f"{md_escape(o.benchmark)} {o.baseline:.3f} → {o.candidate:.3f} ({scale})"

    tolerance = f"--max-drop {cfg.max_drop:.3f}"
    text = f"**execrl report check: {'FAIL' if worst.failed else 'OK'}.** {cfg.metric} on {change(worst)}"
    text += f", {'beyond' if worst.drop > cfg.max_drop else 'within'} {tolerance}"
    if worst.p_value is not None:
        significant = "significant" if worst.p_value < cfg.alpha else "not significant"
        text += f", {significant} (p = {worst.p_value:.4f}, alpha {cfg.alpha:g})"
    text += "."
    if others:
        failed = [o for o in others if o.failed]
        text += " Also checked: " + "; ".join(change(o) + (" FAIL" if o.failed else "") for o in others) + "."
        if failed:
            text += f" {len(failed) + worst.failed} benchmarks fail."
    text += f" Baseline {md_escape(str(cfg.baseline))}, candidate {md_escape(str(cfg.candidate))}."
    return text


def check_outcomes(cfg: CheckConfig) -> list[Outcome]:
    """One outcome per checked benchmark; raises RunError on unusable input."""
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
    return [check_benchmark(base.benchmarks[b], cand.benchmarks[b], cfg) for b in names]


def run_check(cfg: CheckConfig) -> tuple[int, str]:
    """(exit code, verdict line or Markdown paragraph, per --format); raises RunError on unusable input."""
    outcomes = check_outcomes(cfg)
    worst = max(outcomes, key=lambda o: (o.failed, o.drop))
    text = markdown_summary(outcomes, cfg) if cfg.format == "md" else verdict_line(worst, cfg)
    return int(worst.failed), text


def main(argv: list[str]) -> int:
    cfg = parse(CheckConfig, argv, description="Fail (exit 1) when a candidate run regresses on a metric.")
    if cfg.max_drop < 0 or not 0 < cfg.alpha < 1 or cfg.permutations < 1:
        raise RunError("--max-drop must be >= 0, --alpha in (0, 1), --permutations >= 1")
    code, line = run_check(cfg)
    print(line)
    return code
