"""The PPO policy and its frozen reference, loaded in the training precision.

Which weights are stored in which dtype (`--precision`, resolved by `execrl.trainers.devices.mixed_precision`):

- weights the optimizer updates stay fp32 (master weights). AdamW's step on a bf16 weight is rounded to bf16's
  8-bit mantissa: an update below ~1/256 of the weight is lost, and at PPO's learning rates (1e-5) most are. The
  forward and backward still run in bf16/fp16 through accelerate's autocast (mixed precision, Micikevicius et al.
  2018, arXiv:1710.03740), so only the stored copy is fp32;
- weights nothing updates (the reference; with LoRA the whole base model) are stored in the half dtype itself:
  they need no master copy, and the forward under autocast computes in that dtype anyway;
- LoRA adapters and the value head are trainable, so fp32 (peft upcasts adapters over a half-precision base).

On CPU the precision resolves to fp32 and everything is fp32, as before. Bytes per parameter of the model in
bf16: full fine-tuning holds 4 (fp32 policy) + 4 (its gradients) + 8 (AdamW's two moments) + 2 (the reference)
= 18; LoRA holds 2 (one base, which is also the reference) plus the adapters' share.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from execrl.trainers import checkpoint, devices, lora
from execrl.trainers.ppo_config import PPOConfig
from execrl.trainers.rollout import PolicyWithValue


def frozen_dtype(mixed_precision: str) -> torch.dtype:
    """The dtype of weights no optimizer updates, for accelerate's `mixed_precision` ("no", "bf16" or "fp16")."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision, torch.float32)


def policy_and_reference(
    cfg: PPOConfig, device: Any, mixed_precision: str, policy_dir: Path | None = None
) -> tuple[Any, Any]:
    """(the policy: `PolicyWithValue`, the frozen reference), both from `cfg.model`, for accelerate's
    `mixed_precision`; with `policy_dir` (a checkpoint's policy folder) the policy's trained weights and value head
    come from there. The reference is put on `device`; the policy goes there when accelerate prepares it.

    With `cfg.lora_r` the reference is the policy's own LM with the adapters off (`lora.AdapterFreeReference`):
    no second copy. Otherwise it is a separate frozen model. The value head exists only for GAE (`cfg.value_head`).
    """
    from transformers import AutoModelForCausalLM

    frozen = frozen_dtype(mixed_precision)
    if cfg.lora_r:
        base = devices.load_model(AutoModelForCausalLM, cfg.model, dtype=frozen)
        base.requires_grad_(False)
        devices.set_gradient_checkpointing(base, cfg.gradient_checkpointing)  # before peft, which then enables
        # the input gradients that checkpointing a frozen embedding needs
        if policy_dir:
            lm = lora.load_adapter(base, policy_dir)
        else:
            lm = lora.with_lora(base, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout)
        ref = lora.AdapterFreeReference(lm)
    else:
        ref = devices.load_model(AutoModelForCausalLM, cfg.model, dtype=frozen).to(device).eval()
        ref.requires_grad_(False)
        if policy_dir:
            lm = devices.load_model(AutoModelForCausalLM, str(policy_dir), dtype=torch.float32)
        elif frozen == torch.float32:
            lm = copy.deepcopy(ref)
        else:
            lm = devices.load_model(AutoModelForCausalLM, cfg.model, dtype=torch.float32)
        lm.requires_grad_(True)
        devices.set_gradient_checkpointing(lm, cfg.gradient_checkpointing)
    if cfg.gradient_checkpointing:  # the update then runs in train mode (`update_mode`): no dropout may act there
        disable_dropout(lm)
    policy = PolicyWithValue(lm, value_head=cfg.value_head)
    if policy_dir:
        checkpoint.load_value_head(policy, policy_dir)
    # Dropout stays off throughout: the PPO ratio must compare the same function before and after a step.
    policy.eval()
    return policy, ref


def disable_dropout(model: Any) -> None:
    """Every dropout of `model` at p = 0: its `nn.Dropout` modules and its config's dropout rates (`*dropout`,
    `*pdrop`: some attention implementations read them at call time), so that train mode computes exactly the
    function eval mode does (TRL's `disable_dropout_in_model` does the same for its trainers)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    config = getattr(model, "config", None)
    for name, value in vars(config).items() if config is not None else ():
        if isinstance(value, float) and (name.endswith("dropout") or name.endswith("pdrop")):
            setattr(config, name, 0.0)


def update_mode(policy: Any, gradient_checkpointing: bool, training: bool) -> None:
    """Put the policy in train mode for the PPO update (`training`) and back in eval mode after it, when
    `gradient_checkpointing` is on; otherwise leave it in eval mode throughout.

    transformers checkpoints a layer only while it is training (`self.gradient_checkpointing and self.training`
    in `modeling_layers.py`), and PPO keeps the policy in eval mode so that dropout never changes the function the
    ratio compares: with eval mode alone `--gradient-checkpointing` saved nothing. `policy_and_reference` zeroes
    every dropout when the flag is on, so both modes compute the same function, and rollouts stay in eval mode
    (with their KV cache)."""
    if gradient_checkpointing:
        policy.train(training)
