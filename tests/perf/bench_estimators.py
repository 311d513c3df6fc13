"""The main job's RL stage with `advantage: gae`, `grpo` and `rloo` from one SFT checkpoint, side by side (issue 10).

    .venv/bin/python tests/perf/bench_estimators.py --out runs/bench-estimators [--estimators gae grpo rloo]
                                                    [--ppo KEY=VALUE ...] [--base-config smoke.yaml]

1. `OUT/gae`: the whole main job (`execrl pipeline`, the README's first command) with `ppo: {advantage: gae}`,
   the default: tiny model, SFT, RL with the cpu-tiny preset, both evaluations, the comparison report.
2. `OUT/<estimator>` for each other estimator: the same model0 and SFT checkpoint, and the same SFT evaluation,
   copied from `OUT/gae`; then the pipeline's own RL, evaluation and report stages with `ppo: {advantage: NAME}`
   and every other setting, seeds included, as in 1. `--ppo KEY=VALUE` (YAML values) adds PPO settings to these
   critic-free runs only, to try a tuned critic-free setting against the unchanged main job. `--base-config`
   replaces the main job by another pipeline config for every run (a quick smoke run of this script).
3. Prints, per estimator: held-out synth pass@1 of SFT and after RL, Δ pass@1 with its 95% CI (`report compare`:
   paired bootstrap over problems), and the RL stage's wall time, with its ratio to GAE's.

Wall times are of one run each on whatever else the machine is running; a rerun resumes (finished stages are
skipped and their recorded times reused).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from execrl.trainers import pipeline
from execrl.trainers.pipeline import PipelineConfig, load_settings, run_pipeline, validate

SFT_OUTPUTS = ("model0", "sft", "sft_samples", "sft_eval")
"""What the critic-free runs take from the GAE run: the model before and after SFT and SFT's evaluation."""


def write_config(path: Path, base: dict[str, Any], ppo: dict[str, Any]) -> Path:
    """A pipeline YAML: `base` (a whole config, usually empty: the main job) with `ppo` merged into its ppo section."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**base, "ppo": {**base.get("ppo", {}), **ppo}}))
    return path


def timed_stage(out: Path, name: str, fn: Any) -> float:
    """Run one pipeline stage unless its marker says it finished; its wall seconds either way (as the pipeline)."""
    marker = out / "stages" / f"{name}.json"
    if not marker.is_file():
        start = time.monotonic()
        fn()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"seconds": round(time.monotonic() - start, 2)}) + "\n")
    return json.loads(marker.read_text())["seconds"]


def run_from_sft(reference: Path, out: Path, config: Path) -> None:
    """RL, its evaluation and the report for `config`, from the SFT checkpoint of the `reference` pipeline run."""
    settings = load_settings(PipelineConfig(out=out, config=config))
    validate(settings)
    for name in SFT_OUTPUTS:
        if not (out / name).exists():
            shutil.copytree(reference / name, out / name, symlinks=True)
    (out / "stages").mkdir(parents=True, exist_ok=True)
    for name in ("model0", "sft", "sft_eval"):  # done once, in the reference run
        shutil.copyfile(reference / "stages" / f"{name}.json", out / "stages" / f"{name}.json")
    timed_stage(out, "ppo", lambda: pipeline.stage_ppo(settings, out))
    timed_stage(out, "ppo_eval", lambda: pipeline.stage_eval(settings, out, "ppo"))
    timed_stage(out, "report", lambda: pipeline.stage_report(settings, out))


def summary(out: Path) -> dict[str, Any]:
    comparison = json.loads((out / "report" / "comparison.json").read_text())
    pass1 = comparison["metrics"]["synth"]["pass@1"]
    stages = {p.stem: json.loads(p.read_text())["seconds"] for p in (out / "stages").glob("*.json")}
    return {
        "sft": pass1["baseline"],
        "rl": pass1["candidate"],
        "delta": pass1["delta"],
        "ci95": pass1["ci95"],
        "rl_seconds": stages["ppo"],
        "value_head": (out / "ppo" / "value_head.pt").exists(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--estimators", nargs="+", default=["gae", "grpo", "rloo"])
    parser.add_argument("--ppo", nargs="*", default=[], metavar="KEY=VALUE", help="extra ppo settings (critic-free)")
    parser.add_argument("--base-config", type=Path, help="a pipeline YAML for every run (default: the main job)")
    args = parser.parse_args()
    base = yaml.safe_load(args.base_config.read_text()) if args.base_config else {}
    if args.estimators[0] != "gae":
        sys.exit("--estimators: gae comes first (its run makes the SFT checkpoint the others start from)")
    extra = {}
    for item in args.ppo:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"--ppo {item}: expected KEY=VALUE")
        try:  # JSON first: YAML reads 1e-4 as a string
            extra[key] = json.loads(value)
        except json.JSONDecodeError:
            extra[key] = yaml.safe_load(value)
    reference = args.out / "gae"
    run_pipeline(
        PipelineConfig(
            out=reference, config=write_config(args.out / "configs" / "gae.yaml", base, {"advantage": "gae"})
        )
    )
    rows = {"gae": summary(reference)}
    for name in args.estimators[1:]:
        config = write_config(args.out / "configs" / f"{name}.yaml", base, {"advantage": name, **extra})
        run_from_sft(reference, args.out / name, config)
        rows[name] = summary(args.out / name)

    print(f"\nRL stage from one SFT checkpoint ({args.out}, held-out synth); base config: {base or 'the main job'}; "
          f"extra critic-free settings: {extra or 'none'}")  # fmt: skip
    print(f"{'estimator':<14}{'pass@1 SFT -> RL':<20}{'delta pass@1 [95% CI], points':<32}{'RL wall (s)':<13}"
          f"{'/ gae':<8}value head")  # fmt: skip
    for name, row in rows.items():
        lo, hi = (100 * x for x in row["ci95"])
        delta = f"{100 * row['delta']:+.1f} [{lo:+.1f}, {hi:+.1f}]"
        ratio = row["rl_seconds"] / rows["gae"]["rl_seconds"]
        print(f"{name:<14}{row['sft']:.3f} -> {row['rl']:.3f}    {delta:<32}{row['rl_seconds']:<13.1f}{ratio:<8.2f}"
              f"{'yes' if row['value_head'] else 'no'}")  # fmt: skip
    (args.out / "summary.json").write_text(json.dumps({"base": base, "extra": extra, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
