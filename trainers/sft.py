"""Supervised fine-tuning (`execrl train sft`): causal-LM loss on the completion tokens only.

Rows `{"prompt", "completion"}` (or `--data synth`: the synth train corpus with a share of subtly wrong
solutions; or `--benchmark mbpp apps ... | --problems FILE`: the problems' reference solutions after their
prompts, `execrl.trainers.sources.reference_rows`) are encoded by `execrl.trainers.data.encode_sft` (prompt
labelled -100, EOS appended). Optional LoRA (Hu et al. 2021) through peft, merged into the base weights before
saving, so OUT is always a plain Hugging Face model folder with its tokenizer. Loss per optimiser step goes to
`OUT/train_log.jsonl`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from execrl.benchmarks.errors import UserError
from execrl.harness.flags import DeviceFlags, OutputFlags, parse
from execrl.trainers import devices, distributed
from execrl.trainers.data import (
    collate_sft,
    encode_sft,
    endless_batches,
    read_jsonl,
)
from execrl.trainers.flags import EpochFlags, LoraFlags, OptimiserFlags, TrainProblemFlags
from execrl.trainers.lora import with_lora


@dataclass(kw_only=True)
class SFTConfig(DeviceFlags, OutputFlags, OptimiserFlags, EpochFlags, LoraFlags, TrainProblemFlags):
    """Fine-tune a causal LM on (prompt, completion) rows, or on the reference solutions of --benchmark/--problems.

    Defaults are tuned for the embedded tiny model on `--data synth` (2,000 rows, 1,250 steps, about 2 CPU
    minutes): on 200 synth test problems it then passes about 92% greedy and 65% sampled at temperature 1,
    where about 30% of samples fail like the corpus's wrong share, leaving PPO room to improve.
    """

    # SFT's tuned defaults where they differ from the groups' (documented in execrl.trainers.flags).
    epochs: int = 10
    lr: float = 2e-3
    model: str
    """Model folder or hub id to start from."""
    data: str = "synth"
    """JSONL file of {"prompt", "completion"} rows, or `synth` for the synth train corpus (unused with --benchmark
    or --problems)."""
    solutions_per_problem: int = 1
    """With --benchmark/--problems: reference solutions per problem used as rows (APPS problems have many)."""
    wrong_share: float = 0.3
    """With --data synth: share of subtly wrong solutions in the corpus."""
    synth_seed: int = 0
    """With --data synth: seed of the synth benchmark and corpus."""
    grad_accum: int = 1
    """Micro-batches per optimiser step."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""


def load_rows(cfg: SFTConfig) -> list[dict[str, Any]]:
    """The (prompt, completion) rows named by `--data`, or the reference solutions of --benchmark/--problems."""
    if cfg.benchmark or cfg.problems is not None:
        from execrl.trainers.sources import reference_rows, training_problems

        if cfg.data != "synth":
            raise UserError(f"--data {cfg.data}: give rows (--data) or problems (--benchmark/--problems), not both")
        return reference_rows(training_problems(cfg, synth_seed=cfg.synth_seed), cfg.solutions_per_problem)
    if cfg.data != "synth":
        return read_jsonl(cfg.data, required=("prompt", "completion"))
    try:
        from execrl.benchmarks.synth import load_synth, sft_corpus
    except ImportError:
        raise UserError("--data synth: the synth benchmark (execrl.benchmarks.synth) is not installed") from None

    if not 0.0 <= cfg.wrong_share <= 1.0:
        raise UserError(f"--wrong-share {cfg.wrong_share}: expected a number in [0, 1]")
    problems = load_synth("train", seed=cfg.synth_seed)
    return sft_corpus(problems, wrong_share=cfg.wrong_share, seed=cfg.synth_seed)


def train_sft(cfg: SFTConfig) -> Path:
    """Fine-tune `cfg.model` on `cfg.data` and save to `cfg.out`; returns `cfg.out`. Resumes a finished run."""
    from transformers import AutoModelForCausalLM

    run = devices.start_supervised(cfg)
    if run is None:  # `cfg.out` already holds this finished run
        return Path(cfg.out)

    # 1. data
    encoded = [encode_sft(run.tokenizer, r["prompt"], r["completion"], cfg.max_length) for r in load_rows(cfg)]
    encoded = [e for e in encoded if e is not None]
    if not encoded:
        source = "--benchmark/--problems" if cfg.benchmark or cfg.problems else f"--data {cfg.data}"
        raise UserError(f"{source}: every prompt fills --max-length {cfg.max_length}")

    # 2. model
    if cfg.lora_r > 0:  # merging the adapters needs the whole weights
        distributed.refuse_zero3(run.accelerator, "execrl train sft --lora-r")
    model = devices.load_model(AutoModelForCausalLM, cfg.model)
    devices.set_gradient_checkpointing(model, cfg.gradient_checkpointing)
    if cfg.lora_r > 0:
        model = with_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout)
    model.train()

    # 3. optimiser
    micro_per_epoch = math.ceil(len(encoded) / cfg.batch_size)
    steps = cfg.max_steps or math.ceil(cfg.epochs * micro_per_epoch / cfg.grad_accum)
    model, optimizer, scheduler = devices.prepare_optimiser(run.accelerator, model, cfg, steps)

    # 4. train: an endless shuffled stream of micro-batches, `grad_accum` per optimiser step; a resumed run
    # replays the stream up to its checkpoint's step
    done = run.restore(scheduler)
    stream, start = endless_batches(len(encoded), cfg.batch_size, cfg.seed), time.monotonic()
    for _ in range(done * cfg.grad_accum):
        next(stream)
    acc = run.accelerator
    with devices.step_log(run.out, steps, "sft", start=done, enabled=acc.is_main_process) as log:
        for step in range(done + 1, steps + 1):
            loss_sum = 0.0
            for _ in range(cfg.grad_accum):
                epoch, idx = next(stream)
                idx = distributed.batch_share(idx, acc.process_index, acc.num_processes)  # this rank's share
                batch = collate_sft([encoded[i] for i in idx], run.tokenizer.pad_token_id)
                batch = {k: v.to(run.accelerator.device) for k, v in batch.items()}
                with run.accelerator.autocast():
                    loss = model(**batch).loss / cfg.grad_accum
                run.accelerator.backward(loss)
                loss_sum += loss.item()
            lr = scheduler.get_last_lr()[0]  # the rate this step used
            grad_norm = devices.optimizer_step(run.accelerator, model, optimizer, scheduler, cfg.max_grad_norm)
            loss_sum = distributed.mean_across(acc, loss_sum)  # the global batch's
            row = {
                "step": step,
                "epoch": epoch,
                "sft/loss": round(loss_sum, 6),
                "sft/grad_norm": round(grad_norm, 6),
                "sft/lr": lr,
                "time/elapsed": round(time.monotonic() - start, 3),
            }
            log(row, loss_sum)
            run.checkpoint(step, steps)

    # 5. save: merged weights, so the folder loads without peft (under ZeRO-3 gathered from every rank first)
    state_dict = distributed.full_state_dict(run.accelerator, model)
    model = run.accelerator.unwrap_model(model)
    if cfg.lora_r > 0:
        model = model.merge_and_unload()
    model.eval()
    run.save(model, {}, state_dict)
    return run.out


def main(argv: list[str]) -> int:
    print(train_sft(parse(SFTConfig, argv, description=__doc__.splitlines()[0])))
    return 0
