"""Every benchmark's reference solutions pass the real sandbox, run through `execute_many` on 2 workers, and
none of them (nor synth's planted wrong solutions: honest mistakes) trips the reward-hack telemetry: an honest
program records no containment event (`ExecResult.containment`), so a false alarm fails these tests.

MBPP and APPS need the shared data folder; they are skipped, with the reason, when it is missing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from execrl.benchmarks.registry import default_data_dir, load_problems
from execrl.harness.records import Limits, Verdict
from execrl.harness.sandbox.pool import SandboxPool, execute_many

DATA_DIR = default_data_dir() or Path(__file__).resolve().parents[4] / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA_DIR / "mbpp").is_dir(), reason=f"no benchmark data at {DATA_DIR}")


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=2, limits=Limits(timeout=10.0, program_timeout=60.0)) as pool:
        yield pool


def _failures(problems, pool) -> dict[str, str]:
    """Task id -> verdict and error of each reference that did not pass; asserts no reference recorded a
    containment event (one run serves both checks: these runs are the suite's most expensive)."""
    programs = [p.program(p.solutions[0]) for p in problems]
    results = execute_many(problems, programs, pool=pool)
    assert _alarms(problems, results) == {}
    return {
        p.task_id: f"{r.verdict.value}: {r.error[:200]}"
        for p, r in zip(problems, results, strict=True)
        if r.verdict is not Verdict.PASSED
    }


def _alarms(problems, results) -> dict[str, dict[str, int]]:
    return {p.task_id: r.containment for p, r in zip(problems, results, strict=True) if r.containment}


@pytest.mark.slow
def test_every_humaneval_canonical_solution_passes(pool) -> None:
    problems = load_problems("humaneval")
    assert len(problems) == 164
    assert _failures(problems, pool) == {}


@pytest.mark.slow
@needs_data
def test_all_but_at_most_one_full_mbpp_reference_passes(pool) -> None:
    problems = load_problems("mbpp", "all", DATA_DIR, variant="full")
    assert len(problems) == 974
    failures = _failures(problems, pool)
    assert len(failures) <= 1, failures


@pytest.mark.slow
@needs_data
def test_every_sanitized_mbpp_reference_passes(pool) -> None:
    problems = load_problems("mbpp", "all", DATA_DIR, variant="sanitized")
    assert len(problems) == 427
    assert _failures(problems, pool) == {}


@pytest.mark.slow
@needs_data
def test_apps_train_references_pass_except_the_few_with_several_valid_answers(pool) -> None:
    problems = [p for p in load_problems("apps", "train", DATA_DIR) if p.solutions]
    failures = _failures(problems, pool)
    # 7 of the 153 accept several valid answers and ship no checker; exact stdout comparison fails them.
    assert len(problems) - len(failures) >= 146, failures
    assert Counter(v.split(":")[0] for v in failures.values())["sandbox_error"] == 0, failures


@pytest.mark.slow
def test_every_synth_reference_passes_and_every_planted_wrong_solution_fails(pool) -> None:
    from execrl.benchmarks.synth import load_synth

    problems = load_synth("test") + load_synth("train", n=400)
    assert _failures(problems, pool) == {}
    wrong = [(p, w) for p in problems for w in p.metadata["wrong_solutions"]]
    results = execute_many([p for p, _ in wrong], [w for _, w in wrong], pool=pool)
    judged_passed = [p.task_id for (p, _), r in zip(wrong, results, strict=True) if r.passed]
    assert judged_passed == [], "a subtly wrong synth solution was judged passed"
    assert _alarms([p for p, _ in wrong], results) == {}, "an honest mistake was recorded as a hack attempt"
