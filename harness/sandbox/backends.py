"""Where a pool worker runs a program: in-process warm fork (`local`), a fresh interpreter per program
(`subprocess`), or a fresh interpreter inside a long-lived Docker container (`docker`).

Every backend ends in the sandbox core, `execrl.harness.sandbox.executor.execute`; the backends only change what
surrounds it. Requests and results cross into the fresh interpreter as pickle: that process is the
harness itself (trusted), never the candidate program, which the executor runs behind its own pipes.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from execrl.benchmarks.problem import Problem
from execrl.harness.records import ExecResult, Limits, Verdict
from execrl.harness.sandbox.charged_time import STRETCH_CAP
from execrl.harness.sandbox.isolation import REPO_ROOT, import_prelude

BACKENDS = ("local", "subprocess", "docker")
PROJECT_ROOT = Path(REPO_ROOT)
DOCKER_IMAGE = "python:3.11-slim"
DOCKER_LABEL = "execrl.sandbox"

# argv: [project root, optional request file]; the request comes on stdin when no file is given.
_CHILD_CODE = import_prelude("sys.argv[1]") + "from execrl.harness.sandbox.backends import child_main\nchild_main()"


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
        return DockerBackend(slot, limits, hidden)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


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


def child_main() -> None:
    """Entry point of the fresh interpreter: one request in, one pickled reply on the original stdout."""
    path = sys.argv[2] if len(sys.argv) > 2 else None
    request = pickle.loads(Path(path).read_bytes() if path else sys.stdin.buffer.read())
    # Keep the reply channel private: nothing else (warnings, the executor's children) may write to it.
    reply = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        from execrl.harness.sandbox import executor

        op, slot, hidden, *rest = request
        isolation = executor.prepare_worker(slot, hidden=hidden)
        if op == "prepare":
            payload: Any = isolation
        else:
            problem, program, limits = rest
            payload = executor.execute(problem, program, limits, slot=slot)
        answer = ("ok", payload)
    except BaseException:  # report anything, including SystemExit from the harness, as a sandbox fault
        answer = ("error", traceback.format_exc(limit=-3))
    reply.write(pickle.dumps(answer))
    reply.close()


def _decode_reply(stdout: bytes, stderr: bytes, code: int | None) -> tuple[str, Any]:
    try:
        status, payload = pickle.loads(stdout)
        return status, payload
    except Exception:
        tail = stderr.decode("utf-8", "replace")[-500:]
        return "error", f"sandbox interpreter exited with {code} and no reply: {tail}"


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


class _FreshInterpreterBackend:
    """A backend that runs each request in a fresh interpreter running `_CHILD_CODE`, through `_call`."""

    slot: int
    limits: Limits
    hidden: list[str]

    def _call(self, request: tuple) -> tuple[str, Any]:
        raise NotImplementedError

    def execute(self, problem: Problem, program: str, limits: Limits | None = None) -> ExecResult:
        status, payload = self._call(("execute", self.slot, self.hidden, problem, program, limits or self.limits))
        if status != "ok":
            return ExecResult(Verdict.SANDBOX_ERROR, error=str(payload)[-2000:])
        return payload


class SubprocessBackend(_FreshInterpreterBackend):
    """A fresh `python -I` interpreter per program: slower, but no state survives between programs."""

    def __init__(self, slot: int, limits: Limits, hidden: Sequence[str] = (), python: str = sys.executable) -> None:
        self.slot, self.limits, self.python, self.hidden = slot, limits, python, list(hidden)
        status, payload = self._call(("prepare", slot, self.hidden))
        if status != "ok":
            raise RuntimeError(f"subprocess backend: prepare_worker failed: {payload}")
        self.isolation = payload

    def _call(self, request: tuple) -> tuple[str, Any]:
        try:
            proc = subprocess.run(
                [self.python, "-I", "-c", _CHILD_CODE, str(PROJECT_ROOT)],
                input=pickle.dumps(request),
                capture_output=True,
                timeout=_deadline(self.limits),
            )
        except subprocess.TimeoutExpired:
            return "error", f"sandbox interpreter did not answer within {_deadline(self.limits):.0f}s"
        return _decode_reply(proc.stdout, proc.stderr, proc.returncode)

    def close(self) -> None:
        pass


class DockerBackend(_FreshInterpreterBackend):
    """One long-lived container per worker (no network, read-only root, memory and pids caps, the project
    mounted read-only); each program runs in a fresh interpreter inside it, as in the subprocess backend."""

    def __init__(self, slot: int, limits: Limits, hidden: Sequence[str] = (), image: str = DOCKER_IMAGE) -> None:
        import docker

        # The container sees only the project and its job folder: no host folder needs hiding in it.
        self.slot, self.limits, self.hidden = slot, limits, []
        self._jobs = tempfile.mkdtemp(prefix=f"execrl-docker-{slot}-")
        try:
            self._container = docker.from_env().containers.run(
                image,
                ["sleep", "infinity"],
                detach=True,
                network_mode="none",
                read_only=True,
                mem_limit=limits.memory + 512 * 1024**2,
                pids_limit=4 * limits.processes + 64,
                tmpfs={"/tmp": "size=256m"},
                volumes={
                    str(PROJECT_ROOT): {"bind": "/execrl", "mode": "ro"},
                    self._jobs: {"bind": "/jobs", "mode": "rw"},
                },
                labels={DOCKER_LABEL: str(os.getpid())},
            )
        except Exception:
            shutil.rmtree(self._jobs, ignore_errors=True)
            raise
        status, payload = self._call(("prepare", slot, self.hidden))
        if status != "ok":
            self.close()
            raise RuntimeError(f"docker backend: prepare_worker failed in the container: {payload}")
        self.isolation = {**payload, "docker": True}

    def _call(self, request: tuple) -> tuple[str, Any]:
        Path(self._jobs, "request.pkl").write_bytes(pickle.dumps(request))
        code, (stdout, stderr) = self._container.exec_run(
            [
                "timeout",
                "-s",
                "KILL",
                str(int(_deadline(self.limits))),
                "python",
                "-I",
                "-c",
                _CHILD_CODE,
                "/execrl",
                "/jobs/request.pkl",
            ],
            demux=True,
        )
        return _decode_reply(stdout or b"", stderr or b"", code)

    def close(self) -> None:
        try:
            self._container.remove(force=True)
        finally:
            shutil.rmtree(self._jobs, ignore_errors=True)
