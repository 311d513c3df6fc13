"""The sandbox server: what a fresh interpreter (subprocess backend) or a container (docker backend) runs.

It starts the executor's zygote once (`prepare_worker`), reports the slot's isolation in a first frame, then
answers one request frame per program on its stdin with one reply frame on its stdout until EOF. Frames are
`wire`'s length-prefixed JSON both ways, never pickle: the host decodes a reply into fresh builtins and checks
its shape (`result_from_reply`), so whatever ran on the other side, at worst a reply is wrong, never code on
the host. The frames use private copies of stdin and stdout; fds 0 and 1 point at /dev/null, so nothing else
(warnings, the executor's children) reads or writes them.

Imported inside the container, so it uses the standard library and the sandbox's own modules only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import traceback
from collections import OrderedDict
from typing import Any

from execrl.benchmarks.problem import Problem, TestKind
from execrl.harness.records import ExecResult, Limits, TestOutcome, Verdict
from execrl.harness.sandbox import wire

PROBLEM_CACHE = 256
"""Problems a server keeps (and the host mirrors); APPS tests can be megabytes, so the cache is bounded."""
_LIMIT_FIELDS = {f.name for f in dataclasses.fields(Limits)}


def problem_to_data(problem: Problem) -> dict[str, Any]:
    """`problem` as plain JSON data (its tests through the wire codec, which keeps tuples, sets and big ints);
    `metadata` stays behind: the sandbox never reads it."""
    return {
        "task_id": problem.task_id,
        "benchmark": problem.benchmark,
        "prompt": problem.prompt,
        "test_kind": problem.test_kind.value,
        "entry_point": problem.entry_point,
        "check_code": problem.check_code,
        "test_setup": problem.test_setup,
        "tests": list(problem.tests),
        "inputs": wire.encode(list(problem.inputs)),
        "outputs": wire.encode(list(problem.outputs)),
        "fn_name": problem.fn_name,
        "starter_code": problem.starter_code,
        "solutions": list(problem.solutions),
        "difficulty": problem.difficulty,
    }


def problem_from_data(data: dict[str, Any]) -> Problem:
    return Problem(
        **{
            **data,
            "test_kind": TestKind(data["test_kind"]),
            "tests": tuple(data["tests"]),
            "inputs": tuple(wire.decode(data["inputs"])),
            "outputs": tuple(wire.decode(data["outputs"])),
            "solutions": tuple(data["solutions"]),
        }  # fmt: skip
    )


def limits_from_data(data: dict[str, Any]) -> Limits:
    return Limits(**{k: v for k, v in data.items() if k in _LIMIT_FIELDS})


def result_from_reply(reply: Any) -> ExecResult:
    """The ExecResult a reply frame stands for, checked field by field; a reply of any other shape (a bug, or a
    program that took over the server) is a sandbox_error, never an exception or a trusted value."""
    try:
        if type(reply) is not dict or reply.get("ok") is not True or type(reply.get("result")) is not dict:
            error = reply.get("error") if type(reply) is dict else None
            return ExecResult(Verdict.SANDBOX_ERROR, error=str(error or f"malformed reply {str(reply)[:200]}")[-2000:])
        row = reply["result"]
        tests = row["tests"]
        if type(tests) is not list or any(type(t) is not dict for t in tests):
            raise TypeError("tests is not a list of objects")
        result = ExecResult.from_json(row)
        for outcome in (result, *result.tests):
            if type(outcome.error) is not str or type(outcome.duration) not in (int, float):
                raise TypeError("error or duration of the wrong type")
        if type(result.isolation) is not dict or any(type(v) is not bool for v in result.isolation.values()):
            raise TypeError("isolation is not a dict of booleans")
        result.tests = [TestOutcome(t.verdict, float(t.duration), t.error) for t in result.tests]
        result.duration = float(result.duration)
        return result
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        return ExecResult(Verdict.SANDBOX_ERROR, error=f"malformed reply from the sandbox: {type(e).__name__}: {e}")


class ProblemCache:
    """The problems one server holds, by task id, mirrored on the sending side: a problem crosses once."""

    def __init__(self) -> None:
        self._held: OrderedDict[str, Problem] = OrderedDict()

    def request(self, problem: Problem, program: str, limits: Limits) -> dict[str, Any]:
        """The request frame for one program: the problem itself only when the other side lacks it."""
        held = self._held.get(problem.task_id)
        send = held is None or not (held is problem or held == problem)
        self.put(problem.task_id, problem)
        return {
            "task_id": problem.task_id,
            "problem": problem_to_data(problem) if send else None,
            "program": program,
            "limits": dataclasses.asdict(limits),
        }

    def put(self, task_id: str, problem: Problem) -> None:
        self._held[task_id] = problem
        self._held.move_to_end(task_id)
        if len(self._held) > PROBLEM_CACHE:
            self._held.popitem(last=False)

    def resolve(self, message: dict[str, Any]) -> Problem:
        """The receiving side: the problem a request names (decoding and keeping it when it came along)."""
        task_id = message["task_id"]
        if message["problem"] is not None:
            self.put(task_id, problem_from_data(message["problem"]))
        else:
            self._held.move_to_end(task_id)
        return self._held[task_id]


CONTAINER_MEMORY_COUNTERS = (
    ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),
    ("/sys/fs/cgroup/memory/memory.failcnt", ""),
    ("/sys/fs/cgroup/memory.events", "oom_kill"),
    ("/sys/fs/cgroup/memory.events", "max"),
)
"""Counters of a container's memory cgroup that rise when its cap is reached, as (file, key; "" for a file that is
the number): OOM kills, and hits of the limit (the kernel reclaiming and stalling the program before it kills,
which can outlast a short test deadline). cgroup v1 first, then v2 (cgroups(7), kernel docs cgroup-v1/memory)."""


def container_memory_events() -> int:
    """The sum of the container's memory counters that exist (-1 where none is readable)."""
    total, found = 0, False
    for path, key in CONTAINER_MEMORY_COUNTERS:
        try:
            with open(path) as f:
                for line in f:
                    name, _, value = line.rpartition(" ") if key else ("", "", line)
                    if name == key:
                        total, found = total + int(value), True
        except (OSError, ValueError):
            continue
    return total if found else -1


def container_memory_verdict(result: ExecResult, limits: Limits) -> ExecResult:
    """A program during which the container's memory cap was reached ends as memory_exceeded (not the runtime_error
    of a killed process, or the timeout of one the kernel stalled), as the slot cgroup's OOM count makes it on the
    host."""
    if result.passed or result.verdict in (Verdict.SYNTAX_ERROR, Verdict.SANDBOX_ERROR):
        return result
    error = f"the container's memory cap (Limits.memory {limits.memory} bytes plus headroom) was reached"
    tests = [t if t.verdict is Verdict.PASSED else TestOutcome(Verdict.MEMORY_EXCEEDED, t.duration, error)
             for t in result.tests]  # fmt: skip
    return ExecResult(Verdict.MEMORY_EXCEEDED, tests, error, result.duration, result.isolation)


def serve(in_fd: int, out_fd: int, slot: int, hidden: list[str], in_container: bool = False) -> None:
    """The sandbox server loop: prepare the slot, report its isolation, then answer requests until EOF.

    `in_container`: the server is alone in a container whose memory cap stands in for the slot's memory cgroup
    (which a container cannot make), so the container's OOM kills during a program decide its verdict."""
    from execrl.harness.sandbox import executor

    try:
        isolation = executor.prepare_worker(slot, hidden=hidden)
    except BaseException:  # a harness fault at start: said once, then the server ends
        wire.write_frame(out_fd, {"ok": False, "error": traceback.format_exc(limit=-3)})
        return
    wire.write_frame(out_fd, {"ok": True, "isolation": isolation})
    problems = ProblemCache()
    while True:
        try:
            message = wire.read_frame(in_fd)
        except EOFError:
            return
        try:
            problem, limits = problems.resolve(message), limits_from_data(message["limits"])
            events = container_memory_events() if in_container else -1
            result = executor.execute(problem, message["program"], limits, slot=slot)
            if events >= 0 and container_memory_events() > events:
                result = container_memory_verdict(result, limits)
            reply: dict[str, Any] = {"ok": True, "result": result.to_json()}
        except Exception:  # a harness fault, never the program's: its own verdict on the other side
            reply = {"ok": False, "error": traceback.format_exc(limit=-3)}
        wire.write_frame(out_fd, reply)


def main() -> None:
    """Entry point: argv is [project root, slot, hidden folders as a JSON list, "container" or "host"]."""
    in_fd, out_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    serve(in_fd, out_fd, int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4] == "container")


def launch_code() -> str:
    """`python -I -S -c` source that runs `main` from the project root given as argv[1]."""
    from execrl.harness.sandbox.isolation import import_prelude

    return import_prelude("sys.argv[1]") + "from execrl.harness.sandbox.server import main\nmain()\n"
