"""Rollout engines: what samples PPO's programs behind `Run.sample`, one seam (`RolloutEngine`) and two engines.

- `HFRolloutEngine` (`--rollout hf`, the default; CPU or GPU): `model.generate` on the policy itself
  (`rollout.sample`, on the sampler `execrl generate`'s hf engine uses: harness/generation/hf_sampling.py). It
  shares the policy's parameters, so an update reaches it with nothing to copy.
- `VLLMRolloutEngine` (`--rollout vllm`, CUDA; execrl.trainers.vllm_rollout): a vLLM engine in this process, given
  the policy's weights after every update through vLLM's own `load_weights`.

Both lay out a batch alike — queries left-padded by `encode_queries`, responses right-padded, each ending at EOS
or at the token that completed a stop — and both report their own log-prob of each sampled token
(`Rollout.logprobs`). The trainer recomputes its own either way (`ppo.rollout_logprobs`); the gap between the two is
`rollout/logprob_diff`, and `--tis-cap` corrects for it (`ppo_math.truncated_is_weights`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import torch
from execrl.harness.generation.base import truncate_at_stop
from execrl.trainers.rollout import Rollout, sample


class RolloutEngine(Protocol):
    def sample(
        self,
        prompts: Sequence[str],
        stops: Sequence[Sequence[str]],
        *,
        samples_per_prompt: int,
        max_new_tokens: int,
        temperature: float,
        max_prompt_tokens: int,
    ) -> Rollout:
        """G = `samples_per_prompt` responses to each prompt, in `rollout.sample`'s layout, with the engine's own
        log-probs where temperature > 0."""
        ...

    def load_weights(self, lm: Any) -> None:
        """Take the policy's current weights; called after every update, before the next rollout."""
        ...


class HFRolloutEngine:
    """`generate` on the policy's own LM: the rollouts execrl always had, plus generate's log-probs."""

    def __init__(self, lm: Any, tokenizer: Any) -> None:
        self.lm = lm
        self.tokenizer = tokenizer

    def sample(
        self,
        prompts: Sequence[str],
        stops: Sequence[Sequence[str]],
        *,
        samples_per_prompt: int,
        max_new_tokens: int,
        temperature: float,
        max_prompt_tokens: int,
    ) -> Rollout:
        # Recording the log-probs only observes the scores: the same tokens are drawn with or without it.
        return sample(
            self.lm, self.tokenizer, prompts, stops, samples_per_prompt=samples_per_prompt,
            max_new_tokens=max_new_tokens, temperature=temperature, max_prompt_tokens=max_prompt_tokens,
            logprobs=temperature > 0,
        )  # fmt: skip

    def load_weights(self, lm: Any) -> None:
        self.lm = lm  # the policy's own module: its parameters are the updated ones already


def rollout_from_tokens(
    tokenizer: Any,
    query_ids: torch.Tensor,
    query_mask: torch.Tensor,
    responses: Sequence[Sequence[int]],
    logprobs: Sequence[Sequence[float]] | None,
    stops: Sequence[Sequence[str]],
) -> Rollout:
    """A `Rollout` from an engine's per-row token ids (each ending at EOS or at the token completing a stop, as the
    engine stopped it) and their log-probs: right-padded with the pad id (log-prob 0), texts decoded without special
    tokens and cut before the row's earliest stop, as `hf_sampling.sample_tokens` does. query_ids, query_mask:
    (B, Q); `stops[i]` are row i's."""
    n_rows, width = len(responses), max((len(r) for r in responses), default=0)
    response_ids = torch.full((n_rows, width), tokenizer.pad_token_id, dtype=torch.long)  # (B, A)
    response_mask = torch.zeros((n_rows, width), dtype=torch.long)  # (B, A)
    response_logprobs = torch.zeros((n_rows, width)) if logprobs is not None else None  # (B, A)
    for i, ids in enumerate(responses):
        response_ids[i, : len(ids)] = torch.tensor(list(ids), dtype=torch.long)
        response_mask[i, : len(ids)] = 1
        if response_logprobs is not None and logprobs is not None:
            response_logprobs[i, : len(ids)] = torch.tensor(list(logprobs[i]), dtype=torch.float32)
    texts = [
        truncate_at_stop(tokenizer.decode(list(ids), skip_special_tokens=True), list(stops[i]))
        for i, ids in enumerate(responses)
    ]
    device = query_ids.device
    return Rollout(
        query_ids,
        query_mask,
        response_ids.to(device),
        response_mask.to(device),
        texts,
        response_logprobs.to(device) if response_logprobs is not None else None,
    )


def policy_weights(lm: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """The policy LM's weights, one tensor at a time, under the names of its Hugging Face checkpoint — the names
    vLLM's `load_weights` maps onto its own (fused) layers. A peft LoRA model gives each adapted layer's merged
    weight W + (alpha / r) B A (peft's `get_delta_weight`), computed beside W, never written into it: merging in
    place and unmerging after (peft's `merge_adapter`/`unmerge_adapter`) would add rounding error to the frozen
    base weights at every sync. Tied weights come once (`named_parameters` skips repeats)."""
    if not hasattr(lm, "peft_config"):
        for name, param in lm.named_parameters():
            yield name, param.detach()
        return
    from execrl.trainers.lora import adapter_delta
    from peft.tuners.lora import LoraLayer

    adapted = {name: module for name, module in lm.named_modules() if isinstance(module, LoraLayer)}
    for name, module in adapted.items():
        base = module.get_base_layer()
        weight, delta = base.weight.detach(), adapter_delta(module)
        if delta is not None:  # summed in fp32 over a half-precision base, then rounded once
            weight = (weight.float() + delta).to(weight.dtype)
        yield _checkpoint_name(f"{name}.weight"), weight
        if getattr(base, "bias", None) is not None:
            yield _checkpoint_name(f"{name}.bias"), base.bias.detach()
    for name, param in lm.named_parameters():
        owner = name.rsplit(".", 1)[0]
        if any(owner == n or owner.startswith(f"{n}.") for n in adapted):
            continue  # an adapted layer's base weight, bias and adapters: given merged above
        yield _checkpoint_name(name), param.detach()


def _checkpoint_name(peft_name: str) -> str:
    """The checkpoint name of a peft model's parameter: without peft's wrapper prefix and `base_layer` level."""
    return peft_name.removeprefix("base_model.model.").replace(".base_layer.", ".")


def vllm_unavailable(device: str = "auto") -> str | None:
    """Why `--rollout vllm` cannot run here (None when it can): vLLM must import and a CUDA device be usable."""
    if device == "cpu":
        return "--device cpu: vLLM rollouts need a CUDA device"
    try:
        import vllm  # noqa: F401
    except Exception as e:  # a CUDA build may fail with OSError or RuntimeError as well as ImportError
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        hint = "install it on a CUDA machine: pip install 'execrl[vllm]'"
        return f"vllm does not import ({type(e).__name__}: {first}); {hint}"
    if not torch.cuda.is_available():
        return "no CUDA device: vLLM rollouts need a GPU"
    return None


def make_rollout_engine(cfg: Any, lm: Any, tokenizer: Any, accelerator: Any) -> RolloutEngine:
    """The `--rollout` engine for a run whose policy LM is `lm` (already on its device, maybe resumed)."""
    if cfg.rollout == "hf":
        return HFRolloutEngine(lm, tokenizer)
    from execrl.trainers.vllm_rollout import VLLMRolloutEngine

    engine = VLLMRolloutEngine(
        cfg.model,
        tokenizer,
        gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
        tensor_parallel_size=cfg.vllm_tensor_parallel_size,
        max_model_len=cfg.max_prompt_tokens + cfg.max_new_tokens,
        precision=cfg.precision,
        seed=cfg.seed,
        accelerator=accelerator,
    )
    engine.load_weights(lm)  # vLLM loaded --model from disk; a resumed (or LoRA-wrapped) policy differs from it
    return engine
