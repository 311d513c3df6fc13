"""Pairs files, run folders and labelling databases for the labelling tests: outcomes are given, nothing runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execrl.reports.labelling.pairs import read_pairs_file
from execrl.reports.labelling.store import Store

PASSED = {"verdict": "passed", "tests": [{"verdict": "passed"}, {"verdict": "passed"}]}
FAILED = {"verdict": "failed", "tests": [{"verdict": "passed"}, {"verdict": "failed", "error": "assert f(2) == 3"}]}


def pair_row(i: int, a: str | None = None, b: str | None = None, **fields: object) -> dict:
    """Pair i: A returns the sum (passes), B a longer program that also passes, unless given."""
    return {
        "task_id": f"t/{i}",
        "prompt": f'def add{i}(x):\n    """Return x plus {i}."""\n',
        "a": a if a is not None else f"    return x + {i}\n",
        "b": b if b is not None else f"    y = x\n    y = y + {i}\n    return y\n",
        "result_a": PASSED,
        "result_b": PASSED if i % 2 else FAILED,
        **fields,
    }


def write_pairs(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture()
def pairs_file(tmp_path: Path) -> Path:
    return write_pairs(tmp_path / "pairs.jsonl", [pair_row(i) for i in range(5)])


@pytest.fixture()
def store(tmp_path: Path, pairs_file: Path) -> Store:
    s = Store(tmp_path / "labels.sqlite")
    s.add_pairs(read_pairs_file(pairs_file))
    return s
