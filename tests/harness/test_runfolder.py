"""The run-folder rules every stage shares (claim, resume, refuse naming --force, --force) and the JSONL rule
(a torn last line is dropped and redone, a malformed line anywhere else names file and line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execrl.benchmarks.datafiles import read_jsonl
from execrl.benchmarks.errors import UserError
from execrl.harness import runfolder

CONFIG = {"model": "m", "n": 2}


def _claim(out: Path, config: dict, force: bool = False, **kw) -> bool:
    return runfolder.claim(out, config, outputs=("rows.jsonl",), force=force, **kw)


# setup -> what is in the folder before the claim; then the claim's config and force, and what must happen.
FOLDER_CASES = [
    ("empty", lambda out: None, CONFIG, False, "fresh"),  # nothing there: a new run
    ("same-config", lambda out: _claim(out, CONFIG), CONFIG, False, "resume"),  # a rerun resumes
    ("other-config", lambda out: _claim(out, CONFIG), {**CONFIG, "n": 3}, False, "n: 2 -> 3"),  # refused
    ("other-config-forced", lambda out: _claim(out, CONFIG), {**CONFIG, "n": 3}, True, "fresh"),  # --force
    ("outputs-without-stamp", lambda out: (out / "rows.jsonl").write_text("{}\n"), CONFIG, False, "no config.json"),
    ("outputs-without-stamp-forced", lambda out: (out / "rows.jsonl").write_text("{}\n"), CONFIG, True, "fresh"),
    ("stranger-files-kept", lambda out: (out / "notes.txt").write_text("mine"), CONFIG, False, "fresh"),
]


@pytest.mark.parametrize(("setup", "config", "force", "expect"), [c[1:] for c in FOLDER_CASES],
                         ids=[c[0] for c in FOLDER_CASES])  # fmt: skip
def test_folder_rules(tmp_path: Path, setup, config: dict, force: bool, expect: str) -> None:
    out = tmp_path / "run"
    out.mkdir()
    setup(out)
    if expect in ("fresh", "resume"):
        assert _claim(out, config, force) is (expect == "resume")
        assert json.loads((out / "config.json").read_text()) == config
        assert not force or not (out / "rows.jsonl").exists()  # --force deletes the stage's outputs
        assert not (out / "notes.txt").exists() or (out / "notes.txt").read_text() == "mine"  # never others'
    else:
        with pytest.raises(UserError, match="--force") as info:
            _claim(out, config, force)
        assert expect in str(info.value) and str(out) in str(info.value)


def test_identity_keys_decide_and_kept_keys_survive_a_resume(tmp_path: Path) -> None:
    first = {"model": "m", "workers": 1, "date": "d1"}
    runfolder.claim(tmp_path, first, outputs=(), force=False, identity=("model",), keep=("date",))
    again = {"model": "m", "workers": 8, "date": "d2"}  # workers may change between runs; the date stays
    assert runfolder.claim(tmp_path, again, outputs=(), force=False, identity=("model",), keep=("date",))
    assert json.loads((tmp_path / "config.json").read_text()) == {"model": "m", "workers": 8, "date": "d1"}


def test_a_section_of_a_shared_stamp_leaves_the_other_sections_alone(tmp_path: Path) -> None:
    runfolder.claim(tmp_path, {"model": "m"}, outputs=(), force=False)  # generate: the top level
    runfolder.claim(tmp_path, {"k": 1}, outputs=("results.jsonl",), force=False, section="evaluate")
    runfolder.claim(tmp_path, {"model": "m"}, outputs=(), force=False)  # generate resumes: evaluate's stays
    assert json.loads((tmp_path / "config.json").read_text()) == {"model": "m", "evaluate": {"k": 1}}
    runfolder.claim(tmp_path, {"k": 2}, outputs=(), force=True, section="evaluate")
    assert json.loads((tmp_path / "config.json").read_text()) == {"model": "m", "evaluate": {"k": 2}}


def test_a_stamp_written_at_the_end_marks_a_finished_run_only(tmp_path: Path) -> None:
    kw = dict(outputs=("log.jsonl",), stamp="done.json", any_content=True, write=False)
    assert runfolder.claim(tmp_path, CONFIG, force=False, **kw) is False
    (tmp_path / "log.jsonl").write_text("{}\n")  # killed before the end: no stamp, so not taken for finished
    with pytest.raises(UserError, match="--force"):
        runfolder.claim(tmp_path, CONFIG, force=False, **kw)
    runfolder.finish(tmp_path, CONFIG, "done.json")
    assert runfolder.claim(tmp_path, CONFIG, force=False, **kw) is True


ROW = b'{"task_id": "t/0", "completion_id": 0}\n'
# file content -> what the reader returns (rows kept) or the error it raises; one case per way a file breaks.
JSONL_CASES = [
    ("whole-file", ROW * 2, 2, None),  # nothing wrong
    ("torn-last-line", ROW + b'{"task_id": "t/0", "comp', 1, None),  # a kill mid-write: dropped
    ("last-line-without-newline", ROW + ROW[:-1], 2, None),  # whole, only its newline missing: kept
    ("malformed-middle-line", ROW + b"{oops\n" + ROW, None, ":2: not valid JSON"),  # names file and line
    ("malformed-last-line-with-newline", ROW + b"{oops\n", None, ":2: not valid JSON"),  # not torn: written so
    ("not-an-object", ROW + b"[1, 2]\n", None, ":2: expected a JSON object"),
    ("latin-1-middle-line", ROW + b'{"x": "\xe9"}\n' + ROW, None, ":2: not valid JSON (not UTF-8 at byte 7)"),
]


@pytest.mark.parametrize(("content", "rows", "error"), [c[1:] for c in JSONL_CASES], ids=[c[0] for c in JSONL_CASES])
def test_jsonl_reader_drops_a_torn_last_line_and_names_any_other_bad_line(
    tmp_path: Path, capsys, content: bytes, rows: int | None, error: str | None
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(content)
    if error is None:
        assert len(read_jsonl(path)) == rows
        torn = rows < content.count(b"{")
        assert ("dropping an unfinished last line" in capsys.readouterr().err) is torn
    else:
        with pytest.raises(UserError, match=f"{path}{error}".replace("(", r"\(").replace(")", r"\)")):
            read_jsonl(path)


@pytest.mark.parametrize(("content", "after"), [
    (ROW + b'{"task_id": "t/1", "compl', ROW),  # torn: cut off, the row is redone
    (ROW + ROW[:-1], ROW * 2),  # whole but unterminated: its newline is added, so appending stays valid
    (ROW, ROW),  # nothing to repair
], ids=["torn-tail-cut", "newline-added", "untouched"])  # fmt: skip
def test_repair_tail_leaves_a_file_that_ends_at_a_whole_line(tmp_path: Path, content: bytes, after: bytes) -> None:
    path = tmp_path / "results.jsonl"
    path.write_bytes(content)
    runfolder.repair_tail(path)
    assert path.read_bytes() == after
    assert runfolder.written_keys(path) == {("t/0", 0)}


def test_written_keys_refuse_a_row_of_another_stage_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_bytes(ROW + b'{"prompt": "x"}\n')
    with pytest.raises(UserError, match=rf"{path}:2: not a row of this stage.*--force"):
        runfolder.written_keys(path)
