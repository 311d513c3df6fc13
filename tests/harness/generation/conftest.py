"""The tiny model the generation tests sample from."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = ["def add(a, b):\n    return a + b\n", "def neg(x):\n    return -x\n", "print('hello world')\n"] * 30


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with large random weights: greedy output then varies with the prompt instead of
    repeating the last token, which makes the padding and stop checks meaningful."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from execrl.trainers.tiny import build_tiny_model
    from transformers import AutoModelForCausalLM

    path = build_tiny_model(tmp_path_factory.mktemp("gen") / "model", CORPUS)
    model = AutoModelForCausalLM.from_pretrained(path)
    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.normal_(0.0, 0.3)
    model.save_pretrained(path)
    return path
