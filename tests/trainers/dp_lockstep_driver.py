"""One rank of `accelerate launch --num_processes 2` for the lockstep test: a DDP-wrapped linear model trained on
uneven data (rank 0: 5 rows, rank 1: 2 rows) through `distributed.minibatches`, and the rank collectives; each
rank writes what it saw to `OUT/rank<R>.json`.

Usage: accelerate launch ... tests/trainers/dp_lockstep_driver.py OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from execrl.trainers import distributed
from execrl.trainers.devices import make_accelerator

ROWS = (5, 2)
MINIBATCH = 2


def rank_data(rank: int) -> torch.Tensor:
    """The rows rank `rank` trains on: (ROWS[rank], 3)."""
    return torch.randn(ROWS[rank], 3, generator=torch.Generator().manual_seed(rank))


def main() -> int:
    out = Path(sys.argv[1])
    accelerator = make_accelerator("cpu", "fp32")
    rank = accelerator.process_index
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model, optimizer = accelerator.prepare(model, optimizer)
    x = rank_data(rank)
    plan = distributed.minibatches(accelerator, torch.arange(len(x)), MINIBATCH)
    for mb_inds, mb_weight in plan:
        loss = model(x[mb_inds]).pow(2).mean()
        optimizer.zero_grad()
        accelerator.backward(loss * mb_weight)
        optimizer.step()
    seen = {
        "plan": [[mb.tolist(), w] for mb, w in plan],
        "params": [p.detach().flatten().tolist() for p in accelerator.unwrap_model(model).parameters()],
        "every_rank_has": distributed.every_rank_has(accelerator, len(x) - 2),  # rank 1 has 0
        "sum_across": distributed.sum_across(accelerator, [rank + 1.0]),
        "mean_across": distributed.mean_across(accelerator, float(rank)),
        "gather_all": distributed.gather_all(accelerator, [rank]),
    }
    (out / f"rank{rank}.json").write_text(json.dumps(seen))
    distributed.finish()  # as `execrl train` does: a rank exiting with gloo's threads alive aborts
    return 0


if __name__ == "__main__":
    sys.exit(main())
