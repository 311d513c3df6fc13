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

FULL_ISOLATION = {"net": True, "mount": True, "pid": True, "uid": True, "seccomp": True, "landlock": True}
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
