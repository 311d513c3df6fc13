"""Mid-run checkpoints of the supervised trainers (SFT, reward model, critic), so a killed run resumes exactly.

`OUT/checkpoint/` is accelerate's own checkpoint (`Accelerator.save_state`: the prepared model, optimizer, the
LR scheduler registered with `register_for_checkpointing`, the mixed-precision scaler and every process's RNG
states — so it also serves multi-process and DeepSpeed runs) plus `step.json`, the optimiser step it was taken
after. It is written to `checkpoint.tmp/` and swapped in by rename, so a kill mid-save leaves the previous
checkpoint whole. The data order needs no saving: it is a seeded stream (`execrl.trainers.data.endless_batches`)
that a resumed run replays up to the checkpoint's step.

PPO keeps its own layout (`execrl.trainers.checkpoint`: a model folder plus its value head and loop state).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

CHECKPOINT_DIR = "checkpoint"
FILES = (CHECKPOINT_DIR, CHECKPOINT_DIR + ".tmp", CHECKPOINT_DIR + ".old")
"""What a supervised run's checkpoints occupy in OUT (`--force` and a finished run remove them)."""
STEP_FILE = "step.json"


def save(out: Path, step: int, accelerator: Any) -> None:
    """Write `out/checkpoint/` for the state after optimiser step `step`. Every process calls it (accelerate
    writes each process's RNG state, and DeepSpeed needs every rank); the main process swaps the folder in."""
    final, tmp, old = (Path(out) / name for name in FILES)
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STEP_FILE).write_text(json.dumps({"step": step}) + "\n")  # written last: marks the folder whole
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def exists(out: Path) -> bool:
    return (Path(out) / CHECKPOINT_DIR / STEP_FILE).is_file()


def restore(out: Path, accelerator: Any) -> int:
    """Load `out/checkpoint/` into the objects `accelerator` prepared or registered; returns its step (0: none)."""
    if not exists(out):
        return 0
    folder = Path(out) / CHECKPOINT_DIR
    accelerator.load_state(str(folder))
    return int(json.loads((folder / STEP_FILE).read_text())["step"])


def remove(out: Path) -> None:
    """Drop the checkpoints once the run is finished (its model is in OUT)."""
    for name in FILES:
        shutil.rmtree(Path(out) / name, ignore_errors=True)
