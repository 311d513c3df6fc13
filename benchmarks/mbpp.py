"""MBPP (Austin et al. 2021, arXiv:2108.07732): crowd-sourced entry-level Python tasks with 3 asserts each.

Two variants: `full` (974 tasks, `mbpp/mbpp.jsonl`) and the hand-verified `sanitized` subset (427 tasks,
`mbpp/sanitized-mbpp.json`). Splits follow the paper's task-id ranges, which the hub's splits also use.
Online rows come from the hub's `google-research-datasets/mbpp` (configs `full` and `sanitized`); all of
its splits are merged and re-split by task id, so both sources split identically.
"""

from __future__ import annotations

import ast
import builtins
import warnings
from pathlib import Path
from typing import Any

from execrl.benchmarks.datafiles import DataError, data_file, read_json_array, read_jsonl
from execrl.benchmarks.problem import Problem, TestKind

HUB_ID = "google-research-datasets/mbpp"
VARIANT_FILES = {"full": "mbpp/mbpp.jsonl", "sanitized": "mbpp/sanitized-mbpp.json"}
# Inclusive task-id ranges (Austin et al. 2021, section 2.1; the hub's splits).
SPLITS: dict[str, tuple[int, int]] = {
    "prompt": (1, 10),
    "test": (11, 510),
    "validation": (511, 600),
    "train": (601, 974),
    "all": (1, 974),
}


def load_mbpp(
    split: str = "test",
    data_dir: str | Path | None = None,
    *,
    variant: str = "full",
    challenge_tests: bool = False,
    online: bool = False,
) -> list[Problem]:
    """The MBPP problems of one split, ordered by task id.

    `challenge_tests` appends the full variant's `challenge_test_list` to each problem's tests.
    """
    if split not in SPLITS:
        raise DataError(f"unknown MBPP split {split!r}; choose one of {', '.join(SPLITS)}")
    if variant not in VARIANT_FILES:
        raise DataError(f"unknown MBPP variant {variant!r}; choose one of {', '.join(VARIANT_FILES)}")
    rows = _rows(variant, data_dir, online)
    low, high = SPLITS[split]
    chosen = sorted((row for row in rows if low <= int(row["task_id"]) <= high), key=lambda row: int(row["task_id"]))
    return [mbpp_problem(row, challenge_tests=challenge_tests) for row in chosen]


def _rows(variant: str, data_dir: str | Path | None, online: bool) -> list[dict[str, Any]]:
    if data_dir is not None or not online:
        path = data_file(data_dir, VARIANT_FILES[variant])
        return read_jsonl(path) if variant == "full" else read_json_array(path)
    import datasets  # heavy; only the online path needs it

    splits = datasets.load_dataset(HUB_ID, variant)
    return [dict(row) for name in splits for row in splits[name]]


def mbpp_problem(row: dict[str, Any], *, challenge_tests: bool = False) -> Problem:
    """One hub-format row (either variant) as a Problem; the variant is told by its fields."""
    sanitized = "test_imports" in row
    code = _lf(row["code"])
    test_list = [_lf(test) for test in row["test_list"]]
    tests = test_list + ([_lf(test) for test in row.get("challenge_test_list") or []] if challenge_tests else [])
    setup = "\n".join(row["test_imports"]) if sanitized else _lf(row.get("test_setup_code") or "")
    return Problem(
        task_id=f"Mbpp/{int(row['task_id'])}",
        benchmark="mbpp",
        prompt=row["prompt"] if sanitized else row["text"],
        test_kind=TestKind.ASSERT,
        entry_point=entry_point_of(test_list[0], code),
        test_setup=setup,
        tests=tuple(tests),
        solutions=(code,),
        # The prompt shows only `test_list` (Austin et al.); challenge tests stay hidden.
        metadata={"variant": "sanitized" if sanitized else "full", "n_prompt_tests": len(test_list)},
    )


def entry_point_of(test: str, reference: str = "") -> str:
    """The function an MBPP assert calls.

    Of the names called in the assert, the first one the reference defines as a top-level function wins
    (task 601 also calls its `Pair` class; task 126 shadows the builtin `sum`), then the first
    non-builtin, then the first call at all.
    """
    calls = [node for node in ast.walk(ast.parse(test)) if isinstance(node, ast.Call)]
    called = [call.func.id for call in calls if isinstance(call.func, ast.Name)]
    if not called:
        raise DataError(f"cannot find the function called by the MBPP test {test!r}")
    try:
        with warnings.catch_warnings():  # some references hold invalid escapes like "\d"
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            defined = {node.name for node in ast.parse(reference).body if isinstance(node, ast.FunctionDef)}
    except SyntaxError:
        defined = set()
    for name in called:
        if name in defined:
            return name
    return next((name for name in called if not hasattr(builtins, name)), called[0])


def _lf(text: str) -> str:
    # The full file's code has CRLF line ends, and a few solutions end with a lone CR.
    return text.replace("\r\n", "\n").replace("\r", "\n")
