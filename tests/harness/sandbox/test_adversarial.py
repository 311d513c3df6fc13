"""One attack per row (tests/harness/sandbox/adversarial_table.py), run as root with every protection on.

After every row: not passed (with the expected verdict), no file written outside scratch, nothing
connected to our loopback listener, no process of the sandbox uid left, and an honest program run
right after still passes.
"""

from __future__ import annotations

import ctypes
import os
import socket
import textwrap
from pathlib import Path

import pytest
from execrl.benchmarks.humaneval import load_humaneval
from execrl.harness.records import Containment, Verdict
from execrl.harness.sandbox.executor import execute, prepare_worker
from execrl.harness.sandbox.isolation import sandbox_uid

from tests.harness.sandbox.adversarial_table import (
    ADD,
    ATTACKS,
    CHANNELS,
    FULL_ISOLATION,
    HOME_SECRET,
    HONEST,
    LIMITS,
    OPEN_SECRET,
    OUTSIDE,
    RECORDED_AS,
    REPO_SECRET,
    SECRET,
    STILL_WORKS,
    UnixListeners,
    with_names,
)

SLOT = 5


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("data")
    (data / "secret.txt").write_text(SECRET)
    for path in (HOME_SECRET, REPO_SECRET, OPEN_SECRET):
        path.write_text(SECRET)
        path.chmod(0o644)
    os.environ["EXECRL_ADVERSARIAL_SECRET"] = SECRET
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    prepare_worker(SLOT, hidden=[str(data)])
    with UnixListeners() as unix:
        yield {"port": listener.getsockname()[1], "data": str(data / "secret.txt"), "listener": listener,
               "unix": unix}  # fmt: skip
    listener.close()
    del os.environ["EXECRL_ADVERSARIAL_SECRET"]
    for path in (HOME_SECRET, REPO_SECRET, OPEN_SECRET):
        path.unlink()


def sandbox_processes() -> list[int]:
    uid = sandbox_uid(SLOT)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        state = next(line for line in status.splitlines() if line.startswith("State:")).split()[1]
        if str(uid) in uids and state not in ("Z", "X"):  # a zombie has exited: it runs nothing
            found.append(int(pid))
    return found


@pytest.mark.parametrize(("name", "problem", "program", "expected"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_not_judged_passed_is_recorded_as_its_kind_and_leaves_no_trace(
    sandbox, name, problem, program, expected
) -> None:
    result = execute(problem, with_names(program, sandbox["port"], sandbox["data"]), LIMITS, slot=SLOT)
    assert not result.passed
    assert result.verdict is expected, result.error
    assert set(result.containment) == RECORDED_AS.get(name, set()), result.containment
    if expected is not Verdict.SYNTAX_ERROR:  # syntax is checked in the judge, before any fork
        assert result.isolation == FULL_ISOLATION
    assert [p for p in OUTSIDE if os.path.exists(p)] == []
    with pytest.raises(BlockingIOError):
        sandbox["listener"].accept()
    assert sandbox["unix"].touched() == []
    assert sandbox_processes() == []
    honest = execute(problem, HONEST[problem.task_id], LIMITS, slot=SLOT)
    assert honest.passed, honest.error
    assert honest.containment == {}  # nothing of the attack's counts reaches the next program


def test_every_recorded_kind_names_a_row_and_a_containment_kind() -> None:
    assert set(RECORDED_AS) <= {a[0] for a in ATTACKS}
    assert set().union(*RECORDED_AS.values()) == {kind.value for kind in Containment}  # every kind is exercised


SHM_ORACLE = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
def add(a, b):
    # Right only if an earlier run of this program left its SysV segment behind (state across runs).
    seen = libc.shmget(0x5EED, 0, 0) >= 0
    if not seen:
        libc.shmat(libc.shmget(0x5EED, 4096, 0o1000 | 0o666), None, 0)
    return a + b if seen else a - b
"""


def test_sysv_shared_memory_does_not_outlive_a_program(sandbox) -> None:
    # Without an IPC namespace per program, run 2 finds run 1's segment (and the host keeps its memory).
    first = execute(ADD, SHM_ORACLE, LIMITS, slot=SLOT)
    second = execute(ADD, SHM_ORACLE, LIMITS, slot=SLOT)
    assert (first.verdict, second.verdict) == (Verdict.FAILED, Verdict.FAILED), second.error
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.shmget(0x5EED, 0, 0) == -1, "a sandboxed program's segment is visible on the host"


LEAVE_STATE = """
import os
for _ in range(20):  # 20 x 251 characters: deeper than PATH_MAX, so deleting by path name fails
    os.mkdir('x' * 250)
    os.chdir('x' * 250)
open('note', 'w').write('left by an earlier program')
for i in range(4):  # and fill the scratch tmpfs
    try:
        open(f'big{i}', 'wb').write(bytes(16 * 1024**2 - 1))
    except OSError:
        pass
def add(a, b):
    return 0
"""
FIND_STATE = """
import os
# Right only if the scratch dir is empty and has room: a program must find what it would on a fresh
# machine, whatever ran before it.
EMPTY = os.listdir('.') == []
open('two-megabytes', 'wb').write(bytes(2 * 1024**2))
def add(a, b):
    return a + b if EMPTY else a - b
"""


LEAVE_MARKS = """
import os
os.setxattr('.', 'user.note', b'left by an earlier program')
os.utime('.', (123456789, 123456789))
def add(a, b):
    return 0
"""
FIND_MARKS = """
import os
CLEAN = os.listxattr('.') == [] and os.stat('.').st_mtime != 123456789
def add(a, b):
    return a + b if CLEAN else a - b
"""

# (id, program that leaves something in its scratch dir, program right only if it finds none of it, why)
SCRATCH_LEFTOVERS = [
    (
        "deep-tree-and-full-disk",
        LEAVE_STATE,
        FIND_STATE,
        "found by a red-team review: clean-up by path name stopped at PATH_MAX and left files and a full disk",
    ),
    (
        "xattrs-and-times-of-the-empty-dir",
        LEAVE_MARKS,
        FIND_MARKS,
        "found by a red-team review: an empty folder was kept as it was, with its extended attributes and times",
    ),
]


@pytest.mark.parametrize(("leave", "find"), [r[1:3] for r in SCRATCH_LEFTOVERS], ids=[r[0] for r in SCRATCH_LEFTOVERS])
def test_a_program_finds_a_fresh_scratch_dir_whatever_the_last_one_left(sandbox, leave, find) -> None:
    assert execute(ADD, leave, LIMITS, slot=SLOT).verdict is Verdict.FAILED
    result = execute(ADD, find, LIMITS, slot=SLOT)
    assert result.passed, result.error


POSIX_SHM_ORACLE = """
import os
def add(a, b):
    # Right only if an earlier run of this program left its POSIX segment (a file in /dev/shm) behind.
    seen = os.path.exists('/dev/shm/execrl-oracle')
    open('/dev/shm/execrl-oracle', 'w').close()
    return a + b if seen else a - b
"""
MULTIPROCESSING = """
import multiprocessing
def square(x):
    return x * x
with multiprocessing.get_context('fork').Pool(2) as pool:
    SQUARES = pool.map(square, range(5))
def add(a, b):
    return a + b if SQUARES == [0, 1, 4, 9, 16] else None
"""


def test_multiprocessing_works_and_posix_shared_memory_does_not_outlive_a_program(sandbox) -> None:
    # An honest program may use multiprocessing (semaphores in /dev/shm); a red-team review found it broken
    # by a read-only /dev/shm. Now /dev/shm is a private tmpfs, emptied after each program.
    honest = execute(ADD, MULTIPROCESSING, LIMITS, slot=SLOT)
    assert honest.passed, honest.error
    first = execute(ADD, POSIX_SHM_ORACLE, LIMITS, slot=SLOT)
    second = execute(ADD, POSIX_SHM_ORACLE, LIMITS, slot=SLOT)
    assert (first.verdict, second.verdict) == (Verdict.FAILED, Verdict.FAILED), second.error
    assert not os.path.exists("/dev/shm/execrl-oracle"), "a sandboxed program's segment is visible on the host"


def test_reading_humaneval_data_to_replay_the_canonical_solution_fails(sandbox) -> None:
    problem = load_humaneval()[0]
    completion = textwrap.dedent("""
        import glob, gzip, json
        for path in glob.glob('/**/HumanEval.jsonl.gz', recursive=True):
            for line in gzip.open(path, 'rt'):
                row = json.loads(line)
                if row['task_id'] == 'HumanEval/0':
                    exec(row['prompt'] + row['canonical_solution'], globals())
    """)
    program = problem.prompt + "    return None\n" + completion
    assert not execute(problem, program, LIMITS, slot=SLOT).passed
    assert execute(problem, problem.program(problem.solutions[0]), LIMITS, slot=SLOT).passed


@pytest.mark.parametrize(("writer", "reader"), [c[1:] for c in CHANNELS], ids=[c[0] for c in CHANNELS])
def test_a_program_finds_no_mark_the_one_before_it_left(sandbox, writer, reader) -> None:
    # Found by a red-team review: counters an emptied /dev/shm kept, and network counters every child of a
    # zygote shared, carried marks from one program to the next.
    execute(ADD, with_names(writer, sandbox["port"], sandbox["data"]), LIMITS, slot=SLOT)
    result = execute(ADD, with_names(reader, sandbox["port"], sandbox["data"]), LIMITS, slot=SLOT)
    assert result.verdict is Verdict.FAILED, result.error


@pytest.mark.parametrize("program", [w[1] for w in STILL_WORKS], ids=[w[0] for w in STILL_WORKS])
def test_an_honest_program_still_works_in_the_minimal_root_and_records_no_event(sandbox, program) -> None:
    result = execute(ADD, program, LIMITS, slot=SLOT)
    assert result.passed, result.error
    assert result.containment == {}
