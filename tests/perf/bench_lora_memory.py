"""Memory of PPO's policy + reference with and without LoRA (`execrl.trainers.ppo_models.policy_and_reference`).

A GPT-2 model with random weights is built from its config (no download; default ~42M parameters) and saved;
then, each in a fresh process so that the peak is its own, the full fine-tuning setup (fp32 policy + its frozen
reference copy) and the LoRA one (one base, the reference being the base with its adapters off) are loaded on
the CPU in fp32 and take one AdamW step on a batch. Reported for each: the bytes of the distinct parameter
tensors of policy + reference (by storage pointer), and the process's peak RSS (`ru_maxrss`) above its peak
before loading: once both models have run a forward (every weight resident), and after the update step.

    .venv/bin/python tests/perf/bench_lora_memory.py [--layers 8] [--d-model 512] [--vocab 32000] [--json]
    .venv/bin/python tests/perf/bench_lora_memory.py --shape qwen2.5-0.5b --device cuda   # on a GPU: bf16

On a GPU the models are loaded for bf16 (frozen weights in bf16, trained ones fp32) and run under autocast; the
peaks are then `torch.cuda.max_memory_allocated`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

MODES = ("full", "lora")


def build_model(folder: Path, layers: int, d_model: int, vocab: int, shape: str = "gpt2") -> int:
    """A random model saved in `folder`: a GPT-2 of that shape, or (`shape="qwen2.5-0.5b"`) one with
    Qwen2.5-Coder-0.5B's config (494M parameters, saved in bf16, as that model is); returns its parameter count."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, Qwen2Config

    torch.manual_seed(0)
    if shape == "qwen2.5-0.5b":  # the published config.json of Qwen/Qwen2.5-Coder-0.5B
        config = Qwen2Config(
            vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
            num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1e6,
            tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151643,
        )  # fmt: skip
    else:
        config = GPT2Config(
            vocab_size=vocab, n_positions=256, n_embd=d_model, n_layer=layers, n_head=8, bos_token_id=0, eos_token_id=0
        )
    model = AutoModelForCausalLM.from_config(config)
    if shape != "gpt2":
        model = model.to(torch.bfloat16)
    model.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def _peak_mb(device: str) -> float:
    """The process's peak: RSS on the CPU (VmHWM), allocated memory on a GPU."""
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _reset_peak(device: str) -> None:
    """Start the peak afresh here: the imports' own transient peak would otherwise hide a smaller run's working set
    (ru_maxrss only grows: LoRA's step peak once read 0 MB). Linux resets VmHWM on writing 5 to clear_refs."""
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()
        return
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def measure(mode: str, model: Path, lora_r: int, device: str = "cpu") -> dict[str, float]:
    """One mode's figures, in this process (call it in a fresh one). On a GPU: bf16, as `--precision auto` there."""
    import contextlib

    import torch
    from execrl.trainers.devices import optimizer_and_schedule
    from execrl.trainers.ppo_config import PPOConfig
    from execrl.trainers.ppo_models import policy_and_reference
    from execrl.trainers.rollout import position_ids

    torch.manual_seed(0)
    on = torch.device(device)
    input_ids = torch.randint(0, 1000, (4, 64), device=on)
    attention_mask = torch.ones_like(input_ids)
    mixed = "bf16" if device == "cuda" else "no"
    autocast = torch.autocast("cuda", torch.bfloat16) if device == "cuda" else contextlib.nullcontext()
    _reset_peak(device)
    before = _peak_mb(device)
    cfg = PPOConfig(model=str(model), out=model / "unused", lora_r=lora_r if mode == "lora" else 0, device=device)
    policy, ref = policy_and_reference(cfg, on, mixed)
    policy.to(on)  # what accelerate's prepare does
    ref_module = getattr(ref, "model", ref)  # AdapterFreeReference holds the policy's own LM
    storages = {p.data_ptr(): p.numel() * p.element_size() for m in (policy, ref_module) for p in m.parameters()}
    # 1. models: both forwards once without gradients, which reads (so makes resident) every weight: weights that
    # from_pretrained left mapped from the file count from here on
    with torch.no_grad(), autocast:
        policy(input_ids, attention_mask)
        ref_logits = ref(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask))
    models = _peak_mb(device)
    # 2. one update: gradients and AdamW's moments for what trains
    optimizer, _ = optimizer_and_schedule(policy.parameters(), 1e-4, 0.0, 0, 10)
    with autocast:
        logits, values = policy(input_ids, attention_mask)
        loss = (logits.float().log_softmax(-1) - ref_logits.logits.float().log_softmax(-1)).pow(2).mean()
        loss = loss + values.mean()
    loss.backward()
    optimizer.step()
    return {
        "param_mb": sum(storages.values()) / 2**20,
        "trainable_params": sum(p.numel() for p in policy.parameters() if p.requires_grad),
        "models_peak_mb": models - before,
        "step_peak_mb": _peak_mb(device) - before,
    }


def compare(model: Path, n_params: int, lora_r: int, device: str = "cpu") -> dict:
    """Both modes' figures for the model saved in `model`, each measured in a fresh process."""
    figures = {}
    for mode in MODES:
        child = [sys.executable, __file__, "--measure", mode, "--model", str(model), "--lora-r", str(lora_r)]
        done = subprocess.run([*child, "--device", device], capture_output=True, text=True, check=True, timeout=600)
        figures[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    return {"params": n_params, "model_mb": n_params * 4 / 2**20, **figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--shape", choices=("gpt2", "qwen2.5-0.5b"), default="gpt2", help="qwen2.5-0.5b: its config")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: bf16, peak allocated memory")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--measure", choices=MODES, help=argparse.SUPPRESS)  # the child's side
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.model, args.lora_r, args.device)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        n_params = build_model(Path(tmp), args.layers, args.d_model, args.vocab, args.shape)
        report = compare(Path(tmp), n_params, args.lora_r, args.device)
    if args.json:
        print(json.dumps(report))
        return 0
    where = "bf16 autocast, peak allocated GPU memory" if args.device == "cuda" else "fp32, peak RSS"
    print(f"model: {n_params / 1e6:.1f}M parameters ({args.shape}), {report['model_mb']:.0f} MB in fp32; {where}")
    print("| setup | distinct parameter MB (policy + ref) | trainable params | peak: models | after 1 step |")
    print("|---|---|---|---|---|")
    for mode in MODES:
        f = report[mode]
        print(
            f"| {mode} | {f['param_mb']:.0f} | {f['trainable_params']:,} | {f['models_peak_mb']:.0f} MB "
            f"| {f['step_peak_mb']:.0f} MB |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
