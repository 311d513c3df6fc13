"""What a problem's reference solution answers, and how long it takes: `reference_run(problem, slot)`.

HumanEval+ and MBPP+ judge a program against the reference: its answers are the expected outputs (the release
files hold none), and its time on each input sets that input's time limit (evalplus: max(floor, factor x the
reference's time), per program min(cap, the sum of those) + 1). The reference is benchmark code, but it runs
here exactly as a candidate does, in a sandboxed child of the slot, and its answers cross the wire as plain
data; a reference that fails is a fault of the data (`SandboxError`, reported as sandbox_error), never a
verdict on the candidate. Each worker runs a problem's reference once and keeps the answers (`CACHE` problems).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from execrl.benchmarks.problem import Problem
from execrl.harness.records import Limits
from execrl.harness.sandbox import judge
from execrl.harness.sandbox.bounds import Abort, exception_text
from execrl.harness.sandbox.isolation import SandboxError
from execrl.harness.sandbox.judge import Link, Remote
from execrl.harness.sandbox.program import Child

CACHE = 64
GENEROUS = Limits(timeout=60.0, program_timeout=900.0, retry_timeouts=False)
"""Limits of the reference's own run (calibration-style: the reference is not what is judged)."""


@dataclass(frozen=True)
class ReferenceRun:
    outputs: tuple[Any, ...]
    """The reference's answer per input (for `not_none` problems: whether it answered something other than None)."""
    durations: tuple[float, ...]
    """Seconds per input, as the judge saw the call (wire included)."""


_cache: OrderedDict[tuple[str, str, int, int], ReferenceRun] = OrderedDict()


def reference_run(problem: Problem, slot: int) -> ReferenceRun:
    """The reference's answers and times on `problem.inputs`, run once per worker in the sandbox of `slot`."""
    if not problem.solutions or not problem.fn_name:
        raise SandboxError(f"{problem.task_id} has no reference solution to judge against")
    key = (problem.benchmark, problem.task_id, hash(problem.solutions[0]), len(problem.inputs))
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    run = _run_reference(problem, slot)
    _cache[key] = run
    if len(_cache) > CACHE:
        _cache.popitem(last=False)
    return run


def _run_reference(problem: Problem, slot: int) -> ReferenceRun:
    outputs: list[Any] = []
    durations: list[float] = []
    not_none = problem.metadata.get("oracle") == "not_none"
    with Child(slot, GENEROUS) as child:
        link = Link(child, GENEROUS, time.monotonic() + GENEROUS.program_timeout)
        try:
            link.start_test()
            judge.load_program(link, problem.program(problem.solutions[0]), "__candidate__")
            function = Remote(link, problem.fn_name or "")
            for args in problem.inputs:
                link.start_test()
                begin = time.monotonic()
                out = function(*args)
                durations.append(time.monotonic() - begin)
                outputs.append(out is not None if not_none else out)
        except Abort as exc:
            raise SandboxError(f"{problem.task_id}: reference failed on input {len(outputs)}: {exc.error}") from None
        except Exception as exc:  # noqa: BLE001 - the reference's own exception: the data is at fault
            text = (getattr(exc, "execrl_remote", None) or exception_text(exc))[:500]
            raise SandboxError(f"{problem.task_id}: reference failed on input {len(outputs)}: {text}") from None
    return ReferenceRun(tuple(outputs), tuple(durations))


def time_limits(problem: Problem, run: ReferenceRun) -> tuple[list[float], float]:
    """(per-input time limits, the program's budget) from the reference's times, by the problem's rule."""
    factor, floor = float(problem.metadata["time_factor"]), float(problem.metadata["time_floor"])
    limits = [max(floor, factor * seconds) for seconds in run.durations]
    return limits, min(float(problem.metadata["program_cap"]), sum(limits)) + 1.0
