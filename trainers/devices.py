"""What every trainer shares around its loop: the device and accelerate, seeding, loading, the optimiser.

All four trainers (SFT, reward model, critic, PPO) run through one `accelerate.Accelerator` made by
`make_accelerator`: CUDA when present, else CPU; mixed precision from the `--precision` choice (picked by
`execrl.harness.generation.hf_sampling.pick_dtype`, the picker `execrl generate` uses too) as accelerate's
autocast, with loss scaling for fp16 only (bf16 has fp32's exponent range). On CPU in fp32 accelerate adds
nothing to the plain torch loop. torch is imported inside functions so that importing this module stays cheap.

The supervised trainers (SFT, reward model, critic) also share the frame of their loop: `prepare_optimiser`,
`step_log` (`OUT/train_log.jsonl` and the progress bar), and their start and end: `start_supervised`, which
claims the output folder and returns a `SupervisedRun` that restores and writes mid-run checkpoints (a killed run
resumes exactly) and whose `save` writes the model and marks the folder finished.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from execrl.benchmarks.datafiles import iter_jsonl
from execrl.benchmarks.errors import UserError
from execrl.harness import runfolder
from execrl.harness.generation.hf_sampling import pick_device as _pick_device
from execrl.harness.generation.hf_sampling import pick_dtype
from execrl.trainers import step_checkpoint
from execrl.trainers.data import claim_output, config_record, finish_output
from execrl.trainers.flags import OptimiserFlags


def pick_device(device: str = "auto") -> Any:
    """`torch.device` for a `--device` flag value (`hf_sampling.pick_device`, the one `execrl generate` uses)."""
    try:
        return _pick_device(device)
    except ValueError as e:
        raise UserError(str(e)) from None


def mixed_precision(device: Any, precision: str = "auto") -> str:
    """accelerate's `mixed_precision` ("no", "bf16" or "fp16") for `--precision` on `device`."""
    import torch

    try:
        dtype = pick_dtype(device, precision)
    except ValueError as e:
        raise UserError(f"--{e}") from None
    if dtype != torch.float32 and device.type != "cuda":
        raise UserError(f"--precision {precision}: mixed precision needs a CUDA device")
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "no")


def make_accelerator(device: str = "auto", precision: str = "auto") -> Any:
    """The `Accelerator` of a training run for the `--device` and `--precision` flags.

    Its `.device` is where the models go; `cuda:N` selects GPU N in a single-process run (under
    `accelerate launch` each process takes its own GPU).
    """
    import torch
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    chosen = pick_device(device)
    mixed = mixed_precision(chosen, precision)
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        # accelerate keeps one state per process and refuses (or, for cpu=False, silently ignores) other
        # settings in a later Accelerator; in one process the pipeline trains SFT, then PPO, each with its own.
        AcceleratorState._reset_state(reset_partial_state=True)
        if chosen.type == "cuda" and chosen.index is not None:
            torch.cuda.set_device(chosen)
    return Accelerator(cpu=chosen.type == "cpu", mixed_precision=mixed)


def seeded_accelerator(cfg: Any) -> Any:
    """A run's start: seed everything from `cfg.seed`, then the `Accelerator` for `cfg.device` and `cfg.precision`."""
    seed_everything(cfg.seed)
    return make_accelerator(cfg.device, cfg.precision)


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


def prepare_optimiser(accelerator: Any, model: Any, cfg: OptimiserFlags, steps: int) -> tuple[Any, Any, Any]:
    """(model, optimizer, scheduler) for `steps` optimiser steps with the `cfg` flags, prepared by `accelerator`."""
    optimizer, scheduler = optimizer_and_schedule(
        model.parameters(), cfg.lr, cfg.weight_decay, round(cfg.warmup_share * steps), steps
    )
    from execrl.trainers.distributed import fill_deepspeed_auto

    fill_deepspeed_auto(accelerator, cfg.max_grad_norm)
    model, optimizer = accelerator.prepare(model, optimizer)
    return model, optimizer, scheduler


def optimizer_step(accelerator: Any, model: Any, optimizer: Any, scheduler: Any, max_grad_norm: float) -> float:
    """After `accelerator.backward` of the step's losses: clip the global grad norm (0 = no clipping; fp16
    gradients are unscaled first), step the optimiser and the LR schedule, clear the gradients. Returns the
    grad norm before clipping."""
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), max_grad_norm or float("inf"))
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(grad_norm)


@contextlib.contextmanager
def step_log(
    out: Path, steps: int, desc: str, start: int = 0, enabled: bool = True
) -> Iterator[Callable[[dict[str, Any], float], None]]:
    """`log(row, loss)` for each of `steps` steps: one JSON line in `OUT/train_log.jsonl`, one tick of the bar.

    A run resumed after step `start` keeps the log's rows up to that step and appends; rows a killed run wrote
    past its last checkpoint are dropped, since the resumed run redoes those steps. Not `enabled` (the ranks
    other than the main process under data parallel): `log` does nothing.
    """
    from tqdm import tqdm

    if not enabled:
        yield lambda row, loss: None
        return

    path = out / "train_log.jsonl"
    kept: list[dict[str, Any]] = []
    if start:
        runfolder.repair_tail(path)
        kept = [row for _, row in iter_jsonl(path) if row.get("step", 0) <= start] if path.exists() else []
    with path.open("w") as f, tqdm(total=steps, initial=start, desc=desc, file=sys.stderr) as bar:
        f.writelines(json.dumps(row) + "\n" for row in kept)
        f.flush()

        def log(row: dict[str, Any], loss: float) -> None:
            f.write(json.dumps(row) + "\n")
            f.flush()  # a kill loses at most the row being written
            bar.set_postfix(loss=f"{loss:.3f}")
            bar.update()

        yield log


@dataclass(frozen=True)
class SupervisedRun:
    """A supervised trainer's run once started: its output folder (claimed), the config record that folder is
    compared by, its `Accelerator`, the model's tokenizer, whether it continues a killed run, and how often it
    checkpoints (`execrl.trainers.step_checkpoint`)."""

    out: Path
    config: dict[str, Any]
    accelerator: Any
    tokenizer: Any
    resuming: bool = False
    save_every: int = 0

    def restore(self, scheduler: Any) -> int:
        """The step to continue after: the checkpoint's, its state loaded into the prepared model and optimizer,
        `scheduler` and the RNGs; 0 for a fresh run. Call it once, after `prepare_optimiser`, before the first
        step: it also registers `scheduler` for the checkpoints `checkpoint` writes."""
        self.accelerator.register_for_checkpointing(scheduler)
        if not self.resuming or not step_checkpoint.exists(self.out):
            return 0
        step = step_checkpoint.restore(self.out, self.accelerator)
        print(f"{self.out}: resuming after step {step} from its checkpoint", file=sys.stderr)
        return step

    def checkpoint(self, step: int, steps: int) -> None:
        """After optimiser step `step` of `steps`: a checkpoint every `save_every` steps (not after the last: the
        finished model is saved then)."""
        if self.save_every and step % self.save_every == 0 and step < steps:
            step_checkpoint.save(self.out, step, self.accelerator)

    def save(self, model: Any, json_files: dict[str, Any], state_dict: dict[str, Any] | None = None) -> None:
        """On the main process: each of `json_files` (name: value), the model (with `state_dict`, its weights
        gathered under ZeRO-3: `distributed.full_state_dict`) and the tokenizer into `out`, which is then marked
        finished and its checkpoints dropped."""
        if not self.accelerator.is_main_process:
            return
        for name, value in json_files.items():
            runfolder.write_json(self.out / name, value)  # whole or not at all
        model.save_pretrained(self.out, **({"state_dict": state_dict} if state_dict is not None else {}))
        self.tokenizer.save_pretrained(self.out)
        finish_output(self.out, self.config)
        step_checkpoint.remove(self.out)


def start_supervised(cfg: Any) -> SupervisedRun | None:
    """The start-up of SFT, the reward model and the critic; None when `cfg.out` already holds this finished run
    (the trainer then returns at once). Otherwise claims `cfg.out` (an unfinished run of the same config there is
    resumed from its last checkpoint), seeds, makes the accelerator, loads the tokenizer of `cfg.model`."""
    from execrl.trainers.distributed import main_first

    out, config = Path(cfg.out), config_record(cfg)
    state = main_first(cfg.device, lambda: claim_output(out, config, cfg.force))  # rank 0 claims for all
    if state == "done":
        return None
    return SupervisedRun(
        out,
        config,
        seeded_accelerator(cfg),
        load_tokenizer(cfg.model),
        resuming=state == "resume",
        save_every=getattr(cfg, "save_every", 0),
    )
