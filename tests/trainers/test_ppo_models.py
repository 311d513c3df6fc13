"""PPO's policy and reference: which weights are stored in which dtype, and how many copies of the weights a run
holds with and without LoRA (parameter storage, and peak memory in a fresh process on a 31M-parameter model)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from execrl.benchmarks.synth import load_synth
from execrl.trainers import lora
from execrl.trainers.ppo_config import PPOConfig
from execrl.trainers.ppo_models import frozen_dtype, policy_and_reference
from execrl.trainers.tiny import build_tiny_model

BENCH = Path(__file__).resolve().parents[1] / "perf" / "bench_lora_memory.py"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = [p.prompt for p in load_synth("train")[:200]]
    folder = tmp_path_factory.mktemp("tiny") / "model"
    return build_tiny_model(folder, corpus, vocab_size=300, n_layer=2, d_model=64, max_positions=64)


@pytest.mark.parametrize(
    ("mixed_precision", "dtype"),
    [
        ("no", torch.float32),  # CPU, or --precision fp32: everything stays fp32, as before
        ("bf16", torch.bfloat16),
        ("fp16", torch.float16),
    ],
)
def test_frozen_weights_take_the_mixed_precision_dtype(mixed_precision, dtype) -> None:
    assert frozen_dtype(mixed_precision) == dtype


def _dtypes(module) -> dict[str, set]:
    kinds: dict[str, set] = {"trainable": set(), "frozen": set()}
    for p in module.parameters():
        kinds["trainable" if p.requires_grad else "frozen"].add(p.dtype)
    return kinds


@pytest.mark.parametrize(
    ("lora_r", "mixed_precision", "policy", "reference"),
    [
        # row: (LoRA rank, accelerate's mixed precision, policy's {trainable, frozen} dtypes, reference's dtypes)
        (0, "no", ({torch.float32}, set()), {torch.float32}),  # CPU default: all fp32
        (0, "bf16", ({torch.float32}, set()), {torch.bfloat16}),  # full FT: fp32 master weights, bf16 reference
        (4, "no", ({torch.float32}, {torch.float32}), None),  # LoRA on CPU: fp32 base, the reference is the base
        (4, "bf16", ({torch.float32}, {torch.bfloat16}), None),  # LoRA: bf16 frozen base, fp32 adapters + head
        (4, "fp16", ({torch.float32}, {torch.float16}), None),
    ],
)
def test_trained_weights_stay_fp32_and_frozen_ones_take_the_training_precision(
    tiny, tmp_path, lora_r, mixed_precision, policy, reference
) -> None:
    cfg = PPOConfig(model=str(tiny), out=tmp_path / "out", device="cpu", lora_r=lora_r)
    built, ref = policy_and_reference(cfg, torch.device("cpu"), mixed_precision)
    kinds = _dtypes(built)
    assert (kinds["trainable"], kinds["frozen"]) == policy
    if reference is None:
        assert isinstance(ref, lora.AdapterFreeReference) and ref.model is built.lm
    else:
        assert _dtypes(ref) == {"trainable": set(), "frozen": reference}


def _distinct_bytes(*modules) -> int:
    storages = {p.data_ptr(): p.numel() * p.element_size() for m in modules for p in m.parameters()}
    return sum(storages.values())


def test_a_lora_reference_adds_no_copy_of_the_weights_where_full_fine_tuning_holds_two(tiny, tmp_path) -> None:
    model_bytes = _distinct_bytes(
        policy_and_reference(PPOConfig(model=str(tiny), out=tmp_path), torch.device("cpu"), "no")[1]
    )
    for lora_r, copies in ((0, 2.0), (4, 1.0)):
        cfg = PPOConfig(model=str(tiny), out=tmp_path / "out", device="cpu", lora_r=lora_r, advantage="grpo")
        policy, ref = policy_and_reference(cfg, torch.device("cpu"), "no")
        held = _distinct_bytes(policy, getattr(ref, "model", ref))
        adapters = sum(p.numel() * p.element_size() for p in policy.parameters() if p.requires_grad) if lora_r else 0
        assert held == pytest.approx(copies * model_bytes + adapters), (lora_r, held, model_bytes)


def test_lora_lowers_the_peak_memory_of_policy_and_reference_by_at_least_one_model_copy(tmp_path) -> None:
    """The benchmark (tests/perf/bench_lora_memory.py) at a 31M-parameter size, 120 MB in fp32: each setup is
    measured in a fresh process (ru_maxrss)."""
    spec = importlib.util.spec_from_file_location("bench_lora_memory", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    n_params = bench.build_model(tmp_path, layers=6, d_model=512, vocab=24000)
    report = bench.compare(tmp_path, n_params, lora_r=8)
    full, with_lora, model_mb = report["full"], report["lora"], report["model_mb"]
    assert 25e6 < n_params < 60e6
    assert full["param_mb"] == pytest.approx(2 * model_mb, rel=0.01)  # policy + its reference copy
    assert with_lora["param_mb"] < 1.05 * model_mb  # one base + adapters
    # Peaks are VmHWM reset after the imports (`_reset_peak`): ru_maxrss, which only grows, once read 0 MB for LoRA.
    # Both forwards have read every weight by the first figure: the reference copy is resident, or absent.
    assert full["models_peak_mb"] - with_lora["models_peak_mb"] > 0.5 * model_mb, report
    # After an update full fine-tuning adds gradients and AdamW's moments for every weight too (measured: 272 MB
    # more than LoRA for a 120 MB model; the bound leaves room for the allocator's reuse).
    assert full["step_peak_mb"] - with_lora["step_peak_mb"] > 1.5 * model_mb, report


def _mlp_forwards(policy, batch: torch.Tensor, monkeypatch) -> int:
    """How many times each transformer block's MLP runs for one forward + backward pass of the policy. Counted by
    patching the class's `forward`: module hooks do not fire in a checkpoint's recomputation."""
    from transformers.models.gpt2 import modeling_gpt2

    calls = []
    forward = modeling_gpt2.GPT2MLP.forward

    def counted(self, *args, **kwargs):
        calls.append(1)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(modeling_gpt2.GPT2MLP, "forward", counted)
    logits, _ = policy(batch, torch.ones_like(batch))
    logits.float().mean().backward()
    monkeypatch.undo()
    return len(calls) // policy.lm.config.n_layer


@pytest.mark.parametrize(
    ("checkpointing", "lora_r", "forwards"),
    [
        (False, 0, 1),  # no checkpointing: each block runs once
        (True, 0, 2),  # checkpointing: each block runs again in the backward pass (its activations were dropped)
        (True, 4, 2),  # the same with LoRA adapters over a frozen base
    ],
)
def test_gradient_checkpointing_recomputes_the_blocks_during_the_update(
    tiny, tmp_path, monkeypatch, checkpointing, lora_r, forwards
) -> None:
    from execrl.trainers.ppo_models import update_mode

    cfg = PPOConfig(model=str(tiny), out=tmp_path / "o", device="cpu", gradient_checkpointing=checkpointing,
                    lora_r=lora_r)  # fmt: skip
    policy, _ = policy_and_reference(cfg, torch.device("cpu"), "no")
    batch = torch.randint(5, 200, (2, 12))
    update_mode(policy, checkpointing, training=True)
    assert _mlp_forwards(policy, batch, monkeypatch) == forwards
    update_mode(policy, checkpointing, training=False)
    assert not policy.training  # rollouts and log-prob passes stay in eval mode


def test_with_dropout_zeroed_train_mode_computes_what_eval_mode_does(tiny, tmp_path) -> None:
    from execrl.trainers.ppo_models import disable_dropout
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(tiny, resid_pdrop=0.3, embd_pdrop=0.3, attn_pdrop=0.3)
    batch = torch.randint(5, 200, (2, 12))
    with torch.no_grad():
        want = lm.eval()(batch).logits
        assert not torch.equal(lm.train()(batch).logits, want)  # dropout acts in train mode...
        disable_dropout(lm)
        assert torch.equal(lm.train()(batch).logits, want)  # ...and no longer once zeroed
