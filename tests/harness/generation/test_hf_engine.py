"""The HF generation backend on the tiny model: shapes, stops, left padding, seeds, context fitting."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch  # noqa: E402
from execrl.harness.generation.base import GenerationError, SamplingRequest, render_prompt, truncate_at_stop  # noqa: E402
from execrl.harness.generation.hf_engine import HFGenerator, _fit_context  # noqa: E402

PROMPTS = ["def add(a, b):\n", "print(", "def neg(x):\n    return -x\n\ndef"]


@pytest.fixture(scope="module")
def generator(model_dir: Path) -> HFGenerator:
    return HFGenerator(str(model_dir), batch_size=4, local_files_only=True)


def _sample(
    gen: HFGenerator, prompts: list[str], stop: list[list[str]] | None = None, **kwargs: object
) -> list[list[str]]:
    args = {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_new_tokens": 16, "seed": 0}
    return gen.generate(prompts, stop or [[] for _ in prompts], SamplingRequest(**(args | kwargs)))


@pytest.mark.parametrize(
    ("text", "stop", "expected"),
    [
        ("a\ndef b", ["\ndef"], "a"),
        ("x\n#y\ndef z", ["\ndef", "\n#"], "x"),
        ("abc", ["zz"], "abc"),
        ("abc", [], "abc"),
        ("abc", [""], "abc"),
        ("\ndef", ["\ndef"], ""),
    ],
    ids=[
        "cut-before-the-stop",
        "earliest-of-several-stops-wins-regardless-of-list-order",
        "absent-stop-keeps-all",
        "no-stops-keeps-all",
        "empty-stop-string-is-ignored-not-a-cut-at-zero",
        "stop-at-the-start-gives-empty",
    ],
)
def test_truncate_at_stop_cuts_at_the_earliest_stop(text: str, stop: list[str], expected: str) -> None:
    assert truncate_at_stop(text, stop) == expected


def test_returns_n_completions_for_each_prompt(generator: HFGenerator) -> None:
    out = _sample(generator, PROMPTS, n=3, temperature=1.0, top_p=0.95, max_new_tokens=6)
    assert [len(row) for row in out] == [3, 3, 3]
    assert all(isinstance(text, str) for row in out for text in row)


def test_greedy_gives_n_identical_copies(generator: HFGenerator) -> None:
    out = _sample(generator, PROMPTS[:1], n=4)
    assert len(out[0]) == 4 and len(set(out[0])) == 1


@pytest.mark.slow
def test_left_padded_batch_matches_unpadded_single_prompts(generator: HFGenerator) -> None:
    batched = _sample(generator, PROMPTS)
    singles = [_sample(generator, [p])[0] for p in PROMPTS]
    assert batched == singles
    assert len({row[0] for row in batched}) == len(PROMPTS), "outputs should differ by prompt"


def test_stop_sequence_cuts_the_greedy_output_at_its_first_occurrence(generator: HFGenerator) -> None:
    full = _sample(generator, PROMPTS[:1], max_new_tokens=24)[0][0]
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    cut = _sample(generator, PROMPTS[:1], max_new_tokens=24, stop=[[stop]])[0][0]
    assert cut == full[: full.find(stop)]


def test_same_seed_repeats_samples_and_another_seed_changes_them(generator: HFGenerator) -> None:
    kwargs = {"n": 2, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 12}
    first = _sample(generator, PROMPTS[:2], seed=7, **kwargs)
    again = _sample(generator, PROMPTS[:2], seed=7, **kwargs)
    other = _sample(generator, PROMPTS[:2], seed=8, **kwargs)
    assert first == again
    assert first != other


@pytest.mark.parametrize(
    ("prompt_len", "max_new", "max_pos", "expected_len", "expected_new"),
    [
        (10, 20, 256, 10, 20),
        (10, 20, None, 10, 20),
        (240, 100, 256, 156, 100),
        (200, 56, 256, 200, 56),
        (240, 200, 256, 128, 128),
        (100, 300, 256, 100, 156),
    ],
    ids=[
        "fits-untouched",
        "no-position-limit-untouched",
        "long-prompt-cut-left-so-the-full-completion-fits",
        "exactly-fills-the-window",
        "long-completion-keeps-half-the-window-and-the-prompt-the-rest",
        "completion-shrunk-to-the-rest-of-the-window",
    ],
)
def test_fit_context_keeps_prompt_and_completion_in_the_window(
    prompt_len: int, max_new: int, max_pos: int | None, expected_len: int, expected_new: int
) -> None:
    ids = torch.arange(prompt_len).unsqueeze(0)  # (1, T)
    out_ids, out_mask, new = _fit_context(ids, torch.ones_like(ids), max_new, max_pos)
    assert (out_ids.shape[1], new) == (expected_len, expected_new)
    assert out_ids[0, -1].item() == prompt_len - 1, "the prompt's most recent tokens are kept"
    assert out_mask.shape == out_ids.shape


@pytest.mark.slow
def test_prompt_longer_than_the_window_still_generates(generator: HFGenerator) -> None:
    out = _sample(generator, ["x = 1\n" * 200], max_new_tokens=300, temperature=1.0)
    assert len(out) == 1 and len(out[0]) == 1


def test_chat_renders_the_template_and_accepts_messages(model_dir: Path) -> None:
    gen = HFGenerator(str(model_dir), batch_size=4, chat=True, local_files_only=True)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "write add"}]
    out = _sample(gen, ["write add", messages])  # type: ignore[list-item]
    assert len(out) == 2 and all(len(row) == 1 for row in out)
    assert "<|assistant|>" in render_prompt(messages, gen.tokenizer, gen.chat)


def test_chat_messages_without_chat_mode_are_refused(generator: HFGenerator) -> None:
    with pytest.raises(ValueError, match="chat=True"):
        _sample(generator, [[{"role": "user", "content": "hi"}]])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"model": "/no/such/model/folder"}, GenerationError),
        ({"precision": "float33"}, ValueError),
        ({"precision": "float32"}, ValueError),
        ({"batch_size": 0}, ValueError),
    ],
    ids=[
        "missing-model-folder",
        "unknown-precision-name",
        "torch-dtype-name-instead-of-a-precision-choice",
        "zero-batch-size",
    ],  # fmt: skip
)
def test_bad_construction_raises_a_clear_error(model_dir: Path, kwargs: dict, error: type) -> None:
    args = {"model": str(model_dir), "local_files_only": True} | kwargs
    with pytest.raises(error):
        HFGenerator(args.pop("model"), **args)


def test_cuda_asked_for_on_a_machine_without_it_is_a_clear_error(model_dir: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="--device cuda: CUDA is not available"):
        HFGenerator(str(model_dir), device="cuda", local_files_only=True)
