"""PPO math: pure tensor functions, no config objects, each tested against a naive loop.

Shapes: `B` rollouts in the batch, `A` response tokens (padded; `mask` is 1 on real tokens).
Sources: GAE — Schulman et al. 2016, "High-Dimensional Continuous Control Using Generalized Advantage
Estimation", arXiv:1506.02438, eq. 16. Clipped surrogate — Schulman et al. 2017, "Proximal Policy
Optimization Algorithms", arXiv:1707.06347, eq. 7. KL estimators k1/k3 — J. Schulman 2020,
"Approximating KL Divergence" (joschu.net/blog/kl-approx.html). Adaptive KL coefficient — Ziegler
et al. 2019, "Fine-Tuning Language Models from Human Preferences", arXiv:1909.08593, section 2.2.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def policy_loss(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, clip: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clipped surrogate loss (arXiv:1707.06347 eq. 7), negated for minimisation.

    Returns (pg_loss, clipfrac, ratio), with `ratio` (B, A) for logging.
    """
    logratio = logprobs - old_logprobs
    ratio = torch.exp(logratio)
    pg_losses = -advantages * ratio
    pg_losses2 = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    pg_loss = masked_mean(torch.max(pg_losses, pg_losses2), mask)
    clipfrac = masked_mean((pg_losses2 > pg_losses).to(logprobs.dtype), mask)
    return pg_loss, clipfrac, ratio


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
