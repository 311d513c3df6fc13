"""The generation seam: the `Generator` protocol every engine implements, and what engines share.

A generator turns a batch of prompts into `n` completions each. Every engine (`hf_engine.HFGenerator`,
`openai_engine.OpenAIGenerator`, `vllm_engine.VLLMGenerator`) returns the same thing: completions cut at the
first stop sequence, without the prompt. Nothing here imports a model library.
"""

from __future__ import annotations

from typing import Protocol

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


class Generator(Protocol):
    def generate(
        self,
        prompts: list[Prompt],
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        stop: list[list[str]],
        seed: int,
    ) -> list[list[str]]:
        """`n` completions for each prompt (outer list follows `prompts`), each cut at its prompt's stops."""
        ...


def truncate_at_stop(text: str, stop: list[str]) -> str:
    """`text` up to (not including) the earliest occurrence of any stop sequence."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


def as_messages(prompt: Prompt) -> ChatMessages:
    """Chat messages for a prompt: a plain string becomes one user turn."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
