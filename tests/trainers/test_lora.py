"""LoRA for PPO: the reference is the base model with the adapters off, merged weights match peft's own merge, and
a merged folder loads without peft."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from execrl.benchmarks.synth import load_synth
from execrl.trainers import lora
from execrl.trainers.ppo_config import PPOConfig
from execrl.trainers.ppo_models import policy_and_reference
from execrl.trainers.rollout import position_ids
from execrl.trainers.tiny import build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = [p.prompt for p in load_synth("train")[:200]]
    folder = tmp_path_factory.mktemp("tiny") / "model"
    return build_tiny_model(folder, corpus, vocab_size=300, n_layer=2, d_model=64, max_positions=64)


def _batch(vocab: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    input_ids = torch.randint(0, vocab, (3, 12))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, :4] = 0  # one left-padded row, as rollouts are
    return {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids(attention_mask)}


def _lora_policy(tiny: Path, tmp_path: Path, steps: int = 1, **overrides):
    """A LoRA policy and its reference (fp32, CPU) after `steps` AdamW steps that move the adapters."""
    cfg = PPOConfig(model=str(tiny), out=tmp_path / "out", device="cpu", lora_r=4, **overrides)
    policy, ref = policy_and_reference(cfg, torch.device("cpu"), "no")
    batch = _batch(policy.lm.config.vocab_size)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        logits, _ = policy(batch["input_ids"], batch["attention_mask"])
        logits.log_softmax(-1)[..., 0].mean().backward()  # push every position toward token 0
        optimizer.step()
        optimizer.zero_grad()
    return policy, ref, batch


def _base_logits(tiny: Path, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    with torch.no_grad():
        return AutoModelForCausalLM.from_pretrained(tiny).eval()(**batch).logits


@pytest.mark.parametrize("gradient_checkpointing", [False, True])
def test_the_reference_gives_the_base_models_logits_after_the_policy_has_taken_update_steps(
    tiny, tmp_path, gradient_checkpointing
) -> None:
    policy, ref, batch = _lora_policy(tiny, tmp_path, steps=2, gradient_checkpointing=gradient_checkpointing)
    base = _base_logits(tiny, batch)
    with torch.no_grad():
        policy_logits = policy.lm(**batch).logits
    assert (policy_logits - base).abs().max() > 1e-2, "the steps moved the policy away from the base"
    ref_logits = ref(**batch).logits
    assert torch.equal(ref_logits, base)
    assert not ref_logits.requires_grad
    with torch.no_grad():  # the adapters are back on after the reference's call
        assert torch.equal(policy.lm(**batch).logits, policy_logits)


def test_only_the_adapters_and_the_value_head_train_and_the_base_is_held_once(tiny, tmp_path) -> None:
    policy, ref, _ = _lora_policy(tiny, tmp_path, steps=0)
    trainable = {name for name, p in policy.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name or name.startswith("v_head.") for name in trainable)
    assert {"v_head.weight", "v_head.bias"} <= trainable, "GAE's value head trains"
    assert isinstance(ref, lora.AdapterFreeReference) and ref.model is policy.lm


def test_merged_state_dict_is_peft_merge_under_the_base_models_names_and_leaves_the_model_as_it_was(
    tiny, tmp_path
) -> None:
    from transformers import AutoModelForCausalLM

    policy, _, batch = _lora_policy(tiny, tmp_path)
    with torch.no_grad():
        before = policy.lm(**batch).logits
    merged = lora.merged_state_dict(policy.lm)
    expected = copy.deepcopy(policy.lm).merge_and_unload().state_dict()
    assert set(merged) == set(AutoModelForCausalLM.from_pretrained(tiny).state_dict()) == set(expected)
    for key, tensor in expected.items():
        torch.testing.assert_close(merged[key], tensor, rtol=0, atol=1e-6, msg=key)
    assert merged["lm_head.weight"] is merged["transformer.wte.weight"], "tied weights stay one tensor"
    changed = [k for k in merged if "c_attn.weight" in k]
    base = AutoModelForCausalLM.from_pretrained(tiny).state_dict()
    assert changed and all(not torch.equal(merged[k], base[k]) for k in changed), "the adapters are folded in"
    with torch.no_grad():
        assert torch.equal(policy.lm(**batch).logits, before), "the live model is untouched"
    assert {t.dtype for t in lora.merged_state_dict(policy.lm, dtype=torch.bfloat16).values()} == {torch.bfloat16}


def test_a_saved_merged_folder_loads_without_peft_and_computes_the_policys_logits(tiny, tmp_path) -> None:
    from transformers import AutoModelForCausalLM

    policy, _, batch = _lora_policy(tiny, tmp_path)
    lora.save_merged(policy.lm, tmp_path / "merged")
    assert not lora.is_adapter_folder(tmp_path / "merged")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    assert loaded.dtype == torch.float32 and not lora.is_lora(loaded)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, policy.lm(**batch).logits, rtol=0, atol=1e-5)


def test_merged_state_dict_of_a_model_without_adapters_is_its_own_state_dict(tiny) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny)
    plain, own = lora.merged_state_dict(model), model.state_dict()
    assert set(plain) == set(own) and all(plain[k].data_ptr() == own[k].data_ptr() for k in own), "no copies"
    halves = lora.merged_state_dict(model, dtype=torch.bfloat16)
    assert all(halves[k].dtype == torch.bfloat16 and torch.equal(halves[k], own[k].bfloat16()) for k in own)
