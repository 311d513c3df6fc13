"""Constructed run folders for report tests: outcomes are given, nothing is executed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from execrl.harness.scoring.passk import pass_at_k

GOOD_PROGRAM = '"""Adds."""\n\n\ndef add(a, b):\n    """Return a + b."""\n    return a + b\n'
BAD_PROGRAM = "import os,sys\ndef add(a,b):\n  if a: \n    return a+b\n  else:\n    return b+a\n"


def write_run(
    folder: Path,
    outcomes: dict[str, list[bool]],
    benchmark: str = "synth",
    config: dict | None = None,
    difficulty: dict[str, str] | None = None,
    fail_verdict: str = "failed",
    program: str = GOOD_PROGRAM,
    hacks: dict[str, list[dict[str, int]]] | None = None,
) -> Path:
    """A run folder in the one-benchmark layout whose task t has samples passing as in outcomes[t]; with `hacks`,
    sample i of task t recorded the containment events hacks[t][i] (and metrics.json their summary)."""
    folder.mkdir(parents=True, exist_ok=True)
    difficulty = difficulty or {}
    (folder / "config.json").write_text(
        json.dumps({"benchmark": benchmark, "split": "test", "model": "tiny", **(config or {})})
    )
    samples, results = [], []
    for task_id, passes in outcomes.items():
        for i, passed in enumerate(passes):
            samples.append({"task_id": task_id, "completion_id": i, "completion": program})
            verdict = "passed" if passed else fail_verdict
            results.append(
                {
                    "task_id": task_id,
                    "completion_id": i,
                    "passed": passed,
                    "verdict": verdict,
                    "n_tests": 1,
                    "n_passed": int(passed),
                    "tests": [],
                    "error": "",
                    "duration": 0.01,
                    **({"containment": hacks[task_id][i]} if hacks is not None else {}),
                }
            )
    (folder / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    n_min = min(len(p) for p in outcomes.values())
    ks = [k for k in (1, 2, 5, 10) if k <= n_min]

    def pass_metrics(tasks: list[str]) -> dict[str, float]:
        return {
            f"pass@{k}": float(np.mean([pass_at_k(len(outcomes[t]), sum(outcomes[t]), k) for t in tasks])) for k in ks
        }

    levels = sorted(set(difficulty.values()))
    metrics = {
        "benchmark": benchmark,
        "split": "test",
        "n_problems": len(outcomes),
        "n_samples": len(results),
        "metrics": {
            **pass_metrics(list(outcomes)),
            "syntax_rate": float(np.mean([r["verdict"] != "syntax_error" for r in results])),
        },
        "verdicts": dict(Counter(r["verdict"] for r in results)),
        "by_difficulty": {
            d: {
                "n_problems": sum(v == d for v in difficulty.values()),
                "metrics": pass_metrics([t for t in outcomes if difficulty.get(t) == d]),
            }
            for d in levels
        },
        "per_problem": {t: {"n": len(p), "c": sum(p), "difficulty": difficulty.get(t)} for t, p in outcomes.items()},
    }
    if hacks is not None:
        metrics["metrics"]["hack_attempt_rate"] = float(np.mean([bool(r["containment"]) for r in results]))
        metrics["containment"] = dict(sum((Counter(r["containment"]) for r in results), Counter()))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


@pytest.fixture
def make_run(tmp_path: Path):
    """make_run(name, outcomes, **kw) -> a run folder under tmp_path."""

    def make(name: str, outcomes: dict[str, list[bool]], **kwargs) -> Path:
        return write_run(tmp_path / name, outcomes, **kwargs)

    return make
