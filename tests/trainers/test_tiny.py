"""The embedded tiny model: an ordinary HF folder, seeded, with a tokenizer that encodes any text."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch  # noqa: E402
from execrl.trainers.tiny import build_tiny_model  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "def is_even(n):\n    return n % 2 == 0\n",
    "def first(xs):\n    for x in xs:\n        return x\n    return None\n",
] * 20


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", CORPUS, seed=0)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def test_folder_loads_with_auto_classes_and_matches_the_requested_shape(tiny_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    assert model.config.n_layer == 2 and model.config.n_head == 4 and model.config.n_embd == 128
    assert model.config.n_positions == 256
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    ids = tokenizer("def add(a, b):", return_tensors="pt").input_ids
    logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tokenizer))


def test_tokenizer_has_distinct_pad_and_end_of_text_tokens_and_pads_left(tiny_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    assert tokenizer.eos_token_id is not None and tokenizer.bos_token_id == tokenizer.eos_token_id
    assert tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.padding_side == "left"


@pytest.mark.parametrize(
    "text",
    ["def add(a, b):\n    return a + b\n", "print('héllo ✓ 世界')\t\r\n", "  leading spaces and trailing  "],
    ids=["text-from-the-corpus", "unicode-never-seen-in-training-byte-fallback", "whitespace-kept-exactly"],
)
def test_tokenizer_round_trips_any_text(tiny_dir: Path, text: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    assert tokenizer.decode(tokenizer(text).input_ids) == text


def test_tokenizer_learns_merges_from_the_corpus(tiny_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    text = "def add(a, b):\n    return a + b\n"
    assert len(tokenizer(text).input_ids) < len(text.encode()) // 2


def test_same_seed_gives_same_weights_and_another_seed_differs(tiny_dir: Path, tmp_path: Path) -> None:
    same = _weights(build_tiny_model(tmp_path / "same", CORPUS, seed=0))
    other = _weights(build_tiny_model(tmp_path / "other", CORPUS, seed=1))
    base = _weights(tiny_dir)
    assert all(torch.equal(base[name], same[name]) for name in base)
    assert any(not torch.equal(base[name], other[name]) for name in base)


def test_prints_the_parameter_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = build_tiny_model(tmp_path / "m", CORPUS, n_layer=1, d_model=64, n_head=2)
    n_params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(path).parameters())
    assert f"{n_params:,} parameters" in capsys.readouterr().out


def test_chat_template_renders_roles_and_generation_prompt(tiny_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "write add"}], tokenize=False, add_generation_prompt=True
    )
    assert "write add" in text and text.rstrip().endswith("<|assistant|>")


@pytest.mark.parametrize(
    ("corpus", "kwargs", "message"),
    [
        ([], {}, "empty"),
        (["", ""], {}, "empty"),
        (CORPUS, {"d_model": 130, "n_head": 4}, "divisible"),
    ],
    ids=["no-texts-at-all", "only-empty-strings", "heads-do-not-divide-the-width"],
)
def test_bad_arguments_raise_a_clear_value_error(
    tmp_path: Path, corpus: list[str], kwargs: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_tiny_model(tmp_path / "m", corpus, **kwargs)
