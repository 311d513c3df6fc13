"""The Hugging Face transformers engine: batched `model.generate` on a local folder or a hub id.

Sampling itself (temperature, top-p, no top-k, stop strings) is `hf_sampling.sample_tokens`, the call PPO's
rollouts make too, so `execrl generate` and PPO's in-loop evaluation draw from one distribution. torch and
transformers are imported inside `HFGenerator`, so importing this module stays light.

Reproducibility: the engine seeds torch before each internal batch (`seed + batch index`), so the same
prompts, seed and batch size give the same completions; another batch size samples other (equally valid)
completions. Greedy decoding (temperature 0) runs each prompt once and repeats it `n` times.
"""

from __future__ import annotations

from typing import Any

from execrl.harness.generation.base import GenerationError, Prompt, SamplingRequest, check_stops, render_prompt
from execrl.harness.generation.hf_sampling import Sampling, pick_device, pick_dtype, sample_tokens


class HFGenerator:
    """Batched sampling with `model.generate` from a local model folder or a hub id (hub only when online)."""

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        precision: str = "auto",
        batch_size: int = 16,
        chat: bool = False,
        local_files_only: bool = False,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.chat = chat
        self.device = pick_device(device)
        torch_dtype = pick_dtype(self.device, precision)  # the weights' dtype
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=local_files_only)
            self.model = AutoModelForCausalLM.from_pretrained(
                model, dtype=torch_dtype, local_files_only=local_files_only
            )
        except (OSError, ValueError) as e:
            raise GenerationError(f"cannot load model {model!r}: {e}") from e
        self.model.to(self.device).eval()
        # Decoder-only models must be padded on the left so every row's next token follows its own last token.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if chat and not getattr(self.tokenizer, "chat_template", None):
            raise GenerationError(f"--chat: the tokenizer of {model!r} has no chat template")
        self.max_positions: int | None = getattr(self.model.config, "n_positions", None) or getattr(
            self.model.config, "max_position_embeddings", None
        )

    def generate(self, prompts: list[Prompt], stop: list[list[str]], request: SamplingRequest) -> list[list[str]]:
        check_stops(prompts, stop)
        sampling = Sampling(temperature=request.temperature, top_p=request.top_p)
        greedy = request.temperature == 0
        copies = 1 if greedy else request.n  # greedy decoding runs once and is repeated
        texts = [render_prompt(p, self.tokenizer, self.chat) for p in prompts]
        # One row per (prompt, copy), prompt-major, so a prompt's samples sit next to each other.
        rows = [(i, texts[i]) for i in range(len(prompts)) for _ in range(copies)]
        outputs: list[list[str]] = [[] for _ in prompts]
        for batch_no, start in enumerate(range(0, len(rows), self.batch_size)):
            batch = rows[start : start + self.batch_size]
            stops = [stop[i] for i, _ in batch]
            seed = request.seed + batch_no
            decoded = self._generate_batch([t for _, t in batch], stops, request.max_new_tokens, seed, sampling)
            for (i, _), text in zip(batch, decoded, strict=True):
                outputs[i].append(text)
        return [out * request.n if greedy else out for out in outputs]

    def _generate_batch(
        self, texts: list[str], stops: list[list[str]], max_new_tokens: int, seed: int, sampling: Sampling
    ) -> list[str]:
        import torch

        # A chat template already writes its own special tokens (BOS and role markers).
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not self.chat)
        input_ids, attention_mask = enc["input_ids"], enc["attention_mask"]  # (B, T)
        input_ids, attention_mask, max_new_tokens = _fit_context(
            input_ids, attention_mask, max_new_tokens, self.max_positions
        )
        torch.manual_seed(seed)  # seeds CUDA too
        sampled = sample_tokens(
            self.model, self.tokenizer, input_ids, attention_mask, stops, max_new_tokens=max_new_tokens,
            sampling=sampling,
        )  # fmt: skip
        return sampled.texts


def _fit_context(input_ids: Any, attention_mask: Any, max_new_tokens: int, max_positions: int | None) -> tuple:
    """Keep prompt + completion inside the model's position table.

    Completions keep at least half the window; a prompt longer than the rest loses its oldest tokens (left).
    """
    prompt_len = input_ids.shape[1]
    if max_positions is None or prompt_len + max_new_tokens <= max_positions:
        return input_ids, attention_mask, max_new_tokens
    new_tokens = min(max_new_tokens, max(max_positions - prompt_len, max_positions // 2))
    keep = max_positions - new_tokens
    return input_ids[:, -keep:], attention_mask[:, -keep:], new_tokens
