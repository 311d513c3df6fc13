"""`--rollout vllm`: PPO's rollouts from a vLLM engine in the trainer's own process, on its GPU (CUDA only).

The layout is the one TRL's GRPO trainer calls "colocate" (trl/generation/vllm_generation.py, TRL 1.16): `vllm.LLM`
with `distributed_executor_backend="external_launcher"`, so every trainer process (one, or each of `accelerate
launch`'s) holds one vLLM worker in-process (vLLM then runs without its engine subprocess), and no weights cross a
process boundary. Checked against vLLM 0.33's source; not yet run on a GPU here (README: Rollout engines).

- Weights: after every update `load_weights` hands the policy's tensors (LoRA merged:
  `rollout_engines.policy_weights`) to vLLM's own `model.load_weights`, through `LLM.apply_model`, which runs a
  function on the worker's model (in-process here, so nothing is serialised); vLLM maps checkpoint names onto its
  fused layers and shards them under tensor parallelism. The prefix cache is reset after, since its KV blocks were
  computed by the old weights (TRL resets it the same way).
- Sampling: the prompts go in as the trainer's own token ids (`encode_queries`), so both sides see the same
  tokens; one `SamplingParams` per prompt (its stops, its own seeds), temperature only (top-p 1, top-k off) — the
  distribution PPO's log-probs assume.
- Log-probs: `logprobs_mode="processed_logprobs"` makes vLLM report each token's log-prob after temperature scaling,
  the distribution it was drawn from (the default, raw logits, ignores the temperature: TRL issue 4159).
- Tensor parallelism (`--vllm-tensor-parallel-size T`): consecutive groups of T trainer processes form one vLLM
  engine; each process's prompts are gathered within its group, all T generate the same requests, and each keeps
  its own rows (TRL's colocate mode does the same).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

import torch
from execrl.benchmarks.errors import UserError
from execrl.harness.generation.hf_sampling import pick_dtype
from execrl.trainers.rollout import Rollout, encode_queries
from execrl.trainers.rollout_engines import policy_weights, rollout_from_tokens, vllm_unavailable

# Tokens vLLM schedules per step. Its memory profiler plans for this many; the default (thousands more) made it
# believe a colocated engine had too little memory (TRL sets 4096 for the same reason).
MAX_BATCHED_TOKENS = 4096


class VLLMRolloutEngine:
    """A vLLM engine for PPO's rollouts, fed the policy's weights after every update."""

    def __init__(
        self,
        model: str,
        tokenizer: Any,
        *,
        gpu_memory_utilization: float,
        tensor_parallel_size: int,
        max_model_len: int,
        precision: str,
        seed: int,
        accelerator: Any,
    ) -> None:
        reason = vllm_unavailable()
        if reason:
            raise UserError(f"--rollout vllm: {reason}; use --rollout hf")
        import vllm

        world, rank = accelerator.num_processes, accelerator.process_index
        if world % tensor_parallel_size:
            raise UserError(
                f"--vllm-tensor-parallel-size {tensor_parallel_size} must divide the {world} training processes"
            )
        self.tokenizer = tokenizer
        self.device = accelerator.device
        self.tp_size = tensor_parallel_size
        self.tp_group = _tensor_parallel_group(world, tensor_parallel_size) if tensor_parallel_size > 1 else None
        # The external launcher reads the process's place from torchrun's variables; one process sets its own.
        os.environ.update(RANK=str(rank), LOCAL_RANK=str(accelerator.local_process_index), WORLD_SIZE=str(world))
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        self._vllm = vllm
        self.llm = vllm.LLM(
            model=model,
            # The trainer's precision choice (bf16 on a GPU that has it), not vLLM's "auto" (fp16 for fp32 checkpoints)
            dtype=str(pick_dtype(self.device, precision)).removeprefix("torch."),
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            distributed_executor_backend="external_launcher",
            seed=seed + rank // tensor_parallel_size,  # one seed per engine: a TP group's processes must agree
            max_model_len=max_model_len,
            max_num_batched_tokens=max(MAX_BATCHED_TOKENS, max_model_len),
            logprobs_mode="processed_logprobs",
        )

    def sample(
        self,
        prompts: Sequence[str],
        stops: Sequence[Sequence[str]],
        *,
        samples_per_prompt: int,
        max_new_tokens: int,
        temperature: float,
        max_prompt_tokens: int,
    ) -> Rollout:
        group = samples_per_prompt
        query_ids, query_mask = encode_queries(self.tokenizer, prompts, group, max_prompt_tokens, self.device)
        prompt_ids = [
            ids[mask.bool()].tolist() for ids, mask in zip(query_ids[::group], query_mask[::group], strict=True)
        ]
        # Seeds from torch's global RNG, so a seeded run draws the same. vLLM gives sample j of a request the seed
        # `seed + j` (v1/engine/parallel_sampling.py), so prompts are G seeds apart: no two samples share a stream.
        seed = int(torch.randint(0, 2**31 - 1 - len(prompt_ids) * group, ()).item())
        requests = [(ids, list(s), seed + i * group) for i, (ids, s) in enumerate(zip(prompt_ids, stops, strict=True))]
        mine = slice(0, len(requests))
        if self.tp_group is not None:  # every process of the group runs the group's requests; each keeps its own
            gathered: list[Any] = [None] * self.tp_size
            torch.distributed.all_gather_object(gathered, requests, group=self.tp_group)
            start = sum(len(g) for g in gathered[: torch.distributed.get_rank(self.tp_group)])
            requests, mine = [r for g in gathered for r in g], slice(start, start + len(requests))
        params = [
            self._vllm.SamplingParams(
                n=group, temperature=temperature, top_p=1.0, top_k=0, max_tokens=max_new_tokens,
                stop=row_stops or None, seed=row_seed, logprobs=0 if temperature > 0 else None,
            )
            for _, row_stops, row_seed in requests
        ]  # fmt: skip
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids, _, _ in requests], params, use_tqdm=False)
        samples = [sorted(out.outputs, key=lambda o: o.index) for out in outputs[mine]]
        responses = [list(o.token_ids) for row in samples for o in row]
        logprobs = (
            [
                [step[token].logprob for step, token in zip(o.logprobs, o.token_ids, strict=True)]
                for row in samples
                for o in row
            ]
            if temperature > 0
            else None
        )
        row_stops = [stops[i // group] for i in range(len(responses))]
        return rollout_from_tokens(self.tokenizer, query_ids, query_mask, responses, logprobs, row_stops)

    def load_weights(self, lm: Any) -> None:
        def load(model: Any) -> None:
            model.load_weights(policy_weights(lm))

        with torch.no_grad():
            self.llm.apply_model(load)
        self.llm.reset_prefix_cache()


def _tensor_parallel_group(world: int, size: int) -> Any:
    """This process's group of `size` consecutive ranks (every rank must create all groups, in the same order)."""
    groups = [list(range(start, start + size)) for start in range(0, world, size)]
    group, _ = torch.distributed.new_subgroups_by_enumeration(groups)
    return group


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
