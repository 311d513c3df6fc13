"""Scoring overlapped with generation (`execrl train ppo --overlap-scoring`): a draw's prompts are sampled in
`--overlap-chunks` chunks, and the sandbox runs each chunk's programs on a background thread while the next chunk
generates, so the trainer waits after generation only for what the sandbox has not finished by then (about the
last chunk's share when the sandbox keeps up).

The step stays on-policy: the update still waits for every reward of the batch; only the sandbox's work moves
earlier. (Asynchronous RL, which trains on rollouts of older weights while new ones sample, is another thing.)

Why the results cannot be mixed up:
- One background thread runs the chunks in the order they were submitted, and `execute` returns a chunk's results
  in its input order whatever order the pool finishes them in (`execute_many`), so result i is program i's.
- The pool is used by one thread at a time: the main thread never touches it during a draw, and a draw returns
  (also on an error) only once the background thread is idle again, its queued chunks cancelled.
- The main thread alone touches the model and torch's RNG; the background thread only assembles programs
  (`to_program`) and runs them.
- A sandbox worker the pool replaces is forked from the background thread. The child's one thread becomes its
  main thread (CPython's `PyOS_AfterFork_Child`), so the judge's trusted-code alarm, which needs the main thread
  (`harness/sandbox/bounds.py`), still guards it there: `tests/trainers/test_overlap.py` checks it.

A failure in the background (the pool, `to_program`) is raised in the trainer at the next chunk boundary or when
the results are collected, as itself; a failure in the main thread (generation) waits for the chunk the sandbox is
running and drops the rest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from execrl.benchmarks.problem import Problem
from execrl.harness.records import ExecResult
from execrl.trainers.rollout import Rollout, concat_rollouts

if TYPE_CHECKING:
    from execrl.trainers.ppo_setup import Run

FEED_THREAD = "execrl-sandbox-feed"
"""Name prefix of the background thread (tests look for it)."""


@dataclass(frozen=True)
class DrawTimes:
    """Where one draw's time went, in seconds."""

    sample: float
    """Generating (`run.sample`), all chunks together."""
    sandbox: float
    """The sandbox's busy time on this draw's programs (`to_program` + `execute`), summed over chunks."""
    sandbox_wait: float
    """The trainer's wait for sandbox results after generation finished: all of `sandbox` without overlap."""


def split_prompts(prompts: Sequence[Problem], n_chunks: int) -> list[list[Problem]]:
    """`prompts` in min(n_chunks, len) consecutive chunks whose sizes differ by at most one, the larger first: the
    trainer waits for the last chunk's programs after generation ends, so that chunk is a small one."""
    n = max(1, min(n_chunks, len(prompts)))
    base, extra = divmod(len(prompts), n)
    chunks, start = [], 0
    for i in range(n):
        size = base + (i < extra)
        chunks.append(list(prompts[start : start + size]))
        start += size
    return chunks


def overlapped_draw(
    run: Run, prompts: Sequence[Problem], samples_per_prompt: int, temperature: float, n_chunks: int
) -> tuple[Rollout, list[str], list[ExecResult], DrawTimes]:
    """(rollout, programs, results, times) of G = `samples_per_prompt` samples of each prompt, sampled chunk by
    chunk (`run.sample` per chunk, so torch's RNG gives other samples than one whole-batch call) while the sandbox
    runs the chunks already sampled. The rollout is the chunks' joined by `concat_rollouts`: queries left-padded to
    the longest and responses right-padded to the longest, the layout one whole-batch call gives the same tokens."""

    def run_chunk(problems: list[Problem], texts: list[str]) -> tuple[list[str], list[ExecResult], float]:
        start = time.monotonic()
        programs = [run.to_program(p, text) for p, text in zip(problems, texts, strict=True)]
        results = run.execute(problems, programs)
        if len(results) != len(programs):  # a pool that lost a job must not shift the rewards of the next chunks
            raise RuntimeError(f"the sandbox returned {len(results)} results for {len(programs)} programs")
        return programs, list(results), time.monotonic() - start

    rollouts, futures, t_sample = [], [], 0.0
    feed = ThreadPoolExecutor(max_workers=1, thread_name_prefix=FEED_THREAD)
    try:
        for chunk in split_prompts(prompts, n_chunks):
            _raise_failure(futures)  # the sandbox failed: stop generating for a batch that cannot be scored
            start = time.monotonic()
            rollout = run.sample(chunk, samples_per_prompt, temperature)
            t_sample += time.monotonic() - start
            problems = [p for p in chunk for _ in range(samples_per_prompt)]
            futures.append(feed.submit(run_chunk, problems, list(rollout.texts)))
            rollouts.append(rollout)
        start_wait = time.monotonic()
        done = [f.result() for f in futures]
        t_wait = time.monotonic() - start_wait
    except BaseException:
        for f in futures:
            f.cancel()  # the chunks not started yet; the running one finishes (the pool must not be left mid-run)
        raise
    finally:
        feed.shutdown(wait=True)
    programs = [program for chunk_programs, _, _ in done for program in chunk_programs]
    results = [result for _, chunk_results, _ in done for result in chunk_results]
    times = DrawTimes(t_sample, sum(t for _, _, t in done), t_wait)
    return concat_rollouts(rollouts, run.tokenizer.pad_token_id), programs, results, times


def _raise_failure(futures: Sequence[Future]) -> None:
    """Raise the exception of the first finished chunk that failed, if any (without waiting for the others)."""
    for f in futures:
        if f.done() and not f.cancelled() and f.exception() is not None:
            raise f.exception()  # type: ignore[misc]


def sequential_draw(
    run: Run, prompts: Sequence[Problem], samples_per_prompt: int, temperature: float
) -> tuple[Rollout, list[str], list[ExecResult], DrawTimes]:
    """The same as `overlapped_draw`, without overlap: one `run.sample` call for all prompts, then the sandbox."""
    start = time.monotonic()
    rollout = run.sample(prompts, samples_per_prompt, temperature)
    problems = [p for p in prompts for _ in range(samples_per_prompt)]
    start_sandbox = time.monotonic()
    programs = [run.to_program(p, text) for p, text in zip(problems, rollout.texts, strict=True)]
    results = run.execute(problems, programs)
    t_sandbox = time.monotonic() - start_sandbox
    return rollout, programs, results, DrawTimes(start_sandbox - start, t_sandbox, t_sandbox)
