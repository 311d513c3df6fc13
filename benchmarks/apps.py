"""APPS (Hendrycks et al. 2021, arXiv:2105.09938): competitive-programming and interview problems.

Rows are in the hub's codeparrot/apps format: `solutions` and `input_output` are JSON strings.
Problems with `fn_name` are call-based (test kind CALL: `inputs` are argument lists and `outputs` the
expected values, kept as APPS stores them, often wrapped in a one-element list; the sandbox unwraps);
the rest read stdin and write stdout (STDIO). A row whose JSON fields do not parse is skipped with a
warning; a data file line that does not parse is an error.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from execrl.benchmarks.datafiles import DataError, chosen_difficulties, data_file, read_jsonl
from execrl.benchmarks.problem import Problem, TestKind

SPLITS = ("train", "test")
DIFFICULTIES = ("introductory", "interview", "competition")
# The hub dataset's data files; recent `datasets` no longer runs its loading script.
HUB_URL = "https://huggingface.co/datasets/codeparrot/apps/resolve/main/{split}.jsonl"


def load_apps(
    split: str = "test",
    data_dir: str | Path | None = None,
    *,
    difficulty: str | list[str] | None = None,
    online: bool = False,
) -> list[Problem]:
    """The APPS problems of one split, in file order, optionally only some difficulties."""
    if split not in SPLITS:
        raise DataError(f"unknown APPS split {split!r}; choose one of {', '.join(SPLITS)}")
    wanted = chosen_difficulties(difficulty, DIFFICULTIES, "APPS")
    if data_dir is not None or not online:
        rows = read_jsonl(data_file(data_dir, f"apps/{split}.jsonl"))
    else:
        import datasets  # heavy; only the online path needs it

        rows = list(datasets.load_dataset("json", data_files=HUB_URL.format(split=split), split="train"))
    problems = []
    for row in rows:
        if row.get("difficulty") not in wanted:
            continue
        problem = apps_problem(row)
        if problem is not None:
            problems.append(problem)
    return problems


def apps_problem(row: dict[str, Any]) -> Problem | None:
    """One hub-format row as a Problem, or None (with a warning) when its JSON fields are unusable."""
    task_id = f"APPS/{row['problem_id']}"
    try:
        io = json.loads(row["input_output"])
        solutions = json.loads(row["solutions"]) if row.get("solutions") else []
    except (json.JSONDecodeError, TypeError) as error:
        warnings.warn(f"{task_id}: skipped, its input_output/solutions is not valid JSON ({error})", stacklevel=2)
        return None
    if not isinstance(io, dict) or not isinstance(io.get("inputs"), list) or not isinstance(io.get("outputs"), list):
        warnings.warn(f"{task_id}: skipped, input_output has no inputs/outputs lists", stacklevel=2)
        return None
    if len(io["inputs"]) != len(io["outputs"]) or not io["inputs"]:
        warnings.warn(f"{task_id}: skipped, {len(io['inputs'])} inputs vs {len(io['outputs'])} outputs", stacklevel=2)
        return None
    fn_name = io.get("fn_name")
    if fn_name:
        kind, inputs, outputs = TestKind.CALL, io["inputs"], io["outputs"]
    else:
        kind, inputs, outputs = TestKind.STDIO, [_text(x) for x in io["inputs"]], [_text(x) for x in io["outputs"]]
    return Problem(
        task_id=task_id,
        benchmark="apps",
        prompt=row["question"],
        test_kind=kind,
        entry_point=fn_name or None,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        fn_name=fn_name or None,
        starter_code=row.get("starter_code") or "",
        solutions=tuple(solutions),
        difficulty=row.get("difficulty"),
        metadata={"url": row.get("url", "")},
    )


def _text(value: Any) -> str:
    # A few APPS stdin problems store a test as a list of lines rather than one string.
    return "\n".join(map(str, value)) if isinstance(value, list) else str(value)
