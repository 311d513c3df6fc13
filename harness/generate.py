"""`execrl generate`: sample completions for a benchmark from a model, into `RUN/samples.jsonl`.

Each line is `{"task_id", "completion_id", "completion" | "solution", "raw"}`: the program (from
`execrl.harness.extract.extract`, which for synth is `synth_program(problem, continuation)`) and the model's
raw output.
`RUN/config.json` holds the full config, the resolved temperature and the date.

Resume: rerunning on the same RUN generates only the missing (task_id, completion_id) rows; a config that
would sample differently (model, benchmark, n, temperature, ...) is refused unless `--force` starts over.
Rows are appended and flushed after every batch, so a killed run keeps what it wrote.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import tyro
from execrl.benchmarks.datafiles import DataError
from execrl.benchmarks.prompts import build_prompt, chat_messages, stop_sequences
from execrl.benchmarks.registry import default_data_dir, load_problems
from execrl.harness.extract import extract
from execrl.harness.generation.base import GenerationError, Generator, Prompt
from tqdm import tqdm

# Sampling temperatures of the Codex paper (Chen et al. 2021, sec. 3.3): pass@1 is best at T=0.2, pass@10 and
# pass@100 at T=0.8. With n <= 5 samples the useful estimate is pass@1, so the default follows n.
LOW_N_TEMPERATURE, HIGH_N_TEMPERATURE, LOW_N_MAX = 0.2, 0.8, 5

# The config keys that decide what is sampled; a resumed run must match them all.
SAMPLING_KEYS = (
    "model", "benchmark", "split", "variant", "difficulty", "n", "temperature", "top_p", "max_new_tokens",
    "seed", "chat", "backend",
)  # fmt: skip


@dataclass
class Config:
    """Sample completions for a benchmark from a model into RUN/samples.jsonl (resumable)."""

    model: str
    """Local model folder or hub id (hub only with --online); for --backend openai, the served model name."""
    benchmark: str
    """humaneval, mbpp, apps or synth."""
    n: int
    """Samples per problem."""
    out: Path
    """Run folder: writes samples.jsonl and config.json there."""
    split: str | None = None
    """Benchmark split (default: the benchmark's test split)."""
    variant: str | None = None
    """MBPP only: full or sanitized."""
    difficulty: str | None = None
    """APPS only: introductory, interview or competition."""
    data_dir: Path | None = None
    """Local data folder for MBPP/APPS (default: $EXECRL_DATA_DIR)."""
    online: bool = False
    """Allow the Hugging Face hub for data and models."""
    limit: int | None = None
    """Use only the first N problems."""
    temperature: float | None = None
    """Sampling temperature; 0 is greedy. Default 0.2 when n <= 5 (pass@1), else 0.8 (Chen et al. 2021)."""
    top_p: float = 0.95
    """Nucleus sampling mass. No top-k cut (hf, vllm); an openai server applies its own defaults."""
    max_new_tokens: int = 512
    """Longest completion, in tokens."""
    batch_size: int = 16
    """Sequences per model call (hf), or prompts in flight (openai)."""
    seed: int = 0
    """Base seed; each batch and prompt derives its own from it."""
    chat: bool = False
    """Prompt with chat messages (chat template / chat completions API) and extract code from the reply."""
    backend: Literal["hf", "openai", "vllm"] = "hf"
    """hf: transformers in-process; openai: an OpenAI-compatible server at --base-url; vllm: vLLM in-process."""
    base_url: str | None = None
    """--backend openai: server root, e.g. http://localhost:8000 (with or without /v1)."""
    api_key: str | None = None
    """--backend openai: bearer token (default: $OPENAI_API_KEY). Never written to config.json."""
    device: str = "auto"
    """--backend hf: cuda, cpu, ... (auto: CUDA if available)."""
    dtype: str = "auto"
    """--backend hf/vllm: fp32, bf16 or fp16 (auto: bf16 on CUDA if supported, else fp16 on CUDA, else fp32)."""
    force: bool = False
    """Start over: delete an existing samples.jsonl whose config differs."""


class UsageError(Exception):
    """Something the user can fix; printed as one line, exit status 2."""


def main(argv: list[str]) -> int:
    config = tyro.cli(Config, args=argv, description=Config.__doc__)
    if config.temperature is None:
        config.temperature = LOW_N_TEMPERATURE if config.n <= LOW_N_MAX else HIGH_N_TEMPERATURE
    if config.data_dir is None:
        config.data_dir = default_data_dir()
    if config.backend == "openai" and config.api_key is None:
        config.api_key = os.environ.get("OPENAI_API_KEY")
    try:
        written = generate(config)
    except (UsageError, DataError, GenerationError) as e:
        print(f"execrl generate: {e}", file=sys.stderr)
        return 2
    print(f"wrote {written} samples to {config.out / 'samples.jsonl'}", file=sys.stderr)
    return 0


def generate(config: Config) -> int:
    """Run the stage for a parsed config (temperature resolved); returns the number of rows written."""
    # 1. check the flags and the run folder
    _check(config)
    samples_path = config.out / "samples.jsonl"
    done = _prepare_run(config, samples_path)

    # 2. problems and what is missing for each
    problems = load_problems(
        config.benchmark, config.split, config.data_dir, variant=config.variant,
        difficulty=config.difficulty, limit=config.limit, online=config.online,
    )  # fmt: skip
    missing = [(p, [c for c in range(config.n) if (p.task_id, c) not in done]) for p in problems]
    missing = [(p, ids) for p, ids in missing if ids]
    total = sum(len(ids) for _, ids in missing)
    if not total:
        return 0

    # 3. sample batch by batch, appending and flushing each batch
    generator = _open_generator(config)
    per_call = max(1, config.batch_size // config.n)
    written = 0
    with open(samples_path, "a", encoding="utf-8") as f, tqdm(total=total, unit="sample", file=sys.stderr) as bar:
        for start in range(0, len(missing), per_call):
            chunk = missing[start : start + per_call]
            for count in sorted({len(ids) for _, ids in chunk}):
                group = [(p, ids) for p, ids in chunk if len(ids) == count]
                prompts: list[Prompt] = [chat_messages(p) if config.chat else build_prompt(p) for p, _ in group]
                stops = [[] if config.chat else stop_sequences(p) for p, _ in group]
                outputs = generator.generate(
                    prompts, n=count, temperature=config.temperature, top_p=config.top_p,
                    max_new_tokens=config.max_new_tokens, stop=stops, seed=config.seed + start * config.n,
                )  # fmt: skip
                for (problem, ids), raws in zip(group, outputs, strict=True):
                    for completion_id, raw in zip(ids, raws, strict=True):
                        row = {"task_id": problem.task_id, "completion_id": completion_id}
                        row |= extract(problem, raw, chat=config.chat)  # synth: synth_program(problem, raw)
                        row["raw"] = raw
                        f.write(json.dumps(row) + "\n")
                written += sum(len(ids) for _, ids in group)
                f.flush()
                bar.update(sum(len(ids) for _, ids in group))
    return written


def _check(config: Config) -> None:
    checks = [
        (config.n >= 1, f"--n must be >= 1, got {config.n}"),
        (config.temperature >= 0, f"--temperature must be >= 0, got {config.temperature}"),
        (0 < config.top_p <= 1, f"--top-p must be in (0, 1], got {config.top_p}"),
        (config.max_new_tokens >= 1, f"--max-new-tokens must be >= 1, got {config.max_new_tokens}"),
        (config.batch_size >= 1, f"--batch-size must be >= 1, got {config.batch_size}"),
        (config.limit is None or config.limit >= 0, f"--limit must be >= 0, got {config.limit}"),
        (config.backend != "openai" or bool(config.base_url), "--backend openai needs --base-url"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)


def _prepare_run(config: Config, samples_path: Path) -> set[tuple[str, int]]:
    """Write config.json (refusing a mismatch unless --force) and return the rows already written."""
    config_path = config.out / "config.json"
    record = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items() if k != "api_key"}
    if config_path.exists() or samples_path.exists():
        old = json.loads(config_path.read_text()) if config_path.exists() else {}
        changed = [k for k in SAMPLING_KEYS if old.get(k) != record[k]]
        if changed and not config.force:
            detail = ", ".join(f"{k}: {old.get(k)!r} -> {record[k]!r}" for k in changed)
            raise UsageError(f"{config.out} holds a run with another config ({detail}); pass --force to start over")
        if changed:
            samples_path.unlink(missing_ok=True)
        else:
            record["date"] = old.get("date")
    config.out.mkdir(parents=True, exist_ok=True)
    record["date"] = record.get("date") or datetime.now(timezone.utc).isoformat(timespec="seconds")
    # `execrl evaluate` may share this folder and keeps its settings under "evaluate": leave them be.
    if config_path.exists() and "evaluate" in (old := json.loads(config_path.read_text())):
        record["evaluate"] = old["evaluate"]
    config_path.write_text(json.dumps(record, indent=2) + "\n")
    return _written_rows(samples_path)


def _written_rows(path: Path) -> set[tuple[str, int]]:
    """Keys of complete rows; a torn last line (a run killed mid-write) is cut off so appending stays valid."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        print(f"execrl generate: {path}: dropping an unfinished last line", file=sys.stderr)
        with open(path, "r+b") as f:
            f.truncate(keep)
        data = data[:keep]
    done = set()
    for number, line in enumerate(data.decode().splitlines(), start=1):
        try:
            row = json.loads(line)
            done.add((row["task_id"], int(row["completion_id"])))
        except (ValueError, KeyError, TypeError) as e:
            raise UsageError(f"{path}:{number}: not a sample row ({e}); fix it or pass --force") from e
    return done


def _open_generator(config: Config) -> Generator:
    if config.backend == "openai":
        from execrl.harness.generation.openai_engine import OpenAIGenerator

        return OpenAIGenerator(
            config.base_url or "", config.model, config.api_key, config.chat, concurrency=config.batch_size
        )
    if config.backend == "vllm":
        from execrl.harness.generation.vllm_engine import VLLMGenerator

        return VLLMGenerator(config.model, precision=config.dtype, chat=config.chat, seed=config.seed)
    from execrl.harness.generation.hf_engine import HFGenerator

    try:
        return HFGenerator(
            config.model, device=config.device, precision=config.dtype, batch_size=config.batch_size,
            chat=config.chat, local_files_only=not config.online,
        )  # fmt: skip
    except ValueError as e:
        raise UsageError(str(e)) from e
