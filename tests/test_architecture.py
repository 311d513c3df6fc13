"""The architecture's rules that code review alone would miss: one-way imports and light imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> packages it must never import (ARCHITECTURE.md: benchmarks <- harness <- {trainers, reports}).
FORBIDDEN = {
    "benchmarks": {"harness", "trainers", "reports"},
    "harness": {"trainers", "reports"},
    "reports": {"trainers"},
}


def _room(module: str) -> str:
    """`execrl.harness.sandbox.pool` -> `harness`; a module outside execrl -> its top-level name."""
    parts = module.split(".")
    return parts[1] if parts[0] == "execrl" and len(parts) > 1 else parts[0]


def _imported_rooms(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(_room(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.update(_room(f"{node.module}.{alias.name}") if node.module == "execrl" else _room(node.module)
                         for alias in node.names)  # fmt: skip
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = _imported_rooms(path) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


LIGHT_MODULES = [
    ("execrl", "the public API is imported by every user of the adapters and the rewards"),
    ("execrl.harness.cli", "the dispatcher runs for every command"),
    ("execrl.harness.evaluate", "evaluating a samples file must not need torch"),
    ("execrl.harness.sandbox.pool", "the sandbox pool is used by evaluate"),
    ("execrl.harness.sandbox.executor", "the sandbox itself"),
    ("execrl.harness.scoring.metrics", "metrics are computed without a model"),
    ("execrl.harness.generation.hf_sampling", "trainers and the hf engine import it; torch only once they sample"),
    ("execrl.reports.cli", "reports work from the base install"),
    ("execrl.reports.check", "the CI regression check must stay light"),
    ("execrl.reports.labelling.app", "the labelling server needs no model"),
    ("execrl.benchmarks.registry", "loading problems needs no model"),
    ("execrl.trainers.cli", "`execrl train --help` should not pay for torch"),
]


@pytest.mark.parametrize("module,reason", LIGHT_MODULES, ids=[m for m, _ in LIGHT_MODULES])
def test_light_modules_do_not_import_torch(module: str, reason: str) -> None:
    code = f"import sys, importlib; importlib.import_module({module!r}); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", f"{module} imports torch at import time ({reason})"


def test_every_registered_command_imports_and_has_help() -> None:
    from execrl.harness.cli import COMMANDS

    assert COMMANDS, "no command is registered"
    for name, (_module, summary) in COMMANDS.items():
        assert summary, f"{name} has no summary"
        out = subprocess.run(
            [sys.executable, "-m", "execrl.harness.cli", name, "--help"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        assert out.returncode == 0, f"execrl {name} --help failed:\n{out.stderr[-2000:]}"
        assert "usage" in out.stdout.lower(), f"execrl {name} --help printed no usage:\n{out.stdout[:500]}"
