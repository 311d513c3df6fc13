"""LoRA (Hu et al. 2021, arXiv:2106.09685) through peft, shared by SFT and PPO.

- `with_lora`: a model with trainable low-rank adapters on its attention and MLP projections, base weights frozen;
- `AdapterFreeReference`: PPO's frozen reference as the policy's own base weights with the adapters switched off
  (peft's `disable_adapter()`), so a LoRA run holds one copy of the weights, not two;
- `merged_state_dict`: the weights with every adapter folded in, under the base model's own (Hugging Face)
  names, without touching the live model: what a saved model folder or a rollout engine's weight sync needs;
- `save_merged`: a LoRA policy as an ordinary Hugging Face model folder (no peft needed to load it).

A PPO checkpoint of a LoRA run keeps the adapter only (peft's `save_pretrained`: adapter_config.json +
adapter_model.safetensors, a few MB); `load_adapter` attaches it to a freshly loaded base on `--resume`.
torch and peft are imported inside functions so that importing this module stays cheap.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"
"""What peft writes beside an adapter's weights: marks a folder as an adapter rather than a whole model."""

# peft's own defaults cover attention only; adding the MLP projections helps small models learn.
LORA_TARGETS: dict[str, list[str]] = {
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],  # the GPU recipe's model
}


def with_lora(model: Any, r: int, alpha: int, dropout: float) -> Any:
    """`model` wrapped by peft with rank-`r` adapters (update scaled by alpha / r); only the adapters train.

    peft keeps the adapters in fp32 over a bf16/fp16 base (`autocast_adapter_dtype`, its default): the optimizer
    then updates fp32 weights, and the frozen base needs no fp32 master copy.
    """
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=LORA_TARGETS.get(model.config.model_type),  # None: peft's default for the type
        task_type="CAUSAL_LM",
        fan_in_fan_out=model.config.model_type == "gpt2",  # GPT-2's Conv1D stores weights transposed
    )
    return get_peft_model(model, lora)


def is_adapter_folder(folder: Path) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def load_adapter(base: Any, folder: Path) -> Any:
    """A trainable peft model: the adapter saved in `folder` on `base` (the model it was trained on)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base, str(folder), is_trainable=True)


def is_lora(model: Any) -> bool:
    """Whether `model` carries peft adapters (without importing peft, slow to import, when nothing has)."""
    if "peft" not in sys.modules:
        return False
    from peft import PeftModel

    return isinstance(model, PeftModel)


class AdapterFreeReference:
    """The frozen reference of a LoRA policy: the policy's LM run with its adapters disabled and no gradient.

    Called as the reference model is (`ref(input_ids=..., attention_mask=..., position_ids=...).logits`); it holds
    no weights of its own, so the base weights are stored once, and since the base is frozen it stays the initial
    policy however far the adapters move (TRL's PPO and GRPO trainers use peft's `disable_adapter()` the same way).
    """

    def __init__(self, peft_model: Any) -> None:
        self.model = peft_model

    def __call__(self, **inputs: Any) -> Any:
        import torch

        with torch.no_grad(), self.model.disable_adapter():
            return self.model(**inputs)


def adapter_delta(module: Any) -> Any:
    """The fp32 sum of a peft LoRA layer's active, unmerged adapters' weight deltas ((alpha / r) B A each, peft's
    `get_delta_weight`), or None when there is none: what merging adds to the layer's base weight. Summed in fp32
    so that a half-precision base is rounded once, when the caller casts W + delta."""
    if module.merged:
        return None
    active = [a for a in module.active_adapters if a in module.lora_A or a in module.lora_embedding_A]
    if not active:
        return None
    return sum(module.get_delta_weight(a).detach().float() for a in active)


def merged_state_dict(model: Any, dtype: Any = None, device: Any = None) -> dict[str, Any]:
    """The state dict of `model` with its active LoRA adapters merged into the base weights, keyed by the base
    model's own names (`transformer.h.0.attn.c_attn.weight`, as `save_pretrained` or vLLM's `load_weights` take
    them); a model without adapters gives its plain state dict. The live model is left as it is.

    Each merged weight is W + B A * alpha / r summed in fp32, then cast to `dtype` (None: the base weight's own
    dtype; rounding to bf16 can erase a small update, so a saved folder asks for fp32) and moved to `device`
    (None: where it is). Tensors that are tied (GPT-2's embedding and LM head) stay one tensor.
    """
    import torch

    if not is_lora(model):
        return {k: v.to(device=device, dtype=dtype) for k, v in model.state_dict().items()}
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model()
    deltas = {}
    with torch.no_grad():
        for name, module in base.named_modules():
            if isinstance(module, LoraLayer) and (delta := adapter_delta(module)) is not None:
                deltas[f"{name}.base_layer.weight"] = delta
        merged: dict[str, Any] = {}
        converted: dict[tuple[int, Any], Any] = {}  # (storage pointer, dtype) -> the moved tensor: ties stay ties
        for key, tensor in base.state_dict().items():
            if ".lora_" in key:  # lora_A / lora_B / lora_embedding_* / lora_magnitude_vector: folded in or unused
                continue
            out_key = key.replace(".base_layer.", ".")
            if key in deltas:
                merged[out_key] = (tensor.float() + deltas[key]).to(device=device, dtype=dtype or tensor.dtype)
            else:
                cache = (tensor.data_ptr(), tensor.dtype)
                if cache not in converted:
                    converted[cache] = tensor.to(device=device, dtype=dtype)
                merged[out_key] = converted[cache]
    return merged


def save_merged(model: Any, folder: Path) -> None:
    """A LoRA `model` as an ordinary Hugging Face model folder of fp32 weights (W + B A merged, as
    `merged_state_dict`), which `execrl generate` and `evaluate` load without peft. The copy is built on the CPU
    on a meta-device skeleton, so the accelerator holds no second copy even at the end."""
    import torch
    from transformers import AutoModelForCausalLM

    base = model.get_base_model()
    state = merged_state_dict(model, dtype=torch.float32, device="cpu")
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(base.config, dtype=torch.float32)
    plain.load_state_dict(state, assign=True, strict=True)
    plain.tie_weights()
    plain.generation_config = base.generation_config
    plain.save_pretrained(Path(folder))
