"""`execrl generate`: sample completions for a benchmark (or a problem file) from a model, into `RUN/samples.jsonl`.

Each line is `{"task_id", "completion_id", "completion" | "solution", "raw"}`: the program (from
`execrl.harness.extract.extract`, which for synth is `synth_program(problem, continuation)`) and the model's
raw output.
`RUN/config.json` holds the full config, the resolved temperature and the date.

Resume: rerunning on the same RUN generates only the missing (task_id, completion_id) rows; a config that
would sample differently (model, benchmark, n, temperature, ...) is refused unless `--force` starts over.
Rows are appended and flushed after every batch, so a killed run keeps what it wrote (a torn last line is
redone); the folder rules are `execrl.harness.runfolder`'s.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from execrl.benchmarks.errors import UserError
from execrl.benchmarks.prompts import build_prompt, chat_messages, stop_sequences
from execrl.benchmarks.registry import default_data_dir
from execrl.harness import runfolder
from execrl.harness.extract import extract
from execrl.harness.flags import DeviceFlags, OutputFlags, ProblemFlags, load_from_flags, parse
from execrl.harness.generation.base import Generator, Prompt, SamplingRequest
from tqdm import tqdm

# Sampling temperatures of the Codex paper (Chen et al. 2021, sec. 3.3): pass@1 is best at T=0.2, pass@10 and
# pass@100 at T=0.8. With n <= 5 samples the useful estimate is pass@1, so the default follows n.
LOW_N_TEMPERATURE, HIGH_N_TEMPERATURE, LOW_N_MAX = 0.2, 0.8, 5

# The config keys that decide what is sampled; a resumed run must match them all.
SAMPLING_KEYS = (
    "model", "benchmark", "problems", "split", "variant", "difficulty", "release", "since", "until", "n",
    "temperature", "top_p", "max_new_tokens", "seed", "chat", "engine",
)  # fmt: skip
SAMPLES = "samples.jsonl"
# Flags of earlier versions, and what replaced them.
RENAMED = {
    "--backend": "--engine (hf, openai or vllm)",
    "--dtype": "--precision (auto, fp32, bf16 or fp16)",
}


@dataclass(kw_only=True)
class Config(DeviceFlags, OutputFlags, ProblemFlags):  # --help lists the groups last base first
    """Sample completions for a benchmark or problem file from a model into RUN/samples.jsonl (resumable)."""

    model: str
    """Local model folder or hub id (hub only with --online); for --engine openai, the served model name."""
    n: int
    """Samples per problem."""
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
    engine: Literal["hf", "openai", "vllm"] = "hf"
    """hf: transformers in-process; openai: an OpenAI-compatible server at --base-url; vllm: vLLM in-process."""
    base_url: str | None = None
    """--engine openai: server root, e.g. http://localhost:8000 (with or without /v1)."""
    api_key: str | None = None
    """--engine openai: bearer token (default: $OPENAI_API_KEY). Never written to config.json."""


def main(argv: list[str]) -> int:
    config = parse(Config, argv, renamed=RENAMED)
    if config.temperature is None:
        config.temperature = LOW_N_TEMPERATURE if config.n <= LOW_N_MAX else HIGH_N_TEMPERATURE
    if config.data_dir is None:
        config.data_dir = default_data_dir()
    if config.engine == "openai" and config.api_key is None:
        config.api_key = os.environ.get("OPENAI_API_KEY")
    written = generate(config)
    print(f"wrote {written} samples to {config.out / SAMPLES}", file=sys.stderr)
    return 0


def generate(config: Config) -> int:
    """Run the stage for a parsed config (temperature resolved); returns the number of rows written."""
    # 1. check the flags and the run folder
    _check(config)
    samples_path = config.out / SAMPLES
    done = _prepare_run(config, samples_path)

    # 2. problems and what is missing for each
    problems = load_from_flags(config)
    total = sum((p.task_id, c) not in done for p in problems for c in range(config.n))
    if not total:
        return 0

    # 3. sample batch by batch, appending and flushing each batch. Batches are cut from the whole problem list
    # and seeded by their position in it, so a resumed run samples exactly what an uninterrupted one would: a
    # batch whose rows are all written is skipped; one a kill left unfinished is sampled again, whole (the same
    # prompts and seed give the same samples), and only its missing rows are written.
    generator = _open_generator(config)
    per_call = max(1, config.batch_size // config.n)
    written = 0
    with open(samples_path, "a", encoding="utf-8") as f, tqdm(total=total, unit="sample", file=sys.stderr) as bar:
        for start in range(0, len(problems), per_call):
            chunk = problems[start : start + per_call]
            todo = {(p.task_id, c) for p in chunk for c in range(config.n)} - done
            if not todo:
                continue
            prompts: list[Prompt] = [chat_messages(p) if config.chat else build_prompt(p) for p in chunk]
            stops = [[] if config.chat else stop_sequences(p) for p in chunk]
            request = SamplingRequest(
                n=config.n, temperature=config.temperature, top_p=config.top_p,
                max_new_tokens=config.max_new_tokens, seed=config.seed + start * config.n,
            )  # fmt: skip
            outputs = generator.generate(prompts, stops, request)
            for problem, raws in zip(chunk, outputs, strict=True):
                for completion_id, raw in enumerate(raws):
                    if (problem.task_id, completion_id) not in todo:
                        continue
                    row = {"task_id": problem.task_id, "completion_id": completion_id}
                    row |= extract(problem, raw, chat=config.chat)  # synth: synth_program(problem, raw)
                    row["raw"] = raw
                    f.write(json.dumps(row) + "\n")
            written += len(todo)
            f.flush()
            bar.update(len(todo))
    return written


def _check(config: Config) -> None:
    checks = [
        (config.n >= 1, f"--n must be >= 1, got {config.n}"),
        (config.temperature >= 0, f"--temperature must be >= 0, got {config.temperature}"),
        (0 < config.top_p <= 1, f"--top-p must be in (0, 1], got {config.top_p}"),
        (config.max_new_tokens >= 1, f"--max-new-tokens must be >= 1, got {config.max_new_tokens}"),
        (config.batch_size >= 1, f"--batch-size must be >= 1, got {config.batch_size}"),
        (config.limit is None or config.limit >= 0, f"--limit must be >= 0, got {config.limit}"),
        (config.engine != "openai" or bool(config.base_url), "--engine openai needs --base-url"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)


def _prepare_run(config: Config, samples_path: Path) -> set[tuple[str, int]]:
    """Claim the run folder (refusing another run's unless --force) and return the rows already written."""
    record = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items() if k != "api_key"}
    record["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    # A resumed run keeps its first date; `execrl evaluate` may share config.json (its "evaluate" section stays).
    runfolder.claim(config.out, record, outputs=(SAMPLES,), force=config.force, identity=SAMPLING_KEYS, keep=("date",))
    return runfolder.written_keys(samples_path)


def _open_generator(config: Config) -> Generator:
    if config.engine == "openai":
        from execrl.harness.generation.openai_engine import OpenAIGenerator

        return OpenAIGenerator(
            config.base_url or "", config.model, config.api_key, config.chat, concurrency=config.batch_size
        )
    if config.engine == "vllm":
        from execrl.harness.generation.vllm_engine import VLLMGenerator

        return VLLMGenerator(config.model, precision=config.precision, chat=config.chat, seed=config.seed)
    from execrl.harness.generation.hf_engine import HFGenerator

    try:
        return HFGenerator(
            config.model, device=config.device, precision=config.precision, batch_size=config.batch_size,
            chat=config.chat, local_files_only=not config.online,
        )  # fmt: skip
    except ValueError as e:
        raise UserError(str(e)) from e
