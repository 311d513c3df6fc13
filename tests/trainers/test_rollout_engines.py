"""The rollout-engine seam: HF generate's own log-probs, a fake engine that must be fed every update, LoRA's merged
weights, the token layout every engine shares, `--rollout`'s refusals, and the real vLLM engine where it runs."""

from __future__ import annotations

import copy
import hashlib
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from execrl.benchmarks.synth import load_synth, sft_corpus  # noqa: E402
from execrl.harness.records import ExecResult, Verdict  # noqa: E402
from execrl.trainers import ppo, ppo_setup  # noqa: E402
from execrl.trainers.ppo import train_ppo  # noqa: E402
from execrl.trainers.ppo_config import PRESETS, PPOConfig  # noqa: E402
from execrl.trainers.rollout import PolicyWithValue, response_logprobs, sample  # noqa: E402
from execrl.trainers.rollout_engines import (  # noqa: E402
    HFRolloutEngine,
    policy_weights,
    rollout_from_tokens,
    vllm_unavailable,
)
from execrl.trainers.tiny import build_tiny_model  # noqa: E402
from execrl.trainers.tracking import read_metrics  # noqa: E402

from tests.commands import command  # noqa: E402

PROMPTS = ["def add(a, b):\n", "def neg(x):\n"]
STOPS = [["\n\n", "}"], ["')"]]
FAMILY = "clamp"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Path]:
    """(lm, tokenizer, folder): the tiny model with large random weights, so that samples vary and stops occur."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    corpus = ["def add(a, b):\n    return a + b\n", "def neg(x):\n    return -x\n", "print('hello world')\n"] * 30
    path = build_tiny_model(tmp_path_factory.mktemp("engines") / "model", corpus)
    lm, tokenizer = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    with torch.no_grad():
        for param in lm.parameters():
            if param.dim() == 2:
                param.normal_(0.0, 0.3)
    lm.save_pretrained(path)  # the folder holds these weights too (the vLLM test loads it)
    return lm.eval(), tokenizer, path


def _trainer_logprobs(lm: Any, rollout: Any, temperature: float) -> torch.Tensor:
    """The trainer's recomputed log-probs of a rollout's response tokens (B, A), as `ppo.rollout_logprobs` does."""
    with torch.no_grad():
        logits, _ = PolicyWithValue(lm, value_head=False)(rollout.input_ids, rollout.attention_mask)
    return response_logprobs(logits, rollout.response_ids, rollout.query_ids.shape[1], temperature)[0]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_the_hf_engine_draws_the_same_tokens_as_plain_sampling_and_reports_the_trainers_log_probs(
    tiny, temperature: float
) -> None:
    lm, tokenizer, _ = tiny
    kwargs = dict(samples_per_prompt=4, max_new_tokens=14, temperature=temperature, max_prompt_tokens=64)
    torch.manual_seed(1)
    plain = sample(lm, tokenizer, PROMPTS, STOPS, **kwargs)
    torch.manual_seed(1)
    engine = HFRolloutEngine(lm, tokenizer).sample(PROMPTS, STOPS, **kwargs)
    assert torch.equal(engine.response_ids, plain.response_ids) and engine.texts == plain.texts
    assert plain.logprobs is None and engine.logprobs is not None
    mask = engine.response_mask.bool()
    assert mask.sum() > 30, "enough tokens for the comparison to mean something"
    gap = (_trainer_logprobs(lm, engine, temperature) - engine.logprobs)[mask].abs()
    assert gap.max().item() < 1e-4, "generate's KV-cached scores and the full forward differ by rounding only"
    assert engine.logprobs[~mask].abs().sum() == 0


def test_greedy_rollouts_carry_no_engine_log_probs(tiny) -> None:
    lm, tokenizer, _ = tiny
    rollout = HFRolloutEngine(lm, tokenizer).sample(
        PROMPTS, STOPS, samples_per_prompt=1, max_new_tokens=6, temperature=0.0, max_prompt_tokens=64
    )
    assert rollout.logprobs is None


def test_an_engines_token_rows_give_the_hf_engines_layout_texts_and_log_probs(tiny) -> None:
    """`rollout_from_tokens` (the vLLM engine's assembly) rebuilds an HF rollout from its rows alone."""
    lm, tokenizer, _ = tiny
    torch.manual_seed(2)
    hf = HFRolloutEngine(lm, tokenizer).sample(
        PROMPTS, STOPS, samples_per_prompt=3, max_new_tokens=16, temperature=1.0, max_prompt_tokens=64
    )
    lengths = hf.response_mask.sum(1).tolist()
    rows = [hf.response_ids[i, :n].tolist() for i, n in enumerate(lengths)]
    logprobs = [hf.logprobs[i, :n].tolist() for i, n in enumerate(lengths)]
    stops = [STOPS[i // 3] for i in range(len(rows))]
    rebuilt = rollout_from_tokens(tokenizer, hf.query_ids, hf.query_mask, rows, logprobs, stops)
    assert rebuilt.texts == hf.texts
    width = max(lengths)
    assert torch.equal(rebuilt.response_ids, hf.response_ids[:, :width])
    assert torch.equal(rebuilt.response_mask, hf.response_mask[:, :width])
    assert torch.allclose(rebuilt.logprobs, hf.logprobs[:, :width])


def test_joined_and_selected_rollouts_keep_each_rows_engine_log_probs(tiny) -> None:
    """Dynamic sampling joins draws of other widths (`concat_rollouts`, `select_rows`): the engine's log-probs
    must follow their rows, 0 on the added padding."""
    from execrl.trainers.rollout import concat_rollouts, select_rows

    lm, tokenizer, _ = tiny
    engine = HFRolloutEngine(lm, tokenizer)
    torch.manual_seed(6)
    short = engine.sample(["x\n"], [["\n"]], samples_per_prompt=2, max_new_tokens=3, temperature=1.0,
                          max_prompt_tokens=64)  # fmt: skip
    long = engine.sample(
        PROMPTS, STOPS, samples_per_prompt=2, max_new_tokens=12, temperature=1.0, max_prompt_tokens=64
    )
    joined = concat_rollouts([select_rows(long, [3, 0]), short], tokenizer.pad_token_id)
    expected = [long.logprobs[3], long.logprobs[0], short.logprobs[0], short.logprobs[1]]
    for i, row in enumerate(expected):
        assert torch.equal(joined.logprobs[i, : row.shape[0]], row), i
        assert joined.logprobs[i, row.shape[0] :].abs().sum() == 0, i
    assert torch.equal(joined.logprobs * (1 - joined.response_mask), torch.zeros_like(joined.logprobs))


def test_policy_weights_of_a_lora_model_are_the_merged_weights_under_the_base_checkpoints_names(tiny) -> None:
    from peft import LoraConfig, get_peft_model

    lm, _, _ = tiny
    base_names = {name for name, _ in lm.named_parameters()}
    peft_lm = get_peft_model(
        copy.deepcopy(lm), LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn", "c_fc"], fan_in_fan_out=True)
    )
    with torch.no_grad():  # peft starts B at 0, which would merge to W itself and prove nothing
        for name, param in peft_lm.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)
    before = {name: p.clone() for name, p in peft_lm.named_parameters()}
    got = dict(policy_weights(peft_lm))
    merged = dict(copy.deepcopy(peft_lm).merge_and_unload().named_parameters())
    assert set(got) == base_names == set(merged)
    for name in base_names:
        assert torch.allclose(got[name], merged[name], atol=1e-6), name
    assert any(not torch.allclose(got[n], p) for n, p in lm.named_parameters()), "the adapters changed something"
    assert all(torch.equal(p, before[n]) for n, p in peft_lm.named_parameters()), "the policy itself is untouched"


def _hash(lm: Any) -> str:
    return hashlib.sha256(b"".join(p.detach().numpy().tobytes() for _, p in sorted(lm.named_parameters()))).hexdigest()


class FakeEngine:
    """A `RolloutEngine` with weights of its own: it samples from its copy of the policy, which only
    `load_weights` updates, and records what it held at each rollout against the policy at that moment."""

    def __init__(self, lm: Any, tokenizer: Any, shift: float = 0.0) -> None:
        self.policy = lm  # the trainer's module, only read to check the engine against it
        self.own = copy.deepcopy(lm)
        self.inner = HFRolloutEngine(self.own, tokenizer)
        self.shift = shift  # reported log-probs are this much lower than the engine's own
        self.loads = 0
        self.seen: list[tuple[str, str]] = []  # (engine's weights, policy's weights) at each rollout

    def sample(self, prompts, stops, **kwargs) -> Any:
        self.seen.append((_hash(self.own), _hash(self.policy)))
        rollout = self.inner.sample(prompts, stops, **kwargs)
        if rollout.logprobs is not None:
            rollout.logprobs = (rollout.logprobs - self.shift) * rollout.response_mask
        return rollout

    def load_weights(self, lm: Any) -> None:
        received = dict(policy_weights(lm))
        with torch.no_grad():
            for name, param in self.own.named_parameters():
                param.copy_(received[name])
        self.loads += 1


def _ppo_cfg(tmp_path: Path, **overrides: Any) -> PPOConfig:
    rows = sft_corpus([p for p in load_synth("train") if p.metadata["family"] == FAMILY], wrong_share=0.0)
    model = build_tiny_model(tmp_path / "m0", [r["prompt"] + r["completion"] for r in rows], vocab_size=300,
                             n_layer=1, d_model=32, n_head=2, max_positions=128)  # fmt: skip
    base = dict(preset="cpu-tiny", families=FAMILY, iterations=3, batch_size=8, minibatch_size=4, max_new_tokens=12,
                max_prompt_tokens=64, eval_every=0, workers=1, device="cpu", target_kl=0.0)  # fmt: skip
    return PPOConfig(model=str(model), out=tmp_path / "ppo", **{**PRESETS["cpu-tiny"], **base, **overrides})


@pytest.fixture()
def fake_sandbox(monkeypatch) -> None:
    """Verdicts from the program's length: the trainer's side is what these tests watch, not the sandbox."""
    monkeypatch.setattr(
        ppo_setup.Run,
        "execute",
        lambda self, problems, programs: [
            ExecResult(Verdict.PASSED if len(p) % 3 else Verdict.FAILED) for p in programs
        ],
    )


@pytest.fixture()
def loss_spy(monkeypatch) -> list[tuple[Any, Any]]:
    """The (is_weights, mask) of every `policy_loss` call PPO makes."""
    passed: list[tuple[Any, Any]] = []
    real = ppo.policy_loss

    def spy(logprobs, old_logprobs, advantages, mask, *args, is_weights=None, **kwargs):
        passed.append((is_weights, mask))
        return real(logprobs, old_logprobs, advantages, mask, *args, is_weights=is_weights, **kwargs)

    monkeypatch.setattr(ppo, "policy_loss", spy)
    return passed


def test_a_fake_engine_receives_the_updated_weights_after_every_update_and_samples_every_rollout(
    tmp_path, monkeypatch, fake_sandbox, loss_spy
) -> None:
    engines: list[FakeEngine] = []

    def make(cfg, lm, tokenizer, accelerator):
        engines.append(FakeEngine(lm, tokenizer))
        return engines[-1]

    monkeypatch.setattr(ppo_setup, "make_rollout_engine", make)
    out = train_ppo(_ppo_cfg(tmp_path))
    (engine,) = engines
    assert len(engine.seen) == 3, "every rollout came from the engine"
    assert engine.loads == 3, "one load after each update"
    assert all(own == policy for own, policy in engine.seen), "each rollout sampled the policy's current weights"
    assert len({policy for _, policy in engine.seen}) == 3, "the policy moved at every step, so each check counts"
    rows = read_metrics(out / "metrics.jsonl")
    assert all(r["rollout/logprob_diff"] < 1e-4 for r in rows), "the engine sampled from the trainer's weights"
    assert loss_spy and all(w is None for w, _ in loss_spy), "--tis-cap 0 (the default) leaves the loss unweighted"


def test_tis_weights_reach_the_policy_loss_capped_where_the_engine_underrates_the_tokens(
    tmp_path, monkeypatch, fake_sandbox, loss_spy
) -> None:
    """The engine reports log-probs 1 nat below the trainer's: every weight is exp(1) = 2.72, capped at 2."""
    monkeypatch.setattr(ppo_setup, "make_rollout_engine", lambda cfg, lm, tok, acc: FakeEngine(lm, tok, shift=1.0))
    out = train_ppo(_ppo_cfg(tmp_path, iterations=1, tis_cap=2.0))
    assert loss_spy
    for weights, mask in loss_spy:
        assert torch.allclose(weights[mask.bool()], torch.tensor(2.0), atol=1e-3)
    (row,) = read_metrics(out / "metrics.jsonl")
    assert row["rollout/logprob_diff"] == pytest.approx(1.0, abs=1e-3)


main = command("train", "ppo")


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--tis-cap", "-1"], "--tis-cap"),
        (["--vllm-gpu-memory-utilization", "0"], "--vllm-gpu-memory-utilization"),
        (["--vllm-gpu-memory-utilization", "1.5"], "--vllm-gpu-memory-utilization"),
        (["--vllm-tensor-parallel-size", "0"], "--vllm-tensor-parallel-size"),
        (["--rollout", "sglang"], "--rollout"),
        (["--rollout", "vllm", "--device", "cpu"], "--rollout vllm"),
    ],
    ids=["negative-tis-cap", "no-gpu-memory", "more-than-all-gpu-memory", "no-gpus", "unknown-engine", "vllm-on-cpu"],
)
def test_bad_rollout_flags_exit_2_naming_the_flag(tmp_path, capsys, flags, named) -> None:
    assert main(["--model", str(tmp_path), "--out", str(tmp_path / "o"), *flags]) == 2
    assert named in capsys.readouterr().err


VLLM_MISSING = vllm_unavailable()


@pytest.mark.skipif(VLLM_MISSING is None, reason="vLLM runs here: the refusal cannot be seen")
def test_rollout_vllm_where_it_cannot_run_exits_2_with_the_reason_and_writes_nothing(tmp_path, capsys) -> None:
    assert main(["--model", str(tmp_path), "--out", str(tmp_path / "o"), "--rollout", "vllm"]) == 2
    err = capsys.readouterr().err
    assert "--rollout vllm" in err and "--rollout hf" in err
    assert not (tmp_path / "o").exists(), "refused before the output folder was claimed"


@pytest.mark.skipif(
    VLLM_MISSING is not None,
    reason=f"the real vLLM engine cannot run here: {VLLM_MISSING}. vLLM's PyPI wheels are CUDA builds pinned to "
    "their own torch (vllm 0.33.0: torch==2.14.0, transformers<5.21), so this CPU machine cannot run it",
)
def test_the_vllm_engine_samples_the_trainers_distribution_and_follows_loaded_weights(tiny) -> None:
    from execrl.trainers.devices import make_accelerator
    from execrl.trainers.vllm_rollout import VLLMRolloutEngine

    lm, tokenizer, path = tiny
    accelerator = make_accelerator("cuda", "fp32")
    engine = VLLMRolloutEngine(str(path), tokenizer, gpu_memory_utilization=0.2, tensor_parallel_size=1,
                               max_model_len=128, precision="fp32", seed=0, accelerator=accelerator)  # fmt: skip
    kwargs = dict(samples_per_prompt=8, max_new_tokens=16, temperature=1.0, max_prompt_tokens=64)
    policy = copy.deepcopy(lm).to(accelerator.device)

    def gap(rollout) -> float:
        mask = rollout.response_mask.bool()
        return (_trainer_logprobs(policy, rollout, 1.0) - rollout.logprobs)[mask].abs().mean().item()

    rollout = engine.sample(PROMPTS, STOPS, **kwargs)
    assert rollout.response_mask.sum() > 40 and len(rollout.texts) == 16
    assert gap(rollout) < 1e-3, "fp32 engine and trainer: the same distribution"
    with torch.no_grad():  # an update the engine has not been given yet
        for param in policy.parameters():
            param.add_(torch.randn_like(param) * 0.3)
    stale = gap(engine.sample(PROMPTS, STOPS, **kwargs))
    engine.load_weights(policy)
    fresh = gap(engine.sample(PROMPTS, STOPS, **kwargs))
    assert fresh < 1e-3 < stale, (fresh, stale)


class StandInLLM:
    """`vllm.LLM` as far as the vLLM engine uses it, for this CPU machine where vLLM cannot run: it samples with HF
    generate (`sample_tokens`) from its own copy of the model folder and answers in vLLM's output shapes
    (RequestOutput.outputs: CompletionOutput with index, token_ids, logprobs as one {token: Logprob} per step,
    here in reverse index order), and `apply_model` hands its model, whose `load_weights` takes (name, tensor)."""

    def __init__(self, model: str, **kwargs: Any) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.kwargs = kwargs
        self.lm, self.tokenizer = (
            AutoModelForCausalLM.from_pretrained(model).eval(),
            AutoTokenizer.from_pretrained(model),
        )
        self.params: list[Any] = []
        self.resets = 0

    def generate(self, prompts: list[dict], params: list[Any], use_tqdm: bool) -> list[Any]:
        from execrl.harness.generation.hf_sampling import Sampling, sample_tokens

        self.params += params
        outputs = []
        for prompt, p in zip(prompts, params, strict=True):
            torch.manual_seed(p.seed)
            ids = torch.tensor([prompt["prompt_token_ids"]] * p.n)
            sampling, stops = Sampling(p.temperature), [p.stop or []] * p.n
            got = sample_tokens(self.lm, self.tokenizer, ids, torch.ones_like(ids), stops,
                                max_new_tokens=p.max_tokens, sampling=sampling, logprobs=True)  # fmt: skip
            completions = []
            for j in range(p.n):
                n = int(got.response_mask[j].sum())
                tokens, logprobs = got.response_ids[j, :n].tolist(), got.logprobs[j, :n].tolist()
                steps = [{t: SimpleNamespace(logprob=lp)} for t, lp in zip(tokens, logprobs, strict=True)]
                completions.append(SimpleNamespace(index=j, token_ids=tokens, logprobs=steps))
            outputs.append(SimpleNamespace(outputs=completions[::-1]))
        return outputs

    def apply_model(self, func: Any) -> list[Any]:
        lm = self.lm

        class Model:
            def load_weights(self, weights: Any) -> None:
                params = dict(lm.named_parameters())
                for name, tensor in weights:
                    params[name].data.copy_(tensor)

        return [func(Model())]

    def reset_prefix_cache(self) -> bool:
        self.resets += 1
        return True


def test_the_vllm_engine_with_a_stand_in_for_vllm_samples_the_trainers_distribution_and_follows_loaded_weights(
    tiny, monkeypatch
) -> None:
    from execrl.trainers import vllm_rollout

    lm, tokenizer, path = tiny
    stand_in = SimpleNamespace(LLM=StandInLLM, SamplingParams=lambda **kw: SimpleNamespace(**kw))
    monkeypatch.setitem(sys.modules, "vllm", stand_in)
    monkeypatch.setattr(vllm_rollout, "vllm_unavailable", lambda: None)
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(name, "0")  # restored after: the engine sets the external launcher's variables
    accelerator = SimpleNamespace(num_processes=1, process_index=0, local_process_index=0, device=torch.device("cpu"))
    engine = vllm_rollout.VLLMRolloutEngine(
        str(path), tokenizer, gpu_memory_utilization=0.2, tensor_parallel_size=1, max_model_len=128, precision="fp32",
        seed=0, accelerator=accelerator,
    )  # fmt: skip
    llm = engine.llm
    assert llm.kwargs["distributed_executor_backend"] == "external_launcher", "in this process, not a subprocess"
    assert llm.kwargs["logprobs_mode"] == "processed_logprobs", "log-probs after temperature, as the trainer's"
    assert llm.kwargs["gpu_memory_utilization"] == 0.2 and llm.kwargs["dtype"] == "float32"
    policy = copy.deepcopy(lm)
    kwargs = dict(samples_per_prompt=3, max_new_tokens=12, temperature=0.7, max_prompt_tokens=64)

    def gap(rollout: Any) -> float:
        mask = rollout.response_mask.bool()
        return (_trainer_logprobs(policy, rollout, 0.7) - rollout.logprobs)[mask].abs().max().item()

    torch.manual_seed(5)
    rollout = engine.sample(PROMPTS, STOPS, **kwargs)
    assert len(rollout.texts) == 6 and rollout.response_mask.sum() > 20
    assert [p.stop for p in llm.params] == STOPS and all(p.top_p == 1.0 and p.top_k == 0 for p in llm.params)
    assert llm.params[1].seed == llm.params[0].seed + 3, "vLLM seeds sample j with seed + j: prompts G apart"
    assert gap(rollout) < 1e-4, "the engine's log-probs are the trainer's for the same weights"
    with torch.no_grad():  # an update the engine has not been given yet
        for param in policy.parameters():
            param.add_(torch.randn_like(param) * 0.3)
    assert gap(engine.sample(PROMPTS, STOPS, **kwargs)) > 1e-2
    engine.load_weights(policy)
    assert llm.resets == 1, "the prefix cache holds the old weights' KV blocks"
    assert _hash(llm.lm) == _hash(policy)
    assert gap(engine.sample(PROMPTS, STOPS, **kwargs)) < 1e-4
