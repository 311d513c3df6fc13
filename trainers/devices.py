"""Device, precision, seeding, loading and optimiser helpers shared by every trainer.

CUDA when present, else CPU; bf16 where the GPU supports it, else fp16 on GPU, fp32 on CPU. Mixed
precision is done with `torch.autocast` (bf16 needs no loss scaling; fp16 gets a GradScaler).
torch is imported inside functions so that importing this module stays cheap.
"""

from __future__ import annotations

import random
from typing import Any

from execrl.benchmarks.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def pick_device(device: str = "auto") -> Any:
    """`torch.device` for a `--device` flag value: `auto` (CUDA if available), `cpu`, `cuda`, `cuda:N`."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine")
    return torch.device(device)


def pick_dtype(device: Any, precision: str = "auto") -> Any:
    """The autocast dtype for `--precision` on `device` (`torch.float32` means no autocast)."""
    import torch

    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision}: expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision != "fp32" and device.type != "cuda":
        raise UserError(f"--precision {precision}: mixed precision needs a CUDA device")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device: Any, dtype: Any) -> Any:
    """A context manager running the forward pass in `dtype` (a no-op for fp32)."""
    import torch

    return torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype != torch.float32)


def grad_scaler(device: Any, dtype: Any) -> Any:
    """A GradScaler, enabled only for fp16 (bf16 has fp32's exponent range and needs none)."""
    import torch

    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) for a reproducible run."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_gradient_checkpointing(model: Any, enabled: bool) -> None:
    """Trade compute for memory on large models; the KV cache is off while it is on (HF requirement)."""
    if not enabled:
        return
    model.gradient_checkpointing_enable()
    model.config.use_cache = False


def load_tokenizer(model: str) -> Any:
    """The tokenizer of a model folder or hub id, with a pad token (EOS when it has none)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as e:
        raise UserError(f"--model {model}: cannot load a tokenizer ({str(e).splitlines()[0]})") from None
    if tokenizer.eos_token_id is None:
        raise UserError(f"--model {model}: the tokenizer has no EOS token")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(auto_class: Any, model: str, **kwargs: Any) -> Any:
    """`auto_class.from_pretrained(model)` with a user-facing error for a wrong `--model`."""
    try:
        return auto_class.from_pretrained(model, **kwargs)
    except (OSError, ValueError) as e:
        raise UserError(f"--model {model}: cannot load a model ({str(e).splitlines()[0]})") from None


def optimizer_and_schedule(params: Any, lr: float, weight_decay: float, warmup_steps: int, total_steps: int) -> tuple:
    """AdamW (Loshchilov & Hutter 2019) with linear warmup then cosine decay to 0 over `total_steps`."""
    import torch
    from transformers import get_cosine_schedule_with_warmup

    optimizer = torch.optim.AdamW([p for p in params if p.requires_grad], lr=lr, weight_decay=weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, warmup_steps, max(total_steps, 1))
    return optimizer, scheduler


def optimizer_step(model: Any, optimizer: Any, scheduler: Any, scaler: Any, max_grad_norm: float) -> float:
    """After the (scaled) backward passes: unscale, clip the global grad norm (0 = no clipping), step the
    optimiser and the LR schedule, clear the gradients. Returns the grad norm before clipping."""
    import torch

    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm or float("inf"))
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(grad_norm)
