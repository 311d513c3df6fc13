"""Without root: the zygote makes its namespaces inside a user namespace of its own (network, mount, pid and
IPC isolation stay on), but children keep the user's uid (without any capability). It must say so, loudly
and in the result, and still judge right; and every attack of the adversarial table must still fail.

These tests become `nobody` with setpriv (so they need root) and run the system python3, because the
project's venv interpreter may live under a home directory `nobody` cannot read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from execrl.harness.sandbox.isolation import import_prelude

from tests.harness.sandbox.adversarial_table import (
    ATTACKS,
    CHANNELS,
    OPEN_SECRET,
    REPO_SECRET,
    SECRET,
    STILL_WORKS,
    UnixListeners,
)
from tests.harness.sandbox.test_state_sweep import MACHINE_WIDE

ROOT = Path(__file__).resolve().parents[3]
PRELUDE = import_prelude(repr(str(ROOT)))  # the system python has no editable install: ours by path
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/usr/local/bin")
NOBODY = 65534
ROOTLESS = {"net": True, "mount": True, "pid": True, "uid": False, "seccomp": True, "landlock": True}


def _system_python_usable() -> bool:
    if os.geteuid() != 0 or not shutil.which("setpriv") or not SYSTEM_PYTHON:
        return False
    version = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info >= (3, 10))"], capture_output=True, text=True
    ).stdout.strip()
    return version == "True"


pytestmark = pytest.mark.skipif(
    not _system_python_usable(), reason="needs root (to become nobody with setpriv) and a system python3 >= 3.10"
)


def run_as_nobody(
    script: str, home: Path, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return subprocess.run(
        [*nobody, SYSTEM_PYTHON, "-c", script],
        capture_output=True,
        text=True,
        cwd=home,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", **(env or {})},
        timeout=timeout,
    )


@pytest.fixture
def nobody_home() -> Iterator[Path]:
    """A home folder `nobody` owns (pytest's own tmp_path is root's, mode 0700)."""
    home = Path(tempfile.mkdtemp(prefix="execrl-nobody-"))
    os.chown(home, NOBODY, NOBODY)
    yield home
    shutil.rmtree(home, ignore_errors=True)


VERDICTS = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
{PRELUDE}from execrl.benchmarks.problem import Problem, TestKind
from execrl.harness.sandbox.executor import execute
p = Problem(task_id="t/1", benchmark="synth", prompt="", test_kind=TestKind.CALL, entry_point="f", fn_name="f",
            inputs=([1],), outputs=(2,))
right, wrong = execute(p, "def f(x):\\n    return x + 1\\n"), execute(p, "def f(x):\\n    return x\\n")
print(right.verdict.value, wrong.verdict.value, sorted(k for k, on in right.isolation.items() if not on))
"""


def test_as_an_unprivileged_user_only_the_uid_drop_is_lost_and_it_says_so(nobody_home: Path) -> None:
    out = run_as_nobody(VERDICTS, nobody_home, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[0] == "passed failed ['uid']"
    assert "runs WITHOUT uid isolation" in out.stderr
    assert "children run as the user's own uid, in a user namespace without capabilities" in out.stderr


# Runs the whole adversarial table as nobody; one JSON line per row.
ATTACK_RUNNER = f"""
import json, os, socket, sys
sys.path.insert(0, {str(ROOT)!r})
{PRELUDE}from execrl.harness.sandbox.executor import execute, prepare_worker
from tests.harness.sandbox.adversarial_table import ATTACKS, HOME_SECRET, HONEST, LIMITS, OUTSIDE, with_names

def own_processes():  # live descendants of this process: the zygote, its waiter, whatever a program left
    parents, live = {{}}, set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = open(f"/proc/{{pid}}/status").read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(pid)] = int(fields["PPid"])
        if fields["State"].split()[0] not in ("Z", "X"):
            live.add(int(pid))
    def descends(pid):
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == os.getpid():
                return True
        return False
    return {{pid for pid in live if descends(pid)}}

HOME_SECRET.write_text(os.environ["EXECRL_ADVERSARIAL_TABLE_SECRET"])
os.environ["EXECRL_ADVERSARIAL_SECRET"] = os.environ["EXECRL_ADVERSARIAL_TABLE_SECRET"]
data = os.environ["DATA_SECRET"]
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
listener.setblocking(False)
prepare_worker(0, hidden=[os.path.dirname(data)])
baseline = own_processes()  # this process, the zygote and the waiter outside its user namespace
for name, problem, program, expected in ATTACKS:
    result = execute(problem, with_names(program, listener.getsockname()[1], data), LIMITS)
    try:
        listener.accept()
        connected = True
    except BlockingIOError:
        connected = False
    row = {{"name": name, "verdict": result.verdict.value, "passed": result.passed, "isolation": result.isolation,
           "error": result.error[-500:], "outside": [p for p in OUTSIDE if os.path.exists(p)],
           "connected": connected, "leftovers": sorted(own_processes() - baseline),
           "honest": execute(problem, HONEST[problem.task_id], LIMITS).passed}}
    print(json.dumps(row), flush=True)
"""


@pytest.fixture(scope="module")
def rootless_rows() -> Iterator[dict[str, dict]]:
    home = Path(tempfile.mkdtemp(prefix="execrl-nobody-"))
    data = home / "data"
    data.mkdir()
    (data / "secret.txt").write_text(SECRET)
    os.chown(home, NOBODY, NOBODY)
    home.chmod(0o755)
    for path in (REPO_SECRET, OPEN_SECRET):  # readable by nobody: only the sandbox may keep them away
        path.write_text(SECRET)
        path.chmod(0o644)
    try:
        env = {"EXECRL_ADVERSARIAL_TABLE_SECRET": SECRET, "DATA_SECRET": str(data / "secret.txt")}
        with UnixListeners() as unix:  # the host's sockets the table's rows try to reach
            out = run_as_nobody(ATTACK_RUNNER, home, timeout=600, env=env)
            assert unix.touched() == [], "a sandboxed program reached a host unix socket"
        assert out.returncode == 0, out.stderr[-3000:]
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        yield {row["name"]: row for row in rows}
    finally:
        REPO_SECRET.unlink(missing_ok=True)
        OPEN_SECRET.unlink(missing_ok=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "expected"), [(a[0], a[3]) for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_attack_fails_as_an_unprivileged_user_too(rootless_rows, name, expected) -> None:
    row = rootless_rows[name]
    assert not row["passed"]
    assert row["verdict"] == expected.value, row["error"]
    if expected.value != "syntax_error":  # syntax is checked in the judge, before any fork
        assert row["isolation"] == ROOTLESS
    assert row["outside"] == []
    assert not row["connected"]
    assert row["leftovers"] == []
    assert row["honest"], f"an honest program failed right after: {row}"


GROUP_PROBE = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
{PRELUDE}from execrl.benchmarks.problem import Problem, TestKind
from execrl.harness.sandbox.executor import execute
p = Problem(task_id="t/1", benchmark="synth", prompt="", test_kind=TestKind.CALL, entry_point="f", fn_name="f",
            inputs=([1],), outputs=(2,))
probe = '''
import os
def f(x):
    opened = []
    for path in ("/etc/shadow", "/dev/kvm", "/dev/ptmx"):
        try:
            os.close(os.open(path, os.O_RDONLY))
            opened.append(path)
        except OSError:
            pass
    return x + 1 if opened else x
'''
print(execute(p, probe).verdict.value)
"""


def test_supplementary_groups_kept_without_root_open_no_group_file(nobody_home: Path) -> None:
    """Found by a red-team review: a user namespace cannot drop the user's groups, so a member of shadow or
    kvm could read /etc/shadow or create VMs; Landlock now allows only world-readable files and a few
    devices, and the run says which groups it keeps."""
    import grp

    groups = [g.gr_gid for g in grp.getgrall() if g.gr_name in ("shadow", "kvm", "tty")]
    if not groups:
        pytest.skip("no shadow, kvm or tty group on this machine")
    nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", f"--groups={','.join(map(str, groups))}"]
    out = subprocess.run(
        [*nobody, SYSTEM_PYTHON, "-c", GROUP_PROBE],
        capture_output=True,
        text=True,
        cwd=nobody_home,
        env={"HOME": str(nobody_home), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "failed"  # right only if a group file or device opened
    assert "children keep the user's supplementary groups" in out.stderr


# The containment block of the table as nobody: writer/reader pairs, honest programs, and the /proc and /sys sweep.
CONTAINMENT_RUNNER = f"""
import json, os, sys
sys.path.insert(0, {str(ROOT)!r})
{PRELUDE}from execrl.harness.sandbox.executor import execute, prepare_worker
from tests.harness.sandbox.adversarial_table import ADD, CHANNELS, LIMITS, STILL_WORKS
from tests.harness.sandbox.state_sweep import run_on_slot, sweep

isolation = prepare_worker(0)
for name, writer, reader in CHANNELS:
    execute(ADD, writer, LIMITS)
    result = execute(ADD, reader, LIMITS)
    print(json.dumps({{"name": name, "verdict": result.verdict.value, "error": result.error[-500:],
                      "isolation": result.isolation}}), flush=True)
for name, program in STILL_WORKS:
    result = execute(ADD, program, LIMITS)
    print(json.dumps({{"name": name, "verdict": result.verdict.value, "error": result.error[-500:],
                      "isolation": result.isolation}}), flush=True)
print(json.dumps({{"name": "sweep", "found": sweep(run_on_slot(0), rounds=3), "isolation": isolation}}), flush=True)
"""


@pytest.fixture(scope="module")
def containment_rows() -> Iterator[dict[str, dict]]:
    home = Path(tempfile.mkdtemp(prefix="execrl-nobody-"))
    os.chown(home, NOBODY, NOBODY)
    try:
        out = run_as_nobody(CONTAINMENT_RUNNER, home, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        yield {row["name"]: row for row in rows}
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", [c[0] for c in CHANNELS], ids=[c[0] for c in CHANNELS])
def test_a_program_finds_no_mark_the_one_before_it_left_as_an_unprivileged_user_too(containment_rows, name) -> None:
    row = containment_rows[name]
    assert row["verdict"] == "failed", row["error"]
    assert row["isolation"] == ROOTLESS


@pytest.mark.slow
@pytest.mark.parametrize("name", [w[0] for w in STILL_WORKS], ids=[w[0] for w in STILL_WORKS])
def test_an_honest_program_still_works_in_the_minimal_root_as_an_unprivileged_user(containment_rows, name) -> None:
    row = containment_rows[name]
    assert row["verdict"] == "passed", row["error"]


@pytest.mark.slow
def test_the_proc_and_sys_sweep_finds_only_machine_wide_counters_as_an_unprivileged_user(containment_rows) -> None:
    row = containment_rows["sweep"]
    assert row["isolation"] == ROOTLESS
    assert {path: why for path, why in row["found"].items() if path not in MACHINE_WIDE} == {}
