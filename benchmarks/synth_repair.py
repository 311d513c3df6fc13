"""`synth-repair`: code repair as a task. Each problem shows a synth program with one planted bug and the feedback
of an example it fails; the model writes the fixed function, judged by the synth problem's hidden tests.

A problem is built from a synth problem and one of its subtly wrong solutions (`metadata["wrong_solutions"]`, one
local edit each). The feedback names an input, what the buggy program returned and what was expected. That input
is an example drawn apart from the hidden tests (the synth problem's public examples first, then fresh draws), so
the prompt gives away no hidden test. For the tiny model's completion style:

    # this version is wrong: total_if([8, 7]) returned 15, expected 8
    def total_if(nums):
        <the buggy body>
    # fixed:
    # return the sum of the items in nums that are greater than 7
    def total_if(nums):

and the model continues with the body, cut at synth's stop sequences (`synth_program`). Task ids are
`synth-repair/<split>/<family>/<index>/<bug>`. The reference solution is the synth problem's.

Computing the feedback runs the buggy programs here, in-process: they are this module's own templates (the same
trusted text as the reference semantics), never a model's output.
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

from execrl.benchmarks.problem import Problem
from execrl.benchmarks.repair import call_text, repair_prompt
from execrl.benchmarks.synth import _combo_key, load_synth
from execrl.benchmarks.synth_families import FAMILIES

BENCHMARK = "synth-repair"
_FAMILY = {family.name: family for family in FAMILIES}


def load_synth_repair(split: str, seed: int = 0, n: int | None = None) -> list[Problem]:
    """One repair problem per (synth problem, planted bug) of the synth split, at most `n` of them."""
    problems: list[Problem] = []
    for problem in load_synth(split, seed=seed):
        for kind, wrong in zip(problem.metadata["wrong_kinds"], problem.metadata["wrong_solutions"], strict=True):
            feedback = failing_example(problem, wrong)
            if feedback is not None:
                problems.append(repair_problem(problem, kind, wrong, feedback))
        if n is not None and len(problems) >= n:
            break
    return problems if n is None else problems[:n]


def repair_problem(problem: Problem, kind: str, wrong: str, feedback: tuple[list[Any], Any, Any]) -> Problem:
    """The repair task for `problem`'s buggy program `wrong` and the example it fails."""
    args, got, expected = feedback
    prompt = repair_prompt(
        problem, wrong, f"{call_text(problem.fn_name or '', args)} returned {got!r}, expected {expected!r}"
    )
    # The feedback's example first, then the synth problem's other examples.
    others = [test for test in problem.metadata.get("public_tests", ()) if test != (args, expected)]
    public = ((args, expected), *others)
    return dataclasses.replace(
        problem,
        task_id=problem.task_id.replace("synth/", f"{BENCHMARK}/", 1) + f"/{kind}",
        benchmark=BENCHMARK,
        prompt=prompt,
        metadata={**problem.metadata, "bug": kind, "buggy_program": wrong, "public_tests": public},
    )


def failing_example(problem: Problem, wrong: str) -> tuple[list[Any], Any, Any] | None:
    """(arguments, what `wrong` returned, expected) for an example input, not a hidden test, that `wrong` fails;
    None when 50 draws find none."""
    family = _FAMILY[problem.metadata["family"]]
    params = problem.metadata["params"]
    function = _compile(wrong, problem.fn_name)
    hidden = {json.dumps(args) for args in problem.inputs}
    candidates = [args for args, _ in problem.metadata.get("public_tests", ())]
    rng = random.Random(f"synth-repair/{problem.metadata['seed']}/{_combo_key(family, params)}")
    for _ in range(50):
        candidates += [[value] for value in family.cases(rng, params)]
    for args in candidates:
        if json.dumps(args) in hidden:
            continue
        expected = family.reference(params, *args)
        try:
            got = function(*json.loads(json.dumps(args)))  # a copy: a buggy program may mutate its argument
        except Exception as error:  # noqa: BLE001 - a planted bug may raise; that is feedback too
            got = f"{type(error).__name__}: {error}"
        if got != expected:
            return args, got, expected
    return None


def _compile(program: str, name: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(program, f"<synth-repair {name}>", "exec"), namespace)  # our own template text (module docstring)
    return namespace[name]
