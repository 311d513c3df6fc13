"""A Landlock ruleset for sandboxed children: the files a program may touch, by allow-list.

With a mount namespace, the zygote's root is a minimal one (`kernel.setup_mounts`) that holds only what a
program may read, so the ruleset allows reading anywhere in it, and writing only beneath /tmp (where only
the program's own tmpfs is writable: its scratch dir and the folder /dev/shm links to). Without one,
the host's whole tree is in view: the uid drop keeps a root set-up's children out of other users' files,
but not out of a world-readable dataset in /srv or /data, nor, without root, out of the user's own files.
There Landlock, the kernel's unprivileged access-control layer (Linux >= 5.13, `landlock(7)`), is the
allow-list: a child may read and execute only beneath the system folders and the Python standard library,
open five device files (null, zero, full, random, urandom), read only the world-readable files of /etc,
and write only in its scratch dir. Where the kernel's Landlock ABI allows it, abstract unix sockets and
signals are also scoped to the child's own domain. Landlock does not mediate connect(2) on pathname unix
sockets (ABI 7, Linux 6.18, does not): only the minimal root keeps the host's out of reach.

The zygote builds the ruleset once (`build`, an fd); each child joins it with one syscall (`restrict`).
Syscall numbers are the same on x86_64 and aarch64. Stdlib only: the zygote imports this module before the
repository is hidden from it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from typing import Any

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

# Filesystem access rights, by the ABI version that introduced them (landlock(7)).
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_ABI1_ALL = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

READ_ONLY = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sys")
"""Folders whose files a program may read and execute (plus the standard library, wherever it is)."""
WORLD_READABLE_ONLY = ("/etc",)
"""Folders where only what every user may read is allowed: not /etc/shadow (group shadow), nor
/etc/ssl/private (group ssl-cert), which a user in those groups could read without root."""
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
"""The only device files a program may open (not the user's terminals in /dev/pts, nor /dev/kvm)."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]  # fmt: skip


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel's struct is packed
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when it has no Landlock (or it is disabled)."""
    version = _libc.syscall(_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    return max(version, 0)


def _rights(abi: int) -> tuple[int, int]:
    """(every filesystem right this ABI handles, the scopes it handles)."""
    fs = _ABI1_ALL | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0) | (IOCTL_DEV if abi >= 5 else 0)
    scoped = (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0
    return fs, scoped


def build(
    extra_read_only: list[str] | tuple[str, ...] = (),
    writable: list[str] | tuple[str, ...] = ("/tmp",),
    read_anywhere: bool = False,
) -> int:
    """A ruleset fd for children (inherited through fork); OSError if the kernel has no Landlock.

    `read_anywhere`: reading and executing are allowed everywhere, for a zygote whose root is already the
    minimal one (`kernel.setup_mounts`): it holds nothing else to keep out, and each child's own /proc is a
    mount the zygote cannot name in a rule (a rule on a mount point's parent covers a mount made there
    later; one on the folder a mount covers does not, as Landlock skips covered mount points)."""
    abi = abi_version()
    if abi < 1:
        raise OSError(errno.EOPNOTSUPP, "the kernel has no Landlock (Linux >= 5.13 with the LSM enabled)")
    handled, scoped = _rights(abi)
    attr = _RulesetAttr(handled, 0, scoped)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else 16  # the struct grew with `scoped` in ABI 6
    fd = _libc.syscall(_CREATE_RULESET, ctypes.byref(attr), size, 0)
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"landlock_create_ruleset: {os.strerror(code)}")
    try:
        read = EXECUTE | READ_FILE | READ_DIR
        for path in ("/",) if read_anywhere else (*READ_ONLY, *extra_read_only):
            _allow(fd, path, read)
        for top in () if read_anywhere else WORLD_READABLE_ONLY:
            for path in _world_readable(top):
                _allow(fd, path, read)
        for device in DEVICES:
            _allow(fd, device, READ_FILE | WRITE_FILE | (handled & TRUNCATE))
        for path in writable:
            _allow(fd, path, handled & ~IOCTL_DEV)
    except OSError:
        os.close(fd)
        raise
    return fd


def _world_readable(top: str) -> list[str]:
    """The fewest paths covering everything beneath `top` that every user may read: `top` itself if all of
    it is, else its readable entries, each covered the same way. Symlinks count by their targets."""

    def readable(path: str) -> bool:
        try:
            mode = os.stat(path).st_mode
        except OSError:  # a dangling link
            return False
        return bool(mode & 0o004) and (not stat.S_ISDIR(mode) or bool(mode & 0o001))

    def entries(path: str) -> list[str]:
        try:
            return [os.path.join(path, name) for name in sorted(os.listdir(path))]
        except OSError:
            return []

    covered: list[str] = []
    pending = [top] if readable(top) else []
    while pending:
        path = pending.pop()
        inside = entries(path) if os.path.isdir(path) and not os.path.islink(path) else []
        if all(readable(p) and _all_readable(p, readable, entries) for p in inside):
            covered.append(path)
        else:
            pending.extend(p for p in inside if readable(p))
    return covered


def _all_readable(path: str, readable: Any, entries: Any) -> bool:
    """Whether everything beneath `path` (not following links into other folders) is world-readable."""
    stack = [path]
    while stack:
        current = stack.pop()
        if not readable(current):
            return False
        if os.path.isdir(current) and not os.path.islink(current):
            stack.extend(entries(current))
    return True


def _allow(ruleset: int, path: str, access: int) -> None:
    try:
        parent = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:  # /lib32 and the like, absent on many machines
        return
    try:
        directory = os.path.isdir(path)
        rule = _PathBeneathAttr(access if directory else access & (EXECUTE | READ_FILE | WRITE_FILE), parent)
        if _libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"landlock_add_rule({path}): {os.strerror(code)}")
    finally:
        os.close(parent)


def restrict(ruleset: int) -> None:
    """Confine this process and all it starts to the ruleset (needs no_new_privs or CAP_SYS_ADMIN)."""
    if _libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"landlock_restrict_self: {os.strerror(code)}")
