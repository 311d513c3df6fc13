"""Training health of a run folder with RL logs (`RUN/train/metrics.jsonl`): the curves a reviewer reads
(reward, pass rate, KL, entropy, clip fraction, explained variance, sandbox-error share, hack-attempt rate,
with the in-loop evaluation marked) and the warnings they should not miss.

Every curve is optional: critic-free runs log no explained variance, older runs no hack-attempt rate. The
warning rules are small pure functions on (step, value) series, each with its threshold and its reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from execrl.reports.blocks import Health, Image, Table
from execrl.reports.runs import Run

CURVES = {
    "ppo/mean_reward": "reward",
    "code/pass_rate": "pass rate (rollouts)",
    "ppo/kl": "KL to reference",
    "ppo/entropy": "entropy",
    "ppo/clipfrac": "clip fraction",
    "ppo/explained_variance": "explained variance",
    "code/sandbox_error_rate": "sandbox-error share",
    "code/hack_attempt_rate": "hack-attempt rate",
}
"""The health curves, in panel order; each is drawn when the log has it."""
EVAL_KEY = re.compile(r"eval/.+/pass@1")
"""The in-loop evaluation on held-out problems (`execrl train ppo --eval-every`)."""

KL_LIMIT = 10.0
"""Nats per sequence. Adaptive KL controllers aim at ~6 (Ziegler et al. 2019, "Fine-Tuning Language Models from
Human Preferences", sec. 2.2; TRL's default target): well past that the policy has left its reference."""
ENTROPY_COLLAPSE = 0.1
"""Entropy of the last quarter of training below this share of the first quarter's: the policy has stopped
exploring (its samples for a prompt are near copies, so group-relative advantages vanish too)."""
EVAL_DROP = 0.02
"""A fall of held-out pass@1 (absolute) that counts, the `report check` gate's default --max-drop."""

Series = list[tuple[float, float]]


def series(log: Sequence[dict], key: str) -> Series:
    """(step, value) of every logged row where `key` is a number (None, a NaN logged as null, is skipped)."""
    return [
        (float(row.get("step", i)), float(row[key]))
        for i, row in enumerate(log)
        if isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool)
    ]


def _quarters(values: Series) -> tuple[float, float] | None:
    """Means of the first and the last quarter (at least one point each), or None under 4 points."""
    if len(values) < 4:
        return None
    q = len(values) // 4
    first, last = [v for _, v in values[:q]], [v for _, v in values[-q:]]
    return sum(first) / len(first), sum(last) / len(last)


def kl_blowup(kl: Series, limit: float = KL_LIMIT) -> str | None:
    over = [(s, v) for s, v in kl if v > limit]
    if not over:
        return None
    step, peak = max(over, key=lambda sv: sv[1])
    return f"KL blow-up: KL to the reference reached {peak:.2f} at step {step:g} (warn above {limit:g})."


def entropy_collapse(entropy: Series, share: float = ENTROPY_COLLAPSE) -> str | None:
    quarters = _quarters(entropy)
    if quarters is None or quarters[0] <= 0 or quarters[1] >= share * quarters[0]:
        return None
    return (
        f"entropy collapse: mean entropy fell from {quarters[0]:.3f} (first quarter) to {quarters[1]:.3f} "
        f"(last quarter), below {share:.0%} of where it started."
    )


def reward_up_heldout_down(reward: Series, held_out: Series, drop: float = EVAL_DROP) -> str | None:
    """Reward rising while held-out pass@1 falls: the policy learns something the tests do not reward
    elsewhere (over-fitting the training problems, or a reward hack)."""
    quarters = _quarters(reward)
    if quarters is None or quarters[1] <= quarters[0] or len(held_out) < 2:
        return None
    (s0, first), (s1, last) = held_out[0], held_out[-1]
    if first - last <= drop:
        return None
    return (
        f"reward rose ({quarters[0]:.3f} -> {quarters[1]:.3f}, first to last quarter) while held-out pass@1 "
        f"fell from {first:.3f} (step {s0:g}) to {last:.3f} (step {s1:g})."
    )


def any_positive(values: Series, what: str) -> str | None:
    hits = [(s, v) for s, v in values if v > 0]
    if not hits:
        return None
    step, peak = max(hits, key=lambda sv: sv[1])
    last = values[-1][1]
    return f"{what} in {len(hits)} of {len(values)} steps (peak {peak:.1%} at step {step:g}, last {last:.1%})."


def critic_worse_than_constant(explained: Series) -> str | None:
    quarters = _quarters(explained)
    if quarters is None or quarters[1] >= 0:
        return None
    return (
        f"explained variance {quarters[1]:.3f} over the last quarter: the value head predicts returns worse than "
        "a constant would (its advantages are noise)."
    )


def non_finite(log: Sequence[dict]) -> str | None:
    """A NaN/inf in a loss or statistic (the tracker writes a NaN as null, a key whose value is absent)."""
    bad = sorted(
        {
            k
            for row in log
            for k, v in row.items()
            if k.startswith("ppo/") and (v is None or (isinstance(v, float) and not math.isfinite(v)))
        }
    )
    return f"non-finite values logged for {', '.join(bad)}." if bad else None


def eval_series(log: Sequence[dict]) -> dict[str, Series]:
    keys = sorted({k for row in log for k in row if EVAL_KEY.fullmatch(k)})
    return {k: series(log, k) for k in keys}


def warnings(log: Sequence[dict]) -> list[str]:
    held_out = next(iter(eval_series(log).values()), [])
    found = [
        kl_blowup(series(log, "ppo/kl")),
        entropy_collapse(series(log, "ppo/entropy")),
        reward_up_heldout_down(series(log, "ppo/mean_reward"), held_out),
        any_positive(series(log, "code/sandbox_error_rate"), "sandbox errors in rollouts"),
        any_positive(series(log, "code/hack_attempt_rate"), "hack attempts in rollouts"),
        critic_worse_than_constant(series(log, "ppo/explained_variance")),
        non_finite(log),
    ]
    return [w for w in found if w]


def summary(log: Sequence[dict]) -> Table:
    rows = []
    for key, label in [*CURVES.items(), *((k, "held-out pass@1 (in-loop eval)") for k in eval_series(log))]:
        values = series(log, key)
        if values:
            ys = [v for _, v in values]
            rows.append([key, label, ys[0], ys[-1], min(ys), max(ys), len(ys)])
    return Table(["metric", "what", "first", "last", "min", "max", "steps"], rows)


def build_health(run: Run, image: Path | None) -> Health | None:
    """The run's training health, or None when it holds no RL log."""
    if not run.train_log:
        return None
    return Health(
        run=run.name,
        warnings=warnings(run.train_log),
        summary=summary(run.train_log),
        image=Image(f"Training curves: {run.name}", image) if image is not None else None,
    )
