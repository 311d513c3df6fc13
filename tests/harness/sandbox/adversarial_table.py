"""The adversarial table: one attack per row, covering every threat in ARCHITECTURE.md's sandbox threat
model. Used by test_adversarial.py (as root) and test_degraded.py (as an unprivileged user, run by the
system python: so this module imports no pytest and nothing outside the stdlib and the project).

Probe-style rows return the right answer only if the attack worked (`a + b if worked else a - b`),
so a sandbox hole shows up as a pass.
"""

from __future__ import annotations

import os
import secrets
import textwrap
from pathlib import Path

from execrl.benchmarks.problem import Problem, TestKind
from execrl.harness.records import Limits, Verdict
from execrl.harness.sandbox.isolation import REPO_ROOT

FULL_ISOLATION = {"net": True, "mount": True, "pid": True, "uid": True, "seccomp": True, "landlock": True,
                  "memory_cgroup": True, "pids_cgroup": True}  # fmt: skip
"""Every protection, as a root set-up on a kernel with Landlock and libseccomp reports it."""
LIMITS = Limits(timeout=1.0, program_timeout=6.0, memory=512 * 1024**2, retry_timeouts=False)
SECRET = os.environ.get("EXECRL_ADVERSARIAL_TABLE_SECRET") or "s3cret-" + secrets.token_hex(8)
"""Random per run; a run as another user is handed the caller's, so both sides name the same files."""
HOME_SECRET = Path.home() / f".execrl-adversarial-{SECRET}"
REPO_SECRET = Path(REPO_ROOT) / ".venv" / f"execrl-adversarial-{SECRET}"
OPEN_SECRET = Path("/opt") / f"execrl-adversarial-{SECRET}"
"""World-readable and in no hidden folder: only Landlock's allow-list keeps it from a program."""
OUTSIDE = [f"{REPO_ROOT}/pwned-{SECRET}", f"/tmp/pwned-{SECRET}", f"{Path.home()}/pwned-{SECRET}",
           f"/dev/shm/pwned-{SECRET}", f"/var/tmp/pwned-{SECRET}"]  # fmt: skip

ADD = Problem(
    task_id="adv/add", benchmark="humaneval", prompt="def add(a, b):\n", test_kind=TestKind.ASSERT,
    entry_point="add",
    check_code=textwrap.dedent("""
        def check(candidate):
            assert candidate(1, 2) == 3
            assert abs(candidate(2, 2) - 4) < 1e-9
            assert isinstance(candidate(0, 0), int)
            assert candidate(5, 5)
    """),
)  # fmt: skip
MBPP = Problem(
    task_id="adv/mbpp", benchmark="mbpp", prompt="", test_kind=TestKind.ASSERT, entry_point="add",
    tests=("assert math.isclose(add(1, 2), 3)", "assert abs(add(2, 2) - 4) < 1e-9", "assert set([add(1, 1)]) == {2}"),
)  # fmt: skip
STDIO = Problem(task_id="adv/stdio", benchmark="apps", prompt="", test_kind=TestKind.STDIO,
                inputs=("1 2\n", "5 5\n"), outputs=("3\n", "10\n"))  # fmt: skip
MAPPED = Problem(
    task_id="adv/mapped", benchmark="humaneval", prompt="def add(a, b):\n", test_kind=TestKind.ASSERT,
    entry_point="add",
    check_code=textwrap.dedent("""
        def check(candidate):
            for r in map(candidate, [1, 2], [2, 3]):
                assert r == 99
    """),
)  # fmt: skip
BIG_STDIO = Problem(task_id="adv/big-stdio", benchmark="apps", prompt="", test_kind=TestKind.STDIO,
                    inputs=("999999999 7\n",), outputs=("1000000006\n",))  # fmt: skip
MANY = Problem(
    task_id="adv/many", benchmark="humaneval", prompt="def add(a, b):\n", test_kind=TestKind.ASSERT,
    entry_point="add",
    check_code="def check(candidate):\n" + "".join(f"    assert candidate({i}, 1) == {i + 1}\n" for i in range(150)),
)  # fmt: skip
"""150 small tests: their requests fill more than a page of the child's request pipe."""
HONEST = {"adv/many": "def add(a, b):\n    return a + b\n",
          "adv/add": "def add(a, b):\n    return a + b\n", "adv/mbpp": "def add(a, b):\n    return a + b\n",
          "adv/stdio": "a, b = map(int, input().split())\nprint(a + b)\n",
          "adv/mapped": "def add(a, b):\n    return 99\n",
          "adv/big-stdio": "a, b = map(int, input().split())\nprint(a + b)\n"}  # fmt: skip
# A reply frame written straight to the RPC fd: a set of ints that all hash to 0 (k * (2**61 - 1)), which
# would take the judge minutes to build, outside every deadline.
COLLIDING_REPLY = (
    "import os, json, time\n"
    "def add(a, b):\n"
    "    body = json.dumps({'ok': {'S': [{'I': hex(k * (2**61 - 1))} for k in range(1, 60000)]}}).encode()\n"
    "    os.write(4, len(body).to_bytes(4, 'big') + body)\n"
    "    time.sleep(100)\n"
)


def probe(attack: str) -> str:
    """A candidate whose `add` is right only if `attack` (code setting `worked`) succeeded."""
    body = textwrap.indent(textwrap.dedent(attack).strip(), "        ")
    return f"def add(a, b):\n    worked = False\n    try:\n{body}\n    except BaseException:\n        pass\n" \
           "    return a + b if worked else a - b\n"  # fmt: skip


ATTACKS = [
    # --- fake success ---
    ("sys.exit(0) before the tests", ADD, "import sys\nsys.exit(0)\n", Verdict.RUNTIME_ERROR),
    ("os._exit(0) before the tests", ADD, "import os\nos._exit(0)\n", Verdict.RUNTIME_ERROR),
    ("os._exit(0) during the tests", ADD, "import os\ndef add(a, b):\n    os._exit(0)\n", Verdict.RUNTIME_ERROR),
    ("atexit handler printing a pass", ADD,
     "import atexit\natexit.register(lambda: print('All tests passed'))\ndef add(a, b):\n    return 0\n",
     Verdict.FAILED),
    ("excepthook swallowing the failure", ADD,
     "import sys\nsys.excepthook = lambda *a: None\ndef add(a, b):\n    raise ValueError\n", Verdict.RUNTIME_ERROR),
    ("printing passed", ADD, "print('passed\\nOK: 4 tests passed')\ndef add(a, b):\n    return None\n",
     Verdict.FAILED),
    ("writing to every inherited fd", ADD,
     "import os\nfor fd in range(0, 64):\n    try:\n        os.write(fd, b'passed\\n')\n    except OSError:\n"
     "        pass\ndef add(a, b):\n    return 0\n", Verdict.RUNTIME_ERROR),
    ("forging an RPC reply frame on the reply pipe", ADD,
     "import os, json\nm = json.dumps({'ok': 3}).encode()\nos.write(4, len(m).to_bytes(4, 'big') + m)\n"
     "def add(a, b):\n    return None\n", Verdict.FAILED),
    # --- fool the comparison ---
    ("always-true __eq__", ADD,
     "class A:\n    __eq__ = lambda s, o: True\n    __bool__ = lambda s: True\n    __lt__ = lambda s, o: True\n"
     "    __sub__ = lambda s, o: 0\ndef add(a, b):\n    return A()\n", Verdict.FAILED),
    ("int subclass with rigged __eq__", ADD,
     "class I(int):\n    def __eq__(s, o): return True\n    __hash__ = int.__hash__\n"
     "def add(a, b):\n    return I(0)\n",
     Verdict.FAILED),
    ("patching builtins abs and isinstance", ADD,
     "import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.isinstance = lambda *a: True\n"
     "def add(a, b):\n    return 0.5\n", Verdict.RUNTIME_ERROR),  # the child's own server breaks
    ("patching math.isclose and shadowing abs and set (mbpp)", MBPP,
     "import math\nmath.isclose = lambda *a, **k: True\ndef abs(x):\n    return 0\ndef set(x):\n    return {2}\n"
     "def add(a, b):\n    return None\n", Verdict.FAILED),
    ("peeking at the caller's frame", ADD,
     probe("import sys\nf = sys._getframe(1)\nwhile f:\n    worked = worked or 'check' in f.f_code.co_name\n"
           "    f = f.f_back\n"), Verdict.FAILED),
    ("gc peeking for the test code", ADD,
     probe("import gc\nworked = any(isinstance(o, str) and 'candidate(1, 2) == 3' in o for o in gc.get_objects())"),
     Verdict.FAILED),
    ("redefining check", ADD, "def check(candidate):\n    pass\ndef add(a, b):\n    return None\n", Verdict.FAILED),
    ("open string swallowing the tests", ADD, "def add(a, b):\n    return None\nx = '''\n", Verdict.SYNTAX_ERROR),
    # --- escape or abuse ---
    ("loopback connection to the judge's listener", ADD,
     probe("import socket\nsocket.create_connection(('127.0.0.1', PORT), timeout=0.5)\nworked = True"),
     Verdict.FAILED),
    ("outside network", ADD, probe("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=0.5)\n"
                                   "worked = True"), Verdict.FAILED),
    ("writing outside scratch", ADD,
     probe("for p in OUTSIDE:\n    if p.startswith('/dev/shm/'):  # a private tmpfs, emptied after each program\n"
           "        continue\n    try:\n        open(p, 'w').write('x')\n        worked = True\n"
           "    except OSError:\n        pass"), Verdict.FAILED),
    ("reading a secret from the environment", ADD,
     probe("import os\nworked = any(SECRET in v for v in os.environ.values())"), Verdict.FAILED),
    ("reading other processes' environ and cmdline", ADD,
     probe("import os\nfor pid in os.listdir('/proc'):\n    for f in ('environ', 'cmdline'):\n        try:\n"
           "            worked = worked or SECRET in open(f'/proc/{pid}/{f}', errors='replace').read()\n"
           "        except OSError:\n            pass"), Verdict.FAILED),
    ("reading a world-readable file outside the system folders (in no hidden folder)", ADD,
     probe("worked = SECRET in open(OPEN_SECRET).read()"), Verdict.FAILED),
    ("reading the home directory", ADD, probe("worked = SECRET in open(HOME_SECRET).read()"), Verdict.FAILED),
    ("reading test data in the checkout", ADD, probe("worked = SECRET in open(REPO_SECRET).read()"), Verdict.FAILED),
    ("reading the test data dir", ADD, probe("worked = SECRET in open(DATA_SECRET).read()"), Verdict.FAILED),
    ("killing the parent", ADD, probe("import os\nos.kill(os.getppid(), 9)\nworked = os.getppid() > 0"),
     Verdict.FAILED),
    ("killing the process group and every reachable process", ADD,
     "import os, signal\nfor kill in (lambda: os.killpg(0, 9), lambda: os.kill(-1, 9), lambda: os.kill(0, 9)):\n"
     "    try:\n        kill()\n    except OSError:\n        pass\ndef add(a, b):\n    return 0\n",
     Verdict.FAILED),
    ("fork bomb", ADD, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
     Verdict.TIMEOUT),
    ("memory bomb", ADD, "x = bytearray(8 * 1024**3)\n", Verdict.MEMORY_EXCEEDED),
    ("gradual memory bomb", ADD, "x = []\nwhile True:\n    x.append(' ' * 10**8)\n", Verdict.MEMORY_EXCEEDED),
    ("disk bomb", ADD, "with open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * 10**6)\n",
     Verdict.RUNTIME_ERROR),
    ("output bomb on stdout (stdio)", STDIO, "while True:\n    print('x' * 10**5)\n", Verdict.OUTPUT_EXCEEDED),
    ("raising its own rlimits", ADD,
     probe("import resource\nresource.setrlimit(resource.RLIMIT_NPROC, (10**6, 10**6))\nworked = True"),
     Verdict.FAILED),
    ("ignoring SIGTERM and sleeping forever", ADD,
     "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(10**6)\n", Verdict.TIMEOUT),
    ("leaving a daemon behind", ADD,
     "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(10**6)\n"
     "    os._exit(0)\ndef add(a, b):\n    return 0\n", Verdict.FAILED),
    ("segfault via ctypes", ADD, "import ctypes\nctypes.string_at(0)\n", Verdict.RUNTIME_ERROR),
    ("reading stdin for test data", ADD, probe("import sys\nworked = len(sys.stdin.read()) > 0"), Verdict.FAILED),
    ("exit(0) without output (stdio)", STDIO, "import os\nos._exit(0)\n", Verdict.RUNTIME_ERROR),
    ("reading the expected output from the data dir (stdio)", STDIO,
     "print(open(DATA_SECRET).read())\n", Verdict.RUNTIME_ERROR),
    # --- found by a red-team review ---
    ("a near-miss integer within float tolerance (stdio)", BIG_STDIO,
     "a, b = map(int, input().split())\nprint(a)\n", Verdict.FAILED),
    ("5,000 digits on stdout, past int()'s limit (turning a wrong answer into a sandbox_error)", STDIO,
     "print('1' * 5000)\n", Verdict.FAILED),
    ("StopIteration ending the check's map() loop early", MAPPED,
     "def add(a, b):\n    raise StopIteration\n", Verdict.RUNTIME_ERROR),
    ("a reply whose set keys all collide in hash (stalling the judge)", ADD, COLLIDING_REPLY, Verdict.RUNTIME_ERROR),
    ("a reply set whose keys half collide in hash and half are distinct (stalling the judge)", ADD,
     COLLIDING_REPLY.replace("range(1, 60000)]", "range(1, 60000)] + list(range(1, 60001))"), Verdict.RUNTIME_ERROR),
    ("a folder nested 1,200 deep (crashing the scratch clean-up into a sandbox_error)", ADD,
     "import os\nfor _ in range(1200):\n    os.mkdir('d')\n    os.chdir('d')\ndef add(a, b):\n    return 0\n",
     Verdict.FAILED),
    ("a request pipe shrunk to one page and never read, answered by forged replies (hanging the judge's write)",
     MANY, "import fcntl, json, os, time\nfcntl.fcntl(3, 1031, 4096)  # F_SETPIPE_SZ\n"
     "m = json.dumps({'ok': None}).encode()\nos.write(4, (len(m).to_bytes(4, 'big') + m) * 400)\n"
     "time.sleep(10**6)\n", Verdict.TIMEOUT),
    # --- the kernel's attack surface (refused by the seccomp filter; each worked before it) ---
    ("ptrace-attaching to a process of its own (to read or rewrite its memory)", ADD,
     probe("import ctypes, os, time\nlibc = ctypes.CDLL(None, use_errno=True)\n"
           "libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: a uid drop clears it, the program may set it back\n"
           "pid = os.fork()\nif pid == 0:\n    time.sleep(5)\n    os._exit(0)\n"
           "worked = libc.ptrace(16, pid, 0, 0) == 0\nos.kill(pid, 9)\nos.waitpid(pid, 0)"), Verdict.FAILED),
    ("unshare(CLONE_NEWUSER): capabilities in a user namespace of its own", ADD,
     probe("import ctypes, os\npid = os.fork()\nif pid == 0:\n"
           "    os._exit(0 if ctypes.CDLL(None).unshare(0x10000000) == 0 else 1)\n"
           "worked = os.waitpid(pid, 0)[1] == 0"), Verdict.FAILED),
    ("a raw clone() with CLONE_NEWUSER|CLONE_NEWNS", ADD,
     probe("import ctypes, os\nnr = {'x86_64': 56, 'aarch64': 220}[os.uname().machine]\n"
           "pid = ctypes.CDLL(None).syscall(nr, 0x10000000 | 0x00020000 | 17, 0, 0, 0, 0)\nif pid == 0:\n"
           "    os._exit(0)\nworked = pid > 0\nif worked:\n    os.waitpid(pid, 0)"), Verdict.FAILED),
    ("io_uring_setup (a large kernel attack surface)", ADD,
     probe("import ctypes\nparams = ctypes.create_string_buffer(120)\n"
           "worked = ctypes.CDLL(None).syscall(425, 4, params) >= 0"), Verdict.FAILED),
    ("an AF_VSOCK socket, which reaches the hypervisor whatever the network namespace", ADD,
     probe("import socket\ns = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)\n"
           "s.bind((socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY))\ns.listen(1)\nworked = True\ns.close()"),
     Verdict.FAILED),
    ("add_key into the kernel keyring", ADD,
     probe("import ctypes, os\nnr = {'x86_64': 248, 'aarch64': 217}[os.uname().machine]\n"
           "worked = ctypes.CDLL(None).syscall(nr, b'user', b'execrl', b'data', 4, -2) >= 0"), Verdict.FAILED),
]  # fmt: skip


def with_names(program: str, port: int, data_secret: str) -> str:
    """`program` with the names the attacks use (PORT, OUTSIDE, SECRET, ...) defined in front."""
    names = {"PORT": port, "OUTSIDE": OUTSIDE, "SECRET": SECRET, "HOME_SECRET": str(HOME_SECRET),
             "REPO_SECRET": str(REPO_SECRET), "DATA_SECRET": data_secret, "OPEN_SECRET": str(OPEN_SECRET)}  # fmt: skip
    return "".join(f"{k} = {v!r}\n" for k, v in names.items()) + program


# --- cgroups (issue 17 item 5): memory per program, not per process; tasks per program ---
# Each stays under the per-process address-space limit (RLIMIT_AS, LIMITS.memory = 512 MB) and together goes
# well past the slot's memory cgroup (LIMITS.memory + cgroups.HEADROOM = 768 MB), so only the cgroup stops it;
# its OOM killer ends that program alone. Probe style: right only if every allocation succeeded. Without a
# memory cgroup (rootless without a delegated one) these rows would pass: test_degraded.py skips them there.
HOLD_TOGETHER = """
import os
def hold_together(n, allocate):
    # n forks, each runs allocate() and holds what it returns until all n have: the memory is resident at once
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            try:
                held = allocate()
                os.write(ready_w, b'.')
                os.read(go_r, 1)  # until the parent closes its end
                os._exit(0 if held is not None else 1)
            except BaseException:
                os._exit(1)
        pids.append(pid)
    os.close(ready_w)
    got = b''
    while len(got) < n:
        chunk = os.read(ready_r, n)
        if not chunk:
            break
        got += chunk
    os.close(go_w)
    return len(got) == n and all(os.waitpid(p, 0)[1] == 0 for p in pids)
"""
FORKS = HOLD_TOGETHER + "worked = hold_together(FORKS, lambda: bytearray(MB * 1024**2))\n"
THREADS_IN_FORKS = (
    HOLD_TOGETHER
    + """
import threading
def two_threads():
    store = []
    threads = [threading.Thread(target=lambda: store.append(bytearray(150 * 1024**2))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return store if len(store) == 2 else None
worked = hold_together(3, two_threads)
"""
)
FORK_CHAIN = """
import os, time
def grow(depth):  # each process forks the next, then holds 250 MB: a chain of grandchildren, no two siblings
    child = os.fork() if depth > 0 else -1
    if child == 0:
        grow(depth - 1)
    x = bytearray(250 * 1024**2)
    ok = child < 0 or os.waitpid(child, 0)[1] == 0
    if depth < 4:
        os._exit(0 if ok else 1)
    return ok
worked = grow(4)
"""
MEMFD = """
import os
fds = []
for i in range(55):  # 55 x 15 MB of tmpfs pages: files, so no address space, each under RLIMIT_FSIZE (16 MB)
    fd = os.memfd_create(f'm{i}')
    for _ in range(15):
        os.write(fd, bytes(1024**2))
    fds.append(fd)
worked = True
for fd in fds:  # every test calls the probe again
    os.close(fd)
"""
SCRATCH_AND_SHM = (
    HOLD_TOGETHER
    + """
import mmap
# Fill most of the program's tmpfs (scratch and /dev/shm share its 64 MB: pages charged to the writer's
# cgroup, outside RLIMIT_AS unless mapped), then add forks that each stay under the address-space limit.
for path in ('/dev/shm/fill', 'fill0', 'fill1'):  # 15 MB each: under RLIMIT_FSIZE
    with open(path, 'wb') as f:
        for _ in range(15):
            f.write(bytes(1024**2))
with open('/dev/shm/fill', 'r+b') as f:
    shared = mmap.mmap(f.fileno(), 0)
    shared[:] = bytes(len(shared))
worked = hold_together(3, lambda: bytearray(300 * 1024**2))
"""
)
THREAD_BOMB = """
import threading, time
threads = []
while True:  # stopped at LIMITS.processes tasks (RLIMIT_NPROC counts threads, so does the pids cgroup)
    t = threading.Thread(target=time.sleep, args=(30,), daemon=True)
    t.start()
    threads.append(t)
"""
CGROUP_ROWS = [
    ("four forks each under the address-space limit, together past it", ADD,
     probe(FORKS.replace("FORKS", "4").replace("MB", "400")), Verdict.MEMORY_EXCEEDED),
    ("sixteen small forks (64 MB each) past the limit together", ADD,
     probe(FORKS.replace("FORKS", "16").replace("MB", "64")), Verdict.MEMORY_EXCEEDED),
    ("two threads in each of three forks, every process under the limit", ADD, probe(THREADS_IN_FORKS),
     Verdict.MEMORY_EXCEEDED),
    ("a chain of forked grandchildren, 250 MB each", ADD, probe(FORK_CHAIN), Verdict.MEMORY_EXCEEDED),
    ("825 MB in memfd files (tmpfs pages, no address space)", ADD, probe(MEMFD), Verdict.MEMORY_EXCEEDED),
    ("files in scratch and /dev/shm (one mapped) plus forks under the limit", ADD, probe(SCRATCH_AND_SHM),
     Verdict.MEMORY_EXCEEDED),
    ("thread bomb", ADD, THREAD_BOMB, Verdict.RUNTIME_ERROR),
]  # fmt: skip
NEEDS_MEMORY_CGROUP = {row[0] for row in CGROUP_ROWS if row[3] is Verdict.MEMORY_EXCEEDED}
"""Rows only a memory cgroup stops (they pass without one: per-process limits cannot see them)."""
ATTACKS += CGROUP_ROWS
# --- end of cgroups rows ---


# ==== containment (issue 17, items 3 and 4): no way out through unix sockets, no state between programs ====
# Pathname sockets the tests listen on (`UnixListeners`), world-writable, the first and the datagram one in no
# folder the old set-up hid: Landlock does not mediate connect(2) on them and the filter allows AF_UNIX, so
# only a root of the sandbox's own (`kernel.setup_mounts`) keeps them out of reach.
UNIX_STREAM_SOCKETS = [f"/srv/execrl-adversarial-{SECRET}.sock", f"/var/lib/execrl-adversarial-{SECRET}.sock",
                       f"/var/tmp/execrl-adversarial-{SECRET}.sock",
                       f"/tmp/execrl-adversarial-{SECRET}.sock"]  # fmt: skip
UNIX_DGRAM_SOCKET = f"/opt/execrl-adversarial-{SECRET}.dgram"
ABSTRACT_SOCKET = f"\0execrl-adversarial-{SECRET}"


def _connects(path: str) -> str:
    return f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.settimeout(1)\ns.connect({path!r})\nworked = True"


ATTACKS += [
    ("connecting to a world-writable unix socket under /srv", ADD, probe(_connects(UNIX_STREAM_SOCKETS[0])),
     Verdict.FAILED),
    ("connecting to a world-writable unix socket under /var/lib", ADD, probe(_connects(UNIX_STREAM_SOCKETS[1])),
     Verdict.FAILED),
    ("connecting to a world-writable unix socket under /var/tmp", ADD, probe(_connects(UNIX_STREAM_SOCKETS[2])),
     Verdict.FAILED),
    ("connecting to a world-writable unix socket in the host's /tmp", ADD, probe(_connects(UNIX_STREAM_SOCKETS[3])),
     Verdict.FAILED),
    ("sending a datagram to a world-writable unix socket under /opt", ADD,
     probe(f"import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
           f"worked = s.sendto(b'x', {UNIX_DGRAM_SOCKET!r}) == 1"), Verdict.FAILED),
    ("connecting to the host's syslog socket /dev/log (where the host has one)", ADD,
     probe("import socket\nfor kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):\n    try:\n"
           "        socket.socket(socket.AF_UNIX, kind).connect('/dev/log')\n        worked = True\n"
           "    except OSError:\n        pass"), Verdict.FAILED),
    ("connecting through a symlink made in scratch to a socket under /srv", ADD,
     probe(f"import os\nos.symlink({UNIX_STREAM_SOCKETS[0]!r}, 'link')\n" + _connects("link")), Verdict.FAILED),
    ("connecting through /proc/self/root to a socket under /srv", ADD,
     probe(_connects(f"/proc/self/root{UNIX_STREAM_SOCKETS[0]}")), Verdict.FAILED),
    ("connecting to an abstract unix socket the host listens on", ADD, probe(_connects(ABSTRACT_SOCKET)),
     Verdict.FAILED),
    ("walking the file system (breadth first, 0.5 s) for any pathname socket and connecting to each", ADD,
     "import os, socket, stat, time\nWORKED, queue, deadline = False, ['/'], time.monotonic() + 0.5\n"
     "while queue and time.monotonic() < deadline:\n    top = queue.pop(0)\n    try:\n"
     "        entries = list(os.scandir(top))\n    except OSError:\n        continue\n    for e in entries:\n"
     "        try:\n            if e.is_dir(follow_symlinks=False):\n"
     "                if e.path not in ('/usr', '/proc', '/sys'):\n                    queue.append(e.path)\n"
     "            elif stat.S_ISSOCK(e.stat(follow_symlinks=False).st_mode):\n"
     "                s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM if 'dgram' in e.name else 1)\n"
     "                s.settimeout(0.5)\n                s.connect(e.path)\n                WORKED = True\n"
     "        except OSError:\n            pass\ndef add(a, b):\n    return a + b if WORKED else a - b\n",
     Verdict.FAILED),
    ("reading the checkout's and the data dir's paths in /proc/self/mountinfo", ADD,
     probe("import os\nm = open('/proc/self/mountinfo').read()\n"
           "worked = REPO_ROOT in m or os.path.dirname(DATA_SECRET) in m").replace(
         "REPO_ROOT", repr(REPO_ROOT)), Verdict.FAILED),
    ("listing the host's folders in the root (/srv, /opt, /var, /home, /run)", ADD,
     probe("import os\nworked = bool({'srv', 'opt', 'var', 'home', 'run'} & set(os.listdir('/')))"), Verdict.FAILED),
]  # fmt: skip

# Writer/reader pairs, one channel per row: the writer runs, then the reader on the same worker, which is right
# only if it finds the writer's mark. (name, writer, reader); the reader's verdict must be `failed`.
_FORKS = (
    "import os\nfor _ in range(300):\n    pid = os.fork()\n    if pid == 0:\n        os._exit(0)\n"
    "    os.waitpid(pid, 0)\n"
)
_SNMP = ("def counter(path, name):\n    rows = [l.split() for l in open(path) if l.startswith(name.split(':')[0])]\n"
         "    if len(rows[0]) == 2:\n        return int(dict(rows)[name.split(':')[1]])\n"
         "    return int(dict(zip(rows[0], rows[1]))[name.split(':')[1]])\n")  # fmt: skip
CHANNELS = [
    ("inode numbers of an emptied /dev/shm (a tmpfs numbers its inodes per mount)",
     "for i in range(500):\n    open(f'/dev/shm/n{i}', 'w').close()\n",
     probe("import os\nopen('/dev/shm/probe', 'w').close()\nworked = os.stat('/dev/shm/probe').st_ino > 400")),
    ("inode numbers of the scratch dir",
     "for i in range(500):\n    open(f'n{i}', 'w').close()\n",
     probe("import os\nopen('probe', 'w').close()\nworked = os.stat('probe').st_ino > 400")),
    ("an extended attribute on /dev/shm itself",
     "import os\nos.setxattr('/dev/shm', 'user.mark', b'1')\n",
     probe("import os\nworked = 'user.mark' in os.listxattr('/dev/shm')")),
    ("pids the zygote's pid namespace hands out, read as /proc/self", _FORKS,
     probe("import os\nworked = int(os.readlink('/proc/self')) > 250")),
    ("pids the zygote's pid namespace hands out, read in NSpid of /proc/self/status", _FORKS,
     probe("line = [l for l in open('/proc/self/status') if l.startswith('NSpid')][0]\n"
           "worked = int(line.split()[1]) > 250")),
    ("the machine-wide fork counter in /proc/stat, set to a residue by the writer",
     "import os\ndef count():\n"
     "    return int([l for l in open('/proc/stat') if l.startswith('processes')][0].split()[1])\n"
     "while count() % 1000 not in range(500, 520):\n    pid = os.fork()\n    if pid == 0:\n        os._exit(0)\n"
     "    os.waitpid(pid, 0)\n",
     probe("n = int([l for l in open('/proc/stat') if l.startswith('processes')][0].split()[1])\n"
           "worked = n % 1000 in range(500, 700)")),
    ("UDP datagrams the dead network refuses, counted in /proc/net/snmp (OutNoRoutes)",
     "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor _ in range(500):\n    try:\n"
     "        s.sendto(b'x', ('10.11.12.13', 9))\n    except OSError:\n        pass\n",
     probe(_SNMP + "worked = counter('/proc/self/net/snmp', 'Ip:OutNoRoutes') >= 500")),
    ("TCP connects the dead network refuses, counted in /proc/net/snmp",
     "import socket\nfor _ in range(300):\n    try:\n        socket.socket().connect(('127.0.0.1', 9))\n"
     "    except OSError:\n        pass\n",
     probe(_SNMP + "worked = counter('/proc/net/snmp', 'Ip:OutNoRoutes') >= 300")),
    ("IPv6 datagrams counted in /proc/net/snmp6 (Ip6OutNoRoutes)",
     "import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\nfor _ in range(500):\n    try:\n"
     "        s.sendto(b'x', ('2001:db8::1', 9))\n    except OSError:\n        pass\n",
     probe(_SNMP + "worked = counter('/proc/self/net/snmp6', 'Ip6OutNoRoutes:Ip6OutNoRoutes') >= 500")),
    ("unix sockets left in flight for the garbage collector, listed in /proc/net/unix",
     "import socket\nfor _ in range(400):\n    a, b = socket.socketpair()\n"
     "    socket.send_fds(a, [b'x'], [a.fileno(), b.fileno()])\n    a.close(), b.close()\n",
     probe("worked = len(open('/proc/self/net/unix').readlines()) > 200")),
    ("a POSIX message queue",
     "import ctypes\nctypes.CDLL('librt.so.1').mq_open(b'/execrl-mark', 0o100 | 0o2, 0o666, None)\n",
     probe("import ctypes\nworked = ctypes.CDLL('librt.so.1').mq_open(b'/execrl-mark', 0) >= 0")),
]  # fmt: skip

# Honest programs the containment must leave working: (name, program); each must be judged `passed` on ADD.
STILL_WORKS = [
    ("a multiprocessing pool (fork)",
     "import multiprocessing\nwith multiprocessing.get_context('fork').Pool(2) as p:\n"
     "    OK = p.map(abs, [-1, -2]) == [1, 2]\n"),
    ("a multiprocessing manager (a unix socket listener in the scratch dir)",
     "import multiprocessing\nwith multiprocessing.get_context('fork').Manager() as m:\n"
     "    d = m.dict()\n    d['x'] = 1\n    OK = dict(d) == {'x': 1}\n"),
    ("a multiprocessing queue, pipe and lock (a POSIX semaphore in /dev/shm)",
     "import multiprocessing as mp\nctx = mp.get_context('fork')\n"
     "q, (a, b), lock = ctx.Queue(), ctx.Pipe(), ctx.Lock()\n"
     "def work():\n    with lock:\n        q.put(1)\n        b.send(2)\np = ctx.Process(target=work)\np.start()\n"
     "OK = q.get(timeout=5) == 1 and a.recv() == 2\np.join()\n"),
    ("a unix socket server and client in the scratch dir",
     "import os, socket\nserver = socket.socket(socket.AF_UNIX)\nserver.bind('srv.sock')\nserver.listen(1)\n"
     "if os.fork() == 0:\n    c = socket.socket(socket.AF_UNIX)\n    c.connect('srv.sock')\n    c.sendall(b'hi')\n"
     "    os._exit(0)\nconn, _ = server.accept()\nOK = conn.recv(2) == b'hi'\n"),
    ("a subprocess from /bin, and ctypes finding libm through the linker cache",
     "import ctypes.util, subprocess\n"
     "OK = subprocess.run(['sh', '-c', 'echo hi'], capture_output=True).stdout == b'hi\\n' and "
     "bool(ctypes.util.find_library('m'))\n"),
    ("local time, user names and /dev/stdout",
     "import pwd, time\nopen('/dev/stdout', 'w').close()\n"
     "OK = time.localtime().tm_year > 2000 and pwd.getpwuid(0).pw_name == 'root'\n"),
]  # fmt: skip
STILL_WORKS = [
    (name, program + "def add(a, b):\n    return a + b if OK else a - b\n") for name, program in STILL_WORKS
]


class UnixListeners:
    """The sockets the rows above try to reach, listening (world-writable) while the table runs; `touched`
    names those something connected or sent to."""

    def __enter__(self) -> UnixListeners:
        import socket

        self.sockets: list[tuple[str, socket.socket]] = []
        for path, kind in [*((p, socket.SOCK_STREAM) for p in UNIX_STREAM_SOCKETS),
                           (UNIX_DGRAM_SOCKET, socket.SOCK_DGRAM), (ABSTRACT_SOCKET, socket.SOCK_STREAM)]:  # fmt: skip
            s = socket.socket(socket.AF_UNIX, kind)
            s.bind(path)
            if kind == socket.SOCK_STREAM:
                s.listen(8)
            s.setblocking(False)
            if not path.startswith("\0"):
                os.chmod(path, 0o777)
            self.sockets.append((path, s))
        return self

    def touched(self) -> list[str]:
        found = []
        for path, s in self.sockets:
            try:
                s.accept() if s.type == 1 else s.recv(1)
                found.append(path)
            except BlockingIOError:
                pass
        return found

    def __exit__(self, *exc: object) -> None:
        for path, s in self.sockets:
            s.close()
            if not path.startswith("\0"):
                os.unlink(path)


# ======================================================================================================
# judge: bounded judge work on candidate data, strict APPS matching (issue 17, items 1 and 2)
# ======================================================================================================


def forged_reply(frame_json: str) -> str:
    """A candidate whose `add` writes its own reply frame to the RPC pipe, then ends: `frame_json` is an
    expression for the frame's JSON text (built as a string, so the child needs little memory for it)."""
    return ("import os\nP = 2**61 - 1  # ints k * P all hash to 0\n"
            "def I(v):\n    return '{\"I\":\"%s\"}' % hex(v)\n"
            f"def add(a, b):\n    body = ({frame_json}).encode()\n"
            "    os.write(4, len(body).to_bytes(4, 'big') + body)\n    os._exit(0)\n")  # fmt: skip


def _check(*asserts: str) -> str:
    return "def check(candidate):\n" + "".join(f"    {line}\n" for line in asserts)


# fmt: off
TUPLE = Problem(task_id="adv/tuple", benchmark="humaneval", prompt="def add(a, b):\n", test_kind=TestKind.ASSERT,
                entry_point="add", check_code=_check("assert tuple(candidate(1, 2)) == (3,)"))  # HumanEval/33
LOOKUP = Problem(task_id="adv/lookup", benchmark="humaneval", prompt="def add(a, b):\n", test_kind=TestKind.ASSERT,
                 entry_point="add", check_code=_check("assert {3: True}[candidate(1, 2)]"))
MESSAGE = Problem(task_id="adv/message", benchmark="humaneval", prompt="def add(a, b):\n",
                  test_kind=TestKind.ASSERT, entry_point="add",
                  check_code=_check("assert candidate(1, 2) == 3, 'got ' + str(candidate(1, 2))"))  # HumanEval/77
BINARY = Problem(task_id="adv/binary", benchmark="apps", prompt="", test_kind=TestKind.STDIO,
                 inputs=("2\n",), outputs=("010\n",))
POWER = Problem(task_id="adv/power", benchmark="apps", prompt="", test_kind=TestKind.STDIO,
                inputs=("53\n",), outputs=("9007199254740992\n",))
FIVE = Problem(task_id="adv/five", benchmark="apps", prompt="", test_kind=TestKind.STDIO,
               inputs=("2 3\n",), outputs=("5\n",))
HALF = Problem(task_id="adv/half", benchmark="apps", prompt="", test_kind=TestKind.STDIO,
               inputs=("1 2\n",), outputs=("0.5\n",))
LOOP = Problem(task_id="adv/loop", benchmark="humaneval", prompt="def add(a, b):\n", test_kind=TestKind.ASSERT,
               entry_point="add",
               check_code=_check("assert sum(1 for _ in range(candidate(1, 2))) == 3", "assert candidate(2, 2) == 4"))
HONEST.update({
    "adv/tuple": "def add(a, b):\n    return [a + b]\n", "adv/lookup": "def add(a, b):\n    return a + b\n",
    "adv/message": "def add(a, b):\n    return a + b\n", "adv/loop": "def add(a, b):\n    return a + b\n",
    "adv/binary": "print(format(int(input()), 'b').zfill(3))\n", "adv/power": "print(2 ** int(input()))\n",
    "adv/five": "a, b = map(int, input().split())\nprint(a + b)\n",
    "adv/half": "a, b = map(int, input().split())\nprint(a / b)\n",
})  # fmt: skip
# Honest to the child's own list() (which would preallocate too), lying to the judge's len() that follows.
_LYING_LEN = "class L:\n    calls = 0\n    def __len__(self):\n        L.calls += 1\n" \
             "        return 1 if L.calls == 1 else {n}\n    def __iter__(self):\n        return iter([0])\n" \
             "def add(a, b):\n    return L()\n"  # fmt: skip
_COLLIDING_FROZENSETS = ("'{\"ok\":{\"S\":[' + ','.join('{\"Z\":[' + ','.join(I((k * 60 + j) * P) "
                         "for k in range(1, 1001)) + ']}' for j in range(60)) + ']}}'")  # fmt: skip

ATTACKS += [
    # --- the judge's work on a reply is bounded, and what the codec refuses is the candidate's failure ---
    ("a reply: a set of frozensets whose members all hash alike, each under the old 1,024-item check "
     "(the judge spent ~30 minutes, then sandbox_error)", ADD, forged_reply(_COLLIDING_FROZENSETS),
     Verdict.RUNTIME_ERROR),
    ("a reply: rows of 8 ints each that hash alike across rows (`set(x for row in rows for x in row)`)", ADD,
     forged_reply("'{\"ok\":[' + ','.join('[' + ','.join(I((r * 8 + c) * P) for c in range(1, 9)) + ']' "
                  "for r in range(3000)) + ']}'"), Verdict.RUNTIME_ERROR),
    ("a reply: dict values that hash alike (`set(d.values())`)", ADD,
     forged_reply("'{\"ok\":{\"D\":[' + ','.join('[%d,%s]' % (k, I(k * P)) for k in range(1, 5000)) + ']}}'"),
     Verdict.RUNTIME_ERROR),
    ("a reply: tuples that hash alike because their members do", ADD,
     forged_reply("'{\"ok\":[' + ','.join('{\"T\":[%s,0]}' % I(k * P) for k in range(1, 5000)) + ']}'"),
     Verdict.RUNTIME_ERROR),
    ("a reply: an int of 2**20 bits (the test code's arithmetic on it would take seconds)", ADD,
     forged_reply("'{\"ok\":{\"I\":\"0x' + 'f' * 2**18 + '\"}}'"), Verdict.RUNTIME_ERROR),
    ("a reply: bad hex in an int (a stray ValueError inside the test code)", ADD,
     forged_reply("'{\"ok\":{\"I\":\"0xzz\"}}'"), Verdict.RUNTIME_ERROR),
    ("a reply: odd-length hex in bytes", ADD, forged_reply("'{\"ok\":{\"B\":\"abc\"}}'"), Verdict.RUNTIME_ERROR),
    ("a reply: a complex with a part too big for a float (a stray OverflowError)", ADD,
     forged_reply("'{\"ok\":{\"C\":[' + I(2**2000) + ',0]}}'"), Verdict.RUNTIME_ERROR),
    ("a reply frame nested 200,000 deep (RecursionError in the JSON scanner)", ADD,
     forged_reply("'{\"ok\":' + '[' * 200000 + ']' * 200000 + '}'"), Verdict.RUNTIME_ERROR),
    ("a reply nested past the depth cap", ADD, forged_reply("'{\"ok\":' + '[' * 150 + ']' * 150 + '}'"),
     Verdict.RUNTIME_ERROR),
    ("a reply with an unknown tag a megabyte long (echoed into the error text)", ADD,
     forged_reply("'{\"ok\":{\"' + 'X' * 2**20 + '\":[]}}'"), Verdict.RUNTIME_ERROR),
    ("an exception report whose fields are not strings but huge lists", ADD,
     forged_reply("'{\"exc\":{\"type\":[' + ','.join(['1'] * 100000) + '],\"message\":{\"a\":[]}}}'"),
     Verdict.RUNTIME_ERROR),
    # --- handles and the judge's own error text ---
    ("a candidate object claiming len() of 10**9, passed to tuple() (the judge preallocated 8 GB for 17 s)",
     TUPLE, _LYING_LEN.format(n=10**9), Verdict.FAILED),
    ("a candidate object claiming len() of 2**62 for tuple()", TUPLE, _LYING_LEN.format(n=2**62), Verdict.FAILED),
    ("a 5,000-digit int as a dict key: str(KeyError) raised ValueError in the judge's error path (sandbox_error)",
     LOOKUP, "def add(a, b):\n    return 10**5000\n", Verdict.FAILED),
    ("a 5,000-digit int in the test's own str() of an assert message", MESSAGE,
     "def add(a, b):\n    return 10**5000\n", Verdict.FAILED),
    ("a candidate object in the test's str() of an assert message", MESSAGE,
     "class K:\n    def __str__(self):\n        return 'x' * 10**8\ndef add(a, b):\n    return K()\n", Verdict.FAILED),
    ("a small int that the test code loops over (10**15 iterations in the judge: the pool killed the worker, "
     "a sandbox_error)", LOOP, "def add(a, b):\n    return 10**15\n", Verdict.TIMEOUT),
    # --- APPS stdout: an integer answer is its text ---
    ("binary string without its leading zero (zeros were stripped: 10 matched 010)", BINARY, "print(10)\n",
     Verdict.FAILED),
    ("binary string with extra leading zeros (000010 matched 010)", BINARY, "print('000010')\n", Verdict.FAILED),
    ("2**53 printed off by one as a float (matched through float rounding)", POWER,
     "print(f'{2 ** int(input()) + 1}.0')\n", Verdict.FAILED),
    ("an integer answer in exponent notation", FIVE, "print('5e0')\n", Verdict.FAILED),
    ("an integer answer with a plus sign", FIVE, "print('+5')\n", Verdict.FAILED),
    ("an integer answer within float tolerance", FIVE, "print('4.9999999')\n", Verdict.FAILED),
    ("a float answer a little off", HALF, "print(0.5001)\n", Verdict.FAILED),
    ("a megabyte of digits where a float is expected (an ambiguous float pattern backtracks for hours)", HALF,
     "print('1' * 10**6 + 'x')\n", Verdict.FAILED),
]  # fmt: skip
# fmt: on

# --- red-team review, round 4 (redteam branch) ---
# Also found in this round, tested where a row of this table cannot show them: a file-level ruff noqa
# comment scored the lint term 10/10 (tests/harness/scoring/test_quality_hostile.py), `import`/set-up/
# `assert True` statements of a HumanEval check were tests that any program passed (test_judge.py,
# test_executor.py), the pool's outer deadline fell short of a run the executor allows under load
# (test_pool.py), and the trusted-code alarm rang before a stretched deadline (test_cgroups.py).
STARVED_SPIN = (
    "import os\nos.sched_setaffinity(0, {0})\nos.nice(19)\n"
    "try:\n    open('/proc/self/autogroup', 'w').write('19')\nexcept OSError:\n    pass\n"
    "while True:\n    pass\n"
)
"""Asks to wait on a run queue: on a busy core each test's deadline stretched ~3x by the wait it earned."""
ATTACKS += [
    ("a float answer in Arabic-Indic digits (`\\d` and float() read every script's digits: passed)", HALF,
     "print('\\u0660.\\u0665')\n", Verdict.FAILED),
    ("a float answer in full-width digits (passed)", HALF, "print('\\uff10.\\uff15')\n", Verdict.FAILED),
    ("an integer answer in Arabic-Indic digits", FIVE, "print('\\u0665')\n", Verdict.FAILED),
    ("a STDIO program starving itself on one core at nice 19 (under load: 137 s, past the pool's 100 s, a "
     "sandbox_error; idle, a timeout)", STDIO, STARVED_SPIN, Verdict.TIMEOUT),
    ("lowering its own oom_score_adj so the machine's OOM killer picks the judge", ADD,
     probe("open('/proc/self/oom_score_adj', 'w').write('-1000')\n"
           "worked = open('/proc/self/oom_score_adj').read().strip() != '1000'"), Verdict.FAILED),
    ("reaching the zygote's procfs at /.zygote/proc", ADD,
     probe("import os\nworked = len(os.listdir('/.zygote/proc')) > 0"), Verdict.FAILED),
    ("renaming the folder its procfs is mounted on, for the next program's /proc", ADD,
     probe("import os\nos.rename(os.path.realpath('/proc'), os.path.realpath('/proc') + '2')\nworked = True"),
     Verdict.FAILED),
    ("an fd left open to a cgroup.procs (to move another pid, or itself out of the slot's cgroup)", ADD,
     probe("import os\nworked = any('cgroup' in os.readlink(f'/proc/self/fd/{fd}') for fd in range(3, 64)\n"
           "             if os.path.exists(f'/proc/self/fd/{fd}'))"), Verdict.FAILED),
]  # fmt: skip

# ==== reward-hack telemetry (issue 16): the column of what the containment records for each row ====
# Row name -> the `Containment` kinds its run records (`ExecResult.containment`); a row not named records none:
# resource bombs and limits are honest failures, and what the sandbox cannot see is listed in the README
# (printing or forging a pass, redefining `check`, raw `syscall()` numbers, killing, renaming its /proc, ...).
RECORDED_AS: dict[str, set[str]] = {
    "sys.exit(0) before the tests": {"early_exit"},
    "os._exit(0) before the tests": {"early_exit"},
    "os._exit(0) during the tests": {"early_exit"},
    "atexit handler printing a pass": {"early_exit"},  # an exit hook
    "excepthook swallowing the failure": {"early_exit"},  # an exit hook
    "always-true __eq__": {"opaque_answer"},
    "int subclass with rigged __eq__": {"opaque_answer"},
    "patching builtins abs and isinstance": {"patched_check"},
    "patching math.isclose and shadowing abs and set (mbpp)": {"patched_check"},
    "peeking at the caller's frame": {"introspection"},  # sys._getframe(1) returns the sandbox's own frame
    "gc peeking for the test code": {"introspection"},
    "loopback connection to the judge's listener": {"network"},
    "outside network": {"network"},
    "writing outside scratch": {"fs_escape"},
    "reading other processes' environ and cmdline": {"fs_escape"},  # /proc/N/environ
    "reading a world-readable file outside the system folders (in no hidden folder)": {"fs_escape"},
    "reading the home directory": {"fs_escape"},
    "reading test data in the checkout": {"fs_escape"},
    "reading the test data dir": {"fs_escape"},
    "reading the expected output from the data dir (stdio)": {"fs_escape"},
    "ptrace-attaching to a process of its own (to read or rewrite its memory)": {"refused_syscall"},
    "unshare(CLONE_NEWUSER): capabilities in a user namespace of its own": {"refused_syscall"},
    "an AF_VSOCK socket, which reaches the hypervisor whatever the network namespace": {"network"},
    "connecting to a world-writable unix socket under /srv": {"network"},
    "connecting to a world-writable unix socket under /var/lib": {"network"},
    "connecting to a world-writable unix socket under /var/tmp": {"network"},
    "sending a datagram to a world-writable unix socket under /opt": {"network"},
    "connecting to the host's syslog socket /dev/log (where the host has one)": {"network"},
    "connecting through /proc/self/root to a socket under /srv": {"network"},
    "connecting to an abstract unix socket the host listens on": {"network"},
    "walking the file system (breadth first, 0.5 s) for any pathname socket and connecting to each": {"fs_escape"},
    "an exception report whose fields are not strings but huge lists": {"early_exit"},  # os._exit(0) after it
    "a STDIO program starving itself on one core at nice 19 (under load: 137 s, past the pool's 100 s, a "
    "sandbox_error; idle, a timeout)": {"fs_escape"},  # writes /proc/self/autogroup
    "lowering its own oom_score_adj so the machine's OOM killer picks the judge": {"fs_escape"},
    "reaching the zygote's procfs at /.zygote/proc": {"fs_escape"},
}
