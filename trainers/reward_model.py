"""Bradley-Terry reward model (`execrl train rm`): a scalar head on the LM, trained on preference pairs.

Pairs come from a JSONL file of rows `{"prompt", "chosen", "rejected"}` (TRL's preference format, which `execrl
label export` writes from people's judgements: its rows marked `tie` or `both_bad` carry no preference and are
left out), from `--pairs synth`, or from evaluated run folders (`--pairs-from-runs`: a passing and a failing
program of the same problem, `pairs_from_results`); a file and run folders may be mixed. The head reads the last
non-pad token (`AutoModelForSequenceClassification`, num_labels=1). Loss: -log sigmoid(r_chosen - r_rejected),
the Bradley & Terry (1952) pairwise model as used for RLHF reward models by Ouyang et al. (2022), eq. 1.
A held-out share of pairs gives the pair accuracy in `OUT/rm_metrics.json`. `RewardModel.load(OUT).score`
serves the scores to PPO.
"""

from __future__ import annotations

import math
import random
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from execrl.benchmarks.errors import UserError
from execrl.harness import runfolder
from execrl.harness.flags import DeviceFlags, OutputFlags, parse
from execrl.trainers import devices, distributed
from execrl.trainers.data import (
    batches,
    collate_scored,
    encode_scored,
    endless_batches,
    label_samples,
    read_jsonl,
    split_holdout,
)
from execrl.trainers.flags import EpochFlags, OptimiserFlags


@dataclass(kw_only=True)
class RMConfig(DeviceFlags, OutputFlags, OptimiserFlags, EpochFlags):
    """Train a Bradley-Terry reward model on preference pairs."""

    model: str
    """Model folder or hub id to start from (usually the SFT output)."""
    pairs: str | None = None
    """JSONL file of {"prompt", "chosen", "rejected"} rows (e.g. `execrl label export`), or `synth` for synth
    preference pairs (the default unless --pairs-from-runs is given)."""
    pairs_from_runs: tuple[Path, ...] = ()
    """Evaluated run folders: each task's passing and failing programs make (chosen, rejected) pairs, added to
    --pairs when that is given too."""
    max_pairs_per_task: int = 8
    """With --pairs-from-runs: at most this many pairs from one task of one run."""
    data_dir: Path | None = None
    """With --pairs-from-runs: data folder for MBPP/APPS problems (default: as the run recorded, else
    $EXECRL_DATA_DIR)."""
    synth_seed: int = 0
    """With --pairs synth: seed of the synth benchmark and pairs."""
    eval_share: float = 0.1
    """Share of pairs held out for the accuracy report."""


def bt_loss(r_chosen: Any, r_rejected: Any) -> Any:
    """Mean of -log sigmoid(r_chosen - r_rejected) over pairs (Bradley & Terry 1952; Ouyang et al. 2022, eq. 1)."""
    import torch.nn.functional as F

    return -F.logsigmoid(r_chosen - r_rejected).mean()


def load_classifier(model: str, num_labels: int, tokenizer: Any) -> Any:
    """A sequence classifier on top of `model` (a new head when `model` is a causal LM), pad id set."""
    from transformers import AutoModelForSequenceClassification

    classifier = devices.load_model(AutoModelForSequenceClassification, model, num_labels=num_labels)
    classifier.config.pad_token_id = tokenizer.pad_token_id  # the head reads the last non-pad token
    return classifier


def train_classifier(
    cfg: Any,
    run: devices.SupervisedRun,
    train: Sequence[Any],
    num_labels: int,
    name: str,
    batch_loss: Callable[[Any, list[Any]], tuple[Any, float]],
) -> Any:
    """The model, optimiser and training phases the reward model and the critic share: a `num_labels` classifier
    on `cfg.model`, trained on shuffled batches of `train` rows for `cfg.max_steps` (or `cfg.epochs`) steps.

    `batch_loss(model, rows)` is one batch's (loss, accuracy), computed under `run.accelerator.autocast()`; each step
    logs `NAME/loss`, `NAME/accuracy` and `NAME/lr` to `OUT/train_log.jsonl`. Returns the unwrapped model, in eval
    mode."""
    # 2. model
    distributed.refuse_zero3(run.accelerator, f"execrl train {'critic' if name == 'critic' else 'rm'}")
    model = load_classifier(cfg.model, num_labels, run.tokenizer).train()

    # 3. optimiser
    steps = cfg.max_steps or math.ceil(cfg.epochs * len(train) / cfg.batch_size)
    model, optimizer, scheduler = devices.prepare_optimiser(run.accelerator, model, cfg, steps)

    # 4. train (a resumed run replays the seeded batch stream up to its checkpoint's step)
    done = run.restore(scheduler)
    stream = endless_batches(len(train), cfg.batch_size, cfg.seed)
    for _ in range(done):
        next(stream)
    acc = run.accelerator
    with devices.step_log(run.out, steps, name, start=done, enabled=acc.is_main_process) as log:
        for step in range(done + 1, steps + 1):
            _, idx = next(stream)
            idx = distributed.batch_share(idx, acc.process_index, acc.num_processes)  # this rank's share
            loss, accuracy = batch_loss(model, [train[i] for i in idx])
            lr = scheduler.get_last_lr()[0]
            run.accelerator.backward(loss)
            devices.optimizer_step(run.accelerator, model, optimizer, scheduler, cfg.max_grad_norm)
            value = distributed.mean_across(acc, loss.item())  # one device sync a step; the global batch's
            accuracy = distributed.mean_across(acc, accuracy)
            row = {"step": step, f"{name}/loss": round(value, 6), f"{name}/accuracy": accuracy, f"{name}/lr": lr}
            log(row, value)
            run.checkpoint(step, steps)
    return run.accelerator.unwrap_model(model).eval()


def logits_of(model: Any, seqs: Sequence[Sequence[int]], pad_id: int, batch_size: int, device: Any) -> Any:
    """Head outputs for token sequences, without gradients: a (N, num_labels) float tensor on the CPU."""
    import torch

    out = []
    with torch.no_grad():
        for idx in batches(len(seqs), batch_size):
            batch = {k: v.to(device) for k, v in collate_scored([seqs[i] for i in idx], pad_id).items()}
            out.append(model(**batch).logits.float().cpu())
    return torch.cat(out)


class ScoringModel:
    """A saved classifier (reward model or critic) ready to score (prompt, text) pairs."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int, device: Any) -> None:
        self.model, self.tokenizer, self.max_length, self.device = model, tokenizer, max_length, device

    @classmethod
    def load(cls, folder: str | Path, device: str = "auto", max_length: int | None = None) -> ScoringModel:
        from transformers import AutoModelForSequenceClassification

        dev = devices.pick_device(device)
        tokenizer = devices.load_tokenizer(str(folder))
        model = devices.load_model(AutoModelForSequenceClassification, str(folder)).to(dev).eval()
        saved = runfolder.read_json(Path(folder) / "train_config.json").get("max_length")  # {} if absent
        return cls(model, tokenizer, max_length or saved or 256, dev)

    def logits(self, prompts: Sequence[str], texts: Sequence[str], batch_size: int = 32) -> Any:
        """(N, num_labels) numpy array of head outputs for each (prompt, text)."""
        seqs = [encode_scored(self.tokenizer, p, t, self.max_length) for p, t in zip(prompts, texts, strict=True)]
        return logits_of(self.model, seqs, self.tokenizer.pad_token_id, batch_size, self.device).numpy()


class RewardModel(ScoringModel):
    def score(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 32) -> Any:
        """(N,) numpy array of rewards; only differences between them are meaningful (Bradley-Terry)."""
        return self.logits(prompts, responses, batch_size)[:, 0]


def pairs_from_results(
    samples: Sequence[Mapping[str, Any]],
    results: Sequence[Any],
    prompts: Mapping[str, str] | None = None,
    *,
    max_pairs_per_task: int = 8,
    seed: int = 0,
) -> list[dict[str, str]]:
    """Preference pairs from execution: a passing (chosen) and a failing (rejected) program of one task.

    `samples` are samples.jsonl rows; `results` are results.jsonl rows (matched by task_id + completion_id)
    or `ExecResult`s in the samples' order. The prompt is the sample's `prompt` or `prompts[task_id]`.
    Sandbox errors say nothing about the program and are left out.
    """
    rng = random.Random(seed)
    passing: dict[str, list[str]] = defaultdict(list)
    failing: dict[str, list[str]] = defaultdict(list)
    prompt_of: dict[str, str] = {}
    for sample, verdict in label_samples(samples, results):
        if verdict == "sandbox_error":
            continue
        task_id = sample["task_id"]
        prompt = sample.get("prompt", (prompts or {}).get(task_id))
        if prompt is None:
            raise UserError(f"{task_id}: no prompt (give the sample a `prompt` or pass `prompts`)")
        prompt_of[task_id] = prompt
        (passing if verdict == "passed" else failing)[task_id].append(sample["completion"])
    pairs = []
    for task_id in sorted(set(passing) & set(failing)):
        combos = [(c, r) for c in passing[task_id] for r in failing[task_id]]
        for chosen, rejected in rng.sample(combos, min(max_pairs_per_task, len(combos))):
            pairs.append({"prompt": prompt_of[task_id], "chosen": chosen, "rejected": rejected})
    return pairs


NO_PREFERENCE = ("tie", "both_bad")
"""`label` values of exported human judgements that prefer neither program (Bradley-Terry has no term for them)."""


def pairs_from_runs(
    runs: Sequence[Path], data_dir: Path | None = None, max_pairs_per_task: int = 8, seed: int = 0
) -> list[dict[str, str]]:
    """`pairs_from_results` over each evaluated run folder (`execrl.harness.run_programs`), with counts on stderr.
    Each program is scored as the text after its problem's prompt (`RunProgram.response`)."""
    from execrl.harness.run_programs import read_run

    pairs: list[dict[str, str]] = []
    for run in runs:
        programs = list(read_run(run, data_dir))
        samples = [
            {"task_id": p.sample.task_id, "completion_id": p.sample.completion_id, "completion": p.response,
             "prompt": p.problem.prompt}
            for p in programs
        ]  # fmt: skip
        found = pairs_from_results(
            samples, [p.result for p in programs], max_pairs_per_task=max_pairs_per_task, seed=seed
        )
        tasks = {p.sample.task_id for p in programs}
        print(
            f"pairs from {run}: {len(found)} (passing, failing) pairs from {len(programs)} samples of {len(tasks)} "
            "tasks",
            file=sys.stderr,
        )
        pairs += found
    return pairs


def read_pairs_file(path: str) -> list[dict[str, Any]]:
    """Preference rows of a JSONL file; exported human rows without a preference (`label` tie/both_bad) are left
    out, counted on stderr."""
    rows = read_jsonl(path, required=("prompt", "chosen", "rejected"))
    kept = [row for row in rows if row.get("label") not in NO_PREFERENCE]
    left_out = f", left out {len(rows) - len(kept)} marked tie or both_bad" if len(kept) < len(rows) else ""
    print(f"pairs from {path}: {len(kept)}{left_out}", file=sys.stderr)
    return kept


def load_pairs(cfg: RMConfig) -> list[dict[str, Any]]:
    """--pairs (a file, or synth when no run folders are given) plus the pairs of --pairs-from-runs."""
    pairs: list[dict[str, Any]] = []
    source = cfg.pairs or ("synth" if not cfg.pairs_from_runs else None)
    if source == "synth":
        try:
            from execrl.benchmarks.synth import load_synth, preference_pairs
        except ImportError:
            raise UserError("--pairs synth: the synth benchmark (execrl.benchmarks.synth) is not installed") from None
        pairs += preference_pairs(load_synth("train", seed=cfg.synth_seed), seed=cfg.synth_seed)
    elif source is not None:
        pairs += read_pairs_file(source)
    if cfg.pairs_from_runs:
        pairs += pairs_from_runs(cfg.pairs_from_runs, cfg.data_dir, cfg.max_pairs_per_task, cfg.seed)
    return pairs


def pair_accuracy(model: Any, pairs: Sequence[tuple[list[int], list[int]]], pad_id: int, device: Any) -> dict:
    """Share of pairs whose chosen text scores higher, and the mean Bradley-Terry loss."""
    r_chosen = logits_of(model, [c for c, _ in pairs], pad_id, 32, device)[:, 0]  # (N,)
    r_rejected = logits_of(model, [r for _, r in pairs], pad_id, 32, device)[:, 0]  # (N,)
    return {"accuracy": float((r_chosen > r_rejected).float().mean()), "loss": float(bt_loss(r_chosen, r_rejected))}


def train_reward_model(cfg: RMConfig) -> Path:
    """Train on `cfg.pairs`, save to `cfg.out` with held-out metrics; returns `cfg.out`. Resumes a finished run."""
    run = devices.start_supervised(cfg)
    if run is None:  # `cfg.out` already holds this finished run
        return Path(cfg.out)

    # 1. data: encoded (chosen, rejected) token ids, split into train and held-out
    encoded = [
        (
            encode_scored(run.tokenizer, p["prompt"], p["chosen"], cfg.max_length),
            encode_scored(run.tokenizer, p["prompt"], p["rejected"], cfg.max_length),
        )
        for p in load_pairs(cfg)
    ]
    if len(encoded) < 2:
        given = f"--pairs {cfg.pairs or 'synth'}" if not cfg.pairs_from_runs else "--pairs-from-runs"
        raise UserError(f"{given}: need at least 2 pairs, got {len(encoded)}")
    train, held = split_holdout(encoded, cfg.eval_share, cfg.seed)

    # 2.-4. model, optimiser, train: a batch's chosen and rejected texts go through the model as one (2B, T) batch
    def batch_loss(model: Any, rows: list[Any]) -> tuple[Any, float]:
        seqs = [chosen for chosen, _ in rows] + [rejected for _, rejected in rows]
        batch = {k: v.to(run.accelerator.device) for k, v in collate_scored(seqs, run.tokenizer.pad_token_id).items()}
        with run.accelerator.autocast():
            rewards = model(**batch).logits[:, 0].float()  # (2B,)
        r_chosen, r_rejected = rewards[: len(rows)], rewards[len(rows) :]
        return bt_loss(r_chosen, r_rejected), float((r_chosen > r_rejected).float().mean())

    model = train_classifier(cfg, run, train, 1, "rm", batch_loss)

    # 5. evaluate on held-out pairs
    metrics = {"n_train": len(train), "n_eval": len(held)}
    if held:
        scores = pair_accuracy(model, held, run.tokenizer.pad_token_id, run.accelerator.device)
        metrics |= {"rm/eval_accuracy": scores["accuracy"], "rm/eval_loss": scores["loss"]}
        print(f"reward model: held-out pair accuracy {scores['accuracy']:.3f} on {len(held)} pairs", file=sys.stderr)
    # 6. save
    run.save(model, {"rm_metrics.json": metrics})
    return run.out


def main(argv: list[str]) -> int:
    print(train_reward_model(parse(RMConfig, argv, description=__doc__.splitlines()[0])))
    return 0
