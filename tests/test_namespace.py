"""One import namespace: ours live under `execrl.*`, whatever folders the user's own working directory holds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("benchmarks", "harness", "reports", "trainers")


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)


def _printed_json(code: str, cwd: Path) -> dict:
    """What `code`, run in a fresh interpreter in `cwd`, prints as JSON; it must exit 0."""
    out = _python(code, cwd)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_import_execrl_is_light_and_every_public_name_resolves(tmp_path: Path) -> None:
    code = (
        "import json, sys, execrl\n"
        "light = 'torch' not in sys.modules\n"
        "missing = [n for n in execrl.__all__ if getattr(execrl, n, None) is None]\n"
        "print(json.dumps({'light': light, 'missing': missing, 'version': execrl.__version__,\n"
        "                  'torch_after_api': 'torch' in sys.modules}))"
    )
    got = _printed_json(code, tmp_path)
    assert got["light"], "`import execrl` imported torch"
    assert got["missing"] == [], f"execrl.__all__ names that do not resolve: {got['missing']}"
    assert got["torch_after_api"] is False, "touching the public API (problems, sandbox, rewards) imported torch"
    from importlib.metadata import version

    assert got["version"] == version("execrl")


def test_our_rooms_are_found_beside_a_users_own_folders_of_the_same_names(tmp_path: Path) -> None:
    for room in ROOMS:
        (tmp_path / room).mkdir()
        (tmp_path / room / "__init__.py").write_text(f"WHO = 'the user\\'s own {room}'\n")
    (tmp_path / "trainers" / "rewards.py").write_text("REWARDS = 'not ours'\n")
    code = (
        "import json, importlib\n"
        f"rooms = {ROOMS!r}\n"
        "theirs = {r: importlib.import_module(r).WHO for r in rooms}\n"
        "ours = {r: importlib.import_module('execrl.' + r).__file__ for r in rooms}\n"
        "from execrl.trainers.rewards import REWARDS\n"
        "from trainers.rewards import REWARDS as THEIRS\n"
        "print(json.dumps({'theirs': theirs, 'ours': ours, 'rewards': sorted(REWARDS), 'their_rewards': THEIRS}))"
    )
    got = _printed_json(code, tmp_path)
    for room in ROOMS:
        assert got["theirs"][room] == f"the user's own {room}"
        assert Path(got["ours"][room]).resolve() == ROOT / room / "__init__.py", f"execrl.{room} is not ours"
    assert "binary" in got["rewards"]
    assert got["their_rewards"] == "not ours"


@pytest.mark.parametrize("room", ROOMS)
def test_the_old_top_level_name_is_not_importable(room: str, tmp_path: Path) -> None:
    out = _python(f"import {room}", tmp_path)
    assert out.returncode != 0 and "ModuleNotFoundError" in out.stderr, (
        f"`import {room}` still works outside the checkout"
    )
