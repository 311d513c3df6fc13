"""Run folders: claim one for a config, resume it, refuse another run's folder unless --force; append JSONL.

Every stage that writes a folder (generate, evaluate, the trainers, PPO, the reports, the pipeline) claims it
with `claim`, and the rules are the same for all of them (ARCHITECTURE.md, "Records"; STYLE.md 7):

- a *stamp* (a JSON file, or one section of a shared config.json) records the config the folder was made for;
- a rerun whose config matches the stamp on the `identity` keys resumes: the caller does only what is missing;
- a stamp of another config, or outputs without any stamp, is refused with an error naming `--force`;
- `--force` deletes the outputs the stage owns (never anything else) and starts over.

Rows are appended to JSONL files one line per write and flushed, so a killed stage leaves at most one torn
last line: `repair_tail` cuts it off before appending again (the row is redone), and the one reader,
`execrl.benchmarks.datafiles.iter_jsonl`, skips it; a malformed line anywhere else is an error naming file
and line.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from execrl.benchmarks.datafiles import iter_jsonl, json_problem
from execrl.benchmarks.errors import UserError


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file; a missing file is {} and a broken one a UserError naming it."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:
        raise UserError(f"{path}: not valid JSON ({json_problem(e)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write `data` whole or not at all (a temporary file renamed over `path`)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def claim(
    out: Path,
    config: Mapping[str, Any],
    *,
    outputs: Sequence[str],
    force: bool,
    stamp: str = "config.json",
    section: str | None = None,
    identity: Sequence[str] | None = None,
    keep: Sequence[str] = (),
    any_content: bool = False,
    write: bool = True,
    hint: str = "pass --force to start over",
) -> bool:
    """Make `out` the folder of the run `config`; True when it already held that run (resume), False if fresh.

    `stamp` is the file that records the config (under `section` when several stages share the file: their
    sections are kept); `identity` are the keys that must match to resume (default: all); `keep` are keys
    whose recorded value survives a resume (a start date); `outputs` are the files and folders the stage
    owns, deleted by `force`; with `any_content` any entry of `out` (not only `outputs`) makes a folder
    without a stamp another run's. With `write=False` the caller writes the stamp itself when it is done
    (`finish`), so that an interrupted run never passes for a finished one. Raises UserError, ending in
    `hint`, for a folder of another run.
    """
    config = json.loads(json.dumps(config, default=str))  # as it reads back from the stamp (paths as strings)
    stamp_path = out / stamp
    shared = read_json(stamp_path)
    # Without a section the stamp is the file's top level, less the sections other stages keep in it.
    others = {k: v for k, v in shared.items() if isinstance(v, dict) and k not in config} if not section else {}
    previous = shared.get(section) if section else ({k: v for k, v in shared.items() if k not in others} or None)
    if force:
        for name in (*outputs, *([] if section else [stamp])):
            _remove(out / name)
        previous = None
    elif previous is not None:
        keys = identity if identity is not None else sorted(set(previous) | set(config))
        changed = [k for k in keys if previous.get(k) != config.get(k)]
        if changed:
            what = ", ".join(f"{k}: {previous.get(k)!r} -> {config.get(k)!r}" for k in changed[:6])
            raise UserError(f"{out} holds a run with other settings ({what}); {hint}")
    else:
        present = [p.name for p in sorted(out.iterdir())] if any_content and out.is_dir() else []
        present = present or [name for name in outputs if (out / name).exists()]
        if present:
            shown = ", ".join(present[:4]) + (", ..." if len(present) > 4 else "")
            raise UserError(f"{out} holds {shown} but no {stamp} of this command; {hint}")
    out.mkdir(parents=True, exist_ok=True)
    if write:
        record = {**config, **{k: previous[k] for k in keep if previous and k in previous}}
        if section:
            record = {**shared, section: record}
        else:  # sections other stages keep in the same file survive (generate and evaluate share config.json)
            record = {**others, **record}
        write_json(stamp_path, record)
    return previous is not None


def finish(out: Path, config: Mapping[str, Any], stamp: str = "train_config.json") -> None:
    """Record a finished run (with `claim(..., write=False)`): written last, so a killed run is never done."""
    write_json(out / stamp, config)


def repair_tail(path: Path) -> None:
    """Make an append-only JSONL file end at a complete line before appending to it.

    A last line without its newline is either whole (given the newline it lacks) or torn by a kill (cut off,
    with a note on stderr: the stage redoes that row).
    """
    if not path.exists():
        return
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if not size:
            return
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        start = data.rfind(b"\n") + 1
        try:
            whole = isinstance(json.loads(data[start:]), dict)
        except (ValueError, RecursionError):
            whole = False
        if whole:
            f.write(b"\n")
        else:
            lineno = data.count(b"\n") + 1
            print(f"{path}:{lineno}: dropping an unfinished last line (a killed run?); it is redone", file=sys.stderr)
            f.truncate(start)


def written_keys(path: Path) -> set[tuple[str, int]]:
    """(task_id, completion_id) of every row already in an append-only JSONL file, after `repair_tail`."""
    repair_tail(path)
    if not path.exists():
        return set()

    def check(row: dict[str, Any]) -> str | None:
        ok = isinstance(row.get("task_id"), str) and isinstance(row.get("completion_id"), int)
        return None if ok else "not a row of this stage (needs task_id and completion_id); fix it or pass --force"

    return {(row["task_id"], row["completion_id"]) for _, row in iter_jsonl(path, check)}
