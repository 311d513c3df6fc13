"""Reward functions: one row per verdict, with the paper's value and why."""

from __future__ import annotations

import pytest
from execrl.benchmarks.problem import Problem
from execrl.benchmarks.problem import TestKind as Kind
from execrl.harness.records import ExecResult, Verdict
from execrl.harness.records import TestOutcome as Outcome
from execrl.trainers.rewards import REWARDS, fraction_passed, mix_rewards

from tests.builders import call_problem

PROBLEM = call_problem("synth/t0", "f", [[1], [2], [3], [4]], [2, 3, 4, 5], prompt="add")
P, F, R = Verdict.PASSED, Verdict.FAILED, Verdict.RUNTIME_ERROR


def _result(verdict: Verdict, tests: list[Verdict]) -> ExecResult:
    return ExecResult(verdict=verdict, tests=[Outcome(v) for v in tests])


CASES = [
    # (name, result, expected coderl, expected partial, expected binary)
    ("all-tests-pass", _result(P, [P, P, P, P]), 1.0, 1.0, 1.0),
    ("half-the-tests-fail", _result(F, [P, P, F, F]), -0.3, -0.3 + 1.3 * 0.5, 0.0),
    ("no-test-passes", _result(F, [F, F, F, F]), -0.3, -0.3, 0.0),
    ("syntax-error", _result(Verdict.SYNTAX_ERROR, []), -1.0, -1.0, 0.0),
    ("crash-on-first-test", _result(R, [R]), -0.6, -0.6, 0.0),
    ("crash-after-three-passes", _result(R, [P, P, P, R]), -0.6, -0.3 + 1.3 * 0.75, 0.0),
    ("timeout-counts-as-runtime-error", _result(Verdict.TIMEOUT, [Verdict.TIMEOUT]), -0.6, -0.6, 0.0),
    ("memory-bomb-counts-as-runtime-error", _result(Verdict.MEMORY_EXCEEDED, []), -0.6, -0.6, 0.0),
]


@pytest.mark.parametrize(("result", "coderl", "partial", "binary"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_verdict_gets_the_reward_its_paper_assigns(result, coderl, partial, binary) -> None:
    for name, expected in (("coderl", coderl), ("partial", partial), ("binary", binary)):
        assert REWARDS[name]([PROBLEM], ["x"], [result]) == [pytest.approx(expected)], name


@pytest.mark.parametrize("name", sorted(REWARDS), ids=sorted(REWARDS))
def test_a_sandbox_error_gives_no_reward_rather_than_a_penalty(name: str) -> None:
    rewards = REWARDS[name](
        [PROBLEM, PROBLEM],
        ["x", "def f(x):\n    return x + 1\n"],
        [_result(Verdict.SANDBOX_ERROR, []), _result(P, [P, P, P, P])],
    )
    assert rewards[0] is None and rewards[1] is not None


def test_tests_never_reached_count_as_failed_in_the_fraction() -> None:
    assert fraction_passed(PROBLEM, _result(R, [P, R])) == 0.25


def test_partial_credit_is_monotone_in_tests_passed() -> None:
    results = [_result(F if k < 4 else P, [P] * k + [F] * (4 - k)) for k in range(5)]
    rewards = REWARDS["partial"]([PROBLEM] * 5, ["x"] * 5, results)
    assert rewards == sorted(rewards) and len(set(rewards)) == 5


def test_weighted_reward_combines_syntax_tests_and_quality_within_zero_and_one() -> None:
    good = '"""Add one."""\n\n\ndef f(x):\n    """Return x + 1."""\n    return x + 1\n'
    half = '"""Add one."""\n\n\ndef f(x):\n    """Return x + 1 for small x."""\n    return x + 1 if x < 3 else x\n'
    broken = "def f(x:\n"
    results = [_result(P, [P] * 4), _result(F, [P, P, F, F]), _result(Verdict.SYNTAX_ERROR, [])]
    rewards = REWARDS["weighted"]([PROBLEM] * 3, [good, half, broken], results)
    assert all(0.0 <= r <= 1.0 for r in rewards)
    assert rewards[2] == 0.0  # no syntax credit, no tests, no quality
    assert rewards[0] >= 0.3 + 0.5  # syntax + all tests, plus a quality term
    assert rewards[0] - rewards[1] == pytest.approx(0.5 * 0.5, abs=0.2 * 0.2)  # tests differ by half; quality ~same


def test_mixing_adds_the_weighted_score_and_keeps_missing_rewards_missing() -> None:
    assert mix_rewards([1.0, None, -0.3], [0.5, 0.9, 0.2], weight=0.5) == [1.25, None, pytest.approx(-0.2)]
    assert mix_rewards([1.0], [100.0], weight=0.0) == [1.0]


class _FakeCritic:
    """P(passed) = 0.9 for programs containing 'good', 0.1 otherwise; columns in critic.CLASSES order."""

    def predict_proba(self, prompts, programs):
        import numpy as np

        return np.array([[0.0, 0.0, 0.1, 0.9] if "good" in p else [0.3, 0.3, 0.3, 0.1] for p in programs])


class _FakeRewardModel:
    def score(self, prompts, responses):
        return [len(r) for r in responses]


def test_ppo_mixes_critic_and_reward_model_scores_into_the_sandbox_reward() -> None:
    from types import SimpleNamespace

    from execrl.trainers.ppo_setup import mixed_rewards

    problem = call_problem("t/1", "f", [[]], [1], prompt="# p\ndef f():\n")
    passed = ExecResult(Verdict.PASSED, [Outcome(Verdict.PASSED)])
    failed = ExecResult(Verdict.FAILED, [Outcome(Verdict.FAILED)])
    programs = ["def f():\n    return 1  # good\n", "def f():\n    return 2\n"]
    cfg = SimpleNamespace(reward="binary", reward_model_weight=0.0, critic_weight=0.5)
    assert mixed_rewards(cfg, [problem] * 2, programs, [passed, failed], critic=_FakeCritic()) == pytest.approx(
        [1.0 + 0.45, 0.0 + 0.05]
    )
    cfg = SimpleNamespace(reward="binary", reward_model_weight=0.1, critic_weight=0.0)
    responses = [len(p.split("\n", 1)[1]) for p in programs]
    assert mixed_rewards(
        cfg, [problem] * 2, programs, [passed, failed], reward_model=_FakeRewardModel()
    ) == pytest.approx([1.0 + 0.1 * responses[0], 0.1 * responses[1]])


def test_partial_credit_on_humaneval_counts_every_statement_of_check() -> None:
    # HumanEval's check is one field but several tests; a run cut short must not earn full credit.
    problem = Problem(
        task_id="HumanEval/x",
        benchmark="humaneval",
        prompt="def f(x):\n",
        test_kind=Kind.ASSERT,
        entry_point="f",
        check_code="def check(candidate):\n    assert candidate(1) == 1\n"
        "    assert candidate(2) == 2\n    assert candidate(3) == 3\n    assert candidate(4) == 4\n",
    )
    cut_short = ExecResult(Verdict.TIMEOUT, [Outcome(Verdict.PASSED)])
    assert fraction_passed(problem, cut_short) == 0.25


SANDBOX_ERROR = ExecResult(Verdict.SANDBOX_ERROR, error="sandbox worker 0 did not answer within 100s")


@pytest.mark.parametrize(
    ("n_errors", "n", "limit", "stops"),
    [(0, 20, 0.05, False), (1, 20, 0.05, False), (2, 20, 0.05, True), (1, 20, 0.0, True), (20, 20, 1.0, False)],
    ids=["none", "at-the-limit", "above-the-limit", "zero-tolerance", "limit-off"],
)
def test_a_batch_with_too_many_sandbox_errors_stops_the_run(n_errors, n, limit, stops) -> None:
    from execrl.trainers.rewards import SandboxErrorRate, check_sandbox_errors

    results = [SANDBOX_ERROR] * n_errors + [_result(P, [P])] * (n - n_errors)
    if stops:
        with pytest.raises(SandboxErrorRate, match=f"{n_errors} of {n} programs ended in sandbox_error"):
            check_sandbox_errors(results, limit)
    else:
        assert check_sandbox_errors(results, limit) == n_errors


def test_hack_rates_are_the_share_of_programs_with_any_event_and_with_each_kind() -> None:
    from execrl.harness.records import Containment
    from execrl.trainers.rewards import hack_rates

    results = [
        ExecResult(Verdict.FAILED, containment={"opaque_answer": 3}),
        ExecResult(Verdict.FAILED, containment={"opaque_answer": 1, "network": 2}),
        ExecResult(Verdict.PASSED),
        ExecResult(Verdict.TIMEOUT),
    ]
    rates = hack_rates(results)
    assert rates["code/hack_attempt_rate"] == 0.5
    assert rates["code/hack/opaque_answer"] == 0.5 and rates["code/hack/network"] == 0.25
    assert {f"code/hack/{k.value}" for k in Containment} < set(rates), "every kind, zeros included"
    assert rates["code/hack/early_exit"] == 0.0


@pytest.mark.parametrize(("rate", "limit", "stops"), [(0.5, 0.25, True), (0.25, 0.25, False), (1.0, 1.0, False)])
def test_check_hack_rate_stops_only_above_the_limit(rate, limit, stops) -> None:
    from execrl.trainers.rewards import HackAttemptRate, check_hack_rate

    if stops:
        with pytest.raises(HackAttemptRate, match="tried to cheat"):
            check_hack_rate(rate, limit)
    else:
        check_hack_rate(rate, limit)
