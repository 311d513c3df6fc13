"""Checkpoints and metric logs: RNG round trip, atomic swap, resumable metrics."""

from __future__ import annotations

import random

import numpy as np
import torch
from execrl.trainers import checkpoint
from execrl.trainers.rollout import PolicyWithValue
from execrl.trainers.tracking import Tracker, read_metrics
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast


def test_restored_rng_states_replay_the_same_draws_in_python_numpy_and_torch() -> None:
    states = checkpoint.rng_states()
    first = (random.random(), np.random.rand(), torch.rand(3).tolist())
    checkpoint.set_rng_states(states)
    assert (random.random(), np.random.rand(), torch.rand(3).tolist()) == first


def _tiny_policy() -> tuple[PolicyWithValue, PreTrainedTokenizerFast]:
    from tokenizers import Tokenizer, models

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "<e>": 1}, unk_token="a")),
        eos_token="<e>",
        pad_token="<e>",
    )
    torch.manual_seed(0)
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=2, n_positions=8, n_embd=8, n_layer=1, n_head=2))
    return PolicyWithValue(lm), tok


def test_checkpoint_restores_optimizer_scheduler_value_head_and_loop_state(tmp_path) -> None:
    policy, tok = _tiny_policy()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 / (1 + s))
    policy.v_head.weight.data.fill_(0.5)
    loss = policy(torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 3))[1].sum()
    loss.backward()
    optimizer.step()
    scheduler.step()
    checkpoint.save_checkpoint(tmp_path, policy, tok, optimizer, scheduler, {"step": 7, "kl_coef": 0.3})
    checkpoint.save_checkpoint(tmp_path, policy, tok, optimizer, scheduler, {"step": 8, "kl_coef": 0.3})
    assert not (tmp_path / "checkpoint.tmp").exists() and not (tmp_path / "checkpoint.old").exists()

    fresh, _ = _tiny_policy()
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 1.0 / (1 + s))
    checkpoint.load_value_head(fresh, checkpoint.checkpoint_policy_dir(tmp_path))
    state = checkpoint.load_trainer_state(tmp_path, opt2, sched2)
    assert state["step"] == 8 and state["kl_coef"] == 0.3
    assert torch.equal(fresh.v_head.weight, policy.v_head.weight)
    assert sched2.get_last_lr() == scheduler.get_last_lr()
    assert opt2.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]


def test_no_checkpoint_means_no_policy_dir(tmp_path) -> None:
    assert checkpoint.checkpoint_policy_dir(tmp_path) is None


def test_reopening_the_tracker_at_step_k_drops_rows_logged_after_k(tmp_path) -> None:
    tracker = Tracker(tmp_path, {"lr": 1.0})
    for step in range(1, 6):
        tracker.log(step, {"ppo/kl": step / 10, "ppo/value_loss": float("nan")})
    tracker.close()
    tracker = Tracker(tmp_path, {"lr": 1.0}, resume_step=3)
    tracker.log(4, {"ppo/kl": 9.0})
    tracker.close()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["ppo/kl"] == 9.0 and rows[0]["ppo/value_loss"] is None  # NaN is written as null


def test_a_policy_without_a_value_head_saves_none_and_loads_none(tmp_path) -> None:
    from tokenizers import Tokenizer, models

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "<e>": 1}, unk_token="a")), eos_token="<e>"
    )
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=2, n_positions=8, n_embd=8, n_layer=1, n_head=2))
    policy = PolicyWithValue(lm, value_head=False)
    assert policy.v_head is None and len(list(policy.parameters())) == len(list(lm.parameters()))
    logits, values = policy(torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 3))
    assert values is None and logits.shape == (1, 3, 2)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    checkpoint.save_checkpoint(tmp_path, policy, tok, optimizer, scheduler, {"step": 1})
    checkpoint.save_policy(tmp_path / "final", policy, tok)
    assert not list(tmp_path.rglob(checkpoint.VALUE_HEAD_FILE))
    checkpoint.load_value_head(policy, checkpoint.checkpoint_policy_dir(tmp_path))  # nothing to load, no error
    assert checkpoint.load_trainer_state(tmp_path, optimizer, scheduler)["step"] == 1
