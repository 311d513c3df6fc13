"""The sandbox side: a per-slot zygote process and the candidate child it forks for each program.

The zygote is a fresh `python -I -S` started by `execrl.harness.sandbox.isolation` with a scrubbed environment,
so its memory never held a test, an expected output or a secret (a child forked from the judge
could read those out of its own copy of the heap). At start-up it enters a new network namespace and a
mount namespace whose root is a minimal one of its own (`kernel.setup_mounts`: read-only binds of the
system folders, the interpreter, a few /etc files and five devices; no host socket, checkout, home or
data dir in it), pre-imports common modules, then serves two requests from the judge over a unix socket:
`spawn` (fork a child wired to the pipes passed along) and `reap` (kill the child's whole pid namespace,
collect its status, give the next program a fresh tmpfs).

Per program, one fork: the zygote points its next child at a fresh pid namespace (setns back to
its own, then unshare(CLONE_NEWPID)) and forks. The child is the init of that namespace, so
SIGKILL to it kills every descendant (the kernel's guarantee), and a daemon cannot outlive it. Only
the zygote reaps it, so its pid stays valid until then; killing it by pid can never hit a recycled
pid. The child makes an IPC namespace of its own, mounts a procfs of its pid namespace on the program's
fresh tmpfs (`kernel.mount_own_proc`, `kernel.fresh_program_tmpfs`: nothing a program leaves, counted or
stored, reaches the next), drops to the slot's unprivileged uid with rlimits, `no_new_privs` and a
parent-death signal, then only serves calls: it runs the candidate program and answers RPCs (`load`, `call`,
`getattr`, ...) with plain values or opaque handles. Whatever it answers is a claim; the judge
decides.

Speed (every program pays these): the zygote's heap is frozen out of the garbage collector
(`gc.freeze`) so a collection in a child does not copy the zygote's pages, and it preloads no
module that registers an at-fork hook that runs Python code in every child (`queue` pulls in
`threading`, whose hook costs about as much as the fork itself).

The kernel primitives (namespaces, mounts, capabilities) are in `execrl.harness.sandbox.kernel`; the seccomp filter and
the Landlock ruleset in `execrl.harness.sandbox.syscall_filter` and `execrl.harness.sandbox.landlock`.

Stdlib only, plus those modules and `execrl.harness.sandbox.wire`: this module is imported by the zygote before the
repository is hidden from it.
"""

from __future__ import annotations

import builtins
import collections
import ctypes
import gc
import json
import marshal
import os
import resource
import select
import signal
import socket
import sys
import time
import traceback
import types
from typing import Any, NamedTuple

from execrl.harness.sandbox import audit_hook, kernel, landlock, syscall_filter, wire

PRELOAD = (
    "array", "bisect", "collections", "copy", "enum", "functools", "heapq", "io", "itertools", "math", "operator",
    "re", "string", "struct", "time", "typing",
)  # fmt: skip
"""Modules the zygote imports once so that children pay nothing for them: small ones that programs use
often. Every fork pays for the zygote's size (page tables copied, then torn down at exit), so the big or
rare ones stay out: with `dataclasses`, `decimal`, `datetime`, `fractions`, `statistics`, `hashlib`
(libcrypto) and `random` preloaded, fork + exit cost 1.08 ms instead of 0.75 ms (a program that imports
one of them pays 1-10 ms instead). `random` also registers an after-fork hook that reseeds in every
child. Measured with tests/perf/bench_fork.py."""

DICT_LIKE = (collections.Counter, collections.OrderedDict, collections.defaultdict)


class _Setup(NamedTuple):
    """What the zygote hands each child, fixed at start-up."""

    scratch: str
    scratch_tmpfs: str | None
    """The mount options of the tmpfs holding the scratch dir, fresh per program (`kernel.fresh_program_tmpfs`),
    or None when it is a plain folder (no mount namespace)."""
    uid: int | None
    """The leased sandbox uid to drop to (root set-up), or None."""
    own_ns: int
    """An fd of the zygote's pid namespace (children go to fresh ones below it), or -1: no pid namespaces."""
    userns: bool
    """The zygote made a user namespace (no root): children clear their capabilities instead of a uid drop."""
    seccomp: syscall_filter.Filter | None
    landlock: int
    """A Landlock ruleset fd the child joins (the files it may touch), or -1."""
    own_proc: bool
    """Each child mounts a procfs of its own pid namespace (`kernel.mount_own_proc`)."""
    cgroup_fds: tuple[int, ...] = ()
    """`cgroup.procs` of the slot's cgroups, opened by the judge: each child writes itself in (the zygote
    stays outside, so their OOM killer can only pick the program)."""
    page: audit_hook.Page | None = None
    """Counters of what the program reached for (`audit_hook`), read and zeroed after each reap."""
    classify: Any = None
    """The audit hook's classifier for this zygote's root (`audit_hook.classifier`)."""


def _exit(code: object = None) -> None:
    raise SystemExit(code)


def zygote_main(sock_fd: int, config_json: str) -> None:
    """Entry point of the zygote process (see `execrl.harness.sandbox.isolation._start_zygote`)."""
    kernel.libc.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    config = json.loads(config_json)
    sock = socket.socket(fileno=sock_fd)
    if os.getppid() != config["parent"]:  # the judge died before PDEATHSIG was armed
        os._exit(1)
    isolation: dict[str, bool] = {}
    errors: list[str] = []
    root = os.geteuid() == 0
    isolation["uid"] = root
    userns = False
    if not root:
        groups = sorted(set(os.getgroups()) - {os.getegid()})
        try:
            kernel.enter_user_namespace()
            userns = True
            errors.append("not root: children run as the user's own uid, in a user namespace without capabilities")
            if groups:  # setgroups is refused in a user namespace we map ourselves
                errors.append(
                    f"not root: children keep the user's supplementary groups {groups} (Landlock still "
                    "limits them to world-readable system files)"
                )
        except OSError as exc:
            errors.append(f"not root: children keep the worker's uid and privileges ({exc})")
    isolation["net"] = kernel.libc.unshare(kernel.CLONE_NEWNET) == 0
    if not isolation["net"]:
        errors.append(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
    for name in PRELOAD:
        __import__(name)
    try:
        seccomp: syscall_filter.Filter | None = syscall_filter.Filter(syscall_filter.build())
    except OSError as exc:
        seccomp = None
        errors.append(f"no seccomp filter: {exc}")
    isolation["seccomp"] = seccomp is not None
    builtins.exit = builtins.quit = _exit  # type: ignore[attr-defined]  # `site` is off (-S), programs use them
    scratch = f"/tmp/slot{config['slot']}/home"  # on the program's own tmpfs (kernel.fresh_program_tmpfs)
    stdlib = os.path.dirname(os.__file__)
    try:
        kernel.setup_mounts(config["hidden"], scratch, [sys.base_prefix, stdlib])
        isolation["mount"] = True
    except OSError as exc:
        isolation["mount"] = False
        errors.append(f"no minimal root, so host paths and sockets stay visible: {exc}")
        scratch = os.path.join(config["fallback_scratch"], f"slot{config['slot']}")
        os.makedirs(scratch, 0o700, exist_ok=True)
        if root:
            os.chown(scratch, config["uid"], config["uid"])
    try:  # after the mounts: the rules name the zygote's own /tmp, /dev and standard library
        if isolation["mount"]:  # the minimal root is the allow-list of what may be read
            ruleset = landlock.build(writable=["/tmp"], read_anywhere=True)
        else:
            ruleset = landlock.build([stdlib], writable=[os.path.dirname(scratch)])
    except OSError as exc:
        ruleset = -1
        errors.append(f"no Landlock ruleset: {exc}")
    isolation["landlock"] = ruleset >= 0
    try:
        proc = kernel.ZYGOTE_PROC if isolation["mount"] else "/proc"
        own_ns = os.open(f"{proc}/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        own_ns = -1
    isolation["pid"] = own_ns >= 0 and kernel.probe_pid_namespace(own_ns)
    if not isolation["pid"]:
        errors.append("unshare(CLONE_NEWPID) refused: survivors are killed by uid instead" if root else
                      "unshare(CLONE_NEWPID) refused: survivors are killed by process group only")  # fmt: skip
    tmpfs = None
    own_proc = False
    if isolation["mount"]:
        tmpfs = kernel.scratch_options(config["scratch_bytes"], mode=0o755)
        kernel.fresh_program_tmpfs(scratch, tmpfs, None)
        refused = kernel.probe_own_proc(own_ns if isolation["pid"] else -1, scratch)
        own_proc = refused is None
        if refused is not None:
            errors.append(f"children have no /proc (they cannot mount their own): {refused}")
    kernel.libc.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    # What every child needs, set once here and inherited through fork (cheaper than per child).
    os.environ.clear()
    os.environ.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
                       "HOME": scratch, "TMPDIR": scratch, "USER": "sandbox", "LOGNAME": "sandbox"})  # fmt: skip
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    # Children share the zygote's pages copy-on-write; a collection in a child would touch (and so
    # copy) every tracked object. Frozen objects are never scanned (CPython docs, gc.freeze).
    _warm_up()
    gc.collect()
    gc.freeze()
    _send(sock, {"isolation": isolation, "errors": errors})
    uid = config["uid"] if root else None
    # The sandbox's own folder too: the child's tracebacks (an honest runtime error) look up its source lines.
    visible = (*kernel.SYSTEM_DIRS, sys.base_prefix, stdlib, "/etc", "/dev", "/proc", "/sys", "/tmp", scratch,
               os.path.dirname(__file__))  # fmt: skip
    hidden = (*config["hidden"], *kernel.ALWAYS_HIDDEN, kernel.ZYGOTE_PROC)
    classify = audit_hook.classifier(visible, ("/tmp", "/dev", scratch), hidden, __file__)
    setup = _Setup(scratch, tmpfs, uid, own_ns if isolation["pid"] else -1, userns, seccomp, ruleset, own_proc,
                   tuple(config.get("cgroup_fds", ())), audit_hook.Page(), classify)  # fmt: skip
    _serve_judge(sock, setup)


_WARM_UP_PROGRAM = """
from typing import List
def f(xs: List[int], k=1):
    return [x * k for x in xs]
def g(s):
    return {"a": (s, 1.5, None, True)}
def h(n):
    raise ValueError(n)
class C:
    def m(self):
        return b"x"
"""


def _warm_up(rounds: int = 30) -> None:
    """Run the child's serving path a few times here, before the first fork, on a fixed trusted program:
    the interpreter's specialized bytecode, its type attribute cache and lazily built objects then live
    in the zygote's pages, which every child shares, instead of being rebuilt and copied in each child."""
    code = wire.encode(marshal.dumps(compile(_WARM_UP_PROGRAM, "<warm-up>", "exec")))
    calls = [{"op": "load", "code": code, "name": "__warm_up__"},
             {"op": "call", "target": "f", "args": wire.encode([[1, 2, 3]]), "kwargs": wire.encode({"k": 2})},
             {"op": "call", "target": "g", "args": wire.encode(["s"])},
             {"op": "call", "target": "h", "args": wire.encode([1])},
             {"op": "call", "target": "C", "args": []},
             {"op": "getattr", "target": "C", "args": ["m"]}]  # fmt: skip
    script = b"".join(wire.dumps(m) for m in calls)
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        for _ in range(rounds):
            r, w = os.pipe()
            os.write(w, script)
            os.close(w)
            try:
                _serve_calls(r, sink, warm_up=True)
            finally:
                os.close(r)
    finally:
        os.close(sink)


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(wire.dumps(message))


def _recv(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _, _ = socket.recv_fds(sock, 1 << 16, 8)
    if not data:
        raise EOFError
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
        more = sock.recv(1 << 16)
        if not more:
            raise EOFError
        data += more
    return wire.loads(data[4:]), fds


def _serve_judge(sock: socket.socket, setup: _Setup) -> None:
    _reset_scratch(setup)  # a fallback folder may hold what a program of an earlier run left
    while True:
        try:
            request, fds = _recv(sock)
        except (EOFError, OSError):
            os._exit(0)
        if request.get("op") != "spawn":
            for fd in fds:
                os.close(fd)
            _send(sock, {"error": f"unexpected request {request.get('op')!r}"})
            continue
        # One scratch dir per slot, reset after each child (and all its descendants) are dead.
        pid = _spawn(request, fds, setup)
        for fd in fds:
            os.close(fd)
        _send(sock, {"pid": pid})
        try:
            reap, fds = _recv(sock)
        except (EOFError, OSError):
            reap, fds = {"op": "reap", "grace": 0.0}, []
        for fd in fds:
            os.close(fd)
        status = _reap(pid, float(reap.get("grace", 0.0)), setup.uid, setup.own_ns >= 0)
        _reset_scratch(setup)
        seen = setup.page.take() if setup.page is not None else {}  # after the reap: no process of it writes
        if reap.get("op") != "reap":
            _send(sock, {"error": f"expected a reap request, got {reap.get('op')!r}; the child was reaped"})
        else:
            _send(sock, {"status": status, "seen": seen} if seen else {"status": status})


def _reset_scratch(setup: _Setup) -> None:
    """Give the next program a scratch dir as it would find it on a fresh machine.

    With a mount namespace the scratch dir, /dev/shm's folder and the child's procfs are on a tmpfs of the
    program's own, replaced by a fresh one every time (`kernel.fresh_program_tmpfs`). That takes the same
    time for any depth or size (deleting by path fails past PATH_MAX, so a program nesting 20 folders of
    250-character names kept files, and a full disk, for the next program), and it drops what an emptied
    one still carries (extended attributes, timestamps, the tmpfs's count of inodes handed out). Without
    one, the folder is emptied by walking it (`kernel.empty_by_walking`), or set aside if that fails.
    """
    scratch = setup.scratch
    if setup.scratch_tmpfs is not None:
        kernel.fresh_program_tmpfs(scratch, setup.scratch_tmpfs, setup.uid)
        return
    if kernel.empty_by_walking(scratch):
        os.chmod(scratch, 0o700)  # the program owned it
    else:
        os.rename(scratch, f"{scratch}.left-by-a-program.{time.monotonic_ns()}")
        os.mkdir(scratch, 0o700)
    if setup.uid is not None:
        os.chown(scratch, setup.uid, setup.uid)


def _spawn(request: dict[str, Any], fds: list[int], setup: _Setup) -> int:
    """Fork the child (the init of its own pid namespace when there are pid namespaces); its pid."""
    pid = kernel.fork_in_new_pid_namespace(setup.own_ns) if setup.own_ns >= 0 else os.fork()
    if pid == 0:
        try:
            _child_main(request, fds, setup)
        finally:
            os._exit(255)
    return pid


def _reap(pid: int, grace: float, uid: int | None, pid_ns: bool) -> int:
    """Kill the child's whole tree and reap it; its status as a shell would give it (128 + signal).

    Only we may reap the child, so its pid cannot be recycled before our waitpid: the kill hits it.
    Killing the init of a pid namespace kills every process in it, and waitpid returns only once
    they are all gone (the kernel's guarantee, pid_namespaces(7)).
    """
    if grace > 0:
        pidfd = os.pidfd_open(pid)
        select.select([pidfd], [], [], grace)  # readable once the child has exited
        os.close(pidfd)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if not pid_ns:
        _kill_leftovers(pid, uid)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if not pid_ns:  # orphans of the child were reparented to us (child subreaper): collect the dead
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
    return code if code >= 0 else 128 - code


def _kill_leftovers(b_pid: int, uid: int | None) -> None:
    """Without a pid namespace: kill B's process group, and every process of the slot's uid."""
    try:
        os.killpg(b_pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if uid is None:
        return
    killer = os.fork()
    if killer == 0:
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        os.kill(-1, signal.SIGKILL)  # every process this uid may signal, except the caller
        os._exit(0)
    os.waitpid(killer, 0)


def _child_main(request: dict[str, Any], fds: list[int], setup: _Setup) -> None:
    """B: confine this process, then serve the judge's calls until EOF. Never returns."""
    try:
        _confine(request, fds, setup)
    except BaseException as exc:  # noqa: BLE001 - report the set-up failure to the judge
        try:
            wire.write_frame(fds[1], {"setup_error": f"{type(exc).__name__}: {exc}"})
        finally:
            os._exit(70)
    if setup.page is not None:  # last: the set-up above writes /proc and opens what a program may not
        audit_hook.install(setup.page, setup.classify)
    _serve_calls(page=setup.page)


def _confine(request: dict[str, Any], fds: list[int], setup: _Setup) -> None:
    uid = setup.uid
    for fd in setup.cgroup_fds:  # first: everything the child does from here on is the program's
        os.write(fd, b"0")  # "0" is the writer itself (cgroups(7)); closed below with every other fd
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    rpc_in, rpc_out, stdin, stdout = fds
    keep = [stdin, stdout, devnull, rpc_in, rpc_out] + ([setup.landlock] if setup.landlock >= 0 else [])
    high = [os.dup(fd) for fd in keep]  # dodge clashes with 0..5
    for target, fd in enumerate(high):
        os.dup2(fd, target)
    os.closerange(len(keep), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    limits = request["limits"]
    for rlimit, value in (
        (resource.RLIMIT_CPU, int(limits["cpu"]) + 1),
        (resource.RLIMIT_AS, limits["memory"]),
        (resource.RLIMIT_FSIZE, limits["file_size"]),
        (resource.RLIMIT_NOFILE, limits["open_files"]),
        (resource.RLIMIT_NPROC, limits["processes"]),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(rlimit, (value, value))
    if uid is not None or setup.userns:
        # A fresh IPC namespace, gone with the child: SysV shared memory, semaphores and message queues
        # would otherwise outlive the program, hold host memory and carry state to the next program.
        kernel.check(kernel.libc.unshare(kernel.CLONE_NEWIPC), "unshare(CLONE_NEWIPC)")
    if setup.own_proc:
        kernel.mount_own_proc(setup.scratch)
    # A machine-wide OOM killer (no memory cgroup, or the machine itself short of memory) must pick the
    # program first, not the judge or a trainer. Raised while still privileged: with CAP_SYS_RESOURCE that also
    # raises the floor, so the program cannot lower it again (proc(5), oom_score_adj_min). After the child's own
    # procfs is mounted: /proc/self must name this child.
    adj = os.open("/proc/self/oom_score_adj", os.O_WRONLY)  # os.open: a text-mode open() costs 0.15 ms here
    try:
        os.write(adj, b"1000")
    finally:
        os.close(adj)
    os.chdir(setup.scratch)  # the environment and signal dispositions were set once, in the zygote
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    elif setup.userns:  # root of the zygote's user namespace (the user outside): keep the uid, lose every capability
        kernel.drop_capabilities()
    # After the uid drop: changing credentials clears the parent-death signal (prctl(2)).
    kernel.check(kernel.libc.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    kernel.check(kernel.libc.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    if setup.landlock >= 0:  # the ruleset was moved to fd 5 above
        landlock.restrict(5)
        os.close(5)
    if setup.seccomp is not None:  # last: the set-up above uses unshare, which the filter refuses
        setup.seccomp.install()


_OWN_FILES = os.path.dirname(os.path.abspath(__file__))


def _describe(exc: BaseException) -> dict[str, str]:
    """The candidate's exception for the judge: type, message and the last frames of the candidate's own code.
    The sandbox's frames (this package's files) are left out: they are no part of the program's error and would
    show the harness's paths in every report."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_OWN_FILES)]
    tail = "".join(traceback.format_list(frames[-2:]) + traceback.format_exception_only(type(exc), exc))
    return {"type": type(exc).__name__, "message": str(exc)[:2000], "traceback": tail[-2000:]}


def _serve_calls(
    rpc_in: int = 3, rpc_out: int = 4, warm_up: bool = False, page: audit_hook.Page | None = None
) -> None:
    """Answer the judge's frames on `rpc_in` with frames on `rpc_out` until EOF, then exit (return, in the
    zygote's warm-up). Handles to rigged objects (`audit_hook.rigged`) are counted in `page`."""
    handles: dict[int, Any] = {}
    namespace: dict[str, Any] = {}

    def to_handle(obj: Any) -> Any:
        # Stdlib containers that compare equal to a builtin travel as that builtin (a claim, like any).
        if type(obj) in DICT_LIKE:
            return {k: _plain_or(v, to_handle) for k, v in obj.items()}
        if isinstance(obj, tuple) and hasattr(type(obj), "_fields"):  # a namedtuple
            return tuple(_plain_or(v, to_handle) for v in obj)
        if page is not None and audit_hook.rigged(obj):
            page.counts[audit_hook.OPAQUE_ANSWER] += 1
        handles[id(obj)] = obj
        return id(obj)

    def resolve(ref: Any) -> Any:
        if type(ref) is str:
            return namespace[ref] if ref in namespace else getattr(builtins, ref)
        return handles[ref]

    while True:
        try:
            msg = wire.read_frame(rpc_in)
        except (EOFError, OSError, wire.WireError):
            if warm_up:
                return
            os._exit(0)
        try:
            op = msg["op"]
            if op == "load":
                namespace = _load(msg, msg["name"])
                value: Any = None
            else:
                target = resolve(msg["target"])
                args = wire.decode(msg.get("args", []), handles.__getitem__)
                if op == "call":
                    value = target(*args, **wire.decode(msg.get("kwargs", {"D": []}), handles.__getitem__))
                elif op == "getattr":
                    value = getattr(target, *args)
                elif op == "setattr":
                    value = setattr(target, *args)
                elif op == "getitem":
                    value = target[args[0]]
                elif op == "len":
                    value = len(target)
                elif op == "resolve":
                    value = target
                elif op == "list":
                    value = list(target)
                elif op == "contains":
                    value = args[0] in target
                elif op == "bool":
                    value = bool(target)
                else:
                    raise ValueError(f"unknown op {op!r}")
            reply: dict[str, Any] = {"ok": wire.encode(value, to_handle)}
        except BaseException as exc:  # noqa: BLE001 - every failure is reported back as data
            reply = {"exc": _describe(exc)}
        try:
            wire.write_frame(rpc_out, reply)
        except BaseException:  # noqa: BLE001 - e.g. MemoryError while encoding: die, the judge sees EOF
            os._exit(71)


def _plain_or(value: Any, to_handle: Any) -> Any:
    """`value` with nested non-plain members replaced by their handles (as `wire.Handle`)."""
    try:
        wire.encode(value)
        return value
    except wire.WireError:
        stand_in = to_handle(value)
        return wire.Handle(stand_in) if type(stand_in) is int else stand_in


def _load(msg: dict[str, Any], name: str) -> dict[str, Any]:
    """Run a program in a fresh module namespace: compiled by the judge (`code`, marshal) or `source`."""
    if "code" in msg:
        code = marshal.loads(wire.decode(msg["code"]))
        if type(code) is not types.CodeType:
            raise TypeError("load: not a code object")
    else:
        code = compile(msg["source"], "<candidate>", "exec")  # inherits this module's postponed annotations
    # A real module in sys.modules, so that pickle finds the program's functions and classes by name
    # (multiprocessing sends them to its workers that way).
    module = types.ModuleType(name)
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules[name] = module
    namespace = module.__dict__
    try:
        exec(code, namespace)
    finally:
        try:
            sys.stdout.flush()
        except BaseException:  # noqa: BLE001
            pass
    return namespace
