"""The seccomp filter: what it refuses, and the ordinary things programs do that must keep working.

Each row runs in a forked process that installs the filter (after no_new_privs, as a sandboxed child
does) and reports whether the operation succeeded. The sandbox-level attacks are in the adversarial table.
"""

from __future__ import annotations

import ctypes
import os

import pytest
from execrl.harness.sandbox import syscall_filter

PR_SET_NO_NEW_PRIVS = 38
try:
    FILTER = syscall_filter.Filter(syscall_filter.build())
except OSError as exc:  # no libseccomp on this machine: the sandbox reports seccomp off, loudly
    pytest.skip(f"cannot build the seccomp filter here: {exc}", allow_module_level=True)


def _succeeds_under_filter(operation: str) -> bool:
    """Run `operation` (Python source, raises on failure) in a forked child under the filter."""
    pid = os.fork()
    if pid == 0:
        try:
            ctypes.CDLL(None).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            FILTER.install()
            exec(operation, {})
            os._exit(0)
        except BaseException:  # noqa: BLE001 - any failure is the answer
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0


STILL_WORKS = [
    ("a thread (glibc falls back from clone3 to clone)",
     "import threading\nt = threading.Thread(target=lambda: None)\nt.start()\nt.join()"),
    ("a subprocess", "import subprocess\nsubprocess.run(['true'], check=True)"),
    ("os.fork", "import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nassert os.waitpid(pid, 0)[1] == 0"),
    ("a thread pool", "from concurrent.futures import ThreadPoolExecutor\n"
                      "assert list(ThreadPoolExecutor(2).map(abs, [-1, -2])) == [1, 2]"),
    ("an asyncio event loop (epoll, eventfd)", "import asyncio\nasyncio.run(asyncio.sleep(0))"),
    ("a unix socket pair", "import socket\na, b = socket.socketpair()\na.sendall(b'x')\nassert b.recv(1) == b'x'"),
    ("a unix datagram socket bound in the current folder (multiprocessing's listeners)",
     "import os, socket, tempfile\nd = tempfile.mkdtemp()\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
     "s.bind(d + '/s')\ns.close()\nos.unlink(d + '/s')\nos.rmdir(d)"),
    ("mmap and getrandom", "import mmap, os\nmmap.mmap(-1, 4096).close()\nassert len(os.urandom(8)) == 8"),
    ("a pipe and select",
     "import os, select\nr, w = os.pipe()\nos.write(w, b'x')\nassert select.select([r], [], [], 1)[0]"),
]  # fmt: skip

REFUSED = [
    # IP sockets: their counters in the zygote's network namespace (/proc/self/net/snmp) outlive a program.
    ("a TCP socket", "import socket\nsocket.socket().close()"),
    ("a UDP socket", "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()"),
    ("an IPv6 socket", "import socket\nsocket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()"),
    ("socket(AF_INET) through a raw syscall",
     "import ctypes, os\nnr = {'x86_64': 41, 'aarch64': 198}[os.uname().machine]\n"
     "assert ctypes.CDLL(None).syscall(nr, 2, 1, 0) >= 0"),
    ("an AF_VSOCK socket (the hypervisor, past the network namespace)",
     "import socket\nsocket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).close()"),
    ("an AF_NETLINK socket", "import socket\nsocket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()"),
    ("socket() with the family in the upper bits of the register",
     "import ctypes, os\nnr = {'x86_64': 41, 'aarch64': 198}[os.uname().machine]\n"
     "assert ctypes.CDLL(None).syscall(nr, ctypes.c_long((1 << 32) | 40), 1, 0) >= 0"),
    ("unshare(CLONE_NEWUSER)", "import ctypes\nassert ctypes.CDLL(None).unshare(0x10000000) == 0"),
    ("unshare(CLONE_NEWNET)", "import ctypes\nassert ctypes.CDLL(None).unshare(0x40000000) == 0"),
    ("setns into its own UTS namespace",
     "import ctypes, os\nassert ctypes.CDLL(None).setns(os.open('/proc/self/ns/uts', os.O_RDONLY), 0) == 0"),
    ("ptrace(PTRACE_TRACEME)", "import ctypes\nassert ctypes.CDLL(None).ptrace(0, 0, 0, 0) == 0"),
    ("io_uring_setup",
     "import ctypes\nassert ctypes.CDLL(None).syscall(425, 4, ctypes.create_string_buffer(120)) >= 0"),
]  # fmt: skip


def test_the_filter_is_whole_bpf_instructions() -> None:
    program = syscall_filter.build()
    assert program and len(program) % 8 == 0


@pytest.mark.parametrize("operation", [r[1] for r in STILL_WORKS], ids=[r[0] for r in STILL_WORKS])
def test_ordinary_programs_keep_working(operation: str) -> None:
    assert _succeeds_under_filter(operation)


@pytest.mark.parametrize("operation", [r[1] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused_operations_fail_under_the_filter_and_work_without_it(operation: str) -> None:
    assert not _succeeds_under_filter(operation)
    pid = os.fork()  # the same operation without the filter: it must be the filter that says no
    if pid == 0:
        try:
            exec(operation, {})
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    if os.waitpid(pid, 0)[1] != 0:
        pytest.skip("this machine refuses it even without the filter (no root, or no such kernel feature)")
