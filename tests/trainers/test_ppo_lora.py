"""PPO with `--lora-r` end to end on a tiny model: it trains, checkpoints the adapter, resumes exactly, ends as a
merged Hugging Face folder, and builds no value head without GAE; its flags reach `--help` and the pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from execrl.benchmarks.synth import load_synth, sft_corpus
from execrl.trainers import lora
from execrl.trainers.ppo import train_ppo
from execrl.trainers.ppo_config import PRESETS, PPOConfig
from execrl.trainers.tiny import build_tiny_model
from execrl.trainers.tracking import read_metrics

from tests.commands import command

main = command("train", "ppo")
FAMILY = "clamp"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny model whose tokenizer knows the family's text (its programs mostly fail: GAE's
    advantages still differ per token, so the adapters move)."""
    rows = sft_corpus([p for p in load_synth("train") if p.metadata["family"] == FAMILY], wrong_share=0.5, seed=0)
    folder = tmp_path_factory.mktemp("tiny") / "model"
    corpus = [r["prompt"] + r["completion"] for r in rows]
    return build_tiny_model(folder, corpus, vocab_size=300, n_layer=2, d_model=64, max_positions=128)


def _cfg(model: Path, out: Path, **overrides) -> PPOConfig:
    base = dict(
        preset="cpu-tiny",
        families=FAMILY,
        batch_size=4,
        minibatch_size=4,
        max_new_tokens=12,
        max_prompt_tokens=64,
        eval_every=0,
        workers=1,
        device="cpu",
        lora_r=8,
        save_every=1,
    )
    return PPOConfig(model=str(model), out=out, **{**PRESETS["cpu-tiny"], **base, **overrides})


def _curve(folder: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in read_metrics(folder / "metrics.jsonl")]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def test_a_lora_run_checkpoints_its_adapter_resumes_exactly_and_ends_as_a_merged_model_folder(tiny, tmp_path) -> None:
    whole = train_ppo(_cfg(tiny, tmp_path / "whole", iterations=2))
    split = tmp_path / "split"
    train_ppo(_cfg(tiny, split, iterations=2, stop_after=1))
    policy_dir = split / "checkpoint" / "policy"
    assert lora.is_adapter_folder(policy_dir) and not (policy_dir / "model.safetensors").exists()
    assert (policy_dir / "value_head.pt").is_file(), "GAE's value head is checkpointed beside the adapter"
    train_ppo(_cfg(tiny, split, iterations=2, resume=True))

    rows = _curve(whole)
    assert [r["step"] for r in rows] == [1, 2] and _curve(split) == rows
    assert rows[0]["ppo/kl"] == 0, "zero-initialised adapters: the policy starts as its reference, exactly"
    assert rows[1]["ppo/kl"] != 0, "the first update moved the policy away from its reference"
    assert "ppo/value_loss" in rows[0]

    # OUT: a plain model folder (the adapters merged in) with the value head, that loads without peft
    assert (whole / "value_head.pt").is_file() and not lora.is_adapter_folder(whole)
    before, after = _weights(tiny), _weights(whole)
    assert set(after) <= set(before)
    assert torch.equal(after["transformer.wte.weight"], before["transformer.wte.weight"]), "not a LoRA target"
    assert any(not torch.equal(after[k], before[k]) for k in after if "c_attn" in k), "the adapters are merged"
    split_weights = _weights(split)
    assert all(torch.equal(split_weights[k], after[k]) for k in after), "the resumed run ends where the whole did"
    from transformers import AutoModelForCausalLM

    assert (
        AutoModelForCausalLM.from_pretrained(whole).num_parameters()
        == AutoModelForCausalLM.from_pretrained(tiny).num_parameters()
    )


def test_a_critic_free_lora_run_builds_and_saves_no_value_head(tiny, tmp_path) -> None:
    out = train_ppo(_cfg(tiny, tmp_path / "grpo", iterations=1, advantage="grpo"))
    assert not list(out.rglob("value_head.pt")), "no value head in the checkpoint nor in OUT"
    assert lora.is_adapter_folder(out / "checkpoint" / "policy") and not lora.is_adapter_folder(out)
    (row,) = read_metrics(out / "metrics.jsonl")
    assert "ppo/value_loss" not in row and "ppo/kl_loss" in row


def test_help_lists_the_lora_flags(capsys) -> None:
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--lora-r" in text and "--lora-alpha" in text and "--lora-dropout" in text
    assert "LoRA rank; 0 trains all weights" in text


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--lora-r", "-1"], "--lora-r -1"),  # a negative rank
        (["--lora-r", "8", "--lora-alpha", "0"], "--lora-alpha 0"),  # alpha 0 scales the update to nothing
        (["--lora-r", "8", "--lora-dropout", "0.1"], "--lora-dropout 0.1"),  # PPO keeps dropout off
    ],
)
def test_lora_flag_values_that_cannot_work_exit_2_naming_the_flag(tmp_path, capsys, flags, named) -> None:
    assert main(["--model", str(tmp_path), "--out", str(tmp_path / "o"), *flags]) == 2
    assert named in capsys.readouterr().err


def test_the_pipelines_ppo_section_takes_the_lora_settings(tmp_path) -> None:
    from execrl.trainers.pipeline import PipelineConfig, load_settings

    path = tmp_path / "c.yaml"
    path.write_text("ppo:\n  lora_r: 16\n  lora_alpha: 32\n")
    ppo = load_settings(PipelineConfig(out=tmp_path / "o", config=path)).ppo
    assert (ppo.lora_r, ppo.lora_alpha, ppo.lora_dropout) == (16, 32, 0.0)
