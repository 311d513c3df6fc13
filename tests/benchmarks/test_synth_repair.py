"""synth-repair: references pass, the planted bugs fail, the prompt holds the feedback of an example (not a hidden
test), and a model's continuation becomes the fixed function."""

from __future__ import annotations

import json

import pytest
from execrl.benchmarks.public_tests import public_problem
from execrl.benchmarks.registry import load_problems, normalize_task_id
from execrl.harness.extract import extract
from execrl.harness.records import Verdict
from execrl.harness.sandbox.pool import SandboxPool, execute_many


@pytest.fixture(scope="module")
def problems():
    return load_problems("synth-repair", limit=60)


def test_every_family_and_several_bug_kinds_are_covered() -> None:
    everything = load_problems("synth-repair")
    families = {p.metadata["family"] for p in everything}
    assert len(families) == 10 and "max_or_default" not in families  # its bug fails only on a hidden test
    assert len({p.metadata["bug"] for p in everything}) >= 8
    assert len({p.task_id for p in everything}) == len(everything)
    assert all(p.task_id.startswith("synth-repair/test/") for p in everything)


def test_references_pass_and_buggy_programs_fail_the_hidden_tests(problems) -> None:
    programs = [p.solutions[0] for p in problems] + [p.metadata["buggy_program"] for p in problems]
    with SandboxPool(2) as pool:
        results = execute_many(problems + problems, programs, pool=pool)
    assert [r.verdict for r in results[: len(problems)]] == [Verdict.PASSED] * len(problems)
    assert not any(r.passed for r in results[len(problems) :])


def test_the_prompt_holds_the_buggy_program_and_the_feedback_of_an_example_it_fails(problems) -> None:
    public = [public_problem(p) for p in problems]
    with SandboxPool(2) as pool:
        buggy = execute_many(public, [p.metadata["buggy_program"] for p in problems], pool=pool)
        fixed = execute_many(public, [p.solutions[0] for p in problems], pool=pool)
    for problem, example, bad, good in zip(problems, public, buggy, fixed, strict=True):
        args, expected = example.inputs[0], example.outputs[0]
        assert problem.metadata["buggy_program"] in problem.prompt
        call = f"{problem.fn_name}({', '.join(map(repr, args))})"
        assert f"# this version is wrong: {call} returned " in problem.prompt
        assert f", expected {expected!r}\n" in problem.prompt
        assert json.dumps(args) not in {json.dumps(i) for i in problem.inputs}  # an example, never a hidden test
        assert bad.tests[0].verdict is not Verdict.PASSED and good.passed  # the sandbox agrees: the bug fails it


def test_a_continuation_becomes_the_fixed_function(problems) -> None:
    problem = problems[0]
    body = problem.solutions[0].split("\n", 1)[1]
    assert extract(problem, body + "\n# trailing chatter")["solution"] == problem.solutions[0]


def test_task_ids_normalise() -> None:
    assert normalize_task_id("synth-repair", "test/clamp/0/x") == "synth-repair/test/clamp/0/x"
