"""LiveCodeBench code generation (Jain et al. 2024, arXiv:2403.07974): LeetCode, AtCoder and Codeforces problems,
collected as their contests are held, so a model can be scored on problems published after its training cut-off.

Rows are `livecodebench/code_generation_lite`'s: `question_id`, `question_title`, `question_content`, `platform`,
`contest_id`, `contest_date` (ISO), `starter_code`, `difficulty` (easy/medium/hard), `public_test_cases` (JSON),
`private_test_cases` (JSON, or packed: `packed_tests`), `metadata` (JSON; `func_name` for functional problems).
Tests are `stdin` (STDIO) or `functional`: LeetCode's `class Solution` method `func_name`, each input line one
JSON argument and the output one JSON value (CALL). Public and private tests are judged together, as
LiveCodeBench does; `metadata["n_public"]` says how many come first.

Release versions (`--release`; default: the latest a data dir holds, online `release_latest`) are the hub's
files, each adding the problems of a period to the previous ones: release_v1 `test.jsonl` (May 2023 - Mar
2024), v2 adds `test2.jsonl` (to May 2024), v3 `test3.jsonl` (to Jul 2024), v4 `test4.jsonl` (to Sep 2024),
v5 `test5.jsonl` (to Jan 2025), v6 `test6.jsonl` (to Apr 2025); release_latest is v6. `--since` / `--until`
(YYYY-MM-DD, inclusive) keep the problems whose contest date falls in the window. A data dir holds the same
files under `livecodebench/`.

Limits follow LiveCodeBench's runner: 6 s per test, and (6 + 1) x tests + 5 s for a whole program.
"""

from __future__ import annotations

import json
import warnings
from datetime import date, datetime
from pathlib import Path
from typing import Any

from execrl.benchmarks.datafiles import DataError, chosen_difficulties, data_file, read_jsonl
from execrl.benchmarks.packed_tests import PackedTestsError, unpack_tests
from execrl.benchmarks.problem import Problem, TestKind

SPLITS = ("test",)
DIFFICULTIES = ("easy", "medium", "hard")
_FILES = ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl")
RELEASES: dict[str, tuple[str, ...]] = {f"release_v{n}": _FILES[:n] for n in range(1, len(_FILES) + 1)}
RELEASES["release_latest"] = _FILES
DEFAULT_RELEASE = "release_latest"
HUB_URL = "https://huggingface.co/datasets/livecodebench/code_generation_lite/resolve/main/{name}"
TEST_TIMEOUT = 6.0
"""LiveCodeBench's `--timeout` default, seconds per test."""


def load_livecodebench(
    split: str = "test",
    data_dir: str | Path | None = None,
    *,
    release: str | None = None,
    since: str | None = None,
    until: str | None = None,
    difficulty: str | list[str] | None = None,
    online: bool = False,
) -> list[Problem]:
    """The problems of one release, in file order, within the date window and difficulties asked for."""
    if split not in SPLITS:
        raise DataError(f"unknown livecodebench split {split!r}; it has only 'test'")
    if release is not None and release not in RELEASES:
        raise DataError(f"unknown livecodebench release {release!r}; choose one of {', '.join(RELEASES)}")
    first, last = _day(since, "--since"), _day(until, "--until")
    if first and last and first > last:
        raise DataError(f"--since {since} is after --until {until}")
    wanted = chosen_difficulties(difficulty, DIFFICULTIES, "livecodebench")
    rows = _rows(release, data_dir, online)
    problems = []
    for row in rows:
        problem = livecodebench_problem(row)
        if problem is None or problem.difficulty not in wanted:
            continue
        day = date.fromisoformat(problem.metadata["contest_date"][:10])
        if (first is None or first <= day) and (last is None or day <= last):
            problems.append(problem)
    return problems


def _rows(release: str | None, data_dir: str | Path | None, online: bool) -> list[dict[str, Any]]:
    """The rows of `release`'s files; with no release named, a data dir serves the latest release it holds
    (test.jsonl, test2.jsonl, ... up to the first one missing) and the hub `release_latest`."""
    if data_dir is not None or not online:
        folder = Path(data_dir) / "livecodebench" if data_dir is not None else None
        if folder is None or not (folder / _FILES[0]).is_file():
            raise DataError(
                f"no livecodebench data: put the hub's {', '.join(_FILES)} (code_generation_lite) in "
                "DATA_DIR/livecodebench/ (--data-dir or EXECRL_DATA_DIR), or pass --online"
            )
        if release is None:
            present = [name for name in _FILES if (folder / name).is_file()]
            files = _FILES[: next((i for i, name in enumerate(_FILES) if name not in present), len(_FILES))]
        else:
            files = RELEASES[release]
        return [row for name in files for row in read_jsonl(data_file(data_dir, f"livecodebench/{name}"))]
    import datasets  # heavy; only the online path needs it

    urls = [HUB_URL.format(name=name) for name in RELEASES[release or DEFAULT_RELEASE]]
    return [dict(row) for row in datasets.load_dataset("json", data_files=urls, split="train")]


def _day(text: str | None, flag: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DataError(f"{flag} must be a date YYYY-MM-DD, got {text!r}") from None


def livecodebench_problem(row: dict[str, Any]) -> Problem | None:
    """One row as a Problem, or None (with a warning naming the reason) when a field is unusable."""
    name = str(row.get("question_id", "?"))[:80]
    try:
        return _problem(row)
    except (PackedTestsError, KeyError, TypeError, ValueError, RecursionError) as error:
        warnings.warn(f"livecodebench {name}: skipped, {type(error).__name__}: {str(error)[:200]}", stacklevel=2)
        return None


def _problem(row: dict[str, Any]) -> Problem:
    question_id = _string(row, "question_id")
    public = _tests(json.loads(_string(row, "public_test_cases")), "public_test_cases")
    private = _tests(unpack_tests(row["private_test_cases"]), "private_test_cases")
    tests = public + private
    if not tests:
        raise ValueError("no tests")
    kinds = {t["testtype"] for t in tests}
    if len(kinds) != 1:
        raise ValueError(f"tests of several types {sorted(kinds)}")
    metadata = json.loads(row.get("metadata") or "{}")
    if not isinstance(metadata, dict):
        raise TypeError("metadata is not a JSON object")
    contest_date = datetime.fromisoformat(_string(row, "contest_date")).isoformat()
    difficulty = _string(row, "difficulty")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty {difficulty!r} is not easy, medium or hard")
    if kinds == {"functional"}:
        fn_name = metadata.get("func_name")
        if not isinstance(fn_name, str) or not fn_name.isidentifier():
            raise ValueError(f"a functional problem needs metadata.func_name, got {fn_name!r}")
        inputs = tuple([json.loads(line) for line in t["input"].split("\n")] for t in tests)
        outputs = tuple(json.loads(t["output"]) for t in tests)
        kind = TestKind.CALL
    else:
        fn_name, kind = None, TestKind.STDIO
        inputs, outputs = tuple(t["input"] for t in tests), tuple(t["output"] for t in tests)
    return Problem(
        task_id=f"LCB/{question_id}",
        benchmark="livecodebench",
        prompt=_string(row, "question_content"),
        test_kind=kind,
        entry_point=fn_name,
        inputs=inputs,
        outputs=outputs,
        fn_name=fn_name,
        starter_code=str(row.get("starter_code") or ""),
        difficulty=difficulty,
        metadata={
            "platform": str(row.get("platform", "")),
            "contest_id": str(row.get("contest_id", "")),
            "contest_date": contest_date,
            "question_title": str(row.get("question_title", "")),
            "n_public": len(public),
            "timeout": TEST_TIMEOUT,
            "program_timeout": (TEST_TIMEOUT + 1) * len(tests) + 5,
        },
    )


def _string(row: dict[str, Any], key: str) -> str:
    value = row[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} is a {type(value).__name__}, not a string")
    return value


def _tests(value: Any, field: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise TypeError(f"{field} is not a list of tests")
    for test in value:
        if not isinstance(test, dict) or not all(isinstance(test.get(k), str) for k in ("input", "output")):
            raise TypeError(f"{field}: a test without string input and output")
        if test.get("testtype") not in ("stdin", "functional"):
            raise ValueError(f"{field}: test type {test.get('testtype')!r} is not stdin or functional")
    return value
