"""Sampling with vLLM in-process (GPU). Used only where the `vllm` package is importable.

vLLM does its own continuous batching, so every prompt goes in one call; each prompt gets its own
`SamplingParams` (its stops, and seed `seed + i * n`: vLLM seeds a request's j-th sample with its seed + j, so
prompts' seeds n apart keep neighbouring prompts' samples off each other's random streams).
"""

from __future__ import annotations

from typing import Any

from execrl.harness.generation.base import (
    GenerationError,
    Prompt,
    SamplingRequest,
    check_stops,
    render_prompt,
    truncate_at_stop,
)

# The `precision` choice (as for the hf engine and the trainers) in vLLM's dtype names; vLLM's "auto" takes
# the checkpoint's own dtype (fp32 checkpoints become fp16).
VLLM_DTYPES = {"auto": "auto", "fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


class VLLMGenerator:
    """`Generator` over `vllm.LLM` for a local model folder or hub id."""

    def __init__(
        self,
        model: str,
        *,
        precision: str = "auto",
        chat: bool = False,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        seed: int = 0,
    ) -> None:
        if precision not in VLLM_DTYPES:
            raise ValueError(f"precision {precision!r}: expected one of {', '.join(VLLM_DTYPES)}")
        try:
            import vllm
        except ImportError as e:
            raise GenerationError(
                "--engine vllm needs the `vllm` package (pip install vllm; it needs a GPU); "
                "use --engine hf, or --engine openai against a running vLLM server"
            ) from e
        self._vllm = vllm
        self.chat = chat
        self.llm = vllm.LLM(
            model=model,
            dtype=VLLM_DTYPES[precision],
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            seed=seed,
        )
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, prompts: list[Prompt], stop: list[list[str]], request: SamplingRequest) -> list[list[str]]:
        check_stops(prompts, stop)
        texts = [render_prompt(p, self.tokenizer, self.chat) for p in prompts]
        params = [
            self._vllm.SamplingParams(
                n=request.n,
                temperature=request.temperature,
                top_p=request.top_p if request.temperature > 0 else 1.0,
                max_tokens=request.max_new_tokens,
                stop=stop[i] or None,
                seed=request.seed + i * request.n,
            )
            for i in range(len(prompts))
        ]
        results: list[Any] = self.llm.generate(texts, params, use_tqdm=False)
        return [[truncate_at_stop(o.text, stop[i]) for o in r.outputs] for i, r in enumerate(results)]
