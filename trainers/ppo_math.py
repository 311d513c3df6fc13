"""PPO math: pure tensor functions, no config objects, each tested against a naive loop.

Shapes: `B` rollouts in the batch, `A` response tokens (padded; `mask` is 1 on real tokens), `G` samples per
prompt (the G samples of a prompt are consecutive rows, as `execrl.trainers.rollout.sample` lays them out).
Sources: GAE — Schulman et al. 2016, "High-Dimensional Continuous Control Using Generalized Advantage
Estimation", arXiv:1506.02438, eq. 16. Clipped surrogate — Schulman et al. 2017, "Proximal Policy
Optimization Algorithms", arXiv:1707.06347, eq. 7. KL estimators k1/k3 — J. Schulman 2020,
"Approximating KL Divergence" (joschu.net/blog/kl-approx.html). Adaptive KL coefficient — Ziegler
et al. 2019, "Fine-Tuning Language Models from Human Preferences", arXiv:1909.08593, section 2.2. The critic-free
estimators and loss aggregations cite their papers where they are defined.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of `values` over the positions where `mask` is 1 (all of them, or along `dim`)."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1.0)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1.0)


def masked_var(values: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of the masked entries (Bessel-corrected when `unbiased` and more than one entry)."""
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    n = mask.sum()
    if unbiased and n > 1:
        var = var * n / (n - 1)
    return var


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """Normalise the masked entries to unit variance (and zero mean when `shift_mean`); masked-out stay 0."""
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask.to(values.dtype)


def compute_gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and returns for right-padded episodes.

    rewards, values, mask: (B, A). The episode ends at its last real token (value 0 beyond it).
    delta_t = r_t + gamma * V_{t+1} - V_t;  A_t = delta_t + gamma * lam * A_{t+1}   (arXiv:1506.02438 eq. 16)
    returns = advantages + values (the value-function target). Padded positions get 0.
    """
    mask = mask.to(values.dtype)
    values = values * mask
    rewards = rewards * mask
    n_tokens = rewards.shape[1]
    lastgaelam = torch.zeros_like(rewards[:, 0])  # (B,)
    advantages_reversed = []
    for t in reversed(range(n_tokens)):
        nextvalues = values[:, t + 1] if t + 1 < n_tokens else torch.zeros_like(lastgaelam)
        delta = rewards[:, t] + gamma * nextvalues - values[:, t]
        # A padded position resets the recursion, so the last real token bootstraps from 0.
        lastgaelam = (delta + gamma * lam * lastgaelam) * mask[:, t]
        advantages_reversed.append(lastgaelam)
    advantages = torch.stack(advantages_reversed[::-1], dim=1)  # (B, A)
    returns = (advantages + values) * mask
    return advantages, returns


LossAgg = Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm"]
"""How per-token losses become one number: the modes (and names) of veRL's `agg_loss`."""


def aggregate_loss(loss_mat: torch.Tensor, mask: torch.Tensor, mode: LossAgg, horizon: int = 0) -> torch.Tensor:
    """One loss from per-token losses `loss_mat` (B, A) over the tokens where `mask` is 1.

    - token_mean: the mean over every token of the batch, so each token weighs the same and a long response
      weighs more (DAPO's token-level loss, Yu et al. 2025, arXiv:2503.14476, sec. 3.3; PPO's usual choice);
    - seq_mean_token_mean: the mean over sequences of each one's token mean, so each response weighs the
      same (GRPO's 1/G sum_i 1/|o_i| sum_t, Shao et al. 2024, arXiv:2402.03300, eq. 3);
    - seq_mean_token_sum: the mean over sequences of each one's token sum (the REINFORCE/RLOO objective on
      whole sequences, Ahmadian et al. 2024, arXiv:2402.14740);
    - seq_mean_token_sum_norm: the token sum over the batch divided by (sequences x `horizon`), a constant
      (the longest response), so no length bias enters (Dr. GRPO, Liu et al. 2025, arXiv:2503.20783).

    Sequences without a real token do not count as sequences.
    """
    mask = mask.to(loss_mat.dtype)
    if mode == "token_mean":
        return masked_mean(loss_mat, mask)
    has_tokens = (mask.sum(1) > 0).to(loss_mat.dtype)  # (B,)
    n_seqs = has_tokens.sum().clamp(min=1.0)
    if mode == "seq_mean_token_mean":
        return (masked_mean(loss_mat, mask, dim=1) * has_tokens).sum() / n_seqs
    if mode == "seq_mean_token_sum":
        return (loss_mat * mask).sum() / n_seqs
    if mode == "seq_mean_token_sum_norm":
        if horizon < 1:
            raise ValueError("seq_mean_token_sum_norm needs the constant horizon (>= 1)")
        return (loss_mat * mask).sum() / (n_seqs * horizon)
    raise ValueError(f"unknown loss aggregation {mode!r}")


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip: float,
    loss_agg: LossAgg = "token_mean",
    horizon: int = 0,
    is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clipped surrogate loss (arXiv:1707.06347 eq. 7), negated for minimisation, aggregated by `loss_agg`
    (`aggregate_loss`; `horizon` is its constant for "seq_mean_token_sum_norm"). `is_weights` (B, A), if given,
    multiply each token's clipped loss before aggregation (`truncated_is_weights`).

    Returns (pg_loss, clipfrac, ratio), with `ratio` (B, A) for logging; clipfrac is a token mean whatever
    `loss_agg` is.
    """
    logratio = logprobs - old_logprobs
    ratio = torch.exp(logratio)
    pg_losses = -advantages * ratio
    pg_losses2 = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    pg_loss_mat = torch.max(pg_losses, pg_losses2)
    if is_weights is not None:
        pg_loss_mat = pg_loss_mat * is_weights
    pg_loss = aggregate_loss(pg_loss_mat, mask, loss_agg, horizon)
    clipfrac = masked_mean((pg_losses2 > pg_losses).to(logprobs.dtype), mask)
    return pg_loss, clipfrac, ratio


def truncated_is_weights(old_logprobs: torch.Tensor, engine_logprobs: torch.Tensor, cap: float) -> torch.Tensor:
    """Truncated importance-sampling (TIS) weights for samples drawn by a rollout engine whose probabilities differ
    from the trainer's: min(pi_old / pi_engine, cap) per token, pi_old the trainer's probability of the token at
    rollout time. The weight multiplies the token's policy loss; the cap bounds its variance. Yao, Liu et al. 2025,
    "Your Efficient RL Framework Secretly Brings You Off-Policy RL Training" (fengyao.notion.site/off-policy-rl);
    the token-level form veRL applies to `pg_losses` (rollout importance sampling, docs/advance/rollout_is.md)
    and OpenRLHF's `--enable_vllm_is_correction`. Both (B, A) -> (B, A), no gradient."""
    return torch.exp(old_logprobs.detach() - engine_logprobs.detach()).clamp(max=cap)


def logprob_diff(logprobs: torch.Tensor, engine_logprobs: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean |trainer log-prob - engine log-prob| of the response tokens where `mask` is 1: the mismatch between
    the rollout engine and the trainer (`rollout/logprob_diff`). All (B, A)."""
    return masked_mean((logprobs - engine_logprobs).abs(), mask).item()


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss: 0.5 * max((V - R)^2, (V_clipped - R)^2), V_clipped within `clip` of the old value.

    The clipping follows the OpenAI baselines ppo2 implementation (also cleanrl's `clip_vloss`).
    Returns (v_loss, vf_clipfrac).
    """
    v_clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    v_loss_unclipped = (values - returns) ** 2
    v_loss_clipped = (v_clipped - returns) ** 2
    v_loss = 0.5 * masked_mean(torch.max(v_loss_unclipped, v_loss_clipped), mask)
    vf_clipfrac = masked_mean((v_loss_clipped > v_loss_unclipped).to(values.dtype), mask)
    return v_loss, vf_clipfrac


def _group_moments(
    returns: torch.Tensor, valid: torch.Tensor, group_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row, its group's valid count, sum and (Bessel-corrected) std of `returns` (B,), each (B,).

    Rows `valid` False (no reward: a sandbox error) count for nothing; a group of one valid row has std 0.
    """
    if returns.shape[0] % group_size:
        raise ValueError(f"batch of {returns.shape[0]} rows is not whole groups of {group_size}")
    weights = valid.to(returns.dtype).view(-1, group_size)  # (B / G, G)
    grouped = torch.where(valid, returns, torch.zeros_like(returns)).view(-1, group_size)  # an invalid row may be NaN
    count = weights.sum(1, keepdim=True)  # (B / G, 1)
    total = grouped.sum(1, keepdim=True)
    mean = total / count.clamp(min=1.0)
    var = (((grouped - mean) ** 2) * weights).sum(1, keepdim=True) / (count - 1).clamp(min=1.0)
    expand = (-1, group_size)
    return count.expand(expand).reshape(-1), total.expand(expand).reshape(-1), var.sqrt().expand(expand).reshape(-1)


def grpo_advantages(returns: torch.Tensor, valid: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """GRPO's outcome advantage: (r_i - mean(r)) / (std(r) + eps) over the valid rows of each prompt's group.

    returns, valid: (B,), groups of `group_size` consecutive rows -> (B,). Shao et al. 2024, arXiv:2402.03300,
    sec. 4.1.2; std Bessel-corrected and eps 1e-6 as in TRL's and veRL's GRPO. An all-equal group, a group of
    one valid row and an invalid row get 0.
    """
    count, total, std = _group_moments(returns, valid, group_size)
    advantages = (returns - total / count.clamp(min=1.0)) / (std + eps)
    return torch.where(valid & (count > 1), advantages, torch.zeros_like(advantages))


def dr_grpo_advantages(returns: torch.Tensor, valid: torch.Tensor, group_size: int) -> torch.Tensor:
    """Dr. GRPO's advantage: r_i - mean(r) over the valid rows of each group, with no division by the std
    (which over-weights groups that are nearly all-equal: too easy or too hard prompts). Liu et al. 2025,
    arXiv:2503.20783. The other half of Dr. GRPO, no length normalisation, is the loss aggregation
    "seq_mean_token_sum_norm". returns, valid: (B,) -> (B,); invalid rows and groups of one get 0."""
    count, total, _ = _group_moments(returns, valid, group_size)
    advantages = returns - total / count.clamp(min=1.0)
    return torch.where(valid & (count > 1), advantages, torch.zeros_like(advantages))


def rloo_advantages(returns: torch.Tensor, valid: torch.Tensor, group_size: int) -> torch.Tensor:
    """REINFORCE leave-one-out: r_i minus the mean of the OTHER valid rows of its group, an unbiased baseline
    (Ahmadian et al. 2024, arXiv:2402.14740; Kool et al. 2019, "Buy 4 REINFORCE samples, get a baseline for
    free!"). returns, valid: (B,) -> (B,); invalid rows and groups of one valid row (no other sample to compare
    with) get 0."""
    count, total, _ = _group_moments(returns, valid, group_size)
    baseline = (total - returns) / (count - 1).clamp(min=1.0)
    return torch.where(valid & (count > 1), returns - baseline, torch.zeros_like(returns))


def reinforce_pp_advantages(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """REINFORCE++: each token's discounted return-to-go G_t = sum_k gamma^k r_{t+k}, normalised to zero mean
    and unit variance over every real token of the batch (the global-batch normalisation of Hu 2025,
    arXiv:2501.03262). rewards, mask: (B, A) -> (B, A), 0 on padding. The per-token KL penalty stays in
    `rewards` there, as the paper defines it."""
    returns, _ = compute_gae(rewards, torch.zeros_like(rewards), mask, gamma, 1.0)  # V = 0, lambda = 1: returns
    return masked_whiten(returns, mask)


def zero_advantage_groups(scores: Sequence[float | None], group_size: int) -> list[bool]:
    """For each group of `group_size` consecutive scores: True when its rewards (None left out) are all equal,
    so a group baseline leaves every sample a zero advantage (all failed or all passed; one reward or none
    counts too). What DAPO's dynamic sampling drops (Yu et al. 2025, arXiv:2503.14476, sec. 3.2)."""
    if len(scores) % group_size:
        raise ValueError(f"{len(scores)} scores are not whole groups of {group_size}")
    groups = [scores[i : i + group_size] for i in range(0, len(scores), group_size)]
    return [len({s for s in group if s is not None}) <= 1 for group in groups]


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution at each position: logits (..., V) -> (...)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def kl_estimate(logratio: torch.Tensor, kind: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi || ref) from samples of pi, with logratio = log pi - log ref.

    k1 = logratio (unbiased, high variance, can be negative); k3 = (r - 1) - log r with r = ref/pi
    (unbiased, always >= 0). Schulman 2020, "Approximating KL Divergence".
    """
    if kind == "k1":
        return logratio
    if kind == "k3":
        return torch.expm1(-logratio) + logratio
    raise ValueError(f"unknown KL estimator {kind!r} (use 'k1' or 'k3')")


def explained_variance(y_pred: torch.Tensor, y_true: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - Var[y_true - y_pred] / Var[y_true] over masked entries (nan when Var[y_true] is 0)."""
    var_y = masked_var(y_true, mask)
    if var_y.item() == 0:
        return float("nan")
    return float(1 - masked_var(y_true - y_pred, mask) / var_y)


@dataclass
class FixedKLController:
    """A constant KL coefficient."""

    value: float

    def update(self, current_kl: float, n_steps: int) -> None:
        """Nothing to adapt."""


@dataclass
class AdaptiveKLController:
    """Proportional control of the KL coefficient toward a target KL (arXiv:1909.08593 sec. 2.2).

    error = clip(KL / target - 1, -0.2, 0.2);  beta <- beta * (1 + error * n_steps / horizon)
    """

    value: float
    target: float
    horizon: int

    def update(self, current_kl: float, n_steps: int) -> None:
        proportional_error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + proportional_error * n_steps / self.horizon
