"""Where a pool worker runs a program: in-process warm fork (`local`), a fresh interpreter per program
(`subprocess`), or a warm sandbox server inside a long-lived container per worker (`docker`, in
`docker_backend`). `ray` is not a worker backend but a pool of its own, spread over a Ray cluster
(`ray_pool.RayPool`, opened by `pool.open_pool`): on each node it runs a local pool of one of the others.

Every backend ends in the sandbox core, `execrl.harness.sandbox.executor.execute`; the backends only change what
surrounds it. Requests and replies cross into the fresh interpreter or the container as JSON frames
(`execrl.harness.sandbox.server`), never pickle: the candidate program runs beside that process, so its reply is
data the host checks, not code it loads.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from execrl.benchmarks.problem import Problem
from execrl.harness.records import ExecResult, Limits, Verdict
from execrl.harness.sandbox import wire
from execrl.harness.sandbox.charged_time import STRETCH_CAP
from execrl.harness.sandbox.isolation import REPO_ROOT
from execrl.harness.sandbox.server import ProblemCache, launch_code, result_from_reply

BACKENDS = ("local", "subprocess", "docker", "ray")
WORKER_BACKENDS = ("local", "subprocess", "docker")
"""The backends a pool worker runs (`open_backend`); a Ray actor's pool on each node uses one of these."""
PROJECT_ROOT = Path(REPO_ROOT)


class Backend(Protocol):
    isolation: dict[str, bool]

    def execute(self, problem: Problem, program: str, limits: Limits | None = None) -> ExecResult: ...

    def close(self) -> None: ...


def open_backend(name: str, slot: int, limits: Limits, hidden: Sequence[str] = ()) -> Backend:
    """Start backend `name` for worker `slot`; call in the worker process.

    `hidden`: folders the candidate must not read besides the defaults (e.g. the benchmark data dir).
    """
    if name == "local":
        return LocalBackend(slot, limits, hidden)
    if name == "subprocess":
        return SubprocessBackend(slot, limits, hidden)
    if name == "docker":
        from execrl.harness.sandbox.docker_backend import DockerBackend

        return DockerBackend(slot, limits, hidden)
    raise ValueError(f"unknown worker backend {name!r}; choose one of {', '.join(WORKER_BACKENDS)}")


class LocalBackend:
    """The warm worker itself runs the executor (which forks one child per program)."""

    def __init__(self, slot: int, limits: Limits, hidden: Sequence[str] = ()) -> None:
        from execrl.harness.sandbox import executor

        self._executor, self.slot, self.limits = executor, slot, limits
        self.isolation = executor.prepare_worker(slot, hidden=list(hidden))

    def execute(self, problem: Problem, program: str, limits: Limits | None = None) -> ExecResult:
        return self._executor.execute(problem, program, limits or self.limits, slot=self.slot)

    def close(self) -> None:
        # The zygote would die with the worker anyway; its slot's cgroup must be removed by someone.
        from execrl.harness.sandbox.isolation import shutdown_worker

        shutdown_worker(self.slot)


def _deadline(limits: Limits) -> float:
    """Generous outer deadline for one program: the executor enforces the real ones.

    It must outlast the executor's own worst case, or a program the executor would judge becomes a
    sandbox_error (which earns no penalty): a busy machine stretches each test's deadline by the time the
    program waited for a CPU (`charged_time`), so one run may take up to STRETCH_CAP times the program's
    budget, and a program that timed out runs twice. Measured before this bound: a STDIO program that pinned
    itself to a busy core at nice 19 ran 137 s under the default limits, and the pool killed it at 100 s.
    """
    runs = 2 if limits.retry_timeouts else 1
    return runs * STRETCH_CAP * limits.program_timeout + 60.0


class SubprocessBackend:
    """A fresh `python -I -S` interpreter per program, running the sandbox server for one request: slower, but no
    state survives between programs."""

    def __init__(self, slot: int, limits: Limits, hidden: Sequence[str] = (), python: str = sys.executable) -> None:
        import json

        self.slot, self.limits, self.python = slot, limits, python
        code, where = launch_code(), [str(PROJECT_ROOT), str(slot), json.dumps(list(hidden)), "host"]
        self._argv = [python, "-I", "-S", "-c", code, *where]
        first, _ = self._call(None, limits)
        if type(first) is not dict or first.get("ok") is not True or type(first.get("isolation")) is not dict:
            raise RuntimeError(f"subprocess backend: prepare_worker failed: {_why(first)}")
        self.isolation = {k: v is True for k, v in first["isolation"].items()}

    def _call(self, request: dict[str, Any] | None, limits: Limits) -> tuple[Any, Any]:
        """Run one interpreter: its isolation frame, and its reply to `request` (None: no request)."""
        frames = wire.dumps(request) if request is not None else b""
        try:
            proc = subprocess.run(self._argv, input=frames, capture_output=True, timeout=_deadline(limits))
        except subprocess.TimeoutExpired:
            return TimeoutError(f"sandbox interpreter did not answer within {_deadline(limits):.0f}s"), None
        replies: list[Any] = []
        body = proc.stdout
        while len(body) >= 4 and len(replies) < 2:
            size = int.from_bytes(body[:4], "big")
            try:
                replies.append(wire.loads(body[4 : 4 + size]))
            except wire.WireError as e:
                replies.append(e)
            body = body[4 + size :]
        if not replies:
            tail = proc.stderr.decode("utf-8", "replace")[-500:]
            return RuntimeError(f"sandbox interpreter exited with {proc.returncode} and no reply: {tail}"), None
        return replies[0], (replies[1] if len(replies) > 1 else None)

    def execute(self, problem: Problem, program: str, limits: Limits | None = None) -> ExecResult:
        limits = limits or self.limits
        request = ProblemCache().request(problem, program, limits)  # a fresh interpreter holds no problem
        first, reply = self._call(request, limits)
        if reply is None:
            return ExecResult(Verdict.SANDBOX_ERROR, error=_why(first)[-2000:])
        return result_from_reply(reply)

    def close(self) -> None:
        pass


def _why(reply: Any) -> str:
    if isinstance(reply, dict):
        return str(reply.get("error"))
    return f"{type(reply).__name__}: {reply}"
