"""Scoring overlapped with generation: the same verdicts and rewards as sequential scoring, row for row, the layout
of one whole-batch rollout, sandbox-error limits and failures on either side surfacing, and the sandbox's
trusted-code alarm intact in a worker replaced from the background thread."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import torch
from execrl.benchmarks.problem import Problem
from execrl.benchmarks.prompts import build_prompt
from execrl.benchmarks.synth import load_synth, sft_corpus
from execrl.harness.records import ExecResult, Limits, Verdict
from execrl.harness.sandbox.pool import SandboxPool, execute_many
from execrl.trainers.overlap import FEED_THREAD, overlapped_draw, split_prompts
from execrl.trainers.ppo import draw
from execrl.trainers.ppo_config import PPOConfig
from execrl.trainers.ppo_setup import Run
from execrl.trainers.rewards import SandboxErrorRate
from execrl.trainers.rollout import Rollout, sample

from tests.harness.sandbox.adversarial_table import LOOP

FAMILY = "clamp"
G = 4
SLOW = "    import time\n    time.sleep(0.02)\n"
"""Put before a correct body (it sleeps in each test call): rows finish out of input order, so a result given
to the wrong row shows."""
TABLE = (
    ("slow", "wrong", "syntax", "right"),
    ("right", "right", "wrong", "slow"),
    ("wrong", "syntax", "slow", "slow"),
    ("syntax", "right", "right", "wrong"),
    ("slow", "slow", "wrong", "syntax"),
    ("wrong", "right", "syntax", "right"),
)
"""The text kind of sample j of problem i: no two problems' verdicts alike, so a shuffle of rows, groups or chunks
changes some row's verdict."""
EXPECTED = {"slow": Verdict.PASSED, "wrong": Verdict.FAILED, "syntax": Verdict.SYNTAX_ERROR, "right": Verdict.PASSED}


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return [p for p in load_synth("train") if p.metadata["family"] == FAMILY][:6]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, problems: list[Problem]) -> Path:
    from execrl.trainers.tiny import build_tiny_model

    rows = sft_corpus([p for p in load_synth("train") if p.metadata["family"] == FAMILY], wrong_share=0.0)
    return build_tiny_model(tmp_path_factory.mktemp("overlap") / "m0", [r["prompt"] + r["completion"] for r in rows],
                            vocab_size=300, n_layer=1, d_model=32, n_head=2, max_positions=128)  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer(tiny: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny)


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(2, Limits(timeout=3.0)) as pool:
        yield pool


def variant(problems: list[Problem], problem: Problem, j: int) -> str:
    return TABLE[problems.index(problem)][j]


def body(problem: Problem, kind: str) -> str:
    right, wrong = (sft_corpus([problem], wrong_share=w)[0]["completion"] for w in (0.0, 1.0))
    return {"slow": SLOW + right, "wrong": wrong, "syntax": "    return max(\n", "right": right}[kind]


@dataclass
class FixedRun:
    """What `draw` uses of a `Run`, with the policy's samples fixed: sample j of each problem is the text of its
    `variant`, tokenized into a rollout laid out as `rollout.sample` lays one out (queries left-padded to the
    chunk's longest, responses right-padded). The programs run in the real sandbox pool and are scored by
    `Run.score`; `wrap` may change what `execute` does."""

    cfg: PPOConfig
    tokenizer: Any
    pool: Any
    all_problems: list[Problem]
    wrap: Callable[[Callable, list[Problem], list[str]], list[ExecResult]] | None = None
    on_sample: Callable[[int], None] | None = None
    calls: list[int] = field(default_factory=list)
    """Prompts per `sample` call."""
    reward_model: Any = None
    critic: Any = None

    to_program = Run.to_program
    score = Run.score

    def sample(self, problems: list[Problem], samples_per_prompt: int, temperature: float) -> Rollout:
        self.calls.append(len(problems))
        if self.on_sample is not None:
            self.on_sample(len(self.calls))
        tok = self.tokenizer
        tok.padding_side = "left"
        query = tok([build_prompt(p) for p in problems], return_tensors="pt", padding=True, add_special_tokens=False)
        texts = [body(p, variant(self.all_problems, p, j)) for p in problems for j in range(samples_per_prompt)]
        tok.padding_side = "right"
        response = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return Rollout(
            query["input_ids"].repeat_interleave(samples_per_prompt, dim=0),
            query["attention_mask"].repeat_interleave(samples_per_prompt, dim=0),
            response["input_ids"].masked_fill(response["attention_mask"] == 0, tok.pad_token_id),
            response["attention_mask"],
            texts,
        )

    def execute(self, problems: list[Problem], programs: list[str]) -> list[ExecResult]:
        real = lambda ps, ss: execute_many(ps, ss, pool=self.pool)  # noqa: E731
        return real(problems, programs) if self.wrap is None else self.wrap(real, problems, programs)


def _cfg(**overrides: Any) -> PPOConfig:
    base = dict(model="m", out=Path("o"), samples_per_prompt=G, batch_size=24, max_sandbox_errors=0.0)
    return PPOConfig(**{**base, **overrides})


def test_prompts_split_into_consecutive_chunks_the_last_one_smallest() -> None:
    ps = list(range(10))
    assert split_prompts(ps, 4) == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert split_prompts(ps, 1) == [ps] and split_prompts(ps[:2], 5) == [[0], [1]]
    assert split_prompts([], 3) == [[]]


@pytest.mark.parametrize("chunks", [3, 6], ids=["3-chunks", "one-prompt-per-chunk"])
def test_overlapped_scoring_gives_every_program_the_verdict_and_reward_of_sequential_scoring(
    problems, tokenizer, pool, chunks
) -> None:
    off = FixedRun(_cfg(), tokenizer, pool, problems)
    on = FixedRun(_cfg(overlap_scoring=True, overlap_chunks=chunks), tokenizer, pool, problems)
    sequential, overlapped = draw(off.cfg, off, problems), draw(on.cfg, on, problems)
    assert off.calls == [6] and on.calls == [6 // chunks] * chunks

    expected = [EXPECTED[variant(problems, p, j)] for p in problems for j in range(G)]
    assert [r.verdict for r in sequential.results] == expected, "the fixture's programs are not what it says"
    assert [r.verdict for r in overlapped.results] == expected, "a result went to another program"
    assert overlapped.programs == sequential.programs and overlapped.problems == sequential.problems
    assert overlapped.scores == sequential.scores and len(set(sequential.scores)) > 1
    for name in ("query_ids", "query_mask", "response_ids", "response_mask"):
        assert torch.equal(getattr(overlapped.rollout, name), getattr(sequential.rollout, name)), name
    assert overlapped.rollout.texts == sequential.rollout.texts
    assert sequential.t_sandbox_wait == sequential.t_sandbox > 0
    assert overlapped.t_sandbox > 0 and overlapped.t_sandbox_wait >= 0


def test_chunked_greedy_sampling_of_the_real_policy_gives_the_whole_batch_rollout_tensor_for_tensor(
    problems, tiny, tokenizer
) -> None:
    """Left padding of queries, right padding of responses and so the position ids: joined chunks are laid out as
    one call would lay them out, so log-probs, values and masks of the update cannot tell the two apart."""
    from execrl.trainers.rollout import concat_rollouts
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(tiny).eval()
    torch.manual_seed(0)
    with torch.no_grad():  # large random weights: samples differ between prompts and end at different lengths
        for param in lm.parameters():
            if param.dim() == 2:
                param.normal_(0.0, 0.3)

    def greedy(ps: list[Problem]) -> Rollout:  # a stop these random weights reach: responses of several lengths
        return sample(lm, tokenizer, [build_prompt(p) for p in ps], [[" to"]] * len(ps),
                      samples_per_prompt=2, max_new_tokens=24, temperature=0.0, max_prompt_tokens=64)  # fmt: skip

    prompts = [problems[0], problems[3], problems[5]]  # of different lengths
    whole, chunks = greedy(prompts), [greedy(c) for c in split_prompts(prompts, 3)]
    joined = concat_rollouts(chunks, tokenizer.pad_token_id)
    for side in ("query_ids", "response_ids"):
        assert len({getattr(c, side).shape[1] for c in chunks}) > 1, f"no padding of {side} tested"
    for name in ("query_ids", "query_mask", "response_ids", "response_mask", "input_ids", "attention_mask"):
        assert torch.equal(getattr(joined, name), getattr(whole, name)), name
    assert joined.texts == whole.texts


@pytest.mark.parametrize("overlap", [False, True], ids=["sequential", "overlapped"])
def test_sandbox_errors_get_no_reward_and_past_max_sandbox_errors_stop_the_run(
    problems, tokenizer, pool, overlap
) -> None:
    def slow_ones_fail(real, ps, programs):  # the harness faulting on a quarter of the programs
        results = real(ps, programs)
        return [ExecResult(Verdict.SANDBOX_ERROR, error="worker lost") if "sleep" in s else r
                for r, s in zip(results, programs, strict=True)]  # fmt: skip

    cfg = _cfg(overlap_scoring=overlap, overlap_chunks=3, max_sandbox_errors=0.3)
    run = FixedRun(cfg, tokenizer, pool, problems, wrap=slow_ones_fail)
    kept = draw(cfg, run, problems)
    slow = [variant(problems, p, j) == "slow" for p in problems for j in range(G)]
    assert [s is None for s in kept.scores] == slow and any(slow)
    with pytest.raises(SandboxErrorRate, match="6 of 24 programs ended in sandbox_error"):
        draw(replace(cfg, max_sandbox_errors=0.2), replace(run, cfg=replace(cfg, max_sandbox_errors=0.2)), problems)


def _feed_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(FEED_THREAD)]


def test_a_crash_in_the_background_scoring_is_raised_in_the_trainer_and_stops_generating(
    problems, tokenizer, pool
) -> None:
    def broken(real, ps, programs):
        raise RuntimeError("the pool broke")

    run = FixedRun(_cfg(), tokenizer, pool, problems, wrap=broken, on_sample=lambda n: time.sleep(0.3))
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="the pool broke"):
        overlapped_draw(run, problems, G, 1.0, 6)
    assert len(run.calls) < 6, "generation went on for a batch that could not be scored"
    assert time.monotonic() - start < 10 and not _feed_threads()


def test_a_crash_in_generation_waits_for_the_chunk_in_the_sandbox_and_leaves_no_thread_behind(
    problems, tokenizer, pool
) -> None:
    """The pool must not be left mid-run: the trainer's next use of it (or its close) would race the thread."""
    finished: list[int] = []

    def slow(real, ps, programs):
        time.sleep(0.5)
        results = real(ps, programs)
        finished.append(len(results))
        return results

    def fail_second(n: int) -> None:
        if n == 2:
            raise MemoryError("out of memory in generate")

    run = FixedRun(_cfg(), tokenizer, pool, problems, wrap=slow, on_sample=fail_second)
    with pytest.raises(MemoryError):
        overlapped_draw(run, problems, G, 1.0, 3)
    assert finished == [8], "the first chunk's run was abandoned half-way"
    assert not _feed_threads()
    program = Run.to_program(run, problems[0], body(problems[0], "right"))
    assert [r.verdict for r in execute_many([problems[0]], [program], pool=pool)] == [Verdict.PASSED], "pool broken"


def test_a_worker_replaced_from_the_background_thread_still_stops_test_code_looping_on_the_candidates_data() -> None:
    """The trusted-code alarm needs the main thread; a worker forked from a background thread must still have it
    (adversarial_table's LOOP row: without the alarm the worker hangs and the run is a sandbox_error)."""
    from concurrent.futures import ThreadPoolExecutor

    with SandboxPool(1, Limits(timeout=1.0)) as pool:
        old = pool._workers[0].process

        def in_background() -> list[ExecResult]:
            os.kill(old.pid, 9)
            old.join()
            return execute_many([LOOP], ["def add(a, b):\n    return 10**15\n"], pool=pool)

        with ThreadPoolExecutor(1, thread_name_prefix=FEED_THREAD) as feed:
            (result,) = feed.submit(in_background).result(timeout=120)
        assert pool._workers[0].process is not old, "the worker was not replaced from the thread"
        assert result.verdict is Verdict.TIMEOUT, (result.verdict, result.error)


def test_a_run_with_one_chunk_trains_exactly_as_without_overlap_and_each_run_logs_the_time_split(
    tiny, tmp_path
) -> None:
    """One chunk is one `run.sample` call: the same random numbers, so overlap itself must change nothing."""
    from execrl.trainers.ppo import train_ppo
    from execrl.trainers.ppo_config import PRESETS
    from execrl.trainers.tracking import read_metrics
    from safetensors.torch import load_file

    def train(name: str, **overlap: Any) -> tuple[list[dict], dict]:
        settings = dict(families=FAMILY, batch_size=12, minibatch_size=6, max_new_tokens=12, max_prompt_tokens=64,
                        eval_every=0, workers=2, device="cpu", iterations=1, samples_per_prompt=3)  # fmt: skip
        out = train_ppo(
            PPOConfig(model=str(tiny), out=tmp_path / name, **{**PRESETS["cpu-tiny"], **settings, **overlap})
        )
        return read_metrics(out / "metrics.jsonl"), load_file(out / "model.safetensors")

    runs = {"off": train("off"), "one": train("one", overlap_scoring=True, overlap_chunks=1)}
    times = ("time/rollout", "time/sandbox", "time/sandbox_wait", "time/update", "time/total")
    for name, (rows, _) in runs.items():
        for row in rows:
            assert all(row[k] >= 0 for k in times), (name, row)
            assert row["time/rollout"] + row["time/sandbox_wait"] + row["time/update"] <= row["time/total"]
    assert all(r["time/sandbox_wait"] == r["time/sandbox"] for r in runs["off"][0]), "without overlap all is waited"

    def curve(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]

    (off, off_weights), (one, one_weights) = runs["off"], runs["one"]
    assert curve(one) == curve(off)
    assert all(torch.equal(one_weights[k], off_weights[k]) for k in off_weights)
