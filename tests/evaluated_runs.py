"""Evaluated run folders written by hand (verdicts given, nothing executed) for the stages that read runs back."""

from __future__ import annotations

import json
from pathlib import Path


def write_humaneval_run(folder: Path, outcomes: dict[str, list[str]]) -> Path:
    """An evaluated run folder (execrl evaluate's layout) for HumanEval tasks: outcomes[task] is one verdict per
    sample; sample j of a task is a distinct body (the verdicts are given, not measured)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"evaluate": {"benchmark": "humaneval", "split": "test"}}))
    samples, results = [], []
    for task_id, verdicts in outcomes.items():
        for j, verdict in enumerate(verdicts):
            samples.append({"task_id": task_id, "completion_id": j, "completion": f"    return {j}  # {verdict}\n"})
            n_passed = 2 if verdict == "passed" else 1
            tests = [{"verdict": "passed"}] * n_passed + [{"verdict": verdict}] * (2 - n_passed)
            results.append({"task_id": task_id, "completion_id": j, "passed": verdict == "passed",
                            "verdict": verdict, "tests": tests, "error": ""})  # fmt: skip
    (folder / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    return folder
