"""Planted-bug mutants (trainers/planted_bugs.py) and the MBPP learning check they make pass."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
from execrl.benchmarks.registry import default_data_dir, load_problems
from execrl.harness.extract import program_of
from execrl.harness.sandbox.pool import execute_many
from execrl.trainers.planted_bugs import planted_bug, planted_bug_rows, token_mutants
from execrl.trainers.sources import reference_rows

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = default_data_dir() or ROOT.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA_DIR / "mbpp").is_dir(), reason=f"no benchmark data at {DATA_DIR}")

# (source, a mutant that must be among the one-token changes, why)
MUTANT_CASES = [
    ("def f(x, y):\n    return x > y\n", "def f(x, y):\n    return x >= y\n", "strict comparison loosened"),
    ("def f(x, y):\n    return x > y\n", "def f(x, y):\n    return x < y\n", "comparison flipped"),
    ("def f(x):\n    return x + 1\n", "def f(x):\n    return x - 1\n", "plus to minus"),
    ("def f(x):\n    return x + 1\n", "def f(x):\n    return x + 2\n", "integer constant + 1"),
    ("def f(a):\n    return max(a)\n", "def f(a):\n    return min(a)\n", "max to min"),
    ("def f(a, b):\n    return a and b\n", "def f(a, b):\n    return a or b\n", "and to or"),
    ("def f(s):\n    return s.upper()\n", "def f(s):\n    return s.lower()\n", "upper to lower"),
]


@pytest.mark.parametrize(("source", "expected", "why"), MUTANT_CASES, ids=[c[2] for c in MUTANT_CASES])
def test_token_mutants_hold_the_one_token_change(source: str, expected: str, why: str) -> None:
    mutants = token_mutants(source)
    assert expected in mutants, why
    assert source not in mutants
    for mutant in mutants:
        ast.parse(mutant)  # every mutant parses


def test_token_mutants_leave_out_what_does_not_parse_and_strings() -> None:
    # 0 - 1 would be a negative constant, not a digit token: only 0 -> 1 is offered;
    # text inside a string literal is never touched
    assert token_mutants("def f():\n    return 0\n") == ["def f():\n    return 1\n"]
    assert token_mutants("def f():\n    return 'a+b'\n") == []


@needs_data
def test_planted_bug_fails_the_mbpp_asserts_and_skips_mutants_that_pass() -> None:
    problem = next(p for p in load_problems("mbpp", "train", DATA_DIR) if p.task_id == "Mbpp/924")  # max_of_two
    completion = reference_rows([problem], 1)[0]["completion"]
    loosened = completion.replace("x > y", "x >= y")
    assert loosened in token_mutants(completion)
    # `>=` still returns the larger of two: it passes, so it must never be planted as the wrong variant
    assert execute_many([problem], [program_of(problem, loosened)], workers=1)[0].passed
    for seed in range(4):
        mutant = planted_bug(problem, completion, seed)
        assert mutant is not None and mutant != loosened
        assert not execute_many([problem], [program_of(problem, mutant)], workers=1)[0].passed
    rows, mutants = planted_bug_rows([problem], 0.5, 10, seed=0)
    assert [r["completion"] for r in rows].count(mutants["Mbpp/924"]) == 5 and len(rows) == 10


@needs_data
@pytest.mark.slow
def test_ppo_on_mbpp_asserts_removes_a_planted_bug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue 10 learning check, reduced: SFT on 8 MBPP problems' references mixed half with planted-bug
    mutants, then GRPO on MBPP's own asserts; fresh samples pass more often (one-sided p) and fewer are the
    planted bug. ~65 s on 2 busy cores. With plain references (`--wrong-share 0`) the same run does not learn
    (BENCHMARKS.md: 0.898 -> 0.820, p = 0.96), so this can fail."""
    monkeypatch.setenv("EXECRL_DATA_DIR", str(DATA_DIR))
    spec = importlib.util.spec_from_file_location("bench_mbpp_learning", ROOT / "tests/perf/bench_mbpp_learning.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.main(
        ["--wrong-share", "0.5", "--sft-steps", "400", "--advantage", "grpo", "--iterations", "30",
         "--batch-size", "32", "--kl-coef", "0.05", "--lr", "5e-4", "--out", str(tmp_path)]
    )  # fmt: skip
    assert figures["one_sided_p"] < 0.01, figures
    assert figures["planted_bug_after"] < figures["planted_bug_before"], figures
