"""Training health: each warning rule on a constructed log, one row per situation, and absent curves."""

from __future__ import annotations

import math

import pytest
from execrl.reports.health import summary, warnings


def _log(n: int = 12, **curves) -> list[dict]:
    """n logged steps; each keyword is a function of the step giving that metric (None: not logged)."""
    return [
        {"step": s, **{k.replace("__", "/"): f(s) for k, f in curves.items() if f(s) is not None}}
        for s in range(1, n + 1)
    ]


HEALTHY = {
    "ppo__mean_reward": lambda s: 0.1 + 0.02 * s,
    "ppo__kl": lambda s: 0.05 * s,
    "ppo__entropy": lambda s: 1.5 - 0.02 * s,
    "ppo__explained_variance": lambda s: 0.3,
    "code__pass_rate": lambda s: 0.3 + 0.01 * s,
}


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({}, None),
        ({"ppo__kl": lambda s: 0.5 * s * s}, "KL blow-up: KL to the reference reached 72.00 at step 12"),
        ({"ppo__entropy": lambda s: 2.0 * math.exp(-s)}, "entropy collapse"),
        (
            {"eval__synth__pass@1": lambda s: 0.6 - 0.02 * s if s % 4 == 0 else None},
            "reward rose (0.140 -> 0.320, first to last quarter) while held-out pass@1 fell from 0.520 (step 4)",
        ),
        ({"eval__synth__pass@1": lambda s: 0.5 + 0.01 * s if s % 4 == 0 else None}, None),
        ({"code__sandbox_error_rate": lambda s: 0.05 if s == 7 else 0.0}, "sandbox errors in rollouts in 1 of 12"),
        ({"code__hack_attempt_rate": lambda s: 0.01 * s}, "hack attempts in rollouts in 12 of 12 steps (peak 12.0%"),
        ({"ppo__explained_variance": lambda s: -0.5}, "explained variance -0.500 over the last quarter"),
        ({"ppo__explained_variance": lambda s: None}, None),
        (
            {"ppo__policy_loss": lambda s: float("nan") if s == 5 else 0.1},
            "non-finite values logged for ppo/policy_loss",
        ),
    ],
    ids=[
        "healthy-run-no-warning",
        "kl-blow-up",
        "entropy-collapse",
        "reward-up-while-held-out-pass-falls",
        "reward-up-and-held-out-up-is-fine",
        "sandbox-errors-in-rollouts",
        "hack-attempts-in-rollouts",
        "critic-worse-than-a-constant",
        "critic-free-run-has-no-explained-variance",
        "nan-in-a-loss",
    ],
)
def test_each_warning_fires_on_its_situation_only(changes, expected) -> None:
    found = warnings(_log(**{**HEALTHY, **changes}))
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0], found


def test_summary_lists_only_the_curves_the_log_has() -> None:
    log = _log(**{**HEALTHY, "ppo__explained_variance": lambda s: None, "eval__synth__pass@1": lambda s: 0.5})
    rows = {row[0]: row for row in summary(log).rows}
    assert "ppo/explained_variance" not in rows and "code/hack_attempt_rate" not in rows
    assert rows["eval/synth/pass@1"][1] == "held-out pass@1 (in-loop eval)"
    assert rows["ppo/kl"][2:] == [0.05, 0.6000000000000001, 0.05, 0.6000000000000001, 12]
