"""Rollouts for PPO: the policy (causal LM + scalar value head), sampling, and per-token log-probs and values.

Layout of one batch: queries are LEFT-padded to `Q` tokens (so every response starts at column `Q`),
responses are RIGHT-padded to `A` tokens. `response_mask` is 1 up to and including the token that ended
the response (EOS, or the token completing a stop sequence). The log-prob of response token t comes from
the logits at column Q + t - 1, and its value V(s_t) from the hidden state at that same column: the state
before the token was chosen (the convention of Ziegler et al. 2019 and TRL's PPO trainer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from execrl.harness.generation.hf_sampling import Sampling, sample_tokens
from execrl.trainers.ppo_math import entropy_from_logits
from torch import nn


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as Hugging Face `generate` computes them: (B, T) -> (B, T)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class PolicyWithValue(nn.Module):
    """A causal LM with a scalar value head on its last hidden state, or none (`value_head=False`, for the
    critic-free estimators: `v_head` is None and the forward returns no values).

    One module, so `Accelerator.prepare` (DDP on several GPUs) wraps both and the forward goes through it.
    """

    def __init__(self, lm: Any, value_head: bool = True) -> None:
        super().__init__()
        self.lm = lm
        self.v_head = nn.Linear(lm.config.hidden_size, 1) if value_head else None
        if self.v_head is not None:
            # Start from V = 0 everywhere, so the first advantages are the plain returns.
            nn.init.zeros_(self.v_head.weight)
            nn.init.zeros_(self.v_head.bias)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits (B, T, V), values (B, T) or None without a value head)."""
        out = self.lm(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids(attention_mask),
            output_hidden_states=self.v_head is not None,
        )
        if self.v_head is None:
            return out.logits, None
        values = self.v_head(out.hidden_states[-1].float()).squeeze(-1)
        return out.logits, values


@dataclass
class Rollout:
    """Sampled responses to a batch of prompts (each prompt repeated G times, consecutively)."""

    query_ids: torch.Tensor  # (B, Q) left-padded
    query_mask: torch.Tensor  # (B, Q)
    response_ids: torch.Tensor  # (B, A) right-padded
    response_mask: torch.Tensor  # (B, A)
    texts: list[str]
    """Decoded responses, cut before the first stop sequence."""
    logprobs: torch.Tensor | None = None  # (B, A) the engine's own log-prob of each token as sampled, 0 on padding
    """Where the rollout engine reports them: the trainer recomputes its own (`response_logprobs`); these measure
    the engine/trainer mismatch (`rollout/logprob_diff`) and weight the truncated IS correction (`--tis-cap`)."""

    @property
    def input_ids(self) -> torch.Tensor:
        return torch.cat([self.query_ids, self.response_ids], dim=1)  # (B, Q + A)

    @property
    def attention_mask(self) -> torch.Tensor:
        return torch.cat([self.query_mask, self.response_mask], dim=1)  # (B, Q + A)


def concat_rollouts(rollouts: Sequence[Rollout], pad_id: int) -> Rollout:
    """One rollout of all rows of `rollouts`, queries left-padded to the longest Q and responses right-padded to
    the longest A (extra padding is masked out, and positions skip it, so no row's log-probs change)."""
    if len(rollouts) == 1:
        return rollouts[0]
    n_query = max(r.query_ids.shape[1] for r in rollouts)
    n_response = max(r.response_ids.shape[1] for r in rollouts)

    def pad(t: torch.Tensor, width: int, value: float, left: bool) -> torch.Tensor:
        fill = t.new_full((t.shape[0], width - t.shape[1]), value)
        return torch.cat([fill, t] if left else [t, fill], dim=1)

    have_logprobs = all(r.logprobs is not None for r in rollouts)
    return Rollout(
        torch.cat([pad(r.query_ids, n_query, pad_id, left=True) for r in rollouts]),
        torch.cat([pad(r.query_mask, n_query, 0, left=True) for r in rollouts]),
        torch.cat([pad(r.response_ids, n_response, pad_id, left=False) for r in rollouts]),
        torch.cat([pad(r.response_mask, n_response, 0, left=False) for r in rollouts]),
        [text for r in rollouts for text in r.texts],
        torch.cat([pad(r.logprobs, n_response, 0, left=False) for r in rollouts]) if have_logprobs else None,
    )


def select_rows(rollout: Rollout, rows: Sequence[int]) -> Rollout:
    """The rollout's `rows`, in that order (padding kept as it is)."""
    index = torch.tensor(list(rows), dtype=torch.long, device=rollout.query_ids.device)
    return Rollout(
        rollout.query_ids[index],
        rollout.query_mask[index],
        rollout.response_ids[index],
        rollout.response_mask[index],
        [rollout.texts[i] for i in rows],
        rollout.logprobs[index] if rollout.logprobs is not None else None,
    )


def encode_queries(
    tokenizer: Any, prompts: Sequence[str], samples_per_prompt: int, max_prompt_tokens: int, device: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """(query_ids, query_mask), each (B, Q) with B = P * G: the prompts LEFT-padded, longer ones keeping their last
    `max_prompt_tokens` tokens, each repeated G times consecutively. Every rollout engine starts from these ids."""
    tokenizer.padding_side, tokenizer.truncation_side = "left", "left"
    enc = tokenizer(
        list(prompts),
        return_tensors="pt",
        padding=True,
        truncation=True,
        max_length=max_prompt_tokens,
        add_special_tokens=False,
    )
    query_ids = enc["input_ids"].repeat_interleave(samples_per_prompt, dim=0).to(device)  # (B, Q)
    query_mask = enc["attention_mask"].repeat_interleave(samples_per_prompt, dim=0).to(device)  # (B, Q)
    return query_ids, query_mask


@torch.no_grad()
def sample(
    lm: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    stops: Sequence[Sequence[str]],
    *,
    samples_per_prompt: int,
    max_new_tokens: int,
    temperature: float,
    max_prompt_tokens: int,
    logprobs: bool = False,
) -> Rollout:
    """G = `samples_per_prompt` responses per prompt; temperature 0 means greedy. Uses torch's global RNG.

    Sampling is `hf_sampling.sample_tokens` with `Sampling(temperature)`: top-p and top-k off, so tokens are
    drawn from softmax(logits / T), the distribution `response_logprobs` scores them under. `logprobs`: the
    rollout carries generate's own log-prob of each sampled token (temperature > 0 only).
    """
    device = next(lm.parameters()).device
    query_ids, query_mask = encode_queries(tokenizer, prompts, samples_per_prompt, max_prompt_tokens, device)
    row_stops = [stops[i // samples_per_prompt] for i in range(len(query_ids))]
    sampled = sample_tokens(
        lm, tokenizer, query_ids, query_mask, row_stops, max_new_tokens=max_new_tokens,
        sampling=Sampling(temperature=temperature), logprobs=logprobs,
    )  # fmt: skip
    return Rollout(query_ids, query_mask, sampled.response_ids, sampled.response_mask, sampled.texts, sampled.logprobs)


def response_logprobs(
    logits: torch.Tensor, response_ids: torch.Tensor, n_query: int, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of the response tokens and the policy entropy at each, under the sampling temperature.

    logits: (B, Q + A, V) for the whole sequence -> (logprobs (B, A), entropy (B, A)).
    """
    logits = logits[:, n_query - 1 : -1].float() / temperature  # (B, A, V): column Q + t - 1 predicts token t
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
    return logprobs, entropy_from_logits(logits)


def response_values(values: torch.Tensor, n_query: int) -> torch.Tensor:
    """V(s_t) for each response token: values (B, Q + A) -> (B, A)."""
    return values[:, n_query - 1 : -1]
