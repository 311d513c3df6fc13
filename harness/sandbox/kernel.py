"""Kernel primitives of the sandbox: namespaces, mounts, capabilities, through libc (ctypes).

The zygote (`execrl.harness.sandbox.child`) uses these to build its confined world once, and each child to confine
itself: a private mount namespace with a read-only root and hidden folders (`setup_mounts`), a fresh pid
namespace per child from a single fork (`fork_in_new_pid_namespace`), a user namespace of its own when not
root (`enter_user_namespace`), and capabilities cleared (`drop_capabilities`). Constants are the x86_64 and
aarch64 values (they agree). Stdlib only: the zygote imports this before the repository is hidden from it.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC = 0x00020000, 0x20000000, 0x40000000, 0x08000000
SCRATCH_INODES = 16384
"""Files and folders the slot's scratch tmpfs may hold, so removing them stays quick."""
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18,
)  # fmt: skip
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 24, 28, 36, 38
SECBIT_NOROOT, SECBIT_NOROOT_LOCKED = 1, 2
CLONE_NEWUSER = 0x10000000
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
SYS_MOUNT_SETATTR, AT_RECURSIVE, MOUNT_ATTR_RDONLY, MNT_DETACH = 442, 0x8000, 1, 2  # x86_64 and aarch64 share 442
ALWAYS_HIDDEN = ("/root", "/home", "/run", "/var/tmp")
SHM, SHM_OPTIONS = "/dev/shm", "size=16m,nr_inodes=1024,mode=1777"
"""A private tmpfs for POSIX shared memory and semaphores (multiprocessing needs them), emptied after each
program like the scratch dir."""

libc = ctypes.CDLL(None, use_errno=True)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]  # fmt: skip


def check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def setup_mounts(hidden: list[str], scratch_bytes: int, scratch: str) -> None:
    """Private mount namespace: root read-only, the rest hidden, and the only writable place the
    `scratch` dir: a tmpfs of its own on a read-only /tmp (without root the child owns /tmp's tmpfs, so
    only the mount flag keeps it from leaving files there for the next program)."""
    check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    check(libc.syscall(SYS_MOUNT_SETATTR, -100, b"/", AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr)),
           "mount_setattr(/, RDONLY, AT_RECURSIVE)")  # fmt: skip
    # The stdlib may live under a hidden dir (pyenv under /root): keep a handle to bind it back.
    stdlib = os.path.dirname(os.__file__)
    stdlib_fd = os.open(stdlib, os.O_PATH)
    flags = MS_NOSUID | MS_NODEV
    mount("tmpfs", "/tmp", "tmpfs", flags, "size=64k,mode=0755")
    os.mkdir(scratch, 0o700)
    mount(None, "/tmp", None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
    mount("tmpfs", scratch, "tmpfs", flags, scratch_options(scratch_bytes))
    targets = sorted({os.path.realpath(p) for p in (*ALWAYS_HIDDEN, *hidden) if os.path.isdir(p)}, key=len)
    done: list[str] = []
    for path in targets:
        if any(path == d or path.startswith(d + "/") for d in done):
            continue
        mount("tmpfs", path, "tmpfs", flags | MS_NOEXEC, "size=64k,mode=0755")
        if stdlib == path or stdlib.startswith(path + "/"):
            os.makedirs(stdlib, exist_ok=True)
            mount(f"/proc/self/fd/{stdlib_fd}", stdlib, None, MS_BIND | MS_REC)
            mount(None, stdlib, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
        mount(None, path, None, MS_REMOUNT | MS_RDONLY | flags | MS_NOEXEC)
        done.append(path)
    os.close(stdlib_fd)
    if os.path.isdir(SHM):
        mount("tmpfs", SHM, "tmpfs", flags | MS_NOEXEC, SHM_OPTIONS)
    # A procfs of our own where the child sees only its own uid's processes (kernel >= 5.8).
    mount("proc", "/proc", "proc", flags | MS_NOEXEC, "hidepid=invisible")


def scratch_options(scratch_bytes: int) -> str:
    return f"size={scratch_bytes},nr_inodes={SCRATCH_INODES},mode=0700"


def fork_in_new_pid_namespace(own_ns: int) -> int:
    """`os.fork()` whose child is the init (pid 1) of a fresh pid namespace; one fork, not two.

    unshare(CLONE_NEWPID) only sets where the *next* child goes, and works once per setting, so
    first point that back at our own namespace (setns), then unshare, fork, and point it back again
    (a later fork of ours must not land in the dead namespace).
    """
    check(libc.setns(own_ns, CLONE_NEWPID), "setns(CLONE_NEWPID)")
    check(libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
    pid = os.fork()
    if pid != 0:
        check(libc.setns(own_ns, CLONE_NEWPID), "setns(CLONE_NEWPID)")
    return pid


def probe_pid_namespace(own_ns: int) -> bool:
    try:
        pid = fork_in_new_pid_namespace(own_ns)
    except OSError:
        return False
    if pid == 0:
        os._exit(0 if os.getpid() == 1 else 1)
    return os.waitpid(pid, 0)[1] == 0


def enter_user_namespace() -> None:
    """Without root: become root of a new user namespace (mapped to our own uid and gid only), so the
    network, mount, pid and IPC namespaces can be made, then become the init of a new pid namespace
    owned by it (a pid namespace the zygote may point its children at, and mount a procfs of).

    The process the judge started stays outside as a waiter and exits with the zygote; the zygote dies
    with it (parent-death signal). Children later give up every capability (`drop_capabilities`);
    here the bounding set is emptied and `SECBIT_NOROOT` locked, so no exec can hand them back.
    """
    make_user_namespace()
    check(libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
    pid = os.fork()
    if pid != 0:  # the waiter: hold nothing (the judge must see EOF when the zygote dies), leave with it
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        status = os.waitpid(pid, 0)[1]
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)
    check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last_cap = int(f.read())
    for cap in range(last_cap + 1):
        check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"prctl(PR_CAPBSET_DROP, {cap})")
    check(libc.prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED, 0, 0, 0), "prctl(PR_SET_SECUREBITS)")


def make_user_namespace() -> None:
    """Enter a new user namespace where we are root, mapped to our own uid and gid outside (OSError if the
    kernel refuses unprivileged user namespaces)."""
    uid, gid = os.geteuid(), os.getegid()
    check(libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """Clear every capability of this process (capset(2) with all sets empty, version 3: 64 bits)."""
    header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    check(libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset(all empty)")


def empty_by_walking(top: str) -> bool:
    """Delete everything below `top` by moving through it with chdir: no recursion (shutil.rmtree
    recurses, so ~1,200 nested folders crash it) and no path longer than one name (PATH_MAX). True if
    `top` is empty afterwards."""
    below: list[str] = []  # the folders between `top` and the cwd
    try:
        os.chdir(top)
        while True:
            folder = None
            with os.scandir(".") as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        folder = entry.name
                        break
                    os.unlink(entry.name)
            if folder is not None:
                os.chmod(folder, 0o700)  # the program may have locked it
                os.chdir(folder)
                below.append(folder)
            elif below:
                os.chdir("..")
                os.rmdir(below.pop())
            else:
                break
    except OSError:
        pass
    finally:
        os.chdir("/")
    with os.scandir(top) as entries:
        return next(entries, None) is None
