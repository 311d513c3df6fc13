"""The Landlock allow-list's pieces: which paths the world-readable walk covers, and the kernel's verdicts."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest
from execrl.harness.sandbox import landlock

pytestmark = pytest.mark.skipif(landlock.abi_version() < 1, reason="this kernel has no Landlock")


def test_the_world_readable_walk_leaves_out_what_only_a_group_may_read(tmp_path: Path) -> None:
    top = tmp_path / "etc"
    (top / "ssl" / "certs").mkdir(parents=True)
    (top / "ssl" / "private").mkdir()
    (top / "ssl" / "private" / "key.pem").write_text("k")
    (top / "ssl" / "certs" / "ca.pem").write_text("c")
    (top / "passwd").write_text("p")
    (top / "shadow").write_text("s")
    for path, mode in (
        (top, 0o755),
        (top / "ssl", 0o755),
        (top / "ssl" / "certs", 0o755),
        (top / "ssl" / "private", 0o710),
        (top / "ssl" / "private" / "key.pem", 0o640),
        (top / "ssl" / "certs" / "ca.pem", 0o644),
        (top / "passwd", 0o644),
        (top / "shadow", 0o640),
    ):
        path.chmod(mode)
    covered = sorted(os.path.relpath(p, top) for p in landlock._world_readable(str(top)))
    assert covered == ["passwd", "ssl/certs"]


def _can_open_under_ruleset(ruleset: int, path: str, flags: int = os.O_RDONLY) -> bool:
    pid = os.fork()
    if pid == 0:
        try:
            ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # no_new_privs
            landlock.restrict(ruleset)
            os.close(os.open(path, flags))
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0


CASES = [
    ("a system library", "/usr/lib/os-release", True),
    ("the password database (world-readable)", "/etc/passwd", True),
    ("the shadow database (group shadow)", "/etc/shadow", False),
    ("/dev/null", "/dev/null", True),
    ("/dev/urandom", "/dev/urandom", True),
    ("the user's terminals", "/dev/ptmx", False),
    ("a file outside the system folders", "/opt", False),
]


@pytest.mark.parametrize(("path", "allowed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_ruleset_allows_the_system_and_nothing_else(path: str, allowed: bool) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    ruleset = landlock.build(writable=["/tmp"])
    try:
        assert _can_open_under_ruleset(ruleset, path) is allowed
        assert os.access(path, os.R_OK)  # without the ruleset we (root) may: Landlock is what says no
    finally:
        os.close(ruleset)
