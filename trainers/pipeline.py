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
settings (keys documented in `trainers/example-gpu.yaml`), the training problems among them: `sft:` and `ppo:`
take the trainers' problem source (`benchmark: [mbpp, apps]`, `split`, `difficulty`, ... or `problems: FILE`;
a single name is read as a list of one). Before any stage runs, a training problem that is also among the
evaluated problems is refused, naming it (unless that section sets `allow_eval_overlap: true`).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from execrl.benchmarks.datafiles import read_jsonl
from execrl.benchmarks.errors import UserError
from execrl.benchmarks.registry import BenchmarkName
from execrl.harness import runfolder
from execrl.harness.flags import SandboxFlags, check_keys, coerce, from_mapping, parse
from execrl.trainers import pipeline_critic
from execrl.trainers.data import FINISHED
from execrl.trainers.pipeline_critic import CriticSamplingSettings
from execrl.trainers.ppo_config import PRESETS, PPOConfig, check_config
from execrl.trainers.sft import SFTConfig


@dataclass(kw_only=True)
class EvalSettings(SandboxFlags):
    """The evaluation protocol, identical for the SFT and the PPO model."""

    benchmarks: list[BenchmarkName] = field(default_factory=lambda: ["synth", "humaneval"])
    n: int = 4
    temperature: float = 1.0
    max_new_tokens: int = 64
    batch_size: int = 64
    limit: dict[BenchmarkName, int | None] = field(default_factory=lambda: {"synth": 200, "humaneval": 20})
    """First N problems per benchmark; absent = all (synth: 200 is the whole test split)."""
    data_dir: Path | None = None
    """Local data folder for MBPP/APPS (default: $EXECRL_DATA_DIR)."""
    workers: int | None = 2

    def evaluate(
        self, problems: list[Any], samples: Path, out: Path, data_dir: Path | None, ks: list[int], config: dict
    ) -> None:
        """`execrl evaluate` of `samples` into `out` in this protocol's sandbox (backend, workers, timeout); every
        arm and the critic's data are judged this one way."""
        from execrl.harness.evaluate import evaluate
        from execrl.harness.records import Limits

        evaluate(
            problems,
            samples,
            out,
            limits=Limits(timeout=self.timeout),
            workers=self.workers,
            ks=ks,
            sandbox=self.sandbox,
            ray_address=self.ray_address,
            hidden=[data_dir] if data_dir else [],  # as `execrl evaluate` does: programs never see the data
            config=config,
        )


@dataclass(kw_only=True)
class PipelineSettings:
    """Everything a pipeline run uses: the embedded defaults, overridden by the YAML `--config`."""

    model: str = "tiny"
    """"tiny" builds the embedded model; else a model folder or hub id to start SFT from."""
    device: str = "auto"
    """Default `device` of the sft and ppo sections."""
    tiny: dict[str, int]
    """Keyword arguments of `execrl.trainers.tiny.build_tiny_model` (vocab_size, n_layer, ...), for `model: tiny`."""
    sft: SFTConfig
    ppo: PPOConfig
    eval: EvalSettings
    critic_sampling: CriticSamplingSettings = field(default_factory=CriticSamplingSettings)
    """The optional third arm, PPO + critic sampling (`execrl.trainers.pipeline_critic`)."""


# The embedded job's values where they differ from each section's own defaults.
SFT_DEFAULTS: dict[str, Any] = {"max_steps": 800, "batch_size": 16, "lr": 2e-3, "wrong_share": 0.3}
PPO_DEFAULTS: dict[str, Any] = {"preset": "cpu-tiny"}


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


def _read_yaml(path: Path | None) -> dict[str, Any]:
    import yaml

    if path is None:
        return {}
    if not Path(path).is_file():
        raise UserError(f"--config {path}: no such file")
    try:
        given = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"--config {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(given, dict):
        raise UserError(f"--config {path}: expected a mapping of sections, got {type(given).__name__}")
    return given


def load_settings(cfg: PipelineConfig) -> PipelineSettings:
    """The embedded defaults overridden by the YAML file, each key checked against its section's dataclass
    (an unknown or mistyped key, or a value of the wrong type, is an error naming it) before anything runs."""
    given = _read_yaml(cfg.config)
    where = f"--config {cfg.config}" if cfg.config else "the pipeline's defaults"
    top = [f.name for f in dataclasses.fields(PipelineSettings)]
    check_keys(top, given, where)
    for section in ("tiny", "sft", "ppo", "eval", "critic_sampling"):
        if not isinstance(given.get(section, {}), dict):
            raise UserError(f"{where}: section {section!r} must be a mapping of keys to values")
    model = coerce(str, given.get("model", "tiny"), f"{where}: model")
    device = coerce(str, given.get("device", "auto"), f"{where}: device")
    out = Path(cfg.out)
    sft_given, ppo_given = (_listed_benchmark(given.get(section, {})) for section in ("sft", "ppo"))
    ppo_given = {**PPO_DEFAULTS, **ppo_given}
    preset_name = ppo_given["preset"]  # an unknown one is named by from_mapping below
    preset = PRESETS.get(preset_name, {}) if isinstance(preset_name, str) else {}
    eval_given = given.get("eval", {})
    limit_given = eval_given.get("limit", EvalSettings().limit)
    if not isinstance(limit_given, dict):
        raise UserError(f"{where}: eval.limit must map benchmarks to problem counts, e.g. {{humaneval: 20}}")
    limit = dict(limit_given)  # a given limit replaces the default one whole
    if cfg.limit is not None:
        limit["humaneval"] = cfg.limit
    return PipelineSettings(
        model=model,
        device=device,
        tiny=_tiny_settings(given.get("tiny", {}), f"{where}: tiny"),
        sft=from_mapping(
            SFTConfig,
            {"device": device, **SFT_DEFAULTS, **sft_given},
            f"{where}: sft",
            model=str(out / "model0") if model == "tiny" else model,
            out=out / "sft",
        ),
        ppo=from_mapping(
            PPOConfig,
            {"device": device, **preset, **ppo_given},
            f"{where}: ppo",
            model=str(out / "sft"),
            out=out / "ppo",
        ),
        eval=from_mapping(EvalSettings, {**eval_given, "limit": limit}, f"{where}: eval"),
        critic_sampling=from_mapping(
            CriticSamplingSettings, given.get("critic_sampling", {}), f"{where}: critic_sampling"
        ),
    )


def _listed_benchmark(section: dict[str, Any]) -> dict[str, Any]:
    """A trainer section with `benchmark: mbpp` read as `benchmark: [mbpp]` (the trainers take a list)."""
    if isinstance(section.get("benchmark"), str):
        return {**section, "benchmark": [section["benchmark"]]}
    return section


def _tiny_settings(given: dict[str, Any], where: str) -> dict[str, int]:
    """The `tiny` section, checked against `build_tiny_model`'s keyword arguments (their defaults are its own)."""
    from execrl.trainers.tiny import build_tiny_model

    params = inspect.signature(build_tiny_model).parameters.values()
    check_keys([p.name for p in params if p.kind is p.KEYWORD_ONLY], given, where)
    return {key: coerce(int, value, f"{where}.{key}") for key, value in given.items()}


def validate(settings: PipelineSettings) -> None:
    """Check what the stages will need — models, data files, benchmarks and their data — before the first stage,
    so that a missing MBPP folder is an error in a second, not a traceback after SFT and PPO have run."""
    from execrl.benchmarks.registry import default_data_dir, load_problems
    from execrl.trainers.sources import check_overlap, training_problems

    if settings.model != "tiny" and not Path(settings.model).is_dir() and not _in_hub_cache(settings.model):
        raise UserError(f"model {settings.model!r}: no such model folder, and not in the Hugging Face cache")
    if settings.sft.data != "synth" and not Path(settings.sft.data).is_file():
        raise UserError(f"sft.data {settings.sft.data}: no such file")
    check_config(settings.ppo)
    pipeline_critic.check(settings.critic_sampling, "critic_sampling")
    ev = settings.eval
    evaluated = {
        benchmark: load_problems(benchmark, None, ev.data_dir or default_data_dir(), limit=ev.limit.get(benchmark))
        for benchmark in ev.benchmarks
    }
    for name, section in (("sft", settings.sft), ("ppo", settings.ppo)):
        if not (section.benchmark or section.problems) or section.benchmark == ["synth"]:
            # SFT on rows (--data) has no problems to compare; synth's splits are disjoint by construction (its
            # split is a hash of the parameters, benchmarks/synth.py) and it shares no problem with the others.
            continue
        train = training_problems(section, synth_seed=section.synth_seed)
        for benchmark, problems in evaluated.items():
            if not section.allow_eval_overlap:
                check_overlap(train, problems, f"the {benchmark} evaluation ({name} trains on them)")


def _in_hub_cache(model: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def stage_model0(settings: PipelineSettings, out: Path) -> Path:
    from execrl.benchmarks.synth import load_synth, sft_corpus
    from execrl.trainers.tiny import build_tiny_model

    if settings.sft.benchmark or settings.sft.problems:  # the tokenizer learns the text SFT trains on
        from execrl.trainers.sft import load_rows

        rows = load_rows(settings.sft)
    else:
        rows = sft_corpus(load_synth("train"), wrong_share=settings.sft.wrong_share)
    corpus = [r["prompt"] + r["completion"] for r in rows]
    return build_tiny_model(out / "model0", corpus, **settings.tiny)


def stage_sft(settings: PipelineSettings, out: Path) -> Path:
    from execrl.trainers.sft import train_sft

    return train_sft(settings.sft)


def stage_ppo(settings: PipelineSettings, out: Path) -> Path:
    from execrl.trainers.checkpoint import checkpoint_policy_dir
    from execrl.trainers.ppo import train_ppo

    # The folder is this pipeline's own: continue from a checkpoint, or restart a run that crashed before one.
    finished = (out / "ppo" / FINISHED).exists()
    resume = checkpoint_policy_dir(out / "ppo") is not None and not finished
    return train_ppo(dataclasses.replace(settings.ppo, resume=resume, force=not resume and not finished))


def stage_eval(settings: PipelineSettings, out: Path, name: str) -> None:
    """Generate and evaluate model `name` (sft or ppo) on every benchmark, same protocol for both."""
    from execrl.benchmarks.registry import default_data_dir, load_problems
    from execrl.harness.generate import Config as GenerateConfig
    from execrl.harness.generate import generate

    ev = settings.eval
    data_dir = ev.data_dir or default_data_dir()
    for benchmark in ev.benchmarks:
        run = out / f"{name}_eval" / benchmark
        # generate and evaluate each keep a config.json of their own, so samples live in a sibling folder.
        samples_run = out / f"{name}_samples" / benchmark
        limit = ev.limit.get(benchmark)
        print(f"== {name}: {benchmark} (n={ev.n}, temperature={ev.temperature}, limit={limit})", file=sys.stderr)
        gen = GenerateConfig(
            model=str(out / name),
            benchmark=benchmark,
            n=ev.n,
            out=samples_run,
            limit=limit,
            temperature=ev.temperature,
            top_p=1.0,
            max_new_tokens=ev.max_new_tokens,
            batch_size=ev.batch_size,
            data_dir=data_dir,
            device=settings.device,
        )
        generate(gen)
        problems = load_problems(benchmark, None, data_dir, limit=limit)
        protocol = {k: v for k, v in dataclasses.asdict(ev).items() if k not in ("limit", "data_dir")}
        config = {"model": str(out / name), **protocol, "limit": limit}
        ev.evaluate(problems, samples_run / "samples.jsonl", run, data_dir, [1, ev.n], config)


def stage_report(settings: PipelineSettings, out: Path) -> None:  # every stage takes (settings, out)
    from execrl.reports.cli import compare_main

    train_dir = out / "ppo_eval" / "train"
    train_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "ppo" / "metrics.jsonl", train_dir / "metrics.jsonl")
    argv = [str(out / "sft_eval"), str(out / "ppo_eval"), "--out", str(out / "report"), "--names", "SFT", "PPO"]
    argv += pipeline_critic.report_args(settings, out)
    if compare_main(argv) != 0:
        raise UserError("execrl report compare failed (see above)")


def sandbox_seconds(out: Path) -> float:
    """Seconds in the sandbox: PPO's `time/sandbox` plus each evaluation's summed program durations."""
    from execrl.trainers.tracking import read_metrics

    total = sum(row.get("time/sandbox", 0.0) for row in read_metrics(out / "ppo" / "metrics.jsonl"))
    for results in out.glob("*_eval/*/results.jsonl"):
        total += sum(row.get("duration", 0.0) for row in read_jsonl(results))
    return total


# Everything a pipeline run writes into --out; `--force` deletes exactly these.
OUTPUTS = (
    "stages", "model0", "sft", "ppo", "sft_samples", "ppo_samples", "sft_eval", "ppo_eval", "report", "timings.json",
    *pipeline_critic.OUTPUTS,
)  # fmt: skip


def run_pipeline(cfg: PipelineConfig) -> Path:
    out = Path(cfg.out)
    settings = load_settings(cfg)
    validate(settings)
    runfolder.claim(out, dataclasses.asdict(settings), outputs=OUTPUTS, force=cfg.force, stamp="settings.json")
    markers = out / "stages"
    markers.mkdir(parents=True, exist_ok=True)

    stages: list[tuple[str, Callable[[], Any]]] = [
        ("model0", lambda: stage_model0(settings, out)),
        ("sft", lambda: stage_sft(settings, out)),
        ("ppo", lambda: stage_ppo(settings, out)),
        ("sft_eval", lambda: stage_eval(settings, out, "sft")),
        ("ppo_eval", lambda: stage_eval(settings, out, "ppo")),
    ]
    if settings.critic_sampling.enabled:  # the third arm: PPO + critic sampling
        stages += [
            ("critic", lambda: pipeline_critic.stage_critic(settings, out)),
            ("cs_eval", lambda: pipeline_critic.stage_cs_eval(settings, out)),
        ]
    stages.append(("report", lambda: stage_report(settings, out)))
    if settings.model != "tiny":
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
    from execrl.trainers.rewards import SandboxErrorRate

    cfg = parse(PipelineConfig, argv, description=__doc__.splitlines()[0])
    try:
        out = run_pipeline(cfg)
    except SandboxErrorRate as e:  # finished stages and PPO checkpoints are kept: rerunning resumes
        print(f"execrl pipeline: stopped in PPO: {e}", file=sys.stderr)
        return 1
    report = out / "report" / "comparison.json"
    print(f"wrote {report} and {out / 'timings.json'}", file=sys.stderr)
    return 0
