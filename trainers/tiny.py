"""The embedded default model: a tiny GPT-2-shaped causal LM and a byte-level BPE tokenizer, built in seconds.

`build_tiny_model` trains the tokenizer on the given corpus (the synth train split's prompts and completions
is the intended input), builds a randomly initialised (seeded) model from a `GPT2Config`, and saves both with
`save_pretrained`, so the folder is an ordinary Hugging Face model folder: `AutoTokenizer` and
`AutoModelForCausalLM` load it like any hub checkpoint, and every stage (generate, SFT, PPO) treats it the
same way as a real model.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

EOS_TOKEN = "<|endoftext|>"
"""Beginning and end of text, as in GPT-2 (one token for both)."""
PAD_TOKEN = "<|pad|>"
"""A separate pad token, so padding never reads as end of text during training."""

# Role-tagged turns, enough for `tokenizer.apply_chat_template` to work with `--chat` on the tiny model.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build_tiny_model(
    out_dir: Path,
    corpus: Iterable[str],
    *,
    vocab_size: int = 512,
    n_layer: int = 2,
    n_head: int = 4,
    d_model: int = 128,
    max_positions: int = 256,
    seed: int = 0,
) -> Path:
    """Train a tokenizer on `corpus`, build a seeded random GPT-2 model, save both into `out_dir`.

    Returns `out_dir`. Raises ValueError on an empty corpus or a `d_model` not divisible by `n_head`.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    texts = [text for text in corpus if text]
    if not texts:
        raise ValueError("build_tiny_model: the corpus is empty")
    if d_model % n_head:
        raise ValueError(f"build_tiny_model: d_model={d_model} is not divisible by n_head={n_head}")

    # 1. tokenizer: byte-level BPE (GPT-2's scheme), so any text encodes without unknown tokens.
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=max_positions,
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    # 2. model: random init under a fixed seed, so the same arguments give the same weights.
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=max_positions,
        n_embd=d_model,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    # 3. save: an ordinary Hugging Face model folder.
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"tiny model: {n_params:,} parameters, vocab {len(tokenizer)}, saved to {out_dir}")
    return out_dir
