"""Reward functions: the sandbox verdict of each sampled program turned into a scalar.

Every function has ONE signature: `(problems, programs, results) -> list[float | None]`, one value per
sample. `None` means "no reward": the sandbox itself failed (`Verdict.SANDBOX_ERROR` says nothing
about the program), and the PPO loop leaves that sample out of the update instead of punishing it.
Pick one from the `REWARDS` dict literal by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from execrl.benchmarks.problem import Problem
from execrl.harness.records import Containment, ExecResult, Verdict
from execrl.harness.sandbox.executor import n_tests

RewardFn = Callable[[Sequence[Problem], Sequence[str], Sequence[ExecResult]], list["float | None"]]

# Verdicts where the program started but crashed or ran out of a resource: CodeRL's "runtime error".
_RUNTIME_FAULTS = {Verdict.RUNTIME_ERROR, Verdict.TIMEOUT, Verdict.MEMORY_EXCEEDED, Verdict.OUTPUT_EXCEEDED}


def fraction_passed(problem: Problem, result: ExecResult) -> float:
    """Share of the problem's tests this program passed (tests the run never reached count as failed)."""
    return result.n_passed / max(len(result.tests), n_tests(problem), 1)


def coderl_reward(
    problems: Sequence[Problem], programs: Sequence[str], results: Sequence[ExecResult]
) -> list[float | None]:
    """CodeRL (Le et al. 2022, arXiv:2207.01780): -1 syntax error, -0.6 runtime error, -0.3 failed, +1 passed."""
    rewards: list[float | None] = []
    for result in results:
        if result.verdict is Verdict.SANDBOX_ERROR:
            rewards.append(None)
        elif result.verdict is Verdict.SYNTAX_ERROR:
            rewards.append(-1.0)
        elif result.verdict in _RUNTIME_FAULTS:
            rewards.append(-0.6)
        elif result.verdict is Verdict.FAILED:
            rewards.append(-0.3)
        else:
            rewards.append(1.0)
    return rewards


def partial_reward(
    problems: Sequence[Problem], programs: Sequence[str], results: Sequence[ExecResult]
) -> list[float | None]:
    """RLTF-style adaptive feedback (Liu et al. 2023, arXiv:2307.04349, sec. 3.3): partial credit for tests passed.

    -1 syntax error; -0.6 for a runtime fault that passed no test; otherwise -0.3 + 1.3 * fraction passed
    (so a program passing every test gets +1, and one passing none gets CodeRL's -0.3).
    """
    rewards: list[float | None] = []
    for problem, result in zip(problems, results, strict=True):
        if result.verdict is Verdict.SANDBOX_ERROR:
            rewards.append(None)
        elif result.verdict is Verdict.SYNTAX_ERROR:
            rewards.append(-1.0)
        elif result.verdict in _RUNTIME_FAULTS and result.n_passed == 0:
            rewards.append(-0.6)
        else:
            rewards.append(-0.3 + 1.3 * fraction_passed(problem, result))
    return rewards


def weighted_reward(
    problems: Sequence[Problem], programs: Sequence[str], results: Sequence[ExecResult]
) -> list[float | None]:
    """0.3 * syntax_ok + 0.5 * fraction of tests passed + 0.2 * quality / 10, in [0, 1]."""
    # Imported here: static analysis (radon) is only needed by this reward.
    from execrl.harness.scoring.quality import quality_many

    qualities = quality_many(list(programs))
    rewards: list[float | None] = []
    for problem, result, quality in zip(problems, results, qualities, strict=True):
        if result.verdict is Verdict.SANDBOX_ERROR:
            rewards.append(None)
            continue
        syntax_ok = result.verdict is not Verdict.SYNTAX_ERROR
        quality_score = quality.score if syntax_ok else 0.0
        rewards.append(0.3 * syntax_ok + 0.5 * fraction_passed(problem, result) + 0.2 * quality_score / 10.0)
    return rewards


def binary_reward(
    problems: Sequence[Problem], programs: Sequence[str], results: Sequence[ExecResult]
) -> list[float | None]:
    """1 when every test passed, else 0."""
    return [None if r.verdict is Verdict.SANDBOX_ERROR else float(r.passed) for r in results]


REWARDS: dict[str, RewardFn] = {
    "coderl": coderl_reward,
    "partial": partial_reward,
    "weighted": weighted_reward,
    "binary": binary_reward,
}


def mix_rewards(rewards: Sequence[float | None], scores: Sequence[float], weight: float) -> list[float | None]:
    """Add `weight * score` (a reward model's score or a critic's P(passed)) to each execution reward.

    A sample with no execution reward stays None: a learned score alone is not trusted without the sandbox.
    """
    if weight == 0:
        return list(rewards)
    return [None if r is None else r + weight * s for r, s in zip(rewards, scores, strict=True)]


class SandboxErrorRate(RuntimeError):
    """Too many programs of one batch ended in sandbox_error (see `check_sandbox_errors`)."""


def check_sandbox_errors(results: Sequence[ExecResult], limit: float) -> int:
    """The number of sandbox errors in a batch; raises SandboxErrorRate above `limit` (a share).

    A sandbox error gets no reward (None): fair for a rare harness fault, but a policy that learned to
    cause one would escape the penalty of its failures. So a run stops, loudly, instead of training on.
    """
    errors = sum(r.verdict is Verdict.SANDBOX_ERROR for r in results)
    if results and errors > limit * len(results):
        first = next(r.error for r in results if r.verdict is Verdict.SANDBOX_ERROR)
        raise SandboxErrorRate(
            f"{errors} of {len(results)} programs ended in sandbox_error (limit {limit:.0%}): the sandbox is "
            f"failing, or the policy found a way to make it fail. First error: {first[:300]}"
        )
    return errors


class HackAttemptRate(RuntimeError):
    """Too many programs of one batch tried to cheat (see `check_hack_rate`)."""


def hack_rates(results: Sequence[ExecResult]) -> dict[str, float]:
    """Reward-hack telemetry of a batch: `code/hack_attempt_rate`, the share of programs whose run recorded any
    containment event (`ExecResult.containment`), and `code/hack/<kind>`, the share that recorded each kind
    (every kind, zeros included, so each curve is continuous)."""
    n = max(len(results), 1)
    rates = {"code/hack_attempt_rate": sum(bool(r.containment) for r in results) / n}
    for kind in Containment:
        rates[f"code/hack/{kind.value}"] = sum(kind.value in r.containment for r in results) / n
    return rates


def check_hack_rate(rate: float, limit: float) -> None:
    """Raises HackAttemptRate when a batch's `code/hack_attempt_rate` is above `limit` (a share).

    The sandbox already defeats each attempt (it earns the failing reward), but a policy that starts trying is a
    change in behaviour worth stopping for (arXiv 2511.17387: hacking appears within tens of steps, then spreads).
    """
    if rate > limit:
        raise HackAttemptRate(
            f"{rate:.0%} of the batch's programs tried to cheat the check (limit {limit:.0%}); see code/hack/* in "
            "metrics.jsonl for which kinds"
        )
