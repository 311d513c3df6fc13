"""Loading a run folder (written by `execrl evaluate` or the pipeline) for reports.

Two layouts are read the same way:
- one benchmark: `RUN/{config.json, samples.jsonl, results.jsonl, metrics.json}` (samples.jsonl may
  instead be the file config.json's "evaluate" section names, as `execrl evaluate` records it);
- several: `RUN/<benchmark>/{...}` (the pipeline evaluates synth and humaneval), with an optional
  `RUN/config.json` shared by all of them.
A path to a bare `metrics.json` is also a run (one benchmark, no per-sample files), which is what
`execrl report check` needs in CI. Training curves come from `RUN/train/metrics.jsonl` when present.

Every problem a user can cause (missing file, bad JSON line) raises `RunError` naming the file and line.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from execrl.benchmarks import datafiles
from execrl.benchmarks.errors import UserError
from execrl.harness import runfolder
from execrl.harness.records import Verdict
from execrl.harness.scoring.quality import quality_many


class RunError(UserError):
    """Unusable input: the message names the file (and line) at fault."""


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file the run must have (`runfolder.read_json` names a broken one)."""
    if not path.is_file():
        raise RunError(f"{path}: no such file")
    return runfolder.read_json(path)


def printable(text: str) -> str:
    """`text` with lone surrogates written as escapes (`\\udcff`): a folder name that is not UTF-8 decodes
    to one, JSON can spell one, and neither UTF-8 files nor matplotlib's text rendering accept them."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def as_program(text: str) -> str:
    """A parseable program for quality figures: a human-eval style body (indented) goes under a `def`."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return "def completion():\n" + text if first[:1].isspace() else text


@dataclass
class BenchmarkRun:
    """One benchmark's evaluation inside a run folder."""

    benchmark: str
    folder: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    programs: dict[tuple[str, int], str] = field(default_factory=dict)
    """(task_id, completion_id) -> the sample's program text, from samples.jsonl."""
    prompts: dict[str, str] = field(default_factory=dict)
    """task_id -> the prompt a samples.jsonl line carried (human-eval style files often keep it)."""

    @cached_property
    def per_problem(self) -> dict[str, tuple[int, int]]:
        """task_id -> (n samples, c passed), from results.jsonl, else metrics.json's per_problem."""
        if self.results:
            n, c = Counter(), Counter()
            for row in self.results:
                n[row["task_id"]] += 1
                c[row["task_id"]] += bool(row.get("passed"))
            return {task_id: (n[task_id], c[task_id]) for task_id in n}
        return {task_id: (int(v["n"]), int(v["c"])) for task_id, v in self.metrics.get("per_problem", {}).items()}

    @cached_property
    def difficulty(self) -> dict[str, str]:
        return {
            task_id: printable(str(v["difficulty"]))
            for task_id, v in self.metrics.get("per_problem", {}).items()
            if v.get("difficulty") is not None
        }

    @cached_property
    def verdicts(self) -> dict[str, int]:
        if self.results:
            return dict(Counter(row.get("verdict", Verdict.SANDBOX_ERROR.value) for row in self.results))
        return dict(self.metrics.get("verdicts", {}))

    def per_sample(self, key: str) -> dict[str, list[float]]:
        """task_id -> one value per result row: `syntax_ok`, `chars`, `quality_score`, `hacked` (any containment
        event) or `hack/<kind>` (that kind); the last two are NaN (left out) for rows written before the field.

        quality_score is the row's own field when evaluate wrote one, else computed here from the sample.
        """
        if key == "quality_score" and self.results and "quality_score" not in self.results[0]:
            return self._computed_quality
        out: dict[str, list[float]] = defaultdict(list)
        for row in self.results:
            if key == "syntax_ok":
                value = float(row.get("verdict") != Verdict.SYNTAX_ERROR.value)
            elif key == "hacked" or key.startswith("hack/"):
                seen = row.get("containment")
                hit = bool(seen) if key == "hacked" else key.removeprefix("hack/") in (seen or {})
                value = math.nan if seen is None else float(hit)
            elif key == "chars":
                value = float(len(self.programs.get((row["task_id"], int(row.get("completion_id", 0))), "")))
            else:
                value = float(row.get(key, math.nan))
            out[row["task_id"]].append(value)
        return dict(out)

    @cached_property
    def _computed_quality(self) -> dict[str, list[float]]:
        keys = [(row["task_id"], int(row.get("completion_id", 0))) for row in self.results]
        if not all(key in self.programs for key in keys):
            return {}
        qualities = quality_many([as_program(self.programs[key]) for key in keys])
        scores = [q.score if q.computed else math.nan for q in qualities]  # not computed: left out, not a 0
        out: dict[str, list[float]] = defaultdict(list)
        for (task_id, _), value in zip(keys, scores, strict=True):
            out[task_id].append(value)
        return dict(out)


@dataclass
class Run:
    name: str
    folder: Path
    config: dict[str, Any]
    benchmarks: dict[str, BenchmarkRun]
    train_log: list[dict[str, Any]] = field(default_factory=list)

    def setting(self, *keys: str) -> Any:
        """The first of `keys` found in the run's config (or any benchmark's config), else None."""
        for config in [self.config, *(b.config for b in self.benchmarks.values())]:
            for key in keys:
                if config.get(key) is not None:
                    return config[key]
        return None

    @property
    def model(self) -> str:
        return printable(str(self.setting("model", "model_name", "checkpoint") or "?"))

    @property
    def date(self) -> str:
        """config.json's date/created/timestamp, else the folder's modification time (UTC)."""
        stamp = self.setting("date", "created", "created_at", "timestamp")
        if stamp is not None:
            return str(stamp)
        mtime = self.folder.stat().st_mtime
        return datetime.fromtimestamp(mtime, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _load_benchmark(folder: Path, shared_config: dict[str, Any]) -> BenchmarkRun:
    metrics = read_json(folder / "metrics.json")
    config = {**shared_config, **(read_json(folder / "config.json") if (folder / "config.json").exists() else {})}
    section = config.get("evaluate")
    if isinstance(section, dict):  # evaluate keeps its settings (limits, sandbox...) in a section of its own
        config = {**section, **config}
    benchmark = metrics.get("benchmark") or config.get("benchmark") or folder.name
    results = datafiles.read_jsonl(folder / "results.jsonl") if (folder / "results.jsonl").exists() else []
    for lineno, row in enumerate(results, 1):
        if "task_id" not in row:
            raise RunError(f"{folder / 'results.jsonl'}: row {lineno} has no task_id")
    programs: dict[tuple[str, int], str] = {}
    prompts: dict[str, str] = {}
    # evaluate records the samples file it read in config.json rather than copying it
    samples_file = folder / "samples.jsonl"
    recorded = config.get("samples") or config.get("evaluate", {}).get("samples")
    if not samples_file.exists() and recorded:
        samples_file = Path(recorded)
        # `execrl generate` wrote its settings (model, temperature, n) beside the samples it produced.
        generated = samples_file.parent / "config.json"
        if generated.is_file() and generated.resolve() != (folder / "config.json").resolve():
            config = {**read_json(generated), **config}
    if samples_file.is_file():
        seen: Counter[str] = Counter()
        for lineno, row in enumerate(datafiles.read_jsonl(samples_file), 1):
            if "task_id" not in row:
                raise RunError(f"{samples_file}: row {lineno} has no task_id")
            completion_id = int(row.get("completion_id", seen[row["task_id"]]))
            seen[row["task_id"]] += 1
            programs[(row["task_id"], completion_id)] = str(row.get("solution", row.get("completion", "")))
            if isinstance(row.get("prompt"), str):
                prompts.setdefault(row["task_id"], row["prompt"])
    return BenchmarkRun(printable(str(benchmark)), folder, config, metrics, results, programs, prompts)


def load_run(path: Path, name: str | None = None) -> Run:
    """A run from a run folder (either layout) or a bare metrics.json file."""
    path = Path(path)
    if path.is_file():
        bench = BenchmarkRun(benchmark="", folder=path.parent, config={}, metrics=read_json(path))
        bench.benchmark = printable(str(bench.metrics.get("benchmark") or path.parent.name))
        return Run(printable(name or path.parent.name), path.parent, {}, {bench.benchmark: bench})
    if not path.is_dir():
        raise RunError(f"{path}: no such run folder or metrics.json")
    config = read_json(path / "config.json") if (path / "config.json").exists() else {}
    if (path / "metrics.json").exists():
        benches = [_load_benchmark(path, {})]
    else:
        subfolders = sorted(p for p in path.iterdir() if (p / "metrics.json").is_file())
        if not subfolders:
            raise RunError(f"{path}: no metrics.json, neither here nor in a benchmark subfolder")
        benches = [_load_benchmark(p, config) for p in subfolders]
    train_file = path / "train" / "metrics.jsonl"
    train_log = datafiles.read_jsonl(train_file) if train_file.exists() else []
    return Run(printable(name or path.name), path, config, {b.benchmark: b for b in benches}, train_log)
