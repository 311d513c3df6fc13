"""The problems a trainer learns from, the ones it holds out, and the refusal to train on what it is judged on.

- `training_problems(flags)`: the train split of each benchmark named (`TrainProblemFlags`), or a problem file.
  HumanEval has no train split: training on it is refused unless `--allow-eval-overlap`, since every
  HumanEval figure would then be measured on training problems.
- `held_out_problems(flags)`: the evaluation split (test) of each benchmark trained on, for the in-loop
  evaluation; a problem file has none.
- `check_overlap(train, held_out)`: refuses, naming the task ids, when a training problem is also held out.
  Two problems are the same when their hidden tests are (assert problems: the asserts, or HumanEval's check
  code), or their statement and tests are (stdin/stdout and call problems, whose short tests alone may repeat).
  Task ids are not compared: APPS numbers its train and test problems from 0 both.
- `reference_rows(problems, per_problem)`: SFT rows from the problems' reference solutions, as the model would
  write them after `build_prompt` (the body after the prompt where the completion continues the prompt).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from execrl.benchmarks.errors import UserError
from execrl.benchmarks.problem import Problem, TestKind
from execrl.benchmarks.prompts import build_prompt
from execrl.harness.flags import load_from_flags
from execrl.trainers.flags import TrainProblemFlags

TRAIN_SPLIT, HELD_OUT_SPLIT = "train", "test"
SHOWN = 8
"""Overlapping task ids named in the refusal (the count says how many more)."""


def source_names(flags: TrainProblemFlags, default: str = "synth") -> list[str]:
    """The benchmarks `flags` name (`["problems"]` for a problem file; `[default]` when none is given)."""
    if flags.problems is not None:
        return ["problems"]
    return list(flags.benchmark or [default])


def training_problems(flags: TrainProblemFlags, *, synth_seed: int = 0, default: str = "synth") -> list[Problem]:
    """The problems to train on, in source order; refuses HumanEval without --allow-eval-overlap."""
    names = source_names(flags, default)
    if "humaneval" in names and not flags.allow_eval_overlap:
        raise UserError(
            "--benchmark humaneval: HumanEval has only its test split, so training on it leaves nothing held out "
            "(every HumanEval figure would be measured on training problems); pass --allow-eval-overlap to train "
            "on it anyway"
        )
    split = flags.split or TRAIN_SPLIT
    splits = {name: "test" if name == "humaneval" and flags.split is None else split for name in names}
    problems = load_from_flags(flags, splits=splits, default=default, synth_seed=synth_seed)
    if not problems:
        raise UserError(f"{', '.join(names)}: no problems to train on (check --limit, --difficulty)")
    return problems


def held_out_problems(flags: TrainProblemFlags, *, synth_seed: int = 0) -> dict[str, list[Problem]]:
    """Benchmark -> its held-out (test split) problems, for each benchmark trained on; none for a problem file.
    --limit does not apply (it cuts the training problems); the caller takes as many as it evaluates."""
    if flags.problems is not None:
        return {}
    held: dict[str, list[Problem]] = {}
    for name in source_names(flags):
        one = _only(flags, name)
        held[name] = load_from_flags(one, splits={name: HELD_OUT_SPLIT}, synth_seed=synth_seed)
    return held


def _only(flags: TrainProblemFlags, name: str) -> TrainProblemFlags:
    """`flags` naming `name` alone, with no limit (the held-out set is cut by its own count), and the options
    that apply to `name` only."""
    import dataclasses

    return dataclasses.replace(
        flags,
        benchmark=[name],
        limit=None,
        variant=flags.variant if name == "mbpp" else None,
        difficulty=flags.difficulty if name == "apps" else None,
    )


def same_problem_key(problem: Problem) -> str:
    """What makes two problems the same (see the module docstring)."""
    if problem.test_kind is TestKind.ASSERT:
        return json.dumps(["assert", problem.test_setup, list(problem.tests), problem.check_code])
    statement = " ".join(problem.prompt.split())
    return json.dumps([problem.test_kind.value, statement, list(problem.inputs), list(problem.outputs)], default=str)


def overlapping(train: Sequence[Problem], held_out: Sequence[Problem]) -> list[tuple[str, str]]:
    """(training task id, held-out task id) for each training problem that is also held out."""
    held = {same_problem_key(p): p.task_id for p in held_out}
    return [(p.task_id, held[key]) for p in train if (key := same_problem_key(p)) in held]


def check_overlap(train: Sequence[Problem], held_out: Sequence[Problem], where: str) -> None:
    """Refuse training problems that are also in `held_out` (`where` names the evaluation), naming them."""
    pairs = overlapping(train, held_out)
    if not pairs:
        return
    shown = ", ".join(a if a == b else f"{a} (= {b})" for a, b in pairs[:SHOWN])
    more = f" and {len(pairs) - SHOWN} more" if len(pairs) > SHOWN else ""
    raise UserError(
        f"{len(pairs)} training problem(s) are also in {where}: {shown}{more}; train on another split or pass "
        "--allow-eval-overlap to train on them anyway"
    )


def reference_completion(problem: Problem, solution: str) -> str:
    """A reference solution as the completion the model writes after `build_prompt(problem)`: the body for a
    problem whose completion continues the prompt (a problem file may give the whole program there), else the
    whole program (MBPP's have CRLF line ends, kept out of what the model learns)."""
    if problem.completes_prompt:
        return solution[len(problem.prompt) :] if solution.startswith(problem.prompt) else solution
    return solution.replace("\r\n", "\n").strip("\n") + "\n"


def reference_rows(problems: Sequence[Problem], per_problem: int) -> list[dict[str, str]]:
    """(prompt, completion) rows: up to `per_problem` reference solutions of each problem, in order (synth's:
    its correct corpus rows, the body after the prompt's `def` line)."""
    from execrl.benchmarks.synth import sft_corpus

    if per_problem < 1:
        raise UserError(f"--solutions-per-problem {per_problem}: must be >= 1")
    rows = []
    for problem in problems:
        if problem.benchmark == "synth":
            rows += [{"prompt": r["prompt"], "completion": r["completion"]} for r in sft_corpus([problem], 0.0)]
            continue
        prompt = build_prompt(problem)
        for solution in problem.solutions[:per_problem]:
            if solution.strip():
                rows.append({"prompt": prompt, "completion": reference_completion(problem, solution)})
    if not rows:
        raise UserError("the problems hold no reference solutions to fine-tune on")
    return rows
