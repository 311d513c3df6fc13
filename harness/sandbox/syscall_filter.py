"""A seccomp filter for sandboxed children, built once per zygote with libseccomp, installed per child.

Namespaces, rlimits and the uid drop contain what a program can reach; the kernel itself is still its
whole syscall surface. This filter refuses (EPERM) the syscalls a Python program under test has no use
for and that kernel exploits and escapes lean on: tracing other processes, mounting, making or entering
namespaces (`unshare`, `setns`, `clone` with a namespace flag), the BPF, perf, io_uring, userfaultfd and
keyring interfaces, module and kexec loading, handle-based opens, and the like. `clone3` answers ENOSYS:
its flags sit in a struct a filter cannot read, and glibc then falls back to `clone`, which is checked.
Sockets of any family but AF_UNIX are refused too (see `SOCKET_FAMILIES`). Everything else is allowed: a
deny list keeps ordinary programs (threads, subprocesses, multiprocessing's pipes and unix sockets) working.

The filter comes from libseccomp, the system's C library (`libseccomp.so.2`, Debian's libseccomp2),
called through ctypes: it resolves syscall names for the machine's architecture and emits the BPF,
including the checks that kill calls made through another ABI (i386 `int 0x80`, x32). The zygote asks
for the BPF once (`build`); a child installs it after `no_new_privs` (`install`) with one prctl.

Stdlib only: the zygote imports this module before the repository is hidden from it.
"""

from __future__ import annotations

import ctypes
import errno
import os

DENIED = (
    # other processes' memory and state
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # mounts and namespaces (clone's namespace flags are refused below)
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount",
    "fspick", "mount_setattr", "unshare", "setns",
    # big kernel attack surfaces a test program never needs
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key", "personality",
    # the machine's own administration
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon",
    "swapoff", "acct", "quotactl", "quotactl_fd", "syslog", "vhangup", "iopl", "ioperm",
    # files by handle, around the mount namespace's view
    "open_by_handle_at", "name_to_handle_at", "lookup_dcookie",
)  # fmt: skip
"""Syscalls refused with EPERM (names unknown on this architecture are skipped)."""

NAMESPACE_FLAGS = {
    "CLONE_NEWTIME": 0x00000080, "CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000, "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000, "CLONE_NEWNET": 0x40000000,
}  # fmt: skip
"""`clone` with any of these in its flags (argument 0 on x86_64 and aarch64) is refused."""

SOCKET_FAMILIES = {"AF_UNIX": 1}
"""The only address family `socket` and `socketpair` may use (EAFNOSUPPORT otherwise): unix sockets, which
multiprocessing and asyncio need. Others reach past the network namespace (AF_VSOCK talks to the
hypervisor, AF_NETLINK to the kernel), or, as AF_INET and AF_INET6 do, move counters that every child of
the zygote shares in its network namespace and reads in /proc/self/net (a packet the dead loopback refuses
still counts in `snmp`'s OutNoRoutes): a mark from one program to the next. A network namespace per program
would give each its own counters, but costs about 0.3 ms of CPU per program (measured, ~10% of a
HumanEval sample), and there is no network to use anyway."""

_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_CMP_EQ, _SCMP_CMP_GT, _SCMP_CMP_MASKED_EQ = 4, 6, 7
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_BPF_INSTRUCTION = 8
"""sizeof(struct sock_filter)."""


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)  # SCMP_ACT_ERRNO(code)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]  # fmt: skip


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _libseccomp() -> ctypes.CDLL:
    # By soname, not ctypes.util.find_library: that imports subprocess and with it threading, whose
    # after-fork hook would run Python code in every child (see execrl.harness.sandbox.child.PRELOAD).
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as exc:
        raise OSError(errno.ENOENT, f"libseccomp not found ({exc}); install libseccomp2") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]  # fmt: skip
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


def build() -> bytes:
    """The filter as BPF instructions for this machine; OSError if libseccomp is missing or refuses."""
    lib = _libseccomp()
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        raise OSError(errno.ENOMEM, "seccomp_init failed")
    try:
        for name in DENIED:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:  # not a syscall on this architecture
                continue
            _add(lib, ctx, _errno_action(errno.EPERM), number, [])
        clone = lib.seccomp_syscall_resolve_name(b"clone")
        for flag in NAMESPACE_FLAGS.values():
            _add(lib, ctx, _errno_action(errno.EPERM), clone, [_ArgCmp(0, _SCMP_CMP_MASKED_EQ, flag, flag)])
        families = sorted(SOCKET_FAMILIES.values())  # refuse every family below the largest allowed one but
        refused = [_ArgCmp(0, _SCMP_CMP_GT, families[-1], 0)] + [  # those allowed, and every family above it
            _ArgCmp(0, _SCMP_CMP_EQ, family, 0) for family in range(families[-1]) if family not in families
        ]
        for name in (b"socket", b"socketpair"):
            number = lib.seccomp_syscall_resolve_name(name)
            for rule in refused:
                _add(lib, ctx, _errno_action(errno.EAFNOSUPPORT), number, [rule])
        clone3 = lib.seccomp_syscall_resolve_name(b"clone3")
        if clone3 >= 0:
            _add(lib, ctx, _errno_action(errno.ENOSYS), clone3, [])
        return _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


def _add(lib: ctypes.CDLL, ctx: int, action: int, number: int, args: list[_ArgCmp]) -> None:
    array = (_ArgCmp * max(1, len(args)))(*args)
    result = lib.seccomp_rule_add_array(ctx, action, number, len(args), array)
    if result != 0:
        raise OSError(-result, f"seccomp_rule_add({number}): {os.strerror(-result)}")


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    read, write = os.pipe()
    try:
        result = lib.seccomp_export_bpf(ctx, write)
        os.close(write)
        write = -1
        if result != 0:
            raise OSError(-result, f"seccomp_export_bpf: {os.strerror(-result)}")
        chunks = []
        while chunk := os.read(read, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)
    program = b"".join(chunks)
    if not program or len(program) % _BPF_INSTRUCTION:
        raise OSError(errno.EINVAL, f"seccomp_export_bpf wrote {len(program)} bytes")
    return program


class Filter:
    """A built filter, ready to install in a child (the buffers live in the zygote's memory)."""

    def __init__(self, program: bytes) -> None:
        self._buffer = ctypes.create_string_buffer(program, len(program))
        self._prog = _SockFprog(len(program) // _BPF_INSTRUCTION, ctypes.addressof(self._buffer))
        self._prctl = ctypes.CDLL(None, use_errno=True).prctl

    def install(self) -> None:
        """Apply to this process and every process it starts (needs `no_new_privs` or CAP_SYS_ADMIN)."""
        if self._prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(self._prog), 0, 0) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"prctl(PR_SET_SECCOMP): {os.strerror(code)}")
