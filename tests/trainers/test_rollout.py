"""Rollouts: the log-prob and value offsets against naive loops, and one sampling distribution with `generate`."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from execrl.harness.generation.base import SamplingRequest  # noqa: E402
from execrl.harness.generation.hf_engine import HFGenerator  # noqa: E402
from execrl.trainers.rollout import response_logprobs, response_values, sample  # noqa: E402
from execrl.trainers.tiny import build_tiny_model  # noqa: E402

PROMPTS = ["def add(a, b):\n", "def neg(x):\n"]
STOPS = [["\n\n", "}"], ["')"]]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_response_logprobs_score_token_t_with_the_logits_at_column_q_plus_t_minus_1(temperature: float) -> None:
    gen = torch.Generator().manual_seed(0)
    b, q, a, v = 3, 4, 5, 7
    logits = torch.randn(b, q + a, v, generator=gen, dtype=torch.float64)  # (B, Q + A, V)
    response_ids = torch.randint(0, v, (b, a), generator=gen)  # (B, A)
    logprobs, entropy = response_logprobs(logits, response_ids, q, temperature)
    for i in range(b):
        for t in range(a):
            scores = [x / temperature for x in logits[i, q + t - 1].tolist()]  # the state before token t
            norm = math.log(sum(math.exp(s) for s in scores))
            expected = scores[response_ids[i, t].item()] - norm
            assert logprobs[i, t].item() == pytest.approx(expected, abs=1e-5), (i, t)
            probs = [math.exp(s - norm) for s in scores]
            assert entropy[i, t].item() == pytest.approx(-sum(p * math.log(p) for p in probs), abs=1e-5), (i, t)


def test_response_values_are_the_values_of_the_states_before_each_token() -> None:
    values = torch.arange(2 * 7, dtype=torch.float32).reshape(2, 7)  # (B, Q + A), Q = 3
    out = response_values(values, 3)
    assert out.tolist() == [[values[i, 3 + t - 1].item() for t in range(4)] for i in range(2)]


@pytest.fixture(scope="module")
def generator(tmp_path_factory: pytest.TempPathFactory) -> HFGenerator:
    """The tiny model with large random weights, so that samples vary and stops occur."""
    corpus = ["def add(a, b):\n    return a + b\n", "def neg(x):\n    return -x\n", "print('hello world')\n"] * 30
    path = build_tiny_model(tmp_path_factory.mktemp("rollout") / "model", corpus)
    gen = HFGenerator(str(path), device="cpu", batch_size=64, local_files_only=True)
    torch.manual_seed(0)
    with torch.no_grad():
        for param in gen.model.parameters():
            if param.dim() == 2:
                param.normal_(0.0, 0.3)
    return gen


def test_ppo_rollouts_and_execrl_generate_pass_the_same_sampling_arguments(
    generator: HFGenerator, monkeypatch
) -> None:
    """Whatever defaults either caller sets, temperature 1 and top-p 1 must reach `generate` the same way."""
    seen: list[dict] = []
    real_generate = generator.model.generate

    def spy(**kwargs):
        seen.append({k: kwargs.get(k) for k in ("do_sample", "temperature", "top_k", "top_p", "stop_strings")})
        return real_generate(**kwargs)

    monkeypatch.setattr(generator.model, "generate", spy)
    stop = [STOPS[0]]
    generator.generate(PROMPTS[:1], stop, SamplingRequest(n=1, temperature=1.0, top_p=1.0, max_new_tokens=4, seed=0))
    sample(generator.model, generator.tokenizer, PROMPTS[:1], stop, samples_per_prompt=1, max_new_tokens=4,
           temperature=1.0, max_prompt_tokens=64)  # fmt: skip
    assert len(seen) == 2
    assert seen[0] == seen[1]
    assert seen[0]["top_k"] == 0, "top-k must be off: transformers' own default would cut to the 50 likeliest"


def test_ppo_rollouts_and_execrl_generate_draw_the_same_samples_from_one_seed(generator: HFGenerator) -> None:
    n = 8
    request = SamplingRequest(n=n, temperature=1.0, top_p=1.0, max_new_tokens=20, seed=3)
    from_generate = generator.generate(PROMPTS, STOPS, request)
    torch.manual_seed(3)  # the engine seeds `seed + batch index` before its one batch here
    rollout = sample(generator.model, generator.tokenizer, PROMPTS, STOPS, samples_per_prompt=n, max_new_tokens=20,
                     temperature=1.0, max_prompt_tokens=64)  # fmt: skip
    assert [t for row in from_generate for t in row] == rollout.texts
    assert len(set(rollout.texts)) > n, "samples should differ, else the comparison proves little"


def test_concatenated_rollouts_of_different_widths_keep_every_rows_log_probs(generator: HFGenerator) -> None:
    """Dynamic sampling joins draws whose queries and responses have other widths: re-padding must change nothing."""
    from execrl.trainers.rollout import PolicyWithValue, concat_rollouts, select_rows

    torch.manual_seed(4)
    kwargs = dict(max_new_tokens=12, temperature=1.0, max_prompt_tokens=64)
    short = sample(generator.model, generator.tokenizer, ["x\n"], [["\n"]], samples_per_prompt=2, **kwargs)
    long = sample(generator.model, generator.tokenizer, PROMPTS, STOPS, samples_per_prompt=2, **kwargs)
    assert short.query_ids.shape[1] != long.query_ids.shape[1]
    joined = concat_rollouts([short, select_rows(long, [2, 3])], generator.tokenizer.pad_token_id)
    assert joined.texts == short.texts + long.texts[2:]
    policy = PolicyWithValue(generator.model, value_head=False)

    def logprobs(r):  # (B, A) log-probs of the real response tokens, masked elsewhere
        with torch.no_grad():
            lp, _ = response_logprobs(
                policy(r.input_ids, r.attention_mask)[0], r.response_ids, r.query_ids.shape[1], 1.0
            )
        return lp * r.response_mask

    alone = [logprobs(short), logprobs(select_rows(long, [2, 3]))]
    together = logprobs(joined)
    for i, row in enumerate([alone[0][0], alone[0][1], alone[1][0], alone[1][1]]):
        assert torch.allclose(together[i, : row.shape[0]], row, atol=1e-5), i
        assert together[i, row.shape[0] :].abs().sum() == 0
