"""Flag groups the trainers share (the harness's groups, `execrl.harness.flags`, cover output, device, sandbox).

Each trainer's config is one flat dataclass that inherits these groups (STYLE.md 4); a trainer whose tuned
default differs (SFT's learning rate, PPO's gradient clipping) redeclares that one field, which keeps its
place and its documentation here.
"""

from __future__ import annotations

from dataclasses import dataclass

from execrl.benchmarks.registry import BenchmarkName
from execrl.harness.flags import ProblemFlags


@dataclass(kw_only=True)
class OptimiserFlags:
    lr: float = 5e-4
    """Peak learning rate (after warmup)."""
    warmup_share: float = 0.05
    """Share of steps spent warming the learning rate up linearly; cosine decay to 0 after."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm; 0 disables it."""
    seed: int = 0
    """Seed of initialisation, data order and sampling."""


@dataclass(kw_only=True)
class EpochFlags:
    """How long a supervised trainer (SFT, reward model, critic) runs, and on what batches."""

    epochs: int = 3
    """Passes over the training rows (ignored when --max-steps is set)."""
    max_steps: int = 0
    """Optimiser steps to run; 0 means run --epochs."""
    batch_size: int = 16
    """Rows per optimiser step (SFT: per micro-batch)."""
    max_length: int = 256
    """Tokens per row; a longer generation row loses its end, a longer scored text its start."""
    save_every: int = 100
    """Write a checkpoint every N optimiser steps (0: never); rerunning a killed run on the same --out resumes
    from the last one exactly."""


@dataclass(kw_only=True)
class LoraFlags:
    """LoRA adapters (`execrl.trainers.lora`) in place of training every weight (SFT and PPO)."""

    lora_r: int = 0
    """LoRA rank; 0 trains all weights."""
    lora_alpha: int = 16
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA input (SFT only: PPO keeps dropout off, so that its ratio compares one function)."""


@dataclass(kw_only=True)
class TrainProblemFlags(ProblemFlags):
    """The problem-source group (`execrl.harness.flags.ProblemFlags`) as the trainers take it: several benchmarks
    may be named, and the default split is train."""

    benchmark: list[BenchmarkName] | None = None
    """Benchmark(s) to train on, e.g. `--benchmark mbpp apps` (--variant goes to MBPP, --difficulty to APPS)."""
    split: str | None = None
    """Split to train on (default: train; HumanEval has only test, so see --allow-eval-overlap)."""
    allow_eval_overlap: bool = False
    """Train even on problems that are also in the evaluation split (and on HumanEval, which has no train split)."""
