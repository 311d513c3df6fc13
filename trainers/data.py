"""What the trainers share outside their loops: rows in, token ids and batches out, and their output folders.

- `read_jsonl` / `write_jsonl`: a trainer's input rows, each checked for its required string fields.
- SFT rows `{"prompt", "completion"}` become `input_ids` = prompt + completion + EOS with `labels` = -100 on
  the prompt, so the loss is on the completion only (the -100 ignore index of `torch.nn.CrossEntropyLoss`).
- Scoring rows (reward model, critic) become prompt + text; when too long the *front* is cut, because the
  classification head reads the last token.
- Batches are right-padded; the attention mask marks real tokens. `batches` and `split_holdout` order them.
- `label_samples` pairs samples.jsonl rows with their verdicts (the reward model's pairs, the critic's rows);
  `read_run` reads an `execrl evaluate` run folder back: its problems, samples and results.
- An output folder: `config_record` is what a run is compared by; `claim_output` finds a finished or an
  unfinished run of the same config (done, or resume) and refuses any other non-empty folder without --force;
  `finish_output` marks it done.
- User mistakes raise `UserError` (execrl.benchmarks.errors): the dispatcher prints one line and exits 2.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from execrl.benchmarks import datafiles
from execrl.benchmarks.errors import UserError
from execrl.harness import runfolder

IGNORE_INDEX = -100
"""Label value that torch's cross-entropy skips."""


def read_jsonl(path: str | Path, required: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of a JSONL file, each checked for the `required` keys; blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")

    def check(row: dict[str, Any]) -> str | None:
        missing = [key for key in required if not isinstance(row.get(key), str)]
        return f"missing string field(s) {', '.join(missing)}" if missing else None

    rows = datafiles.read_jsonl(path, check=check)
    if not rows:
        raise UserError(f"{path}: no rows")
    return rows


def write_jsonl(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    with Path(path).open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def encode_sft(tokenizer: Any, prompt: str, completion: str, max_length: int) -> dict[str, list[int]] | None:
    """Token ids and labels for one (prompt, completion) row; None when the prompt leaves no room.

    Prompt and completion are tokenised separately, as at generation time, where the model sees the
    prompt's tokens and continues from there.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    input_ids = (prompt_ids + completion_ids)[:max_length]
    labels = ([IGNORE_INDEX] * len(prompt_ids) + completion_ids)[:max_length]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return {"input_ids": input_ids, "labels": labels}


def encode_scored(tokenizer: Any, prompt: str, text: str, max_length: int) -> list[int]:
    """Token ids of prompt + text for a scoring head, keeping the last `max_length` tokens."""
    ids = tokenizer(prompt + text, add_special_tokens=False)["input_ids"]
    return ids[-max_length:]


def pad(seqs: Sequence[Sequence[int]], value: int) -> Any:
    """Right-pad to the longest sequence: a (B, T) long tensor."""
    import torch

    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def collate_sft(rows: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, Any]:
    """`input_ids`, `attention_mask`, `labels`, each (B, T); padding is labelled -100."""
    input_ids = pad([r["input_ids"] for r in rows], pad_id)  # (B, T)
    attention_mask = pad([[1] * len(r["input_ids"]) for r in rows], 0)  # (B, T)
    labels = pad([r["labels"] for r in rows], IGNORE_INDEX)  # (B, T)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def collate_scored(seqs: Sequence[Sequence[int]], pad_id: int) -> dict[str, Any]:
    """`input_ids` and `attention_mask`, each (B, T), for a scoring head."""
    return {"input_ids": pad(seqs, pad_id), "attention_mask": pad([[1] * len(s) for s in seqs], 0)}


def batches(n: int, batch_size: int, rng: random.Random | None = None) -> Iterator[list[int]]:
    """Index batches over `n` items, shuffled when `rng` is given; the last batch may be short."""
    order = list(range(n))
    if rng is not None:
        rng.shuffle(order)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def endless_batches(n: int, batch_size: int, seed: int) -> Iterator[tuple[int, list[int]]]:
    """(epoch, index batch) without end: `batches` over `n` items, reshuffled each epoch by one seeded rng."""
    rng, epoch = random.Random(seed), 0
    while True:
        for idx in batches(n, batch_size, rng):
            yield epoch, idx
        epoch += 1


def split_holdout(rows: Sequence[Any], share: float, seed: int) -> tuple[list[Any], list[Any]]:
    """(train, held-out): a seeded shuffle, at least one row held out when `share` > 0 and rows allow."""
    if not 0.0 <= share < 1.0:
        raise UserError(f"--eval-share {share}: expected a number in [0, 1)")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = min(max(round(len(rows) * share), 1 if share > 0 else 0), len(rows) - 1)
    held = [rows[i] for i in order[:n_eval]]
    train = [rows[i] for i in order[n_eval:]]
    return train, held


def config_record(cfg: Any, leave_out: Sequence[str] = ("force", "save_every")) -> dict[str, Any]:
    """A trainer's config dataclass as JSON-ready data (paths as strings), without the fields that only
    steer this invocation (how often it checkpoints does not change what it computes): what `claim_output`
    compares and `finish_output` writes."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(cfg).items() if k not in leave_out}


FINISHED = "train_config.json"
"""Written last by every trainer: the config of the finished run in the folder."""


RUN_STAMP = "run_config.json"
"""Written when a supervised run starts: a rerun with the same config resumes it, another config is refused."""
RUN_FILES = (FINISHED, RUN_STAMP, "train_log.jsonl", "checkpoint", "checkpoint.tmp", "checkpoint.old")
"""What a supervised trainer owns in OUT besides the model files it overwrites; `--force` removes these."""


def claim_output(out: Path, config: dict[str, Any], force: bool) -> Literal["done", "resume", "fresh"]:
    """Claim `out` for a supervised run of `config`: "done" (a finished run of this config: nothing to do),
    "resume" (an unfinished run of this config: continue from its checkpoint) or "fresh".

    Two stamps (`execrl.harness.runfolder.claim`): `train_config.json`, written when the run finishes, and
    `run_config.json`, written when it starts. A folder of another config, or any other non-empty folder, is
    refused unless `force`, which deletes `RUN_FILES` and starts over.
    """
    if not force and runfolder.claim(out, config, outputs=(), force=False, stamp=FINISHED, write=False):
        return "done"
    started = runfolder.claim(out, config, outputs=RUN_FILES, force=force, stamp=RUN_STAMP, any_content=True)
    return "resume" if started else "fresh"


def finish_output(out: Path, config: dict[str, Any]) -> None:
    """Mark `out` finished: written last, so an interrupted run is never taken for a finished one."""
    runfolder.finish(out, config, FINISHED)


def label_samples(samples: Sequence[dict[str, Any]], results: Sequence[Any]) -> list[tuple[dict[str, Any], str]]:
    """(sample, verdict value) for each sample that has a result.

    Samples are samples.jsonl rows (`completion` or evalplus's `solution`; `completion_id` 0, 1, 2... per task in
    order when absent); the returned sample always has `completion` and `completion_id`. `results` are
    results.jsonl rows, matched by (task_id, completion_id), or `ExecResult`s in the samples' order.
    """
    positional = bool(results) and not isinstance(results[0], dict)
    if positional and len(results) != len(samples):
        raise ValueError(f"{len(samples)} samples but {len(results)} results")
    by_key = {} if positional else {(r["task_id"], int(r["completion_id"])): r["verdict"] for r in results}
    next_id: dict[str, int] = {}
    labelled = []
    for i, sample in enumerate(samples):
        task_id = sample["task_id"]
        completion_id = int(sample.get("completion_id", next_id.get(task_id, 0)))
        next_id[task_id] = completion_id + 1
        completion = sample.get("completion", sample.get("solution", ""))
        verdict = results[i].verdict.value if positional else by_key.get((task_id, completion_id))
        if verdict is not None:
            labelled.append(({**sample, "completion": completion, "completion_id": completion_id}, verdict))
    return labelled


def read_run(run_dir: str | Path) -> tuple[list[Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(problems, samples, results) of an `execrl evaluate` run folder.

    The problems are reloaded from what the folder's config.json recorded (benchmark, split, variant,
    difficulty, limit, or the problem file; the data folder, else $EXECRL_DATA_DIR); the samples are the file
    it evaluated (`samples.jsonl` in the folder, else the recorded path: the pipeline keeps them apart).
    """
    from execrl.harness.flags import ProblemFlags, load_from_flags

    run_dir = Path(run_dir)
    if not (run_dir / "results.jsonl").is_file():
        raise UserError(f"{run_dir}: no results.jsonl (not an `execrl evaluate` run folder)")
    config = runfolder.read_json(run_dir / "config.json").get("evaluate")
    if not isinstance(config, dict) or not (config.get("benchmark") or config.get("problems")):
        raise UserError(f"{run_dir}: config.json records no evaluated benchmark (an `execrl evaluate` run folder?)")
    from_file = config.get("problems") is not None
    flags = ProblemFlags(
        benchmark=None if from_file else config.get("benchmark"),
        problems=Path(config["problems"]) if from_file else None,
        **{k: config.get(k) for k in ("split", "variant", "difficulty", "limit") if not from_file},
        data_dir=Path(config["data_dir"]) if config.get("data_dir") else None,
    )
    samples_path = run_dir / "samples.jsonl"
    if not samples_path.is_file() and config.get("samples"):
        samples_path = Path(config["samples"])
    samples = read_jsonl(samples_path, required=("task_id",))
    results = read_jsonl(run_dir / "results.jsonl", required=("task_id", "verdict"))
    return load_from_flags(flags), samples, results
