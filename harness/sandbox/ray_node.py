"""The Ray actor that owns one node's share of a Ray sandbox: a warm local `SandboxPool` on the node it is pinned to.

The driver (`ray_pool.RayPool`) sends batches of programs; the actor queues them into one stream that a feeder
thread runs through its pool, so the node's workers stay busy across batches, and answers each batch when all
of its programs are judged. Isolation is the node's own (its kernel, its root), so the actor reports its pool's
protections with the node's id and host name (`info`), and the driver shows every node's.

Problems arrive as object references (put once by the driver) and are kept here in a bounded LRU, as the local
pool's workers keep theirs. Imported on the cluster's nodes, so execrl must be installed there (the same version
as the driver's: the actor class is sent by reference, not by value).
"""

from __future__ import annotations

import os
import queue
import socket
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from execrl.benchmarks.problem import Problem
from execrl.harness.records import ExecResult, Limits
from execrl.harness.sandbox.pool import PROBLEM_CACHE, Job, SandboxPool

Entry = tuple[int, Any, str, "Limits | None"]
"""One program of a batch: (sequence number, the problem's object reference, program, its own limits or None)."""


class NodeSandbox:
    """One warm pool on this node (wrapped by `ray.remote` in `ray_pool`; threaded, so batches overlap)."""

    def __init__(self, workers: int, limits: Limits, backend: str, hidden: Sequence[str], depth: int) -> None:
        self.pool = SandboxPool(workers, limits, backend=backend, depth=depth, hidden=hidden)
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._done: dict[int, ExecResult] = {}
        self._failed: str | None = None
        self._answered = threading.Condition()
        self._problems: OrderedDict[Any, Problem] = OrderedDict()
        self._problems_lock = threading.Lock()
        self._feeder = threading.Thread(target=self._feed, name="execrl-ray-feeder", daemon=True)
        self._feeder.start()

    def info(self) -> dict[str, Any]:
        import ray

        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "workers": self.pool.n_workers,
            "isolation": dict(self.pool.isolation),
        }

    def run(self, batch: list[Entry]) -> list[tuple[int, ExecResult]]:
        """Judge every program of `batch`; returns (sequence number, result) for each, once all are in."""
        problems = self._resolve([ref for _, ref, _, _ in batch])
        seqs = [seq for seq, _, _, _ in batch]
        for (seq, _, program, limits), problem in zip(batch, problems, strict=True):
            self._jobs.put(Job(seq, problem, program, limits))
        with self._answered:
            self._answered.wait_for(lambda: self._failed is not None or all(s in self._done for s in seqs))
            if self._failed is not None:
                raise RuntimeError(f"the sandbox pool on {socket.gethostname()} failed: {self._failed}")
            return [(s, self._done.pop(s)) for s in seqs]

    def close(self) -> None:
        self._jobs.put(None)
        self._feeder.join(timeout=60)
        self.pool.close()

    def _resolve(self, refs: list[Any]) -> list[Problem]:
        import ray

        with self._problems_lock:
            missing = list(dict.fromkeys(r for r in refs if r not in self._problems))
            for ref, problem in zip(missing, ray.get(missing) if missing else [], strict=True):
                self._problems[ref] = problem
            for ref in refs:
                self._problems.move_to_end(ref)
            found = [self._problems[r] for r in refs]
            while len(self._problems) > PROBLEM_CACHE:
                self._problems.popitem(last=False)
            return found

    def _feed(self) -> None:
        """Run queued jobs through the pool, one `pool.run` per stretch of work (it ends when the queue is empty)."""
        try:
            while (first := self._jobs.get()) is not None:
                for job, result in self.pool.run(self._drain(first)):
                    with self._answered:
                        self._done[job.key] = result
                        self._answered.notify_all()
        except BaseException as e:  # the pool broke (a worker that cannot restart): every waiting batch is told
            with self._answered:
                self._failed = f"{type(e).__name__}: {e}"
                self._answered.notify_all()

    def _drain(self, first: Job) -> Iterator[Job]:
        yield first
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is None:
                self._jobs.put(None)  # seen again by `_feed` once this stretch is done
                return
            yield job
