"""The main job's RL stage with `advantage: gae`, `grpo` and `rloo` from one SFT checkpoint, side by side (issue 10).

    .venv/bin/python tests/perf/bench_estimators.py --out runs/bench-estimators [--estimators gae grpo rloo]
        [--sequential] [--ppo KEY=VALUE ...] [--reference DIR] [--base-config smoke.yaml]

1. `OUT/gae` gets the main job's first stages (`execrl pipeline`, the README's first command, with
   `ppo: {advantage: gae}`): the tiny model, SFT and SFT's evaluation. With `--reference DIR` (a finished
   `OUT/gae` of an earlier run) these are taken from DIR instead.
2. Each estimator then runs the pipeline's own RL, evaluation and report stages in `OUT/<estimator>` (for gae:
   in `OUT/gae`, which so becomes the whole main job; `timings.json` is written by the pipeline itself), from
   the same SFT checkpoint and with every other setting, seeds included, the same. `--ppo KEY=VALUE` (JSON or
   YAML values) adds PPO settings to the critic-free arms only, to try a cheaper critic-free setting against the
   unchanged main job. `--base-config` replaces the main job by another pipeline config (a smoke run of this).
3. The arms run at the same time, one process each (default), so that they share whatever else the machine is
   running: on a shared machine the load changes by the minute, and arms run one after another would each see
   a different one (`--sequential` runs them in turn). Their contention with each other inflates every arm's
   wall time alike.
4. Time is measured three ways per stage: wall seconds; CPU seconds from the kernel, the trainer process (every
   thread: rollouts, updates) apart from its children — the sandbox pool's workers with their zygotes and the
   programs they ran (read from /proc just before each pool closes, so nothing is lost if a zygote is never
   reaped) and the other children (ruff and the radon worker of the quality score); and PPO's own per-iteration
   `time/*` metrics. CPU seconds do not count the time a process waited for a core, so they are the comparison
   that survives a loaded machine; wall time is given beside them with the load average and the machine's mean
   busy cores (/proc/stat) over the stage. OpenMP threads wait passively (see OMP_WAIT_POLICY below): spinning
   ones make CPU time as load-dependent as wall time.
5. Prints a markdown table per estimator: held-out synth pass@1 of SFT and after RL, Δ pass@1 with its 95% CI
   (`report compare`: paired bootstrap over problems), RL-stage CPU and wall seconds with their ratio to GAE's,
   the summed `time/total`, value head yes/no, the mean share of all-equal-reward prompt groups, and each
   critic-free RL model against GAE's RL model directly (paired bootstrap on the same problems).

A rerun resumes: finished stages are skipped and their recorded measurements reused.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

# libgomp's threads spin while they wait for each other (OMP_WAIT_POLICY unset). On a machine with more runnable
# threads than cores a waiting thread spins through its partner's whole time slice: measured here at load 20 on 2
# cores, eight forward+backward steps of the SFT model took 27-39 s and 7.6-10.6 CPU s by default, 3.4-3.7 s and
# 0.9-1.0 CPU s with PASSIVE (1 thread: 3.3-3.6 s). The wait policy changes no result (same threads, same order of
# reductions), so every stage and arm (children inherit it) waits passively unless the caller chose a policy.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import process_cpu  # noqa: E402
from execrl.harness import runfolder  # noqa: E402
from execrl.harness.sandbox.pool import SandboxPool  # noqa: E402
from execrl.trainers import pipeline  # noqa: E402
from execrl.trainers.pipeline import PipelineConfig, load_settings, validate  # noqa: E402
from execrl.trainers.tracking import read_metrics  # noqa: E402

SFT_MODELS, SFT_EVAL = ("model0", "sft"), ("sft_samples", "sft_eval")
"""What the arms take from the reference run: the model before and after SFT (before RL), SFT's evaluation (for
the report: it runs while the arms train)."""
SFT_EVAL_ARM = "sft_eval"
"""The process that evaluates the SFT model while the arms train (only the report stage needs it)."""
LOAD_EVERY = 5.0
"""Seconds between two load-average samples while the arms run."""

# --- CPU of a stage -------------------------------------------------------------------------------------------------

_pool_closes: list[dict[str, process_cpu.Usage]] = []
"""One entry per sandbox pool closed during the stage being measured: its workers' subtree CPU just before the
close, and what the close handed to this process's RUSAGE_CHILDREN (the workers, once joined)."""
_original_close = SandboxPool.close


def _measured_close(self: SandboxPool) -> None:
    """SandboxPool.close, after reading the CPU of its workers' whole subtrees (benchmark instrumentation only)."""
    pids = [w.process.pid for w in self._workers if w.process.pid is not None]
    before, tree = process_cpu.reaped(), process_cpu.tree_usage(pids) if pids else process_cpu.Usage()
    _original_close(self)
    _pool_closes.append({"tree": tree, "reaped": process_cpu.reaped() - before})


SandboxPool.close = _measured_close  # type: ignore[method-assign]


def measure(fn: Callable[[], Any]) -> dict[str, Any]:
    """Run `fn`; its wall seconds, CPU seconds (trainer / sandbox / other children) and the machine's load."""
    _pool_closes.clear()
    own0, reaped0, live0 = process_cpu.own(), process_cpu.reaped(), process_cpu.tree_usage(process_cpu.live_children())
    busy0, t0, load0, start = process_cpu.machine_busy(), time.time(), os.getloadavg()[0], time.monotonic()
    fn()
    seconds = time.monotonic() - start
    own1, reaped1, live1 = process_cpu.own(), process_cpu.reaped(), process_cpu.tree_usage(process_cpu.live_children())
    busy = process_cpu.machine_busy() - busy0
    snapshot = sum((c["tree"] for c in _pool_closes), process_cpu.Usage())
    via_pools = sum((c["reaped"] for c in _pool_closes), process_cpu.Usage())
    # Every child's CPU reached RUSAGE_CHILDREN when it was reaped, or is in a live child's stat at the end. The
    # pools' part: what closing them reaped (their workers with everything those reaped, shut-down included), or the
    # subtree snapshot before the close where it is larger (a zygote that was never reaped).
    sandbox = snapshot if snapshot.total > via_pools.total else via_pools
    other = (reaped1 - reaped0) - via_pools + (live1 - live0)
    trainer = own1 - own0
    cpu = {
        "trainer_user": trainer.user,
        "trainer_system": trainer.system,
        "trainer": trainer.total,
        "sandbox": sandbox.total,
        "sandbox_snapshot": snapshot.total,
        "sandbox_reaped": via_pools.total,
        "other_children": other.total,
        "total": trainer.total + sandbox.total + other.total,
    }
    return {
        "seconds": round(seconds, 2),
        "cpu": {k: round(v, 2) for k, v in cpu.items()},
        "start": t0,
        "end": time.time(),
        "loadavg_start_end": [load0, os.getloadavg()[0]],
        "machine_busy_cores": round(busy / seconds, 3) if seconds else 0.0,
    }


def measured_stage(out: Path, name: str, fn: Callable[[], Any]) -> dict[str, Any]:
    """Run one pipeline stage unless its marker says it finished; its measurements either way. The marker is the
    pipeline's own (`{"seconds": ...}`, which the pipeline reads), with the CPU and load figures beside it."""
    marker = out / "stages" / f"{name}.json"
    if not marker.is_file():
        record = measure(fn)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(record) + "\n")
    return json.loads(marker.read_text())


# --- the runs -------------------------------------------------------------------------------------------------------


def write_config(path: Path, base: dict[str, Any], ppo: dict[str, Any]) -> Path:
    """A pipeline YAML: `base` (a whole config, usually empty: the main job) with `ppo` merged into its ppo section."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**base, "ppo": {**base.get("ppo", {}), **ppo}}))
    return path


def prepare_reference(reference: Path, config: Path, stages: tuple[str, ...]) -> None:
    """The main job's `stages` before RL in `reference`, claimed as a pipeline run folder (the gae arm finishes it)."""
    settings = load_settings(PipelineConfig(out=reference, config=config))
    validate(settings)
    runfolder.claim(
        reference, dataclasses.asdict(settings), outputs=pipeline.OUTPUTS, force=False, stamp="settings.json"
    )
    for name in stages:
        stage = {
            "model0": lambda: pipeline.stage_model0(settings, reference),
            "sft": lambda: pipeline.stage_sft(settings, reference),
            "sft_eval": lambda: pipeline.stage_eval(settings, reference, "sft"),
        }[name]
        print(f"== reference: {name}", file=sys.stderr, flush=True)
        measured_stage(reference, name, stage)


def run_arm(reference: Path, out: Path, config: Path) -> None:
    """RL, its evaluation and the report for `config` in `out`, from the SFT checkpoint of `reference`."""
    settings = load_settings(PipelineConfig(out=out, config=config))
    validate(settings)
    copy = out.resolve() != reference.resolve()
    if copy:
        take_from_reference(reference, out, SFT_MODELS, ("model0", "sft"))
    measured_stage(out, "ppo", lambda: pipeline.stage_ppo(settings, out))
    measured_stage(out, "ppo_eval", lambda: pipeline.stage_eval(settings, out, "ppo"))
    while not (reference / "stages" / "sft_eval.json").is_file():  # SFT's evaluation ran beside the arms
        time.sleep(LOAD_EVERY)
    if copy:
        take_from_reference(reference, out, SFT_EVAL, ("sft_eval",))
    measured_stage(out, "report", lambda: pipeline.stage_report(settings, out))


def take_from_reference(reference: Path, out: Path, folders: tuple[str, ...], stages: tuple[str, ...]) -> None:
    """Copy `folders` and the markers of `stages` (done once, in the reference run) into `out`."""
    for name in folders:
        if not (out / name).exists():
            shutil.copytree(reference / name, out / name, symlinks=True)
    (out / "stages").mkdir(parents=True, exist_ok=True)
    for name in stages:
        shutil.copyfile(reference / "stages" / f"{name}.json", out / "stages" / f"{name}.json")


def arm_dir(out: Path, reference: Path, name: str) -> Path:
    return reference if name == "gae" and reference.parent == out else out / name


def launch_arms(args: argparse.Namespace, arms: dict[str, Path], reference: Path) -> None:
    """Each arm in a process of its own (its CPU is then its own), all at once unless --sequential; samples the load
    average and each arm's CPU and iterations so far into OUT/load.jsonl meanwhile."""
    script = Path(__file__).resolve()

    def start(name: str) -> subprocess.Popen[bytes]:
        argv = [sys.executable, str(script), "--arm", name, "--out", str(args.out), "--reference", str(reference)]
        log = open(args.out / f"{name}.log", "ab")  # noqa: SIM115 (the child owns it)
        return subprocess.Popen([*argv, "--config", str(arms[name])], stdout=log, stderr=subprocess.STDOUT)

    names = [name for name in arms if name != SFT_EVAL_ARM]
    waves = [[name] for name in names] if args.sequential else [names]
    if SFT_EVAL_ARM in arms:  # SFT's evaluation, a process of its own too, runs beside the first wave
        waves[0].append(SFT_EVAL_ARM)
    with open(args.out / "load.jsonl", "a", encoding="utf-8") as load:
        for wave in waves:
            procs = {name: start(name) for name in wave}
            while any(p.poll() is None for p in procs.values()):
                # per running arm: its process tree's CPU so far and its finished iterations (CPU per iteration
                # can be read from these even for an arm that is stopped before the end)
                running = {name: p.pid for name, p in procs.items() if p.poll() is None}
                tree = process_cpu.children_map()
                arms_now = {
                    name: {
                        "cpu": round(process_cpu.tree_usage([pid], tree).total, 2),
                        "iterations": len(read_metrics(arm_dir(args.out, reference, name) / "ppo" / "metrics.jsonl")),
                    }
                    for name, pid in running.items()
                }
                row = {"time": time.time(), "load1": os.getloadavg()[0], "arms": arms_now}
                load.write(json.dumps(row) + "\n")
                load.flush()
                time.sleep(LOAD_EVERY)
            failed = [name for name, p in procs.items() if p.returncode]
            if failed:
                sys.exit(f"arm(s) {', '.join(failed)} failed: see {args.out}/<arm>.log")


# --- the table ------------------------------------------------------------------------------------------------------


def load_over(out: Path, start: float, end: float) -> list[float]:
    path = out / "load.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    return [r["load1"] for r in rows if start <= r["time"] <= end]


def summary(run: Path, out: Path) -> dict[str, Any]:
    comparison = json.loads((run / "report" / "comparison.json").read_text())
    pass1 = comparison["metrics"]["synth"]["pass@1"]
    stages = {p.stem: json.loads(p.read_text()) for p in (run / "stages").glob("*.json")}
    ppo, metrics = stages["ppo"], read_metrics(run / "ppo" / "metrics.jsonl")
    loads = load_over(out, ppo.get("start", 0), ppo.get("end", 0)) or ppo.get("loadavg_start_end", [])

    def total(key: str) -> float:
        return round(sum(m.get(key, 0.0) for m in metrics), 1)

    def mean(key: str, rows: list[dict[str, Any]] = metrics) -> float:
        values = [m[key] for m in rows if key in m]
        return round(sum(values) / len(values), 4) if values else float("nan")

    evals = [m["eval/synth/pass@1"] for m in metrics if "eval/synth/pass@1" in m]
    return {
        "sft": pass1["baseline"],
        "rl": pass1["candidate"],
        "delta": pass1["delta"],
        "ci95": pass1["ci95"],
        "rl_seconds": ppo["seconds"],
        "rl_cpu": ppo.get("cpu", {}),
        "load1_min_mean_max": [min(loads), sum(loads) / len(loads), max(loads)] if loads else [],
        "machine_busy_cores": ppo.get("machine_busy_cores"),
        "iterations": len(metrics),
        "time_sums": {k: total(f"time/{k}") for k in ("rollout", "sandbox", "update", "total")},
        "minibatch_steps_mean": mean("ppo/minibatch_steps"),
        "zero_adv_share_mean": mean("ppo/zero_adv_share"),
        "train_reward_last10": mean("ppo/mean_reward", metrics[-10:]),
        "train_pass_rate_last10": mean("code/pass_rate", metrics[-10:]),
        "in_loop_eval_pass1": evals,
        "value_head": (run / "ppo" / "value_head.pt").exists(),
        "stage_cpu": {name: s.get("cpu", {}).get("total") for name, s in stages.items()},
        "stage_seconds": {name: s["seconds"] for name, s in stages.items()},
    }


def against_gae(gae: Path, run: Path) -> dict[str, Any]:
    """Held-out synth pass@1 of `run`'s RL model minus GAE's, with the paired-bootstrap 95% CI over problems (the
    same `compare_runs` as `report compare`, both models sampled on the same problems): the direct test of "gains
    at least as much as GAE"."""
    from execrl.reports.compare import compare_runs
    from execrl.reports.runs import load_run

    comparison = compare_runs(load_run(gae / "ppo_eval", "GAE"), load_run(run / "ppo_eval", "arm")).to_json()
    pass1 = comparison["metrics"]["synth"]["pass@1"]
    return {"delta": pass1["delta"], "ci95": pass1["ci95"]}


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    ref = rows.get("gae")
    print("| estimator | pass@1 SFT → RL | Δ pass@1 [95% CI], points | RL CPU s: trainer + sandbox + other = total "
          "(/ gae) | RL wall s (/ gae) | Σ time/total s | load 1-min min–mean–max, busy cores | value head | "
          "zero_adv_share | RL − GAE's RL [95% CI], points |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        lo, hi = (100 * x for x in r["ci95"])
        cpu = r["rl_cpu"]
        cpu_ratio = f" ({cpu['total'] / ref['rl_cpu']['total']:.2f})" if ref and ref["rl_cpu"] else ""
        wall_ratio = f" ({r['rl_seconds'] / ref['rl_seconds']:.2f})" if ref else ""
        cpu_text = (f"{cpu['trainer']:.0f} + {cpu['sandbox']:.0f} + {cpu['other_children']:.0f} = "
                    f"{cpu['total']:.0f}{cpu_ratio}") if cpu else "–"  # fmt: skip
        load = "–".join(f"{x:.1f}" for x in r["load1_min_mean_max"])
        vs = r.get("vs_gae")
        vs_text = f"{100 * vs['delta']:+.1f} [{100 * vs['ci95'][0]:+.1f}, {100 * vs['ci95'][1]:+.1f}]" if vs else "–"
        print(f"| {name} | {r['sft']:.4f} → {r['rl']:.4f} | {100 * r['delta']:+.1f} [{lo:+.1f}, {hi:+.1f}] | "
              f"{cpu_text} | {r['rl_seconds']:.0f}{wall_ratio} | {r['time_sums']['total']:.0f} | "
              f"{load}, {r['machine_busy_cores']} | {'yes' if r['value_head'] else 'no'} | "
              f"{r['zero_adv_share_mean']:.3f} | {vs_text} |")  # fmt: skip


def parse_extra(items: list[str]) -> dict[str, Any]:
    extra = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"--ppo {item}: expected KEY=VALUE")
        try:  # JSON first: YAML reads 1e-4 as a string
            extra[key] = json.loads(value)
        except json.JSONDecodeError:
            extra[key] = yaml.safe_load(value)
    return extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--estimators", nargs="+", default=["gae", "grpo", "rloo"])
    parser.add_argument("--ppo", nargs="*", default=[], metavar="KEY=VALUE", help="extra ppo settings (critic-free)")
    parser.add_argument("--base-config", type=Path, help="a pipeline YAML for every run (default: the main job)")
    parser.add_argument("--reference", type=Path, help="a finished OUT/gae to take the SFT checkpoint from")
    parser.add_argument("--sequential", action="store_true", help="run the arms one after another")
    parser.add_argument("--arm", help=argparse.SUPPRESS)  # internal: run one arm in this process
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)  # internal: that arm's pipeline YAML
    args = parser.parse_args()
    if args.arm == SFT_EVAL_ARM:
        prepare_reference(args.reference, args.config, ("sft_eval",))
        return
    if args.arm:
        run_arm(args.reference, arm_dir(args.out, args.reference, args.arm), args.config)
        return

    args.out.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load(args.base_config.read_text()) if args.base_config else {}
    extra = parse_extra(args.ppo)
    reference = args.reference or args.out / "gae"
    gae_config = write_config(args.out / "configs" / "gae.yaml", base, {"advantage": "gae"})
    if args.reference is None:
        prepare_reference(reference, gae_config, ("model0", "sft"))
    arms = {
        name: write_config(
            args.out / "configs" / f"{name}.yaml", base, {"advantage": name, **({} if name == "gae" else extra)}
        )
        for name in args.estimators
    }
    if not (reference / "stages" / "sft_eval.json").is_file():
        arms[SFT_EVAL_ARM] = gae_config
    launch_arms(args, arms, reference)
    arms.pop(SFT_EVAL_ARM, None)
    if "gae" in arms and reference.parent == args.out:  # OUT/gae is a whole main job: the pipeline writes its timings
        pipeline.run_pipeline(PipelineConfig(out=reference, config=arms["gae"]))

    rows = {}
    if "gae" not in arms and (reference / "report" / "comparison.json").is_file():
        rows["gae"] = summary(reference, reference.parent)
    rows |= {name: summary(arm_dir(args.out, reference, name), args.out) for name in arms}
    if "gae" in rows:
        for name in rows:
            if name != "gae":
                rows[name]["vs_gae"] = against_gae(reference, arm_dir(args.out, reference, name))
    order = "in turn" if args.sequential else "at once"
    print(f"\nRL stage from one SFT checkpoint ({reference}, held-out synth); base config: {base or 'the main job'}; "
          f"extra critic-free settings: {extra or 'none'}; arms {order}\n")  # fmt: skip
    print_table(rows)
    summary_path = args.out / "summary.json"
    summary_path.write_text(json.dumps({"base": base, "extra": extra, "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {summary_path}")


if __name__ == "__main__":
    main()
