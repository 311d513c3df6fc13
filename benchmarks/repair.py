"""The repair prompt: a program that fails, the feedback of the example it fails, then the problem's own prompt.

One format for every completion-style benchmark and both users of it (the `synth-repair` benchmark and critic
sampling's repair rounds):

    # this version is wrong: <feedback>
    <the failing program>
    # fixed:
    <the problem's prompt>

The model continues the problem's prompt as it would without the feedback (a body for HumanEval and synth, a
whole program for MBPP, APPS and problem files), so the continuation becomes a program the usual way
(`execrl.harness.extract.extract` with the original problem). The feedback names only public examples.
"""

from __future__ import annotations

from typing import Any

from execrl.benchmarks.problem import Problem, TestKind


def repair_prompt(problem: Problem, program: str, feedback: str) -> str:
    """The completion-style prompt asking for a fixed version of `program` (see the module docstring)."""
    note = " ".join(feedback.split())  # one comment line, whatever the feedback held
    return f"# this version is wrong: {note}\n{program.rstrip()}\n# fixed:\n{problem.prompt}"


def example_feedback(problem: Problem, index: int, error: str) -> str:
    """What a failed public example says: the call or input and the expected answer, and the sandbox's error."""
    why = f" ({error.split(': ', 1)[-1][:160]})" if error and "wrong answer" not in error else ""
    if problem.test_kind is TestKind.CALL:
        args, expected = problem.inputs[index], problem.outputs[index]
        return f"{call_text(problem.fn_name or '', args)} should return {expected!r}{why}"
    if problem.test_kind is TestKind.STDIO:
        return f"on input {problem.inputs[index]!r} the output should be {problem.outputs[index]!r}{why}"
    return f"{problem.tests[index]} fails{why}" if index < len(problem.tests) else f"an example fails{why}"


def call_text(fn_name: str, args: Any) -> str:
    return f"{fn_name}({', '.join(map(repr, args))})"
