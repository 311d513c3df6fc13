"""The server's one warm pool behind a bounded queue: `Dispatcher.submit(jobs)` returns a Future at once, or refuses.

Requests come from many HTTP handlers at once; a `SandboxPool` runs one stream of jobs at a time. So one thread
owns the pool and feeds it from a queue: while any job is waiting the stream goes on (so the pool never drains
between requests under load), and when the queue is empty the stream ends and the thread sleeps until the next
submit. Admission is decided before anything is queued, in O(1), so an overloaded server answers at once instead
of hanging (SandboxFusion's failure under RL load: verl#3478, SandboxFusion#67):

- `Overloaded` (HTTP 429) when the jobs waiting would pass `max_queue`;
- `Draining` (HTTP 503) once `close()` has begun: queued and running work still finishes, nothing new starts.

The pool itself bounds what runs at once (workers x depth), and turns a dead or hung worker into SANDBOX_ERROR,
so every accepted job gets a result: nothing is lost, and no future waits forever.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from execrl.harness.records import ExecResult, Verdict
from execrl.harness.sandbox.pool import Job, SandboxPool

RATE_WINDOW = 10.0
"""Seconds over which `executions_per_second` is measured."""
MAX_RETRY_AFTER = 5
"""The longest Retry-After a refusal suggests, seconds."""


class Overloaded(RuntimeError):
    """The queue is full: retry after `retry_after` seconds (HTTP 429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Draining(RuntimeError):
    """The server is shutting down: no new work (HTTP 503)."""


@dataclass
class _Request:
    future: Future
    results: list[ExecResult | None]
    left: int


@dataclass
class Stats:
    """What /metrics shows; updated under the dispatcher's lock."""

    queued: int = 0
    """Jobs accepted and waiting for the pool."""
    in_flight: int = 0
    """Jobs handed to the pool and not finished."""
    executions: int = 0
    verdicts: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    """Refused submissions by reason (overloaded, draining)."""
    finished_at: deque = field(default_factory=lambda: deque(maxlen=100_000))
    """Monotonic finish times of the latest executions (for the rate)."""

    def rate(self, now: float) -> float:
        while self.finished_at and self.finished_at[0] < now - RATE_WINDOW:
            self.finished_at.popleft()
        return len(self.finished_at) / RATE_WINDOW


class Dispatcher:
    """Runs submitted jobs on `pool` from one thread; at most `max_queue` jobs wait."""

    def __init__(self, pool: SandboxPool, max_queue: int) -> None:
        self.pool, self.max_queue = pool, max_queue
        self.stats = Stats()
        self._queue: deque[tuple[Job, _Request, int]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
        self._running: dict[tuple[int, int], tuple[Job, _Request, int]] = {}
        """Jobs handed to the pool, by (id(request), index): a pool fault must still answer them."""
        self._thread = threading.Thread(target=self._loop, name="execrl-serve-dispatch", daemon=True)
        self._thread.start()

    def submit(self, jobs: Sequence[Job]) -> Future:
        """A Future of the jobs' results in order; raises Overloaded or Draining without queueing anything."""
        future: Future = Future()
        if not jobs:
            future.set_result([])
            return future
        with self._lock:
            if self._closing:
                self.stats.rejected["draining"] += 1
                raise Draining("the server is shutting down")
            if self.stats.queued + len(jobs) > self.max_queue:
                self.stats.rejected["overloaded"] += 1
                raise Overloaded(
                    f"{self.stats.queued} programs are waiting (at most {self.max_queue}); retry later",
                    self._retry_after(len(jobs)),
                )
            request = _Request(future, [None] * len(jobs), len(jobs))
            self._queue.extend((job, request, i) for i, job in enumerate(jobs))
            self.stats.queued += len(jobs)
            self._wake.notify()
        return future

    def _retry_after(self, n: int) -> int:
        # The time the waiting work takes at the recent rate, in whole seconds (Retry-After's unit), 1 to
        # MAX_RETRY_AFTER: the rate is measured over a window that may hold idle time, so it can read low.
        rate = self.stats.rate(time.monotonic())
        return max(1, min(MAX_RETRY_AFTER, round((self.stats.queued + n) / rate))) if rate > 0 else 1

    def _stream(self) -> Iterator[Job]:
        """Jobs while any is waiting; ends when the queue is empty (the pool then finishes what it runs)."""
        while True:
            with self._lock:
                if not self._queue:
                    return
                job, request, i = self._queue.popleft()
                self.stats.queued -= 1
                self.stats.in_flight += 1
                self._running[(id(request), i)] = (job, request, i)
            yield Job((request, i), job.problem, job.program, job.limits)

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._wake.wait()
                if not self._queue and self._closing:
                    return
            try:
                for job, result in self.pool.run(self._stream()):
                    self._finish(job, result)
            except Exception as exc:  # noqa: BLE001 - a pool fault: fail what is waiting, loudly, never hang
                self._fail_all(exc)

    def _finish(self, job: Job, result: ExecResult) -> None:
        request, i = job.key
        with self._lock:
            if self._running.pop((id(request), i), None) is not None:
                self.stats.in_flight -= 1
            self.stats.executions += 1
            self.stats.verdicts[result.verdict.value] += 1
            self.stats.finished_at.append(time.monotonic())
        request.results[i] = result
        request.left -= 1
        if request.left == 0:
            request.future.set_result(request.results)

    def _fail_all(self, exc: Exception) -> None:
        error = ExecResult(Verdict.SANDBOX_ERROR, error=f"the sandbox pool failed: {type(exc).__name__}: {exc}")
        with self._lock:
            waiting = list(self._running.values()) + list(self._queue)
            self._queue = deque()
            self.stats.queued = 0
        for job, request, i in waiting:
            self._finish(Job((request, i), job.problem, job.program), error)

    def snapshot(self) -> dict[str, Any]:
        """The counters at one instant (for /metrics)."""
        with self._lock:
            stats = self.stats
            return {"queued": stats.queued, "in_flight": stats.in_flight, "rate": stats.rate(time.monotonic()),
                    "executions": stats.executions, "verdicts": Counter(stats.verdicts),
                    "rejected": Counter(stats.rejected)}  # fmt: skip

    def close(self, timeout: float | None = None) -> None:
        """Refuse new work, let queued and running jobs finish (up to `timeout` s), then close the pool."""
        with self._lock:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout)
        self.pool.close()
