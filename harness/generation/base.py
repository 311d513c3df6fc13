"""The generation seam: the `Generator` protocol every engine implements, and what engines share.

A generator turns a batch of prompts into `n` completions each. Every engine (`hf_engine.HFGenerator`,
`openai_engine.OpenAIGenerator`, `vllm_engine.VLLMGenerator`) returns the same thing: completions cut at the
first stop sequence, without the prompt. Nothing here imports a model library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from execrl.benchmarks.errors import UserError

ChatMessages = list[dict[str, str]]
Prompt = str | ChatMessages
"""A plain prompt, or chat messages (`{"role", "content"}`); with `chat=True` a plain string is one user turn."""


class GenerationError(UserError, RuntimeError):
    """A backend could not produce completions (server unreachable, model not loadable, package missing)."""


def check_stops(prompts: list[Prompt], stop: list[list[str]]) -> None:
    """Every backend takes one list of stop sequences per prompt."""
    if len(stop) != len(prompts):
        raise ValueError(f"stop has {len(stop)} lists for {len(prompts)} prompts")


@dataclass(frozen=True)
class SamplingRequest:
    """How many completions to draw for each prompt of one `generate` call, and how."""

    n: int
    """Completions per prompt."""
    temperature: float
    """0 is greedy decoding; above 0, sample from softmax(logits / temperature)."""
    top_p: float
    """Nucleus mass; 1.0 keeps the whole distribution."""
    max_new_tokens: int
    """The most tokens a completion may have."""
    seed: int
    """Where the engine's randomness starts (each engine says how it derives per-batch or per-prompt seeds)."""


class Generator(Protocol):
    def generate(self, prompts: list[Prompt], stop: list[list[str]], request: SamplingRequest) -> list[list[str]]:
        """`request.n` completions for each prompt (outer list follows `prompts`), each cut at its prompt's stops."""
        ...


def truncate_at_stop(text: str, stop: list[str]) -> str:
    """`text` up to (not including) the earliest occurrence of any stop sequence."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


def as_messages(prompt: Prompt) -> ChatMessages:
    """Chat messages for a prompt: a plain string becomes one user turn."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt


def as_plain(prompt: Prompt) -> str:
    """A plain prompt; chat messages are refused, since only a generator built with `chat=True` renders them."""
    if not isinstance(prompt, str):
        raise ValueError("chat messages given to a generator built without chat=True")
    return prompt


def render_prompt(prompt: Prompt, tokenizer: Any, chat: bool) -> str:
    """The text a local model sees: the plain prompt, or with `chat` the tokenizer's chat template applied."""
    if not chat:
        return as_plain(prompt)
    return tokenizer.apply_chat_template(as_messages(prompt), tokenize=False, add_generation_prompt=True)
