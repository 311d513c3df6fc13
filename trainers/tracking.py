"""Run logging: one JSON line per iteration in `OUT/metrics.jsonl` and the same scalars in TensorBoard (`OUT/tb`).

Both are resumable: reopening at step k drops rows logged after k (they are recomputed), so a resumed run's
metrics file reads exactly like an uninterrupted one's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from execrl.benchmarks.datafiles import read_jsonl

METRICS_FILE = "metrics.jsonl"


class Tracker:
    """Writes metric rows `{"step": k, "ppo/kl": ..., ...}` to JSONL and TensorBoard. Under data parallel only
    the main process writes (`enabled`); the others' tracker does nothing, so a run has one log."""

    def __init__(self, out: Path, config: dict[str, Any], resume_step: int = 0, enabled: bool = True) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.enabled = enabled
        if not enabled:
            return
        self.path = Path(out) / METRICS_FILE
        kept = [row for row in read_metrics(self.path) if row["step"] <= resume_step] if resume_step else []
        self.path.write_text("".join(json.dumps(row) + "\n" for row in kept))
        # purge_step hides events logged after the checkpoint by the interrupted run.
        self.writer = SummaryWriter(str(Path(out) / "tb"), purge_step=resume_step + 1 if resume_step else None)
        if not resume_step:
            self.writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": step, **{k: _plain(v) for k, v in metrics.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        for name, value in row.items():
            if name != "step" and value is not None:
                self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.enabled:
            self.writer.close()


def _plain(value: float) -> float | None:
    """A JSON-safe float: NaN and infinities become null."""
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl file (empty when there is none; a torn last line, a killed run's, is dropped)."""
    path = Path(path)
    return read_jsonl(path) if path.is_file() else []
