"""A pool of long-lived sandbox workers that runs many programs in parallel, streaming.

Each worker is a process forked from the harness (so it starts warm), opens its backend once
(`prepare_worker` for the local backend) and then loops: receive a job, execute it, send the result.
Pool and workers trust each other and talk pickle over pipes; the candidate program never sees them.
Each Problem crosses to a worker once (both sides keep the same LRU of task ids), and at most
`depth` jobs per worker are in flight, so memory stays flat however many jobs stream through.
A worker that dies or hangs turns the job it was running into SANDBOX_ERROR and is restarted.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from execrl.benchmarks.errors import UserError
from execrl.benchmarks.problem import Problem
from execrl.harness.records import ExecResult, Limits, Verdict
from execrl.harness.sandbox.backends import BACKENDS, WORKER_BACKENDS, _deadline, open_backend

PROBLEM_CACHE = 256
"""Problems a worker keeps; APPS tests can be megabytes, so the cache is bounded."""
START_TIMEOUT = 120.0


class SandboxStartError(UserError, RuntimeError):
    """The pool's workers could not start (a backend missing, the kernel refusing): one line and exit 2."""


@dataclass(frozen=True)
class Job:
    key: Any
    problem: Problem
    program: str
    limits: Limits | None = None
    """Limits for this job only (e.g. a timeout calibrated on the problem's reference); None: the pool's."""


def _worker_main(
    conn: Connection, slot: int, limits: Limits, backend_name: str, hidden: tuple[str, ...], parent: int
) -> None:
    # A worker dies with its pool's process: a forked child holds both ends of its pipe, so it would never see EOF
    # after a SIGKILL of the pool (a Ray node's actor killed with its node left one running, found by the Ray tests).
    from execrl.harness.sandbox.kernel import PR_SET_PDEATHSIG, libc

    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the pool died before the signal was armed
        return
    try:
        backend = open_backend(backend_name, slot, limits, hidden)
    except BaseException as e:
        conn.send(("failed", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", backend.isolation))
    problems: OrderedDict[str, Problem] = OrderedDict()
    try:
        while (message := conn.recv()) is not None:
            seq, task_id, problem, program, limits = message
            if problem is not None:
                problems[task_id] = problem
                problems.move_to_end(task_id)
                if len(problems) > PROBLEM_CACHE:
                    problems.popitem(last=False)
            else:
                problems.move_to_end(task_id)
            try:
                result = backend.execute(problems[task_id], program, limits)
            except Exception as e:  # a harness fault, never the program's: its own verdict
                result = ExecResult(Verdict.SANDBOX_ERROR, error=f"{type(e).__name__}: {e}"[-2000:])
            conn.send((seq, result))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        backend.close()


@dataclass
class _Worker:
    slot: int
    process: Any
    conn: Connection
    cached: OrderedDict[str, Problem] = field(default_factory=OrderedDict)
    """The problems this worker holds, by task id (mirrors the worker's own cache)."""
    inflight: deque[tuple[int, Job | None]] = field(default_factory=deque)
    """(seq, job) in send order; the head is the one running. None marks a job of an abandoned run."""
    head_since: float = 0.0


class SandboxPool:
    """`workers` warm sandbox processes. Use as a context manager; `run` streams results in completion order."""

    def __init__(
        self,
        workers: int | None = None,
        limits: Limits = Limits(),
        backend: str = "local",
        depth: int = 2,
        hidden: Sequence[str | Path] = (),
    ) -> None:
        if backend == "ray":
            raise ValueError("the ray backend is a pool of its own: open it with open_pool('ray', ...)")
        if backend not in WORKER_BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.n_workers = max(1, workers or os.cpu_count() or 1)
        self.limits, self.backend, self.depth = limits, backend, depth
        self.hidden = tuple(str(Path(h).resolve()) for h in hidden)  # e.g. the data dir: tests must stay unreadable
        self._ctx = multiprocessing.get_context("fork")  # fork: workers inherit the imported harness
        self._seq = itertools.count()
        self._workers = [self._start(slot) for slot in range(self.n_workers)]
        reports = [self._await_ready(w) for w in self._workers]
        # A protection counts only if every worker has it.
        self.isolation: dict[str, bool] = {k: all(r.get(k, False) for r in reports) for r in reports for k in r}

    def _start(self, slot: int) -> _Worker:
        parent, child = self._ctx.Pipe()
        args = (child, slot, self.limits, self.backend, self.hidden, os.getpid())
        process = self._ctx.Process(target=_worker_main, args=args, daemon=True, name=f"execrl-sandbox-{slot}")
        process.start()
        child.close()
        return _Worker(slot, process, parent)

    def _await_ready(self, worker: _Worker) -> dict[str, bool]:
        if not worker.conn.poll(START_TIMEOUT):
            self.close()
            raise SandboxStartError(f"sandbox worker {worker.slot} did not start within {START_TIMEOUT:.0f}s")
        try:
            status, payload = worker.conn.recv()
        except EOFError:
            status, payload = "failed", f"exited with code {worker.process.exitcode}"
        if status != "ready":
            self.close()
            raise SandboxStartError(
                f"sandbox worker {worker.slot} ({self.backend} backend) failed to start: {payload}"
            )
        return payload

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for w in self._workers:
            try:
                w.conn.send(None)
            except OSError:
                pass
        for w in self._workers:
            w.process.join(timeout=5)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
        self._workers = []

    def _send(self, worker: _Worker, job: Job) -> None:
        # A cache hit needs an equal problem, not just the same id: two problems may share an id
        # (MBPP full vs sanitized through one pool). `==` is quick for the same object.
        task_id = job.problem.task_id
        cached = worker.cached.get(task_id)
        if cached is not None and (cached is job.problem or cached == job.problem):
            worker.cached.move_to_end(task_id)
            problem = None
        else:
            worker.cached[task_id] = job.problem
            worker.cached.move_to_end(task_id)
            if len(worker.cached) > PROBLEM_CACHE:
                worker.cached.popitem(last=False)
            problem = job.problem
        seq = next(self._seq)
        if not worker.inflight:
            worker.head_since = time.monotonic()
        worker.inflight.append((seq, job))
        worker.conn.send((seq, task_id, problem, job.program, job.limits))

    def _replace(self, worker: _Worker, reason: str, pending: deque[Job]) -> Iterator[tuple[Job, ExecResult]]:
        """Worker died or hung: fail the job it was running, requeue the rest, start a fresh worker."""
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
        reason = f"{reason} (exit code {worker.process.exitcode})"
        worker.conn.close()
        if worker.inflight:
            _, running = worker.inflight.popleft()
            if running is not None:
                yield running, ExecResult(Verdict.SANDBOX_ERROR, error=f"sandbox worker {worker.slot} {reason}")
            pending.extendleft(reversed([job for _, job in worker.inflight if job is not None]))
        fresh = self._start(worker.slot)
        self._workers[self._workers.index(worker)] = fresh  # before waiting: close() must reach it if it fails
        self._await_ready(fresh)

    def _hang_after(self, worker: _Worker) -> float:
        """Seconds the job running on `worker` may take before the worker counts as hung: from the job's own
        limits where it has them (a shorter deadline from the pool's would kill a job the executor still runs)."""
        job = worker.inflight[0][1] if worker.inflight else None
        return _deadline(job.limits if job is not None and job.limits is not None else self.limits)

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, ExecResult]]:
        """Stream (job, result) pairs in completion order; at most `depth` jobs per worker in flight."""
        source, pending = iter(jobs), deque[Job]()
        exhausted = False
        try:
            while True:
                # 1. keep every worker fed (requeued jobs first)
                for w in self._workers:
                    while len(w.inflight) < self.depth and (pending or not exhausted):
                        job = pending.popleft() if pending else next(source, None)
                        if job is None:
                            exhausted = True
                            break
                        try:
                            self._send(w, job)
                        except OSError:
                            # It died after its last answer (the pipe is gone before its sentinel is seen): the
                            # job never reached it, so it goes back to the front, and the worker is replaced now.
                            w.inflight.pop()
                            pending.appendleft(job)
                            yield from self._replace(w, "died while running this program", pending)
                            break
                busy = [w for w in self._workers if w.inflight]
                if exhausted and not pending and not any(job for w in busy for _, job in w.inflight):
                    return
                if not busy:
                    continue  # every worker was just replaced: feed the fresh ones
                # 2. wait for a result, a death, or the oldest running job to overstay
                first_due = min(w.head_since + self._hang_after(w) for w in busy)
                ready = set(
                    wait(
                        [w.conn for w in busy] + [w.process.sentinel for w in busy],
                        timeout=max(0.0, first_due - time.monotonic()),
                    )
                )
                for w in busy:
                    # 3. collect results, then handle a dead or hung worker
                    dead = None
                    try:
                        while w.conn.poll():
                            seq, result = w.conn.recv()
                            head_seq, job = w.inflight.popleft()
                            if head_seq != seq:
                                raise RuntimeError(f"sandbox worker {w.slot} answered job {seq}, expected {head_seq}")
                            w.head_since = time.monotonic()
                            if job is not None:
                                yield job, result
                    except (EOFError, OSError):
                        dead = "died while running this program"
                    if dead is None and w.process.sentinel in ready:
                        dead = "died while running this program"
                    if dead is None and w.inflight and time.monotonic() - w.head_since > self._hang_after(w):
                        dead = f"did not answer within {self._hang_after(w):.0f}s and was killed"
                    if dead is not None:
                        yield from self._replace(w, dead, pending)
        finally:
            # An abandoned run leaves results in the pipes; mark them so a later run discards them.
            for w in self._workers:
                w.inflight = deque((seq, None) for seq, _ in w.inflight)


def open_pool(
    backend: str = "local",
    workers: int | None = None,
    limits: Limits = Limits(),
    *,
    hidden: Sequence[str | Path] = (),
    ray_address: str | None = None,
    depth: int = 2,
) -> Any:
    """The pool for `--sandbox BACKEND`: a `SandboxPool` of local, subprocess or docker workers, or for `ray` a
    `ray_pool.RayPool` (warm local pools on the nodes of the cluster at `ray_address`). Both have `run`, `isolation`
    and `close` and are context managers, so callers (evaluate, the trainers, `execute_many`) need not know which.
    `ray_address` is ignored by the other backends."""
    if backend == "ray":
        from execrl.harness.sandbox.ray_pool import RayPool

        return RayPool(workers, limits, address=ray_address, depth=depth, hidden=hidden)
    return SandboxPool(workers, limits, backend=backend, depth=depth, hidden=hidden)


def execute_many(
    problems: Sequence[Problem],
    programs: Sequence[str],
    *,
    pool: Any = None,
    limits: Limits = Limits(),
    workers: int | None = None,
) -> list[ExecResult]:
    """Results in input order: the reward API. Uses `pool` if given (a `SandboxPool` or any pool `open_pool` returns;
    its limits apply), else a temporary local one."""
    if len(problems) != len(programs):
        raise ValueError(f"{len(problems)} problems but {len(programs)} programs")
    if pool is None:
        with SandboxPool(workers, limits) as own:
            return execute_many(problems, programs, pool=own)
    results: list[ExecResult | None] = [None] * len(programs)
    for job, result in pool.run(Job(i, p, s) for i, (p, s) in enumerate(zip(problems, programs, strict=True))):
        results[job.key] = result
    return results  # type: ignore[return-value]
