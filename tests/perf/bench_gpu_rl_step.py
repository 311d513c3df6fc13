"""One RL step on a Qwen2.5-Coder-0.5B-shaped model on one GPU: tokens/s, the time split, HF against vLLM
rollouts, and peak GPU memory with and without LoRA. Prints a table and writes JSON.

    .venv/bin/python tests/perf/bench_gpu_rl_step.py [--out runs/bench-gpu-rl-step.json] [--iterations 3]
    .venv/bin/python tests/perf/bench_gpu_rl_step.py --smoke     # CPU, a tiny Qwen2 model, seconds (the test's)

The model: Qwen2's architecture with Qwen2.5-Coder-0.5B's shape (hidden 896, 24 layers, 14 query heads, 2 KV
heads, MLP 4864, vocab 151,936, tied embeddings; 494M parameters), RANDOM weights from a seed, saved as an ordinary
model folder. Its tokenizer is a byte-level BPE trained on the synth corpus, its vocabulary filled up to 151,936
with placeholder entries that decode as `<fN>`, so every id the model can sample decodes: prompts are real synth
prompts, the embedding and the 151,936-way output layer cost what the real model's cost. What this does NOT show:
a random model's programs are nonsense, so responses run to `--max-new-tokens` (the most expensive case, the same
for both engines) and nearly every program is a syntax error, so `time/sandbox_wait` is near its floor; rewards
and pass rates mean nothing.

Each arm — rollout engine (hf, vllm) x LoRA (off, `--lora-r`) — runs in its own process (a clean CUDA context,
its own peak, a vLLM engine that cannot outlive its arm) through the trainer's own `setup_run` + `ppo_iteration`
(no checkpoints, no in-loop eval), for `--iterations` steps; the first is warm-up and the rest are averaged. An
arm that cannot run says why and the others go on: vLLM missing or no CUDA (the vllm arms), a PPOConfig without
`lora_r` (the LoRA arms, until LoRA RL is in). Budget: about 6-7 minutes on one H200 with the defaults (an
estimate: not yet run on one), each arm stopped at `--arm-timeout` or when the `--budget` for the whole run is
spent.

Per arm: tokens/s of the whole step (response tokens / time/total) and of the sampling alone, time/rollout (sampling
plus the trainer's log-prob pass), time/sandbox_wait (time/sandbox before the overlap change), time/update,
time/weight_sync, peak `torch.cuda.max_memory_allocated` (vLLM's arms include its preallocated KV cache, reported
apart as `engine_gib`), and rollout/logprob_diff (engine against trainer).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# Qwen2.5-Coder-0.5B's config.json numbers (the architecture is Qwen2's).
QWEN_05B = dict(
    hidden_size=896,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    intermediate_size=4864,
    vocab_size=151936,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
)
SMOKE = dict(
    QWEN_05B, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=2048
)
ARMS = ("hf", "vllm", "hf+lora", "vllm+lora")  # HF against vLLM first: the comparison that matters most
METRICS = ("time/rollout", "time/sandbox_wait", "time/sandbox", "time/update", "time/weight_sync", "time/total")


def build_model(out: Path, shape: dict[str, Any], dtype: str, seed: int = 0) -> Path:
    """A Qwen2 model folder of `shape` with random weights in `dtype` and the filled BPE tokenizer described above."""
    import torch
    from execrl.benchmarks.synth import load_synth, sft_corpus
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    if (out / "config.json").is_file():
        return out
    rows = sft_corpus(load_synth("train"), wrong_share=0.0, seed=seed)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|pad|>"]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=1024, special_tokens=special, initial_alphabet=alphabet, show_progress=False
    )
    bpe.train_from_iterator([r["prompt"] + r["completion"] for r in rows], trainer=trainer)
    spec = json.loads(bpe.to_str())
    vocab = spec["model"]["vocab"]
    # Placeholders no merge produces (encoding never yields them), each decoding to its own `<fN>` text.
    vocab.update({f"<f{i}>": i for i in range(len(vocab), shape["vocab_size"])})
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), bos_token=special[0],
                                        eos_token=special[0], pad_token=special[1], padding_side="left")  # fmt: skip
    config = Qwen2Config(**shape, bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, dtype=dtype)  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(getattr(torch, dtype))
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    return out


def why_not(arm: str, device: str) -> str | None:
    """Why `arm` cannot run here (None when it can), known before starting its process."""
    from execrl.trainers.ppo_config import PPOConfig
    from execrl.trainers.rollout_engines import vllm_unavailable

    if arm.startswith("vllm") and (reason := vllm_unavailable(device)):
        return reason
    if arm.endswith("+lora") and "lora_r" not in {f.name for f in dataclasses.fields(PPOConfig)}:
        return "PPOConfig has no lora_r: LoRA RL is not in this checkout"
    return None


def run_arm(args: argparse.Namespace) -> dict[str, Any]:
    """One arm, in this process: `--iterations` PPO steps; returns its figures."""
    import torch
    from execrl.trainers import ppo_setup
    from execrl.trainers.ppo import ppo_iteration
    from execrl.trainers.ppo_config import PPOConfig, check_config, run_config

    engine_name, lora = args.arm.split("+")[0], args.arm.endswith("+lora")
    cuda = torch.cuda.is_available() and args.device != "cpu"
    overrides: dict[str, Any] = {"lora_r": args.lora_r} if lora else {}
    cfg = PPOConfig(
        model=str(args.model), out=args.arm_out, iterations=args.iterations, batch_size=args.batch_size,
        samples_per_prompt=4, minibatch_size=args.minibatch_size, ppo_epochs=1, advantage="grpo",
        max_new_tokens=args.max_new_tokens, max_prompt_tokens=256, temperature=1.0, eval_every=0,
        workers=args.workers, timeout=2.0, device=args.device, rollout=engine_name,
        vllm_gpu_memory_utilization=args.vllm_memory, target_kl=0.0, **overrides,
    )  # fmt: skip
    check_config(cfg)

    # Count and time what the engine samples, and what the engine itself holds on the GPU.
    tokens, sampling, engine_bytes = [], [], [0]
    real_sample, real_make = ppo_setup.Run.sample, ppo_setup.make_rollout_engine

    def counted_sample(self, problems, samples_per_prompt, temperature):
        start = time.monotonic()
        rollout = real_sample(self, problems, samples_per_prompt, temperature)
        sampling.append(time.monotonic() - start)
        tokens.append(int(rollout.response_mask.sum()))
        return rollout

    def measured_make(*a):
        before = torch.cuda.memory_allocated() if cuda else 0
        engine = real_make(*a)
        engine_bytes[0] = (torch.cuda.memory_allocated() if cuda else 0) - before
        return engine

    ppo_setup.Run.sample, ppo_setup.make_rollout_engine = counted_sample, measured_make
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    config = run_config(cfg)
    ppo_setup.prepare_out(Path(cfg.out), config, resume=False, force=True)
    steps = []
    with ppo_setup.setup_run(cfg, Path(cfg.out), config, resume=False) as run:
        for _ in range(cfg.iterations):
            steps.append(ppo_iteration(cfg, run))
            run.step += 1
    measured = slice(1, None) if len(steps) > 1 else slice(0, None)  # the first step is warm-up

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    row = {name: mean([s[name] for s in steps[measured] if name in s]) for name in METRICS}
    if "time/sandbox_wait" not in steps[0]:  # before the overlap change the trainer logs the sandbox as time/sandbox
        row["time/sandbox_wait"] = row.pop("time/sandbox")
    row.pop("time/sandbox", None)
    n_tokens = mean(tokens[measured])
    return {
        **row,
        "response_tokens": n_tokens,
        "tokens_per_s": n_tokens / row["time/total"],
        "sample_tokens_per_s": n_tokens / mean(sampling[measured]),
        "rollout/logprob_diff": mean([s.get("rollout/logprob_diff", float("nan")) for s in steps[measured]]),
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan"),
        "engine_gib": engine_bytes[0] / 2**30,
        "steps": len(steps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-gpu-rl-step.json")
    parser.add_argument("--work", type=Path, default=None, help="where the model and the arms' runs go")
    parser.add_argument("--smoke", action="store_true", help="CPU, a tiny Qwen2 model, 2 steps of 8 samples")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--minibatch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--vllm-memory", type=float, default=0.25, help="--vllm-gpu-memory-utilization")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--arm-timeout", type=float, default=180.0, help="seconds one arm may run")
    parser.add_argument("--budget", type=float, default=460.0, help="seconds for the whole run, model build included")
    parser.add_argument("--arm", help=argparse.SUPPRESS)  # internal: run one arm in this process
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--arm-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="auto", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(run_arm(args)))
        return
    if args.smoke:
        args.iterations, args.batch_size, args.minibatch_size, args.max_new_tokens = 2, 8, 4, 8
        args.workers, args.device = 1, "cpu"
    start = time.monotonic()
    work = args.work or args.out.parent / ("bench-gpu-rl-step-smoke" if args.smoke else "bench-gpu-rl-step")
    # bf16 as the real checkpoint ships; the CPU smoke keeps fp32, the precision CPU training runs in.
    model = build_model(work / "model", SMOKE if args.smoke else QWEN_05B, "float32" if args.smoke else "bfloat16")
    results: dict[str, Any] = {}
    for arm in args.arms.split(","):
        left = args.budget - (time.monotonic() - start)
        if reason := why_not(arm, args.device):
            results[arm] = {"skipped": reason}
            continue
        if left < 30:
            results[arm] = {"skipped": f"not started: under 30 s of the --budget of {args.budget:.0f} s left"}
            continue
        cmd = [sys.executable, __file__, "--arm", arm, "--model", str(model), "--arm-out", str(work / arm),
               "--device", args.device, *_passed(args)]  # fmt: skip
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=min(args.arm_timeout, left), env=env)
            lines = proc.stdout.strip().splitlines()
            results[arm] = (
                json.loads(lines[-1]) if proc.returncode == 0 and lines else {"error": proc.stderr.strip()[-2000:]}
            )
        except subprocess.TimeoutExpired:
            results[arm] = {"error": f"stopped after {min(args.arm_timeout, left):.0f} s (--arm-timeout, --budget)"}
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "smoke": args.smoke,
        "model": "Qwen2 architecture, Qwen2.5-Coder-0.5B shape, random weights" if not args.smoke else "tiny Qwen2",
        "settings": {
            k: getattr(args, k)
            for k in (
                "iterations",
                "batch_size",
                "minibatch_size",
                "max_new_tokens",
                "lora_r",
                "vllm_memory",
                "workers",
            )
        },  # fmt: skip
        "device": _device_name(),
        "arms": results,
        "wall_s": time.monotonic() - start,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(results))
    print(f"wrote {args.out} ({report['wall_s']:.0f} s)")


def _passed(args: argparse.Namespace) -> list[str]:
    """The settings an arm's process needs, as flags."""
    names = ("iterations", "batch_size", "minibatch_size", "max_new_tokens", "lora_r", "vllm_memory", "workers")
    return [item for name in names for item in (f"--{name.replace('_', '-')}", str(getattr(args, name)))]


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def table(results: dict[str, Any]) -> str:
    """The arms side by side; a skipped or failed arm says why."""
    cols = ("tokens_per_s", "sample_tokens_per_s", "time/rollout", "time/sandbox_wait", "time/update",
            "time/weight_sync", "time/total", "peak_gib", "engine_gib", "rollout/logprob_diff")  # fmt: skip
    lines = [f"{'arm':10s}" + "".join(f"{c.split('/')[-1][:15]:>16s}" for c in cols)]
    base = results.get("hf", {}).get("tokens_per_s")
    for arm, row in results.items():
        if "tokens_per_s" not in row:
            lines.append(f"{arm:10s}  {row.get('skipped') or row.get('error', '?').splitlines()[-1]}")
            continue
        cells = "".join(f"{row[c]:16.4g}" for c in cols)
        ratio = f"   x{row['tokens_per_s'] / base:.2f} of hf" if base and arm != "hf" else ""
        lines.append(f"{arm:10s}{cells}{ratio}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
