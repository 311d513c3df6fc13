"""Why PPO does not raise the MBPP learning check's pass rate: the first-order effect of one policy-gradient step.

    .venv/bin/python tests/perf/probe_mbpp_gradient.py --run /tmp/mbpp-learning [--samples 32] [--seeds 7,8,9]

`--run` is an output folder of `bench_mbpp_learning.py` (its `problems.jsonl` and `sft/`). From the SFT model, one
batch of `--samples` programs per problem is drawn at temperature 1, scored with the partial reward and given GRPO
advantages; the gradient of the token-mean policy loss (ratio 1: the first PPO step) is split into its
positive-advantage and negative-advantage parts, and one plain SGD step of `--lr` is taken along each. The change of
the expected reward is then measured on an independent sample (64 per problem) by the score function, per problem:
dJ ~ mean_i (R_i - mean R) (log p'(y_i) - log p(y_i)), which is unbiased for the first-order change, with no
sampling noise of a second evaluation. Also printed: how much each part moved the batch's own objective.

What it shows on the tiny model: the positive part (passing programs made more likely) raises J every time, but it
is some 100-300 times smaller than the negative part, whose effect on J changes sign from batch to batch. Failing
samples are a slip (one unlikely token) followed by pieces of the other problems' memorised solutions, so pushing
them down mostly pushes down tokens that are right elsewhere: the estimate is noise-dominated, not biased.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
from execrl.benchmarks.problem_file import load_problem_file
from execrl.benchmarks.prompts import build_prompt, stop_sequences
from execrl.harness.extract import program_of
from execrl.harness.sandbox.pool import execute_many
from execrl.trainers.ppo_math import aggregate_loss, grpo_advantages
from execrl.trainers.rewards import partial_reward
from execrl.trainers.rollout import PolicyWithValue, Rollout, response_logprobs, sample

EVAL_SAMPLES = 64


def draw(lm, tokenizer, problems, n: int, seed: int) -> tuple[Rollout, torch.Tensor]:
    """n programs per problem at temperature 1 and their partial rewards (B,)."""
    torch.manual_seed(seed)
    rollout = sample(
        lm, tokenizer, [build_prompt(p) for p in problems], [stop_sequences(p) for p in problems],
        samples_per_prompt=n, max_new_tokens=128, temperature=1.0, max_prompt_tokens=256,
    )  # fmt: skip
    repeated = [p for p in problems for _ in range(n)]
    programs = [program_of(p, t) for p, t in zip(repeated, rollout.texts, strict=True)]
    return rollout, torch.tensor(partial_reward(repeated, programs, execute_many(repeated, programs, workers=2)))


def token_logprobs(lm, rollout: Rollout) -> torch.Tensor:
    logits, _ = PolicyWithValue(lm, value_head=False)(rollout.input_ids, rollout.attention_mask)
    return response_logprobs(logits, rollout.response_ids, rollout.query_ids.shape[1], 1.0)[0]  # (B, A)


def sequence_logprobs(lm, rollout: Rollout) -> torch.Tensor:
    with torch.no_grad():
        return (token_logprobs(lm, rollout) * rollout.response_mask).sum(1)  # (B,)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="an output folder of bench_mbpp_learning.py")
    parser.add_argument("--samples", type=int, default=32, help="programs per problem in the batch")
    parser.add_argument("--seeds", default="7,8,9", help="one batch per seed")
    parser.add_argument("--lr", type=float, default=0.01, help="the SGD step along each part")
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    problems = load_problem_file(args.run / "problems.jsonl")
    base = AutoModelForCausalLM.from_pretrained(args.run / "sft").eval()
    tokenizer = AutoTokenizer.from_pretrained(args.run / "sft")
    held, held_rewards = draw(base, tokenizer, problems, EVAL_SAMPLES, seed=4242)
    held_logp = sequence_logprobs(base, held)
    centred = torch.cat([g - g.mean() for g in held_rewards.split(EVAL_SAMPLES)])  # R - mean R per problem
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        batch, rewards = draw(base, tokenizer, problems, args.samples, seed)
        advantages = grpo_advantages(rewards, torch.ones_like(rewards, dtype=torch.bool), args.samples)
        parts = {"all": advantages, "positive": advantages.clamp(min=0), "negative": advantages.clamp(max=0)}
        row = {"seed": seed, "batch_reward": round(rewards.mean().item(), 4)}
        for name, adv in parts.items():
            lm = copy.deepcopy(base)
            loss = aggregate_loss(-adv[:, None] * token_logprobs(lm, batch), batch.response_mask, "token_mean")
            loss.backward()
            with torch.no_grad():
                for p in lm.parameters():
                    if p.grad is not None:
                        p -= args.lr * p.grad
            moved = (adv * (sequence_logprobs(lm, batch) - sequence_logprobs(base, batch))).mean().item()
            d_j = (centred * (sequence_logprobs(lm, held) - held_logp)).mean().item()
            row[name] = {"batch_objective_gain": f"{moved:.2e}", "dJ_reward": f"{d_j:.2e}"}
        rows.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
