"""The docker backend: each pool worker owns one long-lived container with a warm sandbox server inside.

The container (`docker run -i`, image from `docker_engine.build_image`) runs the sandbox server
(`execrl.harness.sandbox.server`): it starts the executor's zygote once and then answers one JSON request
frame per program with one JSON reply frame, so a program costs what it costs in the local backend plus one
round trip (the container starts once per worker, about a second). The host checks each reply's shape
(`server.result_from_reply`): whatever runs in the container, at worst a reply is wrong, never code on the host.

What the container adds: no network (`--network none`); a read-only root of its own holding Debian's python3
and nothing of the host (no checkout, no data, no home: our sandbox code arrives as the first frame on stdin,
`code_bundle`, and is written to the container's tmpfs, so not even a bind mount's source path shows in
/proc/self/mountinfo); its own pid namespace (`--init` reaps what is left); memory and task caps for everything in it
(`--memory`, `--pids-limit`). Inside, the zygote makes its own network, pid and IPC namespaces as on the host
(`CAPABILITIES`), and the uid drop, seccomp filter and Landlock work as there. Three protections the executor
cannot set up inside a container are provided by the container instead and reported as on
(`CONTAINER_PROTECTIONS`): its minimal root (pivot_root is refused in a container: the container's own root
is the minimal one) and the memory and pids cgroups (the container's caps stand in for the slot's; a program
during which the container's OOM killer acted is `memory_exceeded`, `server.container_memory_verdict`).

Threat model: as the local backend's (isolation.py); in addition a candidate that broke out of the executor
inside the container still meets the container's namespaces and caps, and cannot reach the host through the
reply. Not protected against: a kernel exploit (containers share the host kernel; use a VM for that).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from execrl.benchmarks.problem import Problem
from execrl.harness.records import ExecResult, Limits
from execrl.harness.sandbox import wire
from execrl.harness.sandbox.cgroups import HEADROOM
from execrl.harness.sandbox.server import ProblemCache, launch_code, result_from_reply

DOCKER_LABEL = "execrl.sandbox"
"""Label on every sandbox container; its value is the pid of the host process that owns the container."""
CODE = "/tmp/execrl"
"""Where the container's bootstrap writes our code (on the container's own tmpfs)."""
CODE_FOLDERS = ("harness", "harness/sandbox", "benchmarks")
"""The folders whose modules the container receives: the sandbox, the records it speaks and the Problem."""
CONTAINER_PROTECTIONS = ("net", "mount", "pid", "memory_cgroup", "pids_cgroup")
"""net and pid too: should the zygote's own namespaces be refused, the container's still hold."""
"""Isolation keys the container provides itself (see the module docstring), whatever the executor reports inside."""
MEMORY_HEADROOM = HEADROOM + 48 * 1024**2
"""Container memory beyond `Limits.memory`: the slot cgroup's headroom, plus the server, zygote and judge, which
live under the same cap (19 MB together at start, measured in the container's memory.max_usage_in_bytes)."""
CAPABILITIES = ("SYS_ADMIN", "SETUID", "SETGID", "SETPCAP", "KILL", "CHOWN", "FOWNER", "DAC_OVERRIDE")
"""All the container's root keeps (`--cap-drop ALL` first). SYS_ADMIN lets the zygote make its own network, pid
and IPC namespaces inside the container, as it does on the host (without it the child's IPC namespace is
refused and no program runs); the program itself never holds any: it runs under a leased uid with
no_new_privs and the seccomp filter, as on the host, where the judge is real root."""
START_TIMEOUT = 60.0


def _die_with_parent() -> None:
    # The docker client must not outlive the pool worker that owns it (a killed worker runs no clean-up): when
    # the client dies, the container's stdin closes and the server ends, and --rm removes the container.
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def reap_orphans() -> list[str]:
    """Remove sandbox containers whose owning process is gone (a crash); returns their names."""
    listed = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label={DOCKER_LABEL}", "--format",
         f'{{{{.Names}}}} {{{{.Label "{DOCKER_LABEL}"}}}}'],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    gone = []
    for line in listed.stdout.split("\n"):
        name, _, owner = line.partition(" ")
        if name and owner.isdigit() and not Path(f"/proc/{owner}").exists():
            gone.append(name)
    if gone:
        subprocess.run(["docker", "rm", "-f", *gone], capture_output=True, timeout=60)
    return gone


BOOTSTRAP = (
    "import json, os, sys\n"
    "def read(n):\n    b = b''\n    while len(b) < n:\n        c = os.read(0, n - len(b))\n"
    "        if not c:\n            sys.exit(1)\n        b += c\n    return b\n"
    "for path, text in json.loads(read(int.from_bytes(read(4), 'big'))).items():\n"
    "    path = os.path.join(sys.argv[1], path)\n    os.makedirs(os.path.dirname(path), exist_ok=True)\n"
    "    with open(path, 'w') as f:\n        f.write(text)\n"
    "exec(compile(sys.argv[5], '<launch>', 'exec'))\n"
)
"""The container's first code: write the bundle (one frame on stdin) under argv[1], then run the launch code
(`server.launch_code`, argv[5]) with the server's argv (root, slot, hidden, "container")."""


def code_bundle(project: Path) -> dict[str, str]:
    """Our modules the container needs, by path relative to the project root (`CODE_FOLDERS`)."""
    return {
        f"{folder}/{path.name}": path.read_text(encoding="utf-8")
        for folder in CODE_FOLDERS
        for path in sorted((project / folder).glob("*.py"))
    }


def docker_run_args(name: str, limits: Limits, image: str, uid_locks: Path) -> list[str]:
    """The `docker run` command line of one worker's container (see the module docstring for each protection)."""
    return [
        "docker", "run", "-i", "--rm", "--init", "--name", name, "--label", f"{DOCKER_LABEL}={os.getpid()}",
        "--network", "none", "--read-only", "--tmpfs", "/tmp:rw,size=256m,mode=1777",
        "--memory", str(limits.memory + MEMORY_HEADROOM), "--memory-swap", str(limits.memory + MEMORY_HEADROOM),
        "--pids-limit", str(4 * limits.processes + 64),
        "--cap-drop", "ALL", *[f"--cap-add={c}" for c in CAPABILITIES],
        "--security-opt", "no-new-privileges",
        # Uid leases are machine-wide (isolation._lease_uid): two containers never hand out the same sandbox uid.
        "-v", f"{uid_locks}:/tmp/{uid_locks.name}",
        image, "python3", "-I", "-S", "-c", BOOTSTRAP, CODE, "0", "[]", "container", launch_code(),
    ]  # fmt: skip


class DockerBackend:
    """One container per worker, a warm sandbox server inside; one request and one reply frame per program."""

    def __init__(self, slot: int, limits: Limits, hidden: Sequence[str] = (), image: str | None = None) -> None:
        from execrl.harness.sandbox import docker_engine
        from execrl.harness.sandbox.isolation import REPO_ROOT, UID_LOCKS

        # `hidden` needs nothing here: no host folder is in the container but our two, read-only.
        self.slot, self.limits = slot, limits
        image = image or docker_engine.ready_image()
        reap_orphans()
        with contextlib.suppress(FileExistsError):
            UID_LOCKS.mkdir()
            UID_LOCKS.chmod(0o1777)
        self.name = f"execrl-sandbox-{os.getpid()}-{slot}-{secrets.token_hex(3)}"
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            docker_run_args(self.name, limits, image, UID_LOCKS),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            preexec_fn=_die_with_parent,
        )
        self._problems = ProblemCache()
        with contextlib.suppress(OSError):  # a container that died at once is reported below, from its stderr
            wire.write_frame(self._proc.stdin.fileno(), code_bundle(Path(REPO_ROOT)))  # type: ignore[union-attr]
        reply = self._read(time.monotonic() + START_TIMEOUT)
        if type(reply) is not dict or reply.get("ok") is not True or type(reply.get("isolation")) is not dict:
            self.close()
            raise RuntimeError(f"docker backend: the sandbox server did not start: {self._why(reply)}")
        self.isolation = self.overlay(reply["isolation"])

    @staticmethod
    def overlay(isolation: dict[str, Any]) -> dict[str, bool]:
        """The executor's report from inside, with what the container itself provides turned on."""
        return {**{k: v is True for k, v in isolation.items()}, **dict.fromkeys(CONTAINER_PROTECTIONS, True),
                "docker": True}  # fmt: skip

    def _read(self, deadline: float) -> Any:
        try:
            return wire.read_frame(self._proc.stdout.fileno(), deadline)  # type: ignore[union-attr]
        except (EOFError, TimeoutError, wire.WireError) as e:
            return e

    def _why(self, reply: Any) -> str:
        if isinstance(reply, dict):
            return str(reply.get("error"))[-1500:]
        self._stderr.seek(0)
        tail = self._stderr.read().decode("utf-8", "replace")[-1500:]
        return f"{type(reply).__name__}: {reply}; docker: {tail.strip()}"

    def execute(self, problem: Problem, program: str, limits: Limits | None = None) -> ExecResult:
        from execrl.harness.sandbox.backends import _deadline

        limits = limits or self.limits
        try:
            wire.write_frame(self._proc.stdin.fileno(), self._problems.request(problem, program, limits))  # type: ignore[union-attr]
        except (OSError, wire.WireError) as e:
            raise RuntimeError(f"docker backend: the container {self.name} is gone: {self._why(e)}") from None
        reply = self._read(time.monotonic() + _deadline(limits))
        if isinstance(reply, Exception):
            # The stream is out of step or the server is gone: this worker cannot go on (the pool restarts it).
            raise RuntimeError(f"docker backend: no reply from the container {self.name}: {self._why(reply)}")
        result = result_from_reply(reply)
        result.isolation = self.overlay(result.isolation) if result.isolation else {}
        return result

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._proc.stdin.close()  # type: ignore[union-attr]
        try:
            self._proc.wait(timeout=10)  # the server ends at EOF, and --rm removes the container
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, timeout=60)
        self._stderr.close()
