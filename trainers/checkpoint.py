"""PPO checkpoints: everything needed to continue a run exactly, in `OUT/checkpoint/`.

- `policy/`: the policy LM and tokenizer, an ordinary Hugging Face model folder (with `--lora-r`: the adapter
  only, in peft's layout, resumed on the base model `--model`);
- `value_head.pt`: the value head's state dict (GAE only: a critic-free run has no value head, so no file);
- `trainer_state.pt`: optimizer, LR scheduler, RNG states (python, numpy, torch CPU and CUDA) and the loop
  state (step, KL coefficient, plateau tracker, prompt-sampling RNG, number of processes);
- `ranks.pt`, in a run of several processes (`execrl.trainers.distributed`): every rank's RNG states and
  prompt-sampling RNG, in rank order (the rest is the same on every rank and written once, by rank 0).

A checkpoint is written to `checkpoint.tmp/` and swapped in by rename, so a crash mid-save leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from execrl.trainers import lora

CHECKPOINT_DIR = "checkpoint"
VALUE_HEAD_FILE = "value_head.pt"
RANKS_FILE = "ranks.pt"


def rng_states() -> dict[str, Any]:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_policy(folder: Path, policy: Any, tokenizer: Any, merge_adapters: bool = False) -> None:
    """The policy as a Hugging Face model folder (+ tokenizer) with its value head, if it has one, beside it.

    A LoRA policy is saved as its adapter only (peft's layout, which `lora.load_adapter` resumes from), or with
    `merge_adapters` as a whole model with the adapters merged in (`lora.save_merged`: loads without peft).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if merge_adapters and lora.is_lora(policy.lm):
        lora.save_merged(policy.lm, folder)
    else:
        policy.lm.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if policy.v_head is not None:
        torch.save(policy.v_head.state_dict(), folder / VALUE_HEAD_FILE)


def save_checkpoint(
    out: Path, policy: Any, tokenizer: Any, optimizer: Any, scheduler: Any, state: dict, ranks: list | None = None
) -> None:
    """Write `out/checkpoint/` atomically. `policy` is the unwrapped `PolicyWithValue`; `ranks`: every rank's
    RNG states under data parallel (`distributed.gather_rank_states`), None in one process."""
    final, tmp = Path(out) / CHECKPOINT_DIR, Path(out) / (CHECKPOINT_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_policy(tmp / "policy", policy, tokenizer)
    if ranks is not None:
        torch.save(ranks, tmp / RANKS_FILE)
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_states(), **state},
        tmp / "trainer_state.pt",
    )
    old = Path(out) / (CHECKPOINT_DIR + ".old")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def checkpoint_policy_dir(out: Path) -> Path | None:
    """The checkpointed policy folder in `out`, or None when there is no checkpoint."""
    folder = Path(out) / CHECKPOINT_DIR
    return folder / "policy" if (folder / "trainer_state.pt").is_file() else None


def load_value_head(policy: Any, folder: Path) -> None:
    """The value head saved beside the policy in `folder` (a policy without a value head has nothing to load)."""
    if policy.v_head is None:
        return
    policy.v_head.load_state_dict(torch.load(Path(folder) / VALUE_HEAD_FILE, map_location="cpu"))


def load_trainer_state(out: Path, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Restore optimizer, scheduler and RNG states from `out/checkpoint/`; returns the loop state."""
    # weights_only=False: the file holds numpy RNG state and is written by this module, never downloaded.
    state = torch.load(Path(out) / CHECKPOINT_DIR / "trainer_state.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state.pop("optimizer"))
    scheduler.load_state_dict(state.pop("scheduler"))
    set_rng_states(state.pop("rng"))
    return state
