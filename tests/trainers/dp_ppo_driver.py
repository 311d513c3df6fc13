"""`execrl train ppo ARGS` as one rank of `accelerate launch`, recording after every iteration a hash of this rank's
policy parameters in `HASH_DIR/rank<R>.jsonl` (test instrumentation: the trainer runs unchanged).

Usage: accelerate launch ... tests/trainers/dp_ppo_driver.py HASH_DIR ARGS...
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from execrl.trainers import ppo


def parameter_hash(module) -> str:
    """SHA-256 of every tensor of `module`'s state dict, by name."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> int:
    hash_dir, argv = Path(sys.argv[1]), sys.argv[2:]
    iteration = ppo.ppo_iteration

    def recorded(cfg, run):
        metrics = iteration(cfg, run)
        row = {"step": run.step + 1, "hash": parameter_hash(run.unwrapped)}
        with open(hash_dir / f"rank{run.accelerator.process_index}.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        return metrics

    ppo.ppo_iteration = recorded  # train_ppo looks it up in the module at each iteration
    from execrl.harness.cli import main as execrl

    return execrl(["train", "ppo", *argv])


if __name__ == "__main__":
    sys.exit(main())
