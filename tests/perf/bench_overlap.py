"""One PPO iteration's time split with scoring overlapped with generation (`--overlap-scoring`) against without,
side by side in one run, as ratios.

    .venv/bin/python tests/perf/bench_overlap.py [--rounds 4] [--chunks 2 4] [-- PPO FLAGS]

Without `--model` among the PPO flags, a tiny model is built and briefly SFT'd on synth (a model that writes
programs, so the sandbox has real work). The sides alternate iteration by iteration on one run (one policy, one
sandbox pool, the order swapped every round), so both see the same load and nearly the same policy; the table
gives each side's median over the rounds. Defaults are the `cpu-tiny` preset on CPU; any `execrl train ppo` flag
after `--` overrides them (e.g. `-- --model DIR --device cuda --batch-size 256 --benchmark mbpp`).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
from pathlib import Path

TIMES = ("time/rollout", "time/sandbox", "time/sandbox_wait", "time/update", "time/total")


def sft_model(root: Path, steps: int) -> Path:
    """The pipeline's tiny model shape, SFT'd for `steps` on synth's noisy train corpus."""
    from execrl.benchmarks.synth import load_synth, sft_corpus
    from execrl.trainers.data import write_jsonl
    from execrl.trainers.sft import SFTConfig, train_sft
    from execrl.trainers.tiny import build_tiny_model

    rows = sft_corpus(load_synth("train"), wrong_share=0.3, seed=0)
    write_jsonl(root / "sft.jsonl", [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    build_tiny_model(root / "model0", [r["prompt"] + r["completion"] for r in rows], max_positions=256)
    cfg = SFTConfig(model=str(root / "model0"), out=root / "sft", data=str(root / "sft.jsonl"), max_steps=steps,
                    batch_size=16, lr=3e-3, device="cpu", max_length=256)  # fmt: skip
    return train_sft(cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="iterations per side")
    parser.add_argument("--chunks", type=int, nargs="+", default=[4], help="--overlap-chunks of the overlap sides")
    parser.add_argument("--sft-steps", type=int, default=300, help="SFT steps of the tiny model (without --model)")
    args, ppo_flags = parser.parse_known_args()
    ppo_flags = [f for f in ppo_flags if f != "--"]

    from execrl.trainers.ppo import ppo_iteration
    from execrl.trainers.ppo_config import check_config, parse_config, run_config
    from execrl.trainers.ppo_setup import prepare_out, setup_run

    tmp = Path(tempfile.mkdtemp(prefix="execrl-bench-overlap-"))
    if "--model" not in ppo_flags:
        ppo_flags += ["--model", str(sft_model(tmp, args.sft_steps))]
    sides = {"off": {"overlap_scoring": False}} | {
        f"on/{n}": {"overlap_scoring": True, "overlap_chunks": n} for n in args.chunks
    }
    iterations = 1 + args.rounds * len(sides)
    defaults = ["--preset", "cpu-tiny", "--device", "cpu", "--eval-every", "0", "--out", str(tmp / "ppo")]
    cfg = parse_config([*defaults, *ppo_flags, "--iterations", str(iterations), "--force"])
    check_config(cfg)
    config = run_config(cfg)
    prepare_out(Path(cfg.out), config, resume=False, force=True)
    times: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    with setup_run(cfg, Path(cfg.out), config, resume=False) as run:
        ppo_iteration(cfg, run)  # warm-up: lazy initialisation, first pool use
        run.step += 1
        for r in range(args.rounds):
            for name in list(sides)[:: 1 if r % 2 == 0 else -1]:
                metrics = ppo_iteration(dataclasses.replace(cfg, **sides[name]), run)
                run.step += 1
                times[name].append({k: metrics[k] for k in TIMES})

    print(f"batch {cfg.batch_size} (G = {cfg.samples_per_prompt}), device {cfg.device}, {args.rounds} rounds, "
          f"median seconds per iteration; ratio = side / off")  # fmt: skip
    header = f"| {'side':<8} | " + " | ".join(f"{k:<17}" for k in TIMES) + " |"
    print(header)
    print("|" + "---|" * (len(TIMES) + 1))
    median = {name: {k: statistics.median(t[k] for t in rows) for k in TIMES} for name, rows in times.items()}
    for name, row in median.items():
        cells = []
        for k in TIMES:
            base = median["off"][k]
            ratio = f" ({row[k] / base:.2f}x)" if name != "off" and base > 0 else ""
            cells.append(f"{row[k]:.3f}{ratio}".ljust(17))
        print(f"| {name:<8} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
