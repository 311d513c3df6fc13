"""The per-problem drill-down of a comparison: for every flip (and, on demand, other problems), the problem
statement and what each run did — a passing and a failing sample where it has both, their verdicts, per-test
outcomes and error text.

Problem statements come from the benchmark's own loader (HumanEval and synth need nothing; MBPP and APPS
need the data folder the caller passes), else from a `prompt` field of the samples file; a problem whose
statement cannot be found says so instead of failing the report.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from execrl.benchmarks.errors import UserError
from execrl.reports.blocks import Attempt, Drilldown, ProblemView, RunSide
from execrl.reports.compare import Comparison, natural_key
from execrl.reports.html import HIGHLIGHT_LIMIT
from execrl.reports.runs import BenchmarkRun, Run, printable

SHOWN_PER_RUN = 2
"""Samples shown per run and problem: its first passing and its first failing one (or its first two)."""
OTHER_PROBLEMS = 500
"""Problems that did not flip, per benchmark, embedded for on-demand viewing (every flip always is)."""
_FLIP_ORDER = {"lost": 0, "gained": 1, "": 2}
ERROR_LIMIT = 4000
"""Characters of error text shown per sample or test (evaluate already truncates; this bounds the page)."""


def problem_statements(bench: BenchmarkRun, data_dir: Path | None) -> dict[str, str]:
    """task_id -> problem statement (the prompt): the benchmark's loader, then the samples' own prompts."""
    from execrl.benchmarks.registry import load_problems

    statements = dict(bench.prompts)
    config = bench.config
    try:
        problems = load_problems(
            bench.benchmark,
            bench.metrics.get("split") or config.get("split"),
            config.get("data_dir") or data_dir,
            variant=config.get("variant"),
            difficulty=config.get("difficulty"),
        )
    except (UserError, OSError, ValueError):  # unknown benchmark, data folder absent here: no statements
        return statements
    return {**statements, **{p.task_id: p.prompt for p in problems}}


def _text(value: Any, limit: int = ERROR_LIMIT) -> str:
    text = printable(str(value or ""))
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit} more characters)"


def _attempt(row: dict[str, Any], bench: BenchmarkRun) -> Attempt:
    completion_id = int(row.get("completion_id", 0))
    program = bench.programs.get((row["task_id"], completion_id))
    program = "# (program not in the samples file)\n" if program is None else printable(program)
    tests = row.get("tests") if isinstance(row.get("tests"), list) else []
    return Attempt(
        completion_id=completion_id,
        verdict=printable(str(row.get("verdict", "sandbox_error"))),
        program=program[:HIGHLIGHT_LIMIT],
        error=_text(row.get("error")),
        tests=[
            (printable(str(t.get("verdict", "?"))), _text(t.get("error"))) if isinstance(t, dict) else ("?", "")
            for t in tests
        ],
        truncated=max(0, len(program) - HIGHLIGHT_LIMIT),
    )


def pick_samples(rows: list[dict[str, Any]], k: int = SHOWN_PER_RUN) -> list[dict[str, Any]]:
    """The first passing and the first failing sample (in completion order), topped up with the next ones."""
    rows = sorted(rows, key=lambda r: int(r.get("completion_id", 0)))
    first_pass = next((r for r in rows if r.get("passed")), None)
    first_fail = next((r for r in rows if not r.get("passed")), None)
    picked = [r for r in (first_pass, first_fail) if r is not None][:k]
    picked += [r for r in rows if all(r is not p for p in picked)][: k - len(picked)]
    return sorted(picked, key=lambda r: int(r.get("completion_id", 0)))


def _side(run: str, rows: list[dict[str, Any]], bench: BenchmarkRun) -> RunSide:
    return RunSide(
        run=run,
        n=len(rows),
        passed=sum(bool(r.get("passed")) for r in rows),
        attempts=[_attempt(r, bench) for r in pick_samples(rows)],
        verdicts=sorted({printable(str(r.get("verdict", "sandbox_error"))) for r in rows}),
    )


def _by_task(bench: BenchmarkRun) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in bench.results:
        out[row["task_id"]].append(row)
    return out


def build_drilldown(comparison: Comparison, runs: tuple[Run, Run], data_dir: Path | None = None) -> Drilldown:
    problems, notes = [], []
    for name, compared in comparison.benchmarks.items():
        base, cand = (run.benchmarks[name] for run in runs)
        if not (base.results and cand.results):
            notes.append(f"{name}: no per-sample results in both runs (results.jsonl), no drill-down.")
            continue
        flip_of = {t: kind for kind in ("lost", "gained") for t in compared.flips.get(kind, [])}
        base_rows, cand_rows = _by_task(base), _by_task(cand)
        common = sorted(base_rows.keys() & cand_rows.keys(), key=natural_key)
        others = [t for t in common if t not in flip_of]
        shown = [t for t in common if t in flip_of] + others[:OTHER_PROBLEMS]
        if len(others) > OTHER_PROBLEMS:
            notes.append(f"{name}: {len(others) - OTHER_PROBLEMS} problems without a flip are not embedded.")
        statements = problem_statements(cand, data_dir) or problem_statements(base, data_dir)
        difficulty = {**base.difficulty, **cand.difficulty}
        # losses first (what a reviewer of a regression looks for), then gains, then the rest
        for task_id in sorted(shown, key=lambda t: (_FLIP_ORDER[flip_of.get(t, "")], natural_key(t))):
            problems.append(
                ProblemView(
                    benchmark=name,
                    task_id=printable(task_id),
                    difficulty=difficulty.get(task_id, ""),
                    flip=flip_of.get(task_id, ""),
                    statement=printable(statements[task_id]) if task_id in statements else None,
                    sides=(
                        _side(runs[0].name, base_rows[task_id], base),
                        _side(runs[1].name, cand_rows[task_id], cand),
                    ),
                )
            )
    n_flips = sum(bool(p.flip) for p in problems)
    notes.insert(
        0,
        f"{n_flips} flips (problems solved by one run only). report.html holds each one's programs, tests and "
        f"errors (up to {SHOWN_PER_RUN} samples per run: its first passing and first failing one), and every other "
        "problem on demand ('all problems').",
    )
    return Drilldown(problems, notes)
