"""The one HF sampling call: stops against a naive loop, per-row stops, sampling arguments, the precision picker."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from execrl.harness.generation.base import truncate_at_stop  # noqa: E402
from execrl.harness.generation.hf_sampling import (  # noqa: E402
    Sampling,
    _stop_criterion,
    pick_dtype,
    response_lengths,
    sample_tokens,
)
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

# One batch, each row with its own stops (rows are repeated COPIES times and sampled under several seeds).
STOP_ROWS = [
    ("def add(a, b):\n", ["\n\n", "}"], "a stop the prompt's last newline must not complete, beside a common one"),
    ("print(", ["e"], "one character, often inside a longer token"),
    ("def neg(x):\n", [], "no stop: the row runs to EOS or the token limit"),
    ("def neg(x):\n    return -x\n\ndef", ["in", "')"], "two stops: the earliest in the text wins"),
    ("x = 1\n", ["wor", ""], "an empty stop string means nothing, the other one still cuts"),
]
COPIES = 3


@pytest.fixture(scope="module")
def lm(model_dir: Path) -> tuple:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    return AutoModelForCausalLM.from_pretrained(model_dir).eval(), tokenizer


def _naive_cut(tokenizer, ids: list[int], stops: list[str]) -> tuple[int, str]:
    """(tokens kept, text) by decoding every prefix: the first EOS, or the first prefix holding a stop."""
    for t in range(1, len(ids) + 1):
        if ids[t - 1] == tokenizer.eos_token_id:
            return t, truncate_at_stop(tokenizer.decode(ids[:t], skip_special_tokens=True), stops)
        text = tokenizer.decode(ids[:t], skip_special_tokens=True)
        if any(s and s in text for s in stops):
            return t, truncate_at_stop(text, stops)
    return len(ids), truncate_at_stop(tokenizer.decode(ids, skip_special_tokens=True), stops)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_row_stops_cut_like_a_naive_loop_over_a_full_length_generation(lm: tuple, seed: int) -> None:
    model, tokenizer = lm
    prompts = [p for p, _, _ in STOP_ROWS for _ in range(COPIES)]
    stops = [s for _, s, _ in STOP_ROWS for _ in range(COPIES)]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    max_new = 24

    torch.manual_seed(seed)
    with torch.no_grad():  # the reference: no stopping criterion, every knob spelled out
        full = model.generate(
            **enc, max_new_tokens=max_new, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
            pad_token_id=tokenizer.pad_token_id,
        )[:, enc["input_ids"].shape[1] :].tolist()  # fmt: skip
    torch.manual_seed(seed)
    got = sample_tokens(
        model, tokenizer, enc["input_ids"], enc["attention_mask"], stops, max_new_tokens=max_new,
        sampling=Sampling(temperature=1.0),
    )  # fmt: skip

    stopped_early = 0
    for i, (ids, row_stops) in enumerate(zip(full, stops, strict=True)):
        n, text = _naive_cut(tokenizer, ids, row_stops)
        reason = STOP_ROWS[i // COPIES][2]
        assert got.texts[i] == text, reason
        assert int(got.response_mask[i].sum()) == n, reason
        assert got.response_ids[i, :n].tolist() == ids[:n], reason
        assert set(got.response_ids[i, n:].tolist()) <= {tokenizer.pad_token_id}, reason
        stopped_early += n < max_new and tokenizer.eos_token_id not in ids[:n]
    assert stopped_early >= 4, "too few rows ended at a stop for the check to mean anything"


def test_stop_criterion_ends_only_rows_whose_generated_tokens_complete_their_own_stop(lm: tuple) -> None:
    _, tokenizer = lm
    prompt = tokenizer("def f(x):\n").input_ids
    generated = [tokenizer("    return x\ndef").input_ids, tokenizer("\n    return x").input_ids]
    width = max(len(g) for g in generated)
    ids = torch.tensor([prompt + g + [tokenizer.pad_token_id] * (width - len(g)) for g in generated])

    def ended(stops: list[list[str]], ids: torch.Tensor = ids) -> list[bool]:
        return _stop_criterion(tokenizer, stops, len(prompt))(ids, None).tolist()

    assert ended([["\ndef"], ["\ndef"]]) == [True, False], "the first row ends in its stop; the second is padded"
    assert ended([["def f"], ["def f"]]) == [False, False], "a stop inside the prompt must not count"
    assert ended([["never"], ["return"]]) == [False, False], "a stop before the last token was seen at its own step"
    first_token = ids[:, : len(prompt) + 1]  # the prompt's "\n" + a first generated "\n" of row 2
    assert ended([["\n\n"], ["\n\n"]], first_token) == [False, False], "a stop across the prompt boundary"
    assert ended([["never"], ["\n"]], first_token) == [False, True], "each row with its own stops"


@pytest.mark.parametrize(
    ("rows", "stopped_at", "expected"),
    [
        ([[5, 6, 7]], [None], [3]),
        ([[5, 0, 7]], [None], [2]),
        ([[5, 6, 7]], [2], [2]),
        ([[0, 6, 7]], [3], [1]),
        ([[5, 9, 7]], [None], [2]),
    ],
    ids=[
        "neither-eos-nor-stop-keeps-every-token",
        "eos-is-kept-and-ends-the-row",
        "a-stop-keeps-the-token-that-completed-it",
        "eos-before-the-stop-wins",
        "any-of-several-eos-ids-ends-the-row",
    ],
)
def test_response_lengths(rows: list[list[int]], stopped_at: list[int | None], expected: list[int]) -> None:
    assert response_lengths(rows, [0, 9], stopped_at) == expected


@pytest.mark.parametrize(
    ("sampling", "expected"),
    [
        (Sampling(temperature=0.0, top_p=0.5), {"do_sample": False}),
        (Sampling(temperature=1.0), {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0}),
        (Sampling(0.8, top_p=0.95, top_k=40), {"do_sample": True, "temperature": 0.8, "top_k": 40, "top_p": 0.95}),
    ],
    ids=["temperature-0-is-greedy", "defaults-filter-nothing-top-k-explicitly-off", "explicit-values-pass-through"],
)
def test_sampling_spells_out_every_generate_argument(sampling: Sampling, expected: dict) -> None:
    assert sampling.generate_kwargs() == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": -0.1},
        {"temperature": 1.0, "top_p": 0.0},
        {"temperature": 1.0, "top_p": 1.5},
        {"temperature": 1.0, "top_k": -1},
    ],
    ids=["negative-temperature", "top-p-zero", "top-p-above-one", "negative-top-k"],
)
def test_sampling_refuses_values_that_mean_nothing(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Sampling(**kwargs)


@pytest.mark.parametrize(
    ("device", "precision", "bf16_ok", "expected"),
    [
        ("cpu", "auto", True, torch.float32),
        ("cuda", "auto", True, torch.bfloat16),
        ("cuda", "auto", False, torch.float16),
        ("cpu", "bf16", True, torch.bfloat16),
        ("cuda", "fp32", True, torch.float32),
        ("cuda", "fp16", True, torch.float16),
    ],
    ids=["cpu-auto-is-fp32", "cuda-auto-is-bf16", "old-gpu-auto-is-fp16", "bf16-on-cpu", "fp32", "fp16"],
)
def test_pick_dtype(monkeypatch, device: str, precision: str, bf16_ok: bool, expected: torch.dtype) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_ok)
    assert pick_dtype(SimpleNamespace(type=device), precision) is expected


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "half", ""])
def test_pick_dtype_refuses_anything_but_the_four_choices_naming_them(precision: str) -> None:
    with pytest.raises(ValueError, match="auto, fp32, bf16, fp16"):
        pick_dtype(torch.device("cpu"), precision)


def test_sampling_restores_the_models_training_mode(lm: tuple) -> None:
    model, tokenizer = lm
    enc = tokenizer(["x"], return_tensors="pt", add_special_tokens=False)
    model.train()
    try:
        sample_tokens(model, tokenizer, enc["input_ids"], enc["attention_mask"], [[]], max_new_tokens=2,
                      sampling=Sampling(0.0))  # fmt: skip
        assert model.training
    finally:
        model.eval()
