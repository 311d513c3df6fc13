"""Reading samples files: both formats, completion ids, and one clear error per kind of bad line."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
from execrl.benchmarks.registry import normalize_task_id
from execrl.harness.samples import SampleError, SamplesReader, file_digest

TASKS = {"Mbpp/1", "Mbpp/2"}


def _reader(tmp_path: Path, content: bytes, skip_bad: bool = False) -> SamplesReader:
    path = tmp_path / "samples.jsonl"
    path.write_bytes(content)
    return SamplesReader(path, partial(normalize_task_id, "mbpp"), TASKS, skip_bad=skip_bad)


def _lines(*rows: object) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def test_both_formats_are_read_and_bare_ids_normalised(tmp_path: Path) -> None:
    reader = _reader(tmp_path, _lines({"task_id": 1, "completion": "a"}, {"task_id": "Mbpp/2", "solution": "b"}))
    assert [(s.task_id, s.completion_id, s.completion) for s in reader] == [("Mbpp/1", 0, "a"), ("Mbpp/2", 0, "b")]


def test_completion_ids_count_per_task_in_file_order_unless_given(tmp_path: Path) -> None:
    rows = [
        {"task_id": 1, "completion": "x"},
        {"task_id": 2, "completion": "y"},
        {"task_id": 1, "completion": "z"},
        {"task_id": 2, "completion": "w", "completion_id": 7},
    ]
    assert [s.key for s in _reader(tmp_path, _lines(*rows))] == [
        ("Mbpp/1", 0),
        ("Mbpp/2", 0),
        ("Mbpp/1", 1),
        ("Mbpp/2", 7),
    ]


BAD_LINES = [
    (b'{"task_id": 1, "completion": \n', "malformed JSON"),
    (b'{"completion": "x"}\n', "missing field 'task_id'"),
    (b'{"task_id": 1}\n', "missing string field 'completion'"),
    (b'{"task_id": 99, "completion": "x"}\n', "unknown task_id 99"),
    (b'{"task_id": "HumanEval/1", "completion": "x"}\n', "bad task_id 'HumanEval/1'"),
    (b'{"task_id": 1, "completion": "\xff\xfe"}\n', "not UTF-8"),
    (b"[1, 2]\n", "expected a JSON object"),
    (b'{"task_id": 1, "completion": "x", "completion_id": -1}\n', "completion_id must be a non-negative integer"),
    (b'{"task_id": 1, "completion": "x", "completion_id": 0}\n', "duplicate completion_id 0"),
    (
        b'{"task_id": ' + b"[" * 100_000 + b"]" * 100_000 + b', "completion": "x"}\n',
        "malformed JSON (nested too deeply)",
    ),
    (
        b'{"task_id": 1, "completion": "x", "completion_id": ' + b"9" * 5000 + b"}\n",
        "malformed JSON (an integer past Python's 4,300-digit conversion limit)",
    ),
]


@pytest.mark.parametrize(
    ("bad", "message"),
    BAD_LINES,
    ids=[
        "truncated JSON",
        "no task id",
        "no code field",
        "task id not in the benchmark",
        "another benchmark's id",
        "invalid UTF-8 bytes",
        "not an object",
        "negative completion id",
        "same key twice",
        "100,000 nested arrays (RecursionError in json)",
        "a 5,000-digit integer (past int's conversion limit)",
    ],
)
def test_a_bad_line_names_file_and_line_number(tmp_path: Path, bad: bytes, message: str) -> None:
    content = _lines({"task_id": 1, "completion": "ok"}) + b"\n" + bad
    with pytest.raises(SampleError) as info:
        list(_reader(tmp_path, content))
    assert f"samples.jsonl:3: {message}" in str(info.value)


def test_skip_bad_counts_bad_lines_and_keeps_the_good(tmp_path: Path) -> None:
    content = _lines({"task_id": 1, "completion": "a"}) + b"not json\n" + _lines({"task_id": 2, "completion": "b"})
    reader = _reader(tmp_path, content, skip_bad=True)
    assert [s.task_id for s in reader] == ["Mbpp/1", "Mbpp/2"]
    assert len(reader.skipped) == 1 and ":2: malformed JSON" in reader.skipped[0]


def test_file_digest_changes_with_content(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 3_000_000)
    (tmp_path / "b").write_bytes(b"x" * 2_999_999 + b"y")
    assert file_digest(tmp_path / "a") != file_digest(tmp_path / "b")


def test_a_megabyte_task_id_gives_a_message_of_bounded_length(tmp_path: Path) -> None:
    # skip_bad keeps every message: thousands of such lines must not keep their ids whole (nor print them)
    line = _lines({"task_id": "Mbpp/" + "9" * 1_000_000, "completion": "x"}, {"task_id": "x" * 1_000_000})
    reader = _reader(tmp_path, line * 3, skip_bad=True)
    assert list(reader) == []
    assert len(reader.skipped) == 6 and all(len(message) < 500 for message in reader.skipped)


@pytest.mark.parametrize(
    "completion",
    ["x = '\ud800'\n", "# \udfff\n", "\ud83d", "\x00\x01\x7f", "\udcff\udcfe"],
    ids=["lone high surrogate", "lone low surrogate", "half a pair at the end", "NUL and control bytes",
         "surrogateescape bytes"],
)  # fmt: skip
def test_text_json_can_carry_is_read_as_is_for_the_sandbox_to_judge(tmp_path: Path, completion: str) -> None:
    # JSON escapes can spell code points no UTF-8 file can hold; the sample keeps them (the sandbox calls it a
    # syntax error, quality scoring says `unencodable`), and nothing downstream may assume they encode.
    (sample,) = _reader(tmp_path, _lines({"task_id": 1, "completion": completion}))
    assert sample.completion == completion
