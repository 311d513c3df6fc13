"""`execrl pipeline`: the main job — tiny model -> SFT -> PPO with execution reward -> evaluate both -> report.

With no config it runs fully offline on CPU: a tiny GPT-2 and tokenizer built on the synth train corpus
(`DIR/model0`), SFT on the noisy synth train split (`DIR/sft`), PPO with the `cpu-tiny` preset (`DIR/ppo`),
then the SFT and PPO models are sampled and evaluated with the SAME protocol (n samples per problem at one
stated temperature; pass@1 = the unbiased estimator, Chen et al. 2021) on held-out synth test problems and
on HumanEval (`DIR/{sft,ppo}_eval/<benchmark>/`), and `execrl report compare` (baseline SFT, candidate PPO)
writes `DIR/report/`. PPO's training curves are copied to `DIR/ppo_eval/train/metrics.jsonl` for the report.

Each stage leaves `DIR/stages/<stage>.json` (its wall time) when it finishes; a rerun skips finished stages
and resumes unfinished ones (every stage resumes on its own folder). `DIR/timings.json` holds the wall time
per stage and the share of it spent in the sandbox. A YAML `--config` selects real models, benchmarks and
settings (keys documented in `trainers/example-gpu.yaml`).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from execrl.trainers.data import UsageError

# The default job: every key a YAML config may set, with its embedded value.
DEFAULTS: dict[str, Any] = {
    "model": "tiny",  # "tiny" builds the embedded model; else a model folder or hub id to start SFT from
    "tiny": {"vocab_size": 512, "n_layer": 2, "n_head": 4, "d_model": 128, "max_positions": 256},
    "sft": {"max_steps": 800, "batch_size": 16, "lr": 2e-3, "wrong_share": 0.3},  # any SFTConfig field
    "ppo": {"preset": "cpu-tiny"},  # any PPOConfig field
    "eval": {
        "benchmarks": ["synth", "humaneval"],
        "n": 4,
        "temperature": 1.0,
        "max_new_tokens": 64,
        "batch_size": 64,
        "limit": {"synth": 200, "humaneval": 20},  # synth: the whole test split
        "workers": 2,
        "timeout": 3.0,
    },
    "device": "auto",
}


@dataclass
class PipelineConfig:
    """Run the whole job: tiny model -> SFT -> PPO -> evaluate SFT and PPO -> comparison report."""

    out: Path
    """Output folder (model0/, sft/, ppo/, sft_eval/, ppo_eval/, report/, timings.json)."""
    config: Path | None = None
    """YAML file overriding the embedded defaults (see trainers/example-gpu.yaml for the keys)."""
    limit: int | None = None
    """Evaluate only the first N HumanEval problems (overrides eval.limit.humaneval)."""
    force: bool = False
    """Start over: delete the stage markers and every stage's output in --out."""


def load_settings(path: Path | None, limit: int | None) -> dict[str, Any]:
    """The embedded defaults merged with a YAML file (one level deep); unknown keys are refused by name."""
    import yaml

    settings = json.loads(json.dumps(DEFAULTS))
    if path is not None:
        if not Path(path).is_file():
            raise UsageError(f"--config {path}: no such file")
        try:
            given = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as e:
            raise UsageError(f"--config {path}: not valid YAML ({str(e).splitlines()[0]})") from None
        for key, value in given.items():
            if key not in settings:
                raise UsageError(f"--config {path}: unknown key {key!r} (known: {', '.join(settings)})")
            settings[key] = {**settings[key], **value} if isinstance(settings[key], dict) else value
    if limit is not None:
        settings["eval"]["limit"] = {**settings["eval"]["limit"], "humaneval": limit}
    return settings


def _fields(cls: type, values: dict[str, Any], section: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"config section {section!r}: unknown key(s) {', '.join(unknown)}")
    return values


def stage_model0(settings: dict[str, Any], out: Path) -> Path:
    from execrl.benchmarks.synth import load_synth, sft_corpus
    from execrl.trainers.tiny import build_tiny_model

    rows = sft_corpus(load_synth("train"), wrong_share=settings["sft"].get("wrong_share", 0.3))
    return build_tiny_model(out / "model0", [r["prompt"] + r["completion"] for r in rows], **settings["tiny"])


def stage_sft(settings: dict[str, Any], out: Path) -> Path:
    from execrl.trainers.sft import SFTConfig, train_sft

    model = str(out / "model0") if settings["model"] == "tiny" else settings["model"]
    sft = _fields(SFTConfig, settings["sft"], "sft")
    return train_sft(SFTConfig(model=model, out=out / "sft", **{"device": settings["device"], **sft}))


def stage_ppo(settings: dict[str, Any], out: Path) -> Path:
    from execrl.trainers.checkpoint import checkpoint_policy_dir
    from execrl.trainers.ppo import PRESETS, PPOConfig, check_config, train_ppo

    ppo = _fields(PPOConfig, settings["ppo"], "ppo")
    preset = PRESETS.get(ppo.get("preset", ""), {})
    # The folder is this pipeline's own: continue from a checkpoint, or restart a run that crashed before one.
    finished = (out / "ppo" / "train_config.json").exists()
    resume = checkpoint_policy_dir(out / "ppo") is not None and not finished
    cfg = PPOConfig(
        model=str(out / "sft"),
        out=out / "ppo",
        resume=resume,
        force=not resume and not finished,
        **{"device": settings["device"], **preset, **ppo},
    )
    check_config(cfg)
    return train_ppo(cfg)


def stage_eval(settings: dict[str, Any], out: Path, name: str) -> None:
    """Generate and evaluate model `name` (sft or ppo) on every benchmark, same protocol for both."""
    from execrl.benchmarks.registry import default_data_dir, load_problems
    from execrl.harness.evaluate import evaluate
    from execrl.harness.generate import Config as GenerateConfig
    from execrl.harness.generate import generate
    from execrl.harness.records import Limits

    ev = settings["eval"]
    for benchmark in ev["benchmarks"]:
        run = out / f"{name}_eval" / benchmark
        # generate and evaluate each keep a config.json of their own, so samples live in a sibling folder.
        samples_run = out / f"{name}_samples" / benchmark
        limit = ev["limit"].get(benchmark)
        print(f"== {name}: {benchmark} (n={ev['n']}, temperature={ev['temperature']}, limit={limit})", file=sys.stderr)
        gen = GenerateConfig(
            model=str(out / name),
            benchmark=benchmark,
            n=ev["n"],
            out=samples_run,
            limit=limit,
            temperature=ev["temperature"],
            top_p=1.0,
            max_new_tokens=ev["max_new_tokens"],
            batch_size=ev["batch_size"],
            data_dir=default_data_dir(),
            device=settings["device"],
        )
        generate(gen)
        problems = load_problems(benchmark, None, default_data_dir(), limit=limit)
        evaluate(
            problems,
            samples_run / "samples.jsonl",
            run,
            limits=Limits(timeout=ev["timeout"]),
            workers=ev["workers"],
            ks=[1, ev["n"]],
            config={"model": str(out / name), **{k: v for k, v in ev.items() if k != "limit"}, "limit": limit},
        )


def stage_report(settings: dict[str, Any], out: Path) -> None:
    from execrl.reports.cli import compare_main

    train_dir = out / "ppo_eval" / "train"
    train_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "ppo" / "metrics.jsonl", train_dir / "metrics.jsonl")
    argv = [str(out / "sft_eval"), str(out / "ppo_eval"), "--out", str(out / "report"), "--names", "SFT", "PPO"]
    if compare_main(argv) != 0:
        raise UsageError("execrl report compare failed (see above)")


def sandbox_seconds(out: Path) -> float:
    """Seconds in the sandbox: PPO's `time/sandbox` plus each evaluation's summed program durations."""
    from execrl.trainers.tracking import read_metrics

    total = sum(row.get("time/sandbox", 0.0) for row in read_metrics(out / "ppo" / "metrics.jsonl"))
    for results in out.glob("*_eval/*/results.jsonl"):
        total += sum(json.loads(line).get("duration", 0.0) for line in results.read_text().splitlines() if line)
    return total


def run_pipeline(cfg: PipelineConfig) -> Path:
    out = Path(cfg.out)
    settings = load_settings(cfg.config, cfg.limit)
    markers = out / "stages"
    if cfg.force:
        outputs = (
            "stages",
            "model0",
            "sft",
            "ppo",
            "sft_samples",
            "ppo_samples",
            "sft_eval",
            "ppo_eval",
            "report",
            "timings.json",
            "settings.json",
        )
        for name in outputs:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    recorded = out / "settings.json"
    if recorded.is_file() and json.loads(recorded.read_text()) != settings:
        raise UsageError(f"{out}: holds a pipeline run with other settings; pass --force to start over")
    markers.mkdir(parents=True, exist_ok=True)
    recorded.write_text(json.dumps(settings, indent=2) + "\n")

    stages: list[tuple[str, Callable[[], Any]]] = [
        ("model0", lambda: stage_model0(settings, out)),
        ("sft", lambda: stage_sft(settings, out)),
        ("ppo", lambda: stage_ppo(settings, out)),
        ("sft_eval", lambda: stage_eval(settings, out, "sft")),
        ("ppo_eval", lambda: stage_eval(settings, out, "ppo")),
        ("report", lambda: stage_report(settings, out)),
    ]
    if settings["model"] != "tiny":
        stages = stages[1:]
    for i, (name, fn) in enumerate(stages, 1):
        marker = markers / f"{name}.json"
        if marker.is_file():
            print(f"[{i}/{len(stages)}] {name}: done, skipped", file=sys.stderr)
            continue
        print(f"[{i}/{len(stages)}] {name} ...", file=sys.stderr)
        start = time.monotonic()
        fn()
        marker.write_text(json.dumps({"seconds": round(time.monotonic() - start, 2)}) + "\n")

    seconds = {name: json.loads((markers / f"{name}.json").read_text())["seconds"] for name, _ in stages}
    total, in_sandbox = sum(seconds.values()), sandbox_seconds(out)
    timings = {
        "stages": seconds,
        "total": round(total, 2),
        "sandbox": round(in_sandbox, 2),
        "sandbox_share": round(in_sandbox / total, 4) if total else 0.0,
    }
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    return out


def main(argv: list[str]) -> int:
    import tyro

    cfg = tyro.cli(PipelineConfig, args=argv, description=__doc__.splitlines()[0])
    from execrl.trainers.rewards import SandboxErrorRate

    try:
        out = run_pipeline(cfg)
    except UsageError as e:
        print(f"execrl pipeline: {e}", file=sys.stderr)
        return 2
    except SandboxErrorRate as e:  # finished stages and PPO checkpoints are kept: rerunning resumes
        print(f"execrl pipeline: stopped in PPO: {e}", file=sys.stderr)
        return 1
    report = out / "report" / "comparison.json"
    print(f"wrote {report} and {out / 'timings.json'}", file=sys.stderr)
    return 0
