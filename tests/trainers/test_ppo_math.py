"""PPO math against plain Python loops written from the papers' formulas."""

from __future__ import annotations

import math

import pytest
import torch
from execrl.trainers.ppo_math import (
    AdaptiveKLController,
    FixedKLController,
    aggregate_loss,
    compute_gae,
    dr_grpo_advantages,
    entropy_from_logits,
    explained_variance,
    grpo_advantages,
    kl_estimate,
    logprob_diff,
    masked_mean,
    masked_whiten,
    policy_loss,
    reinforce_pp_advantages,
    rloo_advantages,
    truncated_is_weights,
    value_loss,
    zero_advantage_groups,
)


def _random_batch(seed: int, b: int = 4, a: int = 7) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.randn(b, a, generator=gen, dtype=torch.float64)
    values = torch.randn(b, a, generator=gen, dtype=torch.float64)
    lengths = torch.randint(1, a + 1, (b,), generator=gen)
    mask = (torch.arange(a)[None, :] < lengths[:, None]).to(torch.float64)
    return rewards, values, mask


def _naive_gae(rewards: list[float], values: list[float], gamma: float, lam: float) -> list[float]:
    # arXiv:1506.02438 eq. 16 taken literally: A_t = sum_l (gamma*lam)^l delta_{t+l}, V after the end = 0.
    n = len(rewards)
    deltas = [rewards[t] + gamma * (values[t + 1] if t + 1 < n else 0.0) - values[t] for t in range(n)]
    return [sum((gamma * lam) ** k * deltas[t + k] for k in range(n - t)) for t in range(n)]


@pytest.mark.parametrize(
    ("gamma", "lam"),
    [(0.99, 0.95), (1.0, 1.0), (0.5, 0.0), (1.0, 0.0)],
    ids=["usual-defaults", "monte-carlo-returns", "one-step-td-discounted", "one-step-td-undiscounted"],
)
def test_gae_matches_the_sum_of_discounted_deltas_per_episode(gamma: float, lam: float) -> None:
    rewards, values, mask = _random_batch(seed=1)
    advantages, returns = compute_gae(rewards, values, mask, gamma, lam)
    for i in range(rewards.shape[0]):
        n = int(mask[i].sum())
        expected = _naive_gae(rewards[i, :n].tolist(), values[i, :n].tolist(), gamma, lam)
        assert advantages[i, :n].tolist() == pytest.approx(expected, rel=1e-9, abs=1e-9)
        expected_returns = [a + v for a, v in zip(expected, values[i, :n].tolist(), strict=True)]
        assert returns[i, :n].tolist() == pytest.approx(expected_returns)
        assert advantages[i, n:].abs().sum() == 0 and returns[i, n:].abs().sum() == 0


def test_gae_with_lambda_one_and_gamma_one_gives_reward_to_go_minus_value() -> None:
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.2, 0.4, 0.6]])
    advantages, returns = compute_gae(rewards, values, torch.ones(1, 3), gamma=1.0, lam=1.0)
    assert returns.tolist()[0] == pytest.approx([1.0, 1.0, 1.0])
    assert advantages.tolist()[0] == pytest.approx([0.8, 0.6, 0.4])


@pytest.mark.parametrize("seed", [0, 1, 2], ids=["seed0", "seed1", "seed2"])
def test_masked_mean_and_whiten_match_a_loop_over_the_real_tokens(seed: int) -> None:
    values, _, mask = _random_batch(seed, b=5, a=6)
    kept = [values[i, j].item() for i in range(5) for j in range(6) if mask[i, j]]
    mean = sum(kept) / len(kept)
    var = sum((x - mean) ** 2 for x in kept) / (len(kept) - 1)
    assert masked_mean(values, mask).item() == pytest.approx(mean)
    whitened = masked_whiten(values, mask)
    expected = [(x - mean) / math.sqrt(var + 1e-8) for x in kept]
    got = [whitened[i, j].item() for i in range(5) for j in range(6) if mask[i, j]]
    assert got == pytest.approx(expected, rel=1e-6)
    assert whitened[mask == 0].abs().sum() == 0


def test_masked_mean_along_a_dimension_averages_each_row_over_its_own_tokens() -> None:
    values = torch.tensor([[1.0, 3.0, 100.0], [2.0, 100.0, 100.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert masked_mean(values, mask, dim=1).tolist() == [2.0, 2.0]


def test_whiten_without_mean_shift_keeps_the_mean() -> None:
    values = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    whitened = masked_whiten(values, torch.ones_like(values), shift_mean=False)
    assert whitened.mean().item() == pytest.approx(3.0)


def _naive_policy_loss(logp, old_logp, adv, mask, clip):
    terms, clipped = [], []
    for lp, olp, a, m in zip(logp, old_logp, adv, mask, strict=True):
        if not m:
            continue
        r = math.exp(lp - olp)
        unclipped, clipped_obj = r * a, min(max(r, 1 - clip), 1 + clip) * a
        terms.append(-min(unclipped, clipped_obj))
        clipped.append(clipped_obj < unclipped)
    return sum(terms) / len(terms), sum(clipped) / len(clipped)


@pytest.mark.parametrize("clip", [0.2, 0.05, 10.0], ids=["usual-clip", "tight-clip", "clip-never-binds"])
def test_policy_loss_matches_the_clipped_surrogate_per_token(clip: float) -> None:
    gen = torch.Generator().manual_seed(3)
    logp = torch.randn(3, 5, generator=gen, dtype=torch.float64) * 0.3
    old_logp = torch.randn(3, 5, generator=gen, dtype=torch.float64) * 0.3
    adv = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.float64)
    pg_loss, clipfrac, ratio = policy_loss(logp, old_logp, adv, mask, clip)
    expected_loss, expected_frac = _naive_policy_loss(
        logp.flatten().tolist(), old_logp.flatten().tolist(), adv.flatten().tolist(), mask.flatten().tolist(), clip
    )
    assert pg_loss.item() == pytest.approx(expected_loss)
    assert clipfrac.item() == pytest.approx(expected_frac)
    assert ratio.shape == logp.shape
    if clip == 10.0:
        assert clipfrac.item() == 0.0


@pytest.mark.parametrize("cap", [2.0, 1.0, 1e6], ids=["usual-cap", "cap-at-one", "cap-never-binds"])
def test_truncated_is_weights_are_min_of_the_trainer_over_engine_probability_and_the_cap(cap: float) -> None:
    gen = torch.Generator().manual_seed(7)
    old_logp = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    engine_logp = old_logp + torch.randn(3, 4, generator=gen, dtype=torch.float64)  # up to a few nats apart
    weights = truncated_is_weights(old_logp, engine_logp, cap)
    for i in range(3):
        for t in range(4):
            expected = min(math.exp(old_logp[i, t].item()) / math.exp(engine_logp[i, t].item()), cap)
            assert weights[i, t].item() == pytest.approx(expected), (i, t)
    assert not weights.requires_grad


def test_truncated_is_weights_stay_finite_where_the_engine_gave_a_token_almost_no_probability() -> None:
    weights = truncated_is_weights(torch.tensor([[0.0]]), torch.tensor([[-1e4]]), 2.0)  # exp(1e4) overflows
    assert weights.item() == 2.0


@pytest.mark.parametrize("clip", [0.2, 10.0], ids=["usual-clip", "clip-never-binds"])
def test_policy_loss_with_is_weights_weights_each_tokens_clipped_term(clip: float) -> None:
    gen = torch.Generator().manual_seed(8)
    logp, old_logp = (torch.randn(3, 5, generator=gen, dtype=torch.float64) * 0.3 for _ in range(2))
    adv = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    weights = torch.rand(3, 5, generator=gen, dtype=torch.float64) * 2
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.float64)
    pg_loss, _, _ = policy_loss(logp, old_logp, adv, mask, clip, is_weights=weights)
    terms = []
    for i in range(3):
        for t in range(5):
            if mask[i, t]:
                r, a = math.exp(logp[i, t].item() - old_logp[i, t].item()), adv[i, t].item()
                terms.append(-min(r * a, min(max(r, 1 - clip), 1 + clip) * a) * weights[i, t].item())
    assert pg_loss.item() == pytest.approx(sum(terms) / len(terms))


def test_logprob_diff_is_the_mean_absolute_gap_over_the_masked_tokens() -> None:
    trainer = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -9.0, -9.0]])
    engine = torch.tensor([[-1.5, -2.0, -1.0], [-0.25, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    gaps = [0.5, 0.0, 2.0, 0.25]  # the masked-out tokens (9 nats apart) must not count
    assert logprob_diff(trainer, engine, mask) == pytest.approx(sum(gaps) / len(gaps))


def test_policy_loss_gradient_vanishes_once_the_ratio_leaves_the_trust_region_in_the_advantage_direction() -> None:
    logp = torch.tensor([[math.log(1.5)]], requires_grad=True)  # ratio 1.5 > 1 + 0.2 with a positive advantage
    pg_loss, _, _ = policy_loss(logp, torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), 0.2)
    pg_loss.backward()
    assert logp.grad.item() == 0.0


@pytest.mark.parametrize("clip", [0.2, 1e6], ids=["usual-clip", "clip-never-binds"])
def test_value_loss_matches_the_clipped_squared_error_per_token(clip: float) -> None:
    gen = torch.Generator().manual_seed(4)
    values, old_values, returns = (torch.randn(2, 6, generator=gen, dtype=torch.float64) for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.float64)
    v_loss, _ = value_loss(values, old_values, returns, mask, clip)
    terms = []
    for v, ov, r, m in zip(
        values.flatten().tolist(),
        old_values.flatten().tolist(),
        returns.flatten().tolist(),
        mask.flatten().tolist(),
        strict=True,
    ):
        if m:
            vc = ov + min(max(v - ov, -clip), clip)
            terms.append(0.5 * max((v - r) ** 2, (vc - r) ** 2))
    assert v_loss.item() == pytest.approx(sum(terms) / len(terms))


def test_entropy_of_uniform_logits_is_log_vocab_and_of_a_point_mass_is_zero() -> None:
    logits = torch.stack([torch.zeros(8), torch.tensor([1e4] + [0.0] * 7)])
    entropy = entropy_from_logits(logits)
    assert entropy[0].item() == pytest.approx(math.log(8))
    assert entropy[1].item() == pytest.approx(0.0, abs=1e-6)


def test_entropy_matches_minus_sum_p_log_p() -> None:
    logits = torch.tensor([0.3, -1.0, 2.0, 0.5])
    probs = [math.exp(x) for x in logits.tolist()]
    probs = [p / sum(probs) for p in probs]
    assert entropy_from_logits(logits).item() == pytest.approx(-sum(p * math.log(p) for p in probs), rel=1e-6)


def test_kl_estimators_k1_and_k3_are_unbiased_and_k3_is_nonnegative() -> None:
    # KL(p || q) for two categoricals, estimated from samples of p (Schulman 2020).
    p, q = torch.tensor([0.6, 0.3, 0.1]), torch.tensor([0.2, 0.5, 0.3])
    true_kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p.tolist(), q.tolist(), strict=True))
    gen = torch.Generator().manual_seed(0)
    samples = torch.multinomial(p, 200_000, replacement=True, generator=gen)
    logratio = torch.log(p[samples]) - torch.log(q[samples])
    k1, k3 = kl_estimate(logratio, "k1"), kl_estimate(logratio, "k3")
    assert k1.mean().item() == pytest.approx(true_kl, abs=0.01)
    assert k3.mean().item() == pytest.approx(true_kl, abs=0.01)
    assert (k3 >= 0).all()
    for lr, est in zip(logratio[:20].tolist(), k3[:20].tolist(), strict=True):
        assert est == pytest.approx(math.exp(-lr) - 1 + lr, rel=1e-5, abs=1e-7)


def test_kl_estimate_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="k2"):
        kl_estimate(torch.zeros(2), "k2")


def test_explained_variance_is_one_for_perfect_predictions_and_zero_for_the_mean() -> None:
    y = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    mask = torch.ones_like(y)
    assert explained_variance(y, y, mask) == pytest.approx(1.0)
    assert explained_variance(torch.full_like(y, 2.5), y, mask) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("kl", "direction"),
    [(0.05, 1), (0.001, -1), (0.01, 0)],
    ids=["kl-above-target-raises-beta", "kl-below-target-lowers-beta", "kl-on-target-keeps-beta"],
)
def test_adaptive_kl_controller_moves_beta_toward_the_target(kl: float, direction: int) -> None:
    ctl = AdaptiveKLController(value=0.1, target=0.01, horizon=1000)
    ctl.update(kl, n_steps=100)
    error = min(max(kl / 0.01 - 1, -0.2), 0.2)
    assert ctl.value == pytest.approx(0.1 * (1 + error * 100 / 1000))
    assert (ctl.value > 0.1) - (ctl.value < 0.1) == direction


def test_fixed_kl_controller_never_changes() -> None:
    ctl = FixedKLController(0.05)
    ctl.update(10.0, 1000)
    assert ctl.value == 0.05


# --- critic-free estimators, each against a loop over groups written from its paper ---


def _naive_group_advantages(scores: list[float | None], group_size: int, kind: str) -> list[float]:
    out = []
    for start in range(0, len(scores), group_size):
        group = scores[start : start + group_size]
        valid = [s for s in group if s is not None]
        n = len(valid)
        mean = sum(valid) / n if n else 0.0
        std = math.sqrt(sum((x - mean) ** 2 for x in valid) / (n - 1)) if n > 1 else 0.0
        for s in group:
            if s is None or n < 2:
                out.append(0.0)  # no reward, or nothing in the group to compare it with
            elif kind == "grpo":  # Shao et al. 2024: (r - mean) / (std + eps)
                out.append((s - mean) / (std + 1e-6))
            elif kind == "dr_grpo":  # Liu et al. 2025: r - mean
                out.append(s - mean)
            else:  # rloo, Ahmadian et al. 2024: r - mean of the others
                out.append(s - (sum(valid) - s) / (n - 1))
    return out


GROUP_ESTIMATORS = {"grpo": grpo_advantages, "dr_grpo": dr_grpo_advantages, "rloo": rloo_advantages}
GROUP_CASES = [
    ([0.3, -1.0, 1.0, -0.6, 1.0, 1.0, -0.3, -1.0], 4, "mixed CodeRL rewards, two groups of four"),
    ([1.0, None, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0], 4, "a sandbox error is left out of its group's statistics"),
    ([None, None, None, None, 1.0, 0.0, 0.0, 0.0], 4, "a group of only sandbox errors gets 0"),
    ([None, 1.0, None, None, 1.0, 0.0, 1.0, 0.0], 4, "a group with one reward left has nothing to compare: 0"),
    ([-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0], 4, "all-failed and all-passed groups carry no advantage"),
    ([1 / 3, 1 / 3, 1 / 3, 0.7, 0.1, 0.2], 3, "all-equal non-dyadic rewards (float rounding) and G = 3"),
    ([0.5, -1.0, 1.0], 1, "G = 1: every group is one sample, so every advantage is 0"),
    ([1.0, 0.0], 2, "G = 2, the smallest group with a comparison"),
]


@pytest.mark.parametrize("kind", list(GROUP_ESTIMATORS))
@pytest.mark.parametrize(("scores", "group_size", "reason"), GROUP_CASES, ids=[c[2] for c in GROUP_CASES])
def test_group_estimators_match_a_loop_over_each_prompts_samples(kind, scores, group_size, reason) -> None:
    valid = torch.tensor([s is not None for s in scores])
    returns = torch.tensor([s if s is not None else float("nan") for s in scores], dtype=torch.float64)
    got = GROUP_ESTIMATORS[kind](returns, valid, group_size)
    assert got.tolist() == pytest.approx(_naive_group_advantages(scores, group_size, kind), abs=1e-9), reason
    assert not got.isnan().any(), "an invalid row's NaN return must not leak into its group"


def test_rloo_is_the_dr_grpo_advantage_scaled_by_g_over_g_minus_1() -> None:
    # r_i - mean_{j!=i} r_j = G/(G-1) (r_i - mean_j r_j): a known identity, checked on random returns.
    gen = torch.Generator().manual_seed(5)
    returns = torch.randn(12, generator=gen, dtype=torch.float64)
    valid = torch.ones(12, dtype=torch.bool)
    assert torch.allclose(rloo_advantages(returns, valid, 4), dr_grpo_advantages(returns, valid, 4) * 4 / 3)


def test_a_batch_that_is_not_whole_groups_is_refused() -> None:
    with pytest.raises(ValueError, match="groups of 4"):
        grpo_advantages(torch.zeros(6), torch.ones(6, dtype=torch.bool), 4)


def _naive_reinforce_pp(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> list[list[float]]:
    rows = []
    for i in range(rewards.shape[0]):
        r = [rewards[i, t].item() for t in range(rewards.shape[1]) if mask[i, t]]
        rows.append([sum(gamma**k * r[t + k] for k in range(len(r) - t)) for t in range(len(r))])
    flat = [g for row in rows for g in row]
    mean = sum(flat) / len(flat)
    std = math.sqrt(sum((g - mean) ** 2 for g in flat) / (len(flat) - 1) + 1e-8)
    return [[(g - mean) / std for g in row] for row in rows]


@pytest.mark.parametrize("gamma", [1.0, 0.9], ids=["undiscounted", "discounted"])
def test_reinforce_pp_normalises_the_returns_to_go_over_the_whole_batch(gamma: float) -> None:
    rewards, _, mask = _random_batch(seed=6, b=5, a=6)
    mask[2] = 0  # a sample without a reward: left out of the batch statistics
    got = reinforce_pp_advantages(rewards, mask, gamma)
    expected = _naive_reinforce_pp(rewards, mask, gamma)
    for i, row in enumerate(expected):
        assert got[i, : len(row)].tolist() == pytest.approx(row, rel=1e-6, abs=1e-9)
        assert got[i, len(row) :].abs().sum() == 0
    assert got[2].abs().sum() == 0


@pytest.mark.parametrize(
    ("scores", "group_size", "expected", "reason"),
    [
        ([1.0, 1.0, 0.0, 0.0], 2, [True, True], "all-passed and all-failed pairs"),
        ([1.0, 0.0, 0.3, 0.3, 0.3], 5, [False], "one differing reward is enough"),
        ([1.0, None, 1.0, 0.0, None, None], 3, [True, True], "None is left out: the rest are equal or alone"),
        ([None, None], 2, [True], "no reward at all"),
        ([0.5, -1.0], 1, [True, True], "G = 1: a group of one never differs"),
    ],
    ids=["equal-pairs", "one-differs", "none-left-out", "all-none", "group-of-one"],
)
def test_zero_advantage_groups_are_those_whose_rewards_are_all_equal(scores, group_size, expected, reason) -> None:
    assert zero_advantage_groups(scores, group_size) == expected, reason


def _naive_aggregate(loss: list[list[float]], mask: list[list[int]], mode: str, horizon: int) -> float:
    rows = [[x for x, m in zip(lr, mr, strict=True) if m] for lr, mr in zip(loss, mask, strict=True)]
    rows = [r for r in rows if r]
    if mode == "token_mean":
        return sum(sum(r) for r in rows) / sum(len(r) for r in rows)
    if mode == "seq_mean_token_mean":
        return sum(sum(r) / len(r) for r in rows) / len(rows)
    if mode == "seq_mean_token_sum":
        return sum(sum(r) for r in rows) / len(rows)
    return sum(sum(r) for r in rows) / (len(rows) * horizon)


@pytest.mark.parametrize(
    "mode", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm"]
)
def test_loss_aggregations_match_a_loop_over_sequences_and_tokens(mode: str) -> None:
    gen = torch.Generator().manual_seed(7)
    loss = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 0, 0]])  # row 2: no token
    got = aggregate_loss(loss, mask, mode, horizon=8)
    assert got.item() == pytest.approx(_naive_aggregate(loss.tolist(), mask.tolist(), mode, 8))


def test_aggregations_weigh_long_and_short_responses_differently() -> None:
    # One long response (4 tokens, loss 1 each) and one short (1 token, loss 3): token_mean weighs tokens,
    # seq_mean_token_mean weighs responses, so the two disagree -- the length bias DAPO and Dr. GRPO discuss.
    loss = torch.tensor([[1.0, 1.0, 1.0, 1.0], [3.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]])
    assert aggregate_loss(loss, mask, "token_mean").item() == pytest.approx(7 / 5)
    assert aggregate_loss(loss, mask, "seq_mean_token_mean").item() == pytest.approx(2.0)
    assert aggregate_loss(loss, mask, "seq_mean_token_sum").item() == pytest.approx(3.5)
    assert aggregate_loss(loss, mask, "seq_mean_token_sum_norm", horizon=4).item() == pytest.approx(7 / 8)


def test_seq_mean_token_sum_norm_needs_its_constant() -> None:
    with pytest.raises(ValueError, match="horizon"):
        aggregate_loss(torch.zeros(1, 2), torch.ones(1, 2), "seq_mean_token_sum_norm")


def test_policy_loss_uses_the_aggregation_it_is_given() -> None:
    gen = torch.Generator().manual_seed(8)
    logp, old_logp, adv = (torch.randn(3, 4, generator=gen, dtype=torch.float64) * 0.2 for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    ratio = torch.exp(logp - old_logp)
    per_token = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 0.8, 1.2))
    for mode in ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm"):
        pg_loss, _, _ = policy_loss(logp, old_logp, adv, mask, 0.2, mode, horizon=4)
        assert pg_loss.item() == pytest.approx(_naive_aggregate(per_token.tolist(), mask.tolist(), mode, 4))
