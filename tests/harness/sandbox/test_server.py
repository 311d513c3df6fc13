"""The sandbox server's requests and replies are data: problems survive the codec, and a reply of any other shape
than a result (a bug, or a program that took over the server in its container) is a sandbox_error, never trusted
and never code on the host."""

from __future__ import annotations

import pickle

import pytest
from execrl.benchmarks.humaneval import load_humaneval
from execrl.benchmarks.problem import Problem, TestKind
from execrl.harness import records
from execrl.harness.records import ExecResult, Limits, Verdict
from execrl.harness.sandbox import wire
from execrl.harness.sandbox.backends import SubprocessBackend
from execrl.harness.sandbox.server import (
    ProblemCache,
    limits_from_data,
    problem_from_data,
    problem_to_data,
    result_from_reply,
)

GOOD = ExecResult(Verdict.PASSED, [records.TestOutcome(Verdict.PASSED, 0.5)], "", 0.7, {"net": True}).to_json()

# (why, reply as it would arrive decoded from JSON)
FORGED = [
    ("a pickle's bytes are not a reply (nothing is unpickled)", pickle.dumps(("ok", GOOD))),
    ("not an object", [True, GOOD]),
    ("ok missing", {"result": GOOD}),
    ("ok is truthy but not true", {"ok": 1, "result": GOOD}),
    ("an unknown verdict", {"ok": True, "result": {**GOOD, "verdict": "approved"}}),
    ("tests that are not a list", {"ok": True, "result": {**GOOD, "tests": "passed"}}),
    ("a test that is not an object", {"ok": True, "result": {**GOOD, "tests": ["passed"]}}),
    ("a test with an unknown verdict", {"ok": True, "result": {**GOOD, "tests": [{"verdict": "ok"}]}}),
    ("an error that is not text", {"ok": True, "result": {**GOOD, "error": {"__class__": "x"}}}),
    ("a duration that is not a number", {"ok": True, "result": {**GOOD, "duration": "0.1"}}),
    ("isolation values that are not booleans", {"ok": True, "result": {**GOOD, "isolation": {"net": "yes"}}}),
    ("the server's own error report", {"ok": False, "error": "Traceback: the judge broke"}),
]


@pytest.mark.parametrize("reply", [f[1] for f in FORGED], ids=[f[0] for f in FORGED])
def test_a_reply_that_is_not_a_well_formed_result_is_a_sandbox_error(reply) -> None:
    assert result_from_reply(reply).verdict is Verdict.SANDBOX_ERROR


def test_a_well_formed_reply_is_the_result_it_describes() -> None:
    result = result_from_reply(wire.loads(wire.dumps({"ok": True, "result": GOOD})[4:]))
    assert result.verdict is Verdict.PASSED and result.tests[0].duration == 0.5 and result.isolation == {"net": True}


def test_problems_and_limits_survive_the_codec() -> None:
    call = Problem("t/1", "apps", "q", TestKind.CALL, fn_name="f", inputs=([(1, 2), {3}], [2**70]),
                   outputs=({"a": (1,)}, b"x"), metadata={"unused": object()})  # fmt: skip
    for problem in [*load_humaneval()[:3], call]:
        assert problem_from_data(wire.loads(wire.dumps(problem_to_data(problem))[4:])) == problem
    limits = Limits(timeout=1.5, memory=123, retry_timeouts=False)
    assert limits_from_data(wire.loads(wire.dumps(ProblemCache().request(call, "", limits))[4:])["limits"]) == limits


def test_a_problem_crosses_once_per_server() -> None:
    sender, receiver = ProblemCache(), ProblemCache()
    problem = load_humaneval()[0]
    first, second = (sender.request(problem, "x", Limits()) for _ in range(2))
    assert first["problem"] is not None and second["problem"] is None
    assert receiver.resolve(first) == receiver.resolve(second) == problem


def test_the_subprocess_backend_speaks_the_same_frames() -> None:
    problem = load_humaneval()[0]
    backend = SubprocessBackend(0, Limits())
    assert backend.isolation
    right = backend.execute(problem, problem.program(problem.solutions[0]))
    wrong = backend.execute(problem, problem.prompt + "    return None\n")
    assert (right.verdict, wrong.verdict) == (Verdict.PASSED, Verdict.FAILED)
