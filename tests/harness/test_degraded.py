"""Without root the sandbox cannot make its namespaces or drop to a sandbox uid: it must say so, loudly and in
the result, and still judge correctly (the judge runs outside the candidate either way)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The project's venv interpreter may live under an unreadable home; the system one runs the stdlib-only sandbox.
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/usr/local/bin")

SCRIPT = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from benchmarks.problem import Problem, TestKind
from harness.executor import execute
p = Problem(task_id="t/1", benchmark="synth", prompt="", test_kind=TestKind.CALL, entry_point="f", fn_name="f",
            inputs=([1],), outputs=(2,))
right, wrong = execute(p, "def f(x):\\n    return x + 1\\n"), execute(p, "def f(x):\\n    return x\\n")
print(right.verdict.value, wrong.verdict.value, sorted(k for k, on in right.isolation.items() if not on))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not SYSTEM_PYTHON,
                    reason="needs root (to become nobody with setpriv) and a system python3")
def test_as_an_unprivileged_user_isolation_degrades_loudly_and_verdicts_stay_right(tmp_path: Path) -> None:
    version = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info >= (3, 10))"],
                             capture_output=True, text=True).stdout.strip()
    if version != "True":
        pytest.skip(f"{SYSTEM_PYTHON} is older than 3.10")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([*nobody, SYSTEM_PYTHON, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[0] == "passed failed ['mount', 'net', 'pid', 'uid']"
    assert "runs WITHOUT net, mount, pid, uid isolation" in out.stderr
