"""The pipeline's third arm (PPO + critic sampling) on a finished main job, and the three-arm report.

    .venv/bin/python tests/perf/bench_third_arm.py --from runs/main --out runs/third-arm [--config C.yaml]

`--from` is a finished `execrl pipeline` folder (the main job, or one arm of tests/perf/bench_estimators.py);
`--config` the YAML that run used (none for the embedded default). Its SFT and PPO models and their evaluations
are linked into `--out`, not recomputed; then the pipeline's own third-arm stages run there with
`critic_sampling: {enabled: true}` and its defaults (`execrl.trainers.pipeline_critic`: a critic trained on the PPO
model's samples of 400 synth *train* problems, then critic sampling with n 4, 1 round, refine 2, repairs 2 on the
evaluated benchmarks), and the report stage writes `--out/report` with the three arms. Prints the All-arms table
(pass@1, model calls per submitted program, deltas with paired bootstrap CIs) and the stages' wall times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml
from execrl.trainers import pipeline, pipeline_critic

LINKED = ("model0", "sft", "ppo", "sft_eval", "ppo_eval")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="a finished pipeline folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=None, help="the YAML the --from run used (default: none)")
    args = parser.parse_args()
    source = args.source.resolve()
    for name in ("sft", "ppo", "sft_eval", "ppo_eval"):
        if not (source / name).exists():
            sys.exit(f"--from {source}: no {name}/ (not a finished pipeline folder)")
    given = yaml.safe_load(args.config.read_text()) if args.config else {}
    given = {**given, "critic_sampling": {**given.get("critic_sampling", {}), "enabled": True}}
    args.out.mkdir(parents=True, exist_ok=True)
    config = args.out / "config.yaml"
    config.write_text(yaml.safe_dump(given))
    settings = pipeline.load_settings(pipeline.PipelineConfig(out=args.out, config=config))
    for name in LINKED:
        if (source / name).exists() and not (args.out / name).exists():
            (args.out / name).symlink_to(source / name)
    seconds = {}
    for name, stage in (("critic", pipeline_critic.stage_critic), ("cs_eval", pipeline_critic.stage_cs_eval),
                        ("report", pipeline.stage_report)):  # fmt: skip
        marker = args.out / f"{name}.done"
        if marker.exists():
            seconds[name] = float(marker.read_text())
            continue
        start = time.monotonic()
        stage(settings, args.out)
        seconds[name] = time.monotonic() - start
        marker.write_text(f"{seconds[name]:.1f}")
    arms = json.loads((args.out / "report" / "comparison.json").read_text())
    main_metrics = arms["metrics"]
    print(f"\n{'benchmark':<10} {'arm':<22} {'pass@1':>7} {'calls':>6} {'Δ vs SFT [95% CI]':>26} "
          f"{'Δ vs PPO [95% CI]':>26}")  # fmt: skip
    for benchmark, metrics in main_metrics.items():
        pass1 = metrics["pass@1"]
        print(f"{benchmark:<10} {'SFT':<22} {pass1['baseline']:7.3f} {1:6.2f}")
        lo, hi = pass1["ci95"]
        print(f"{benchmark:<10} {'PPO':<22} {pass1['candidate']:7.3f} {1:6.2f} "
              f"{pass1['delta']:+8.3f} [{lo:+.3f}, {hi:+.3f}]")  # fmt: skip
        for arm, per_benchmark in arms.get("arms", {}).items():
            entry = per_benchmark.get(benchmark)
            if entry is None:
                continue
            cells = []
            for key in ("vs_baseline", "vs_candidate"):
                d = entry[key]
                cells.append(f"{d['delta']:+8.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] p={d['p_value']:.3f}")
            print(f"{benchmark:<10} {arm:<22} {entry['pass@1']:7.3f} {entry['calls_per_program']:6.2f} "
                  f"{cells[0]:>26} {cells[1]:>26}")  # fmt: skip
    print("stage seconds:", {k: round(v) for k, v in seconds.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
