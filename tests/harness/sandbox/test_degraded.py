"""Without root: the zygote makes its namespaces inside a user namespace of its own (network, mount, pid and
IPC isolation stay on), but children keep the user's uid (without any capability). It must say so, loudly
and in the result, and still judge right; and every attack of the adversarial table must still fail.

These tests become `nobody` with setpriv (so they need root) and run the system python3, because the
project's venv interpreter may live under a home directory `nobody` cannot read. For the same reason they
import a copy of what they need (`harness/`, `benchmarks/` and the adversarial table), made for the test in a
folder `nobody` can read: a clone in a folder only its owner may enter (root's home, mode 0700) works too.
The sandbox hides that copy from programs as it hides the checkout (it is where `REPO_ROOT` points then).

Memory per program needs a cgroup: the adversarial table runs as `nobody` inside a cgroup delegated to it (as
systemd does for a user session), and the rows only a memory cgroup stops (`NEEDS_MEMORY_CGROUP`) are skipped,
with the reason printed, where this machine cannot delegate one. Without delegation the run must say so.
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
    NEEDS_MEMORY_CGROUP,
    OPEN_SECRET,
    SECRET,
    STILL_WORKS,
    UnixListeners,
)
from tests.harness.sandbox.test_state_sweep import MACHINE_WIDE

ROOT = Path(__file__).resolve().parents[3]
COPIED = ("harness", "benchmarks", "tests/__init__.py", "tests/harness/__init__.py",
          "tests/harness/sandbox/__init__.py", "tests/harness/sandbox/adversarial_table.py",
          "tests/harness/sandbox/state_sweep.py")  # fmt: skip
"""What the runs as `nobody` import (the system python has no editable install: ours by path)."""
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/usr/local/bin")
NOBODY = 65534
ROOTLESS = {"net": True, "mount": True, "pid": True, "uid": False, "seccomp": True, "landlock": True,
            "memory_cgroup": True, "pids_cgroup": True}  # fmt: skip
"""What a run as `nobody` in a delegated cgroup reports."""
CGROUP_CAP = 6 * 1024**3
"""An outer memory limit on the whole run as `nobody` (the machine stays safe whatever the sandbox does)."""


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


@pytest.fixture(scope="module")
def code() -> Iterator[Path]:
    """A copy of what the runs as `nobody` import, in a folder it can read."""
    top = Path(tempfile.mkdtemp(prefix="execrl-nobody-code-"))
    top.chmod(0o755)
    for name in COPIED:
        source, target = ROOT / name, top / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    for path in [top, *top.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield top
    shutil.rmtree(top, ignore_errors=True)


def script(template: str, code: Path) -> str:
    """`template` with `@ROOT@` standing for the copy's folder (a Python string literal)."""
    return template.replace("@PRELUDE@", import_prelude(repr(str(code)))).replace("@ROOT@", repr(str(code)))


def delegate_cgroup() -> tuple[list[str], str]:
    """Folders of a cgroup (v1: memory, pids, cpuacct) below ours, handed to `nobody` as systemd delegates one
    to a user, and capped at `CGROUP_CAP`; ([], why) where this machine cannot."""
    from execrl.harness.sandbox import cgroups

    mounts, own = cgroups.mounts(), cgroups.own_groups()
    if not {"memory", "pids", "cpuacct"} <= set(mounts["v1"]):
        return (
            [],
            "no cgroup v1 memory, pids and cpuacct hierarchies to delegate (cgroup v2 delegation is not set up here)",
        )
    made: list[str] = []
    try:
        for controller in ("memory", "pids", "cpuacct"):
            mountpoint, root = mounts["v1"][controller]
            path = os.path.join(
                cgroups.folder_of(mountpoint, root, own.get(controller, "/")), f"execrl-nobody-{os.getpid()}"
            )
            os.mkdir(path)
            made.append(path)
            for name in ("", "cgroup.procs", "tasks"):
                os.chown(os.path.join(path, name), NOBODY, NOBODY)
        Path(made[0], "memory.limit_in_bytes").write_text(str(CGROUP_CAP))
    except OSError as exc:
        remove_cgroup(made)
        return [], f"cannot delegate a cgroup to nobody: {exc}"
    return made, ""


def remove_cgroup(folders: list[str]) -> None:
    from execrl.harness.sandbox import cgroups

    for path in reversed(folders):
        for below in sorted(Path(path).glob("*/"), reverse=True):  # what the sandbox left (it should not)
            cgroups.remove_group(str(below), 2.0)
        cgroups.remove_group(path, 5.0)


def run_as_nobody(
    script: str, home: Path, timeout: float, env: dict[str, str] | None = None, cgroup: list[str] = ()
) -> subprocess.CompletedProcess[str]:
    nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    join = "".join(f'echo $$ > "{path}/cgroup.procs" && ' for path in cgroup)  # as root, then become nobody
    return subprocess.run(
        ["/bin/sh", "-c", f'{join}exec "$@"', "sh", *nobody, SYSTEM_PYTHON, "-c", script],
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


VERDICTS = """
import sys
sys.path.insert(0, @ROOT@)
@PRELUDE@from execrl.benchmarks.problem import Problem, TestKind
from execrl.harness.sandbox.executor import execute
p = Problem(task_id="t/1", benchmark="synth", prompt="", test_kind=TestKind.CALL, entry_point="f", fn_name="f",
            inputs=([1],), outputs=(2,))
right, wrong = execute(p, "def f(x):\\n    return x + 1\\n"), execute(p, "def f(x):\\n    return x\\n")
print(right.verdict.value, wrong.verdict.value, sorted(k for k, on in right.isolation.items() if not on))
"""


def test_as_an_unprivileged_user_only_the_uid_drop_is_lost_and_it_says_so(nobody_home: Path, code: Path) -> None:
    cgroup, why = delegate_cgroup()
    if not cgroup:
        pytest.skip(why)
    try:
        out = run_as_nobody(script(VERDICTS, code), nobody_home, timeout=120, cgroup=cgroup)
    finally:
        remove_cgroup(cgroup)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[0] == "passed failed ['uid']"
    assert "runs WITHOUT uid isolation" in out.stderr
    assert "children run as the user's own uid, in a user namespace without capabilities" in out.stderr


def test_without_a_delegated_cgroup_memory_per_program_is_lost_and_it_says_so(nobody_home: Path, code: Path) -> None:
    out = run_as_nobody(script(VERDICTS, code), nobody_home, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[0] == "passed failed ['memory_cgroup', 'pids_cgroup', 'uid']"
    assert "runs WITHOUT uid, memory_cgroup, pids_cgroup isolation" in out.stderr
    assert "no memory cgroup: memory is limited per process only" in out.stderr


# Runs the whole adversarial table as nobody; one JSON line per row.
ATTACK_RUNNER = """
import json, os, socket, sys
sys.path.insert(0, @ROOT@)
@PRELUDE@from execrl.harness.sandbox.executor import execute, prepare_worker
from tests.harness.sandbox.adversarial_table import ATTACKS, HOME_SECRET, HONEST, LIMITS, OUTSIDE, with_names

def own_processes():  # live descendants of this process: the zygote, its waiter, whatever a program left
    parents, live = {}, set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = open(f"/proc/{pid}/status").read()
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
    return {pid for pid in live if descends(pid)}

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
    row = {"name": name, "verdict": result.verdict.value, "passed": result.passed, "isolation": result.isolation,
           "error": result.error[-500:], "outside": [p for p in OUTSIDE if os.path.exists(p)],
           "connected": connected, "leftovers": sorted(own_processes() - baseline),
           "honest": execute(problem, HONEST[problem.task_id], LIMITS).passed}
    print(json.dumps(row), flush=True)
"""


@pytest.fixture(scope="module")
def rootless_rows(code: Path) -> Iterator[dict[str, dict]]:
    home = Path(tempfile.mkdtemp(prefix="execrl-nobody-"))
    data = home / "data"
    data.mkdir()
    (data / "secret.txt").write_text(SECRET)
    os.chown(home, NOBODY, NOBODY)
    home.chmod(0o755)
    # Readable by nobody: only the sandbox may keep them away. The copy is the checkout the runs see.
    repo_secret = code / ".venv" / f"execrl-adversarial-{SECRET}"
    repo_secret.parent.mkdir(mode=0o755, exist_ok=True)
    for path in (repo_secret, OPEN_SECRET):
        path.write_text(SECRET)
        path.chmod(0o644)
    cgroup, why = delegate_cgroup()
    try:
        env = {"EXECRL_ADVERSARIAL_TABLE_SECRET": SECRET, "DATA_SECRET": str(data / "secret.txt")}
        with UnixListeners() as unix:  # the host's sockets the table's rows try to reach
            out = run_as_nobody(script(ATTACK_RUNNER, code), home, timeout=600, env=env, cgroup=cgroup)
            assert unix.touched() == [], "a sandboxed program reached a host unix socket"
        assert out.returncode == 0, out.stderr[-3000:]
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        yield {row["name"]: {**row, "no_cgroup": why} for row in rows}
    finally:
        remove_cgroup(cgroup)
        repo_secret.unlink(missing_ok=True)
        OPEN_SECRET.unlink(missing_ok=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "expected"), [(a[0], a[3]) for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_attack_fails_as_an_unprivileged_user_too(rootless_rows, name, expected) -> None:
    row = rootless_rows[name]
    if row["no_cgroup"] and name in NEEDS_MEMORY_CGROUP:
        pytest.skip(f"only a memory cgroup stops this row, and none could be delegated here: {row['no_cgroup']}")
    if row["no_cgroup"]:
        row["isolation"] = {**row["isolation"], "memory_cgroup": True, "pids_cgroup": True}  # degraded, as expected
    assert not row["passed"]
    assert row["verdict"] == expected.value, row["error"]
    if expected.value != "syntax_error":  # syntax is checked in the judge, before any fork
        assert row["isolation"] == ROOTLESS
    assert row["outside"] == []
    assert not row["connected"]
    assert row["leftovers"] == []
    assert row["honest"], f"an honest program failed right after: {row}"


GROUP_PROBE = """
import sys
sys.path.insert(0, @ROOT@)
@PRELUDE@from execrl.benchmarks.problem import Problem, TestKind
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


def test_supplementary_groups_kept_without_root_open_no_group_file(nobody_home: Path, code: Path) -> None:
    """Found by a red-team review: a user namespace cannot drop the user's groups, so a member of shadow or
    kvm could read /etc/shadow or create VMs; Landlock now allows only world-readable files and a few
    devices, and the run says which groups it keeps."""
    import grp

    groups = [g.gr_gid for g in grp.getgrall() if g.gr_name in ("shadow", "kvm", "tty")]
    if not groups:
        pytest.skip("no shadow, kvm or tty group on this machine")
    nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", f"--groups={','.join(map(str, groups))}"]
    out = subprocess.run(
        [*nobody, SYSTEM_PYTHON, "-c", script(GROUP_PROBE, code)],
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
CONTAINMENT_RUNNER = """
import json, os, sys
sys.path.insert(0, @ROOT@)
@PRELUDE@from execrl.harness.sandbox.executor import execute, prepare_worker
from tests.harness.sandbox.adversarial_table import ADD, CHANNELS, LIMITS, STILL_WORKS
from tests.harness.sandbox.state_sweep import run_on_slot, sweep

isolation = prepare_worker(0)
for name, writer, reader in CHANNELS:
    execute(ADD, writer, LIMITS)
    result = execute(ADD, reader, LIMITS)
    print(json.dumps({"name": name, "verdict": result.verdict.value, "error": result.error[-500:],
                      "isolation": result.isolation}), flush=True)
for name, program in STILL_WORKS:
    result = execute(ADD, program, LIMITS)
    print(json.dumps({"name": name, "verdict": result.verdict.value, "error": result.error[-500:],
                      "isolation": result.isolation}), flush=True)
print(json.dumps({"name": "sweep", "found": sweep(run_on_slot(0), rounds=3), "isolation": isolation}), flush=True)
"""


@pytest.fixture(scope="module")
def containment_rows(code: Path) -> Iterator[dict[str, dict]]:
    home = Path(tempfile.mkdtemp(prefix="execrl-nobody-"))
    os.chown(home, NOBODY, NOBODY)
    cgroup, why = delegate_cgroup()
    try:
        out = run_as_nobody(script(CONTAINMENT_RUNNER, code), home, timeout=600, cgroup=cgroup)
        assert out.returncode == 0, out.stderr[-3000:]
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        if why:  # no delegated cgroup: the run says so (the rootless cgroup tests check how), the rest must hold
            rows = [
                {**row, "isolation": {**row["isolation"], "memory_cgroup": True, "pids_cgroup": True}} for row in rows
            ]
        yield {row["name"]: row for row in rows}
    finally:
        remove_cgroup(cgroup)
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
