"""`synth`: a procedural, seeded benchmark sized for a tiny model trained on CPU, plus its noisy SFT corpus.

Eleven families of one-argument function-writing tasks (see `execrl.benchmarks.synth_families`), graded
easy / medium / hard, each parameterised by function name, argument name and constants, so the train
split holds thousands of distinct instances.

How a model's output becomes a program (the one rule; generation and PPO call `synth_program`):

- `Problem.prompt` is what the model sees: one spec comment line and the `def` line, e.g.
  `"# return the sum of the items in nums that are greater than 7\\ndef total_if(nums):\\n"`.
- The model continues with the body. The continuation is cut at the first of `metadata["stop"]`
  (`"\\n#"`, `"\\ndef "`, `"\\n\\n"`), given a final newline if it lacks one, and appended to the
  prompt's `def` line: that is the whole program (the comment is not part of it).
- `solutions[0]` is the correct whole program, `def` line first; `metadata["wrong_solutions"]` are
  subtly wrong whole programs (one local edit each, labelled in `metadata["wrong_kinds"]`).
- Tests are CALL tests of `fn_name` (= `entry_point`): 10 distinct argument lists with the outputs of the
  family's reference semantics, edge cases first (they expose each wrong program). `metadata["public_tests"]`
  holds up to 3 more (arguments, output) examples, none of them a hidden test, that a model may be shown or
  run its program on (`execrl.benchmarks.public_tests`); the prompt does not show them.

Splits: a parameter combination (family, function name, constants) belongs to `train` or `test` by a
fixed hash, independent of the seed, so no test problem shares its function name and constants with any
train problem (argument names are shared). Both splits cover every family. `load_synth(split, seed, n)`
draws `n` problems balanced across families, interleaved (any prefix stays balanced); the same seed gives
identical problems.

`sft_corpus` turns problems into (prompt, completion) rows where a `wrong_share` of each family's rows
use a wrong body, so SFT learns the bug at about that rate and PPO with execution reward can unlearn it.
`preference_pairs` gives (chosen = correct, rejected = wrong) continuations for the reward model.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections import defaultdict
from typing import Any

from execrl.benchmarks.problem import Problem, TestKind
from execrl.benchmarks.synth_families import FAMILIES, Family

STOP: tuple[str, ...] = ("\n#", "\ndef ", "\n\n")
DEFAULT_SIZES = {"train": 2000, "test": 200}
TEST_FRACTION = 0.2
"""Share of each family's (function name, constants) combinations held out for the test split."""
N_TESTS = 10


def _combo_key(family: Family, params: dict[str, Any]) -> str:
    return json.dumps({"family": family.name, **params}, sort_keys=True)


def _split_of(family: Family, params: dict[str, Any]) -> str:
    held = {name: value for name, value in params.items() if name != "arg"}
    digest = hashlib.sha256(_combo_key(family, held).encode()).digest()
    return "test" if int.from_bytes(digest[:4], "big") / 2**32 < TEST_FRACTION else "train"


def family_pool(family: Family, split: str) -> list[dict[str, Any]]:
    """Every parameter dict of `family` in `split`, in a fixed order."""
    names = list(family.grid)
    pool = []
    for fn, arg, *values in itertools.product(family.fn_names, family.arg_names, *family.grid.values()):
        params = {"fn": fn, "arg": arg, **dict(zip(names, values, strict=True))}
        if _split_of(family, params) == split:
            pool.append(params)
    return pool


def _unique(values: list[Any]) -> list[Any]:
    seen, kept = set(), []
    for value in values:
        key = json.dumps(value)
        if key not in seen:
            seen.add(key)
            kept.append(value)
    return kept


def _test_values(family: Family, params: dict[str, Any], seed: int) -> list[Any]:
    rng = random.Random(f"synth-tests/{seed}/{_combo_key(family, params)}")
    values = _unique(family.cases(rng, params))
    for _ in range(5):  # top up after duplicates; the edge cases come first and are never cut
        if len(values) >= N_TESTS:
            break
        values = _unique(values + family.cases(rng, params))
    return values[:N_TESTS]


N_PUBLIC = 3
"""Public examples per problem (`metadata["public_tests"]`), drawn apart from the hidden tests."""


def _public_values(family: Family, params: dict[str, Any], seed: int, hidden: list[Any]) -> list[Any]:
    """Example inputs none of which is a hidden test's, from their own seeded stream (the hidden tests' is left
    as it was)."""
    rng = random.Random(f"synth-public/{seed}/{_combo_key(family, params)}")
    taken = {json.dumps(value) for value in hidden}
    values: list[Any] = []
    for _ in range(10):
        values = [v for v in _unique(values + family.cases(rng, params)) if json.dumps(v) not in taken]
        if len(values) >= N_PUBLIC:
            break
    return values[:N_PUBLIC]


def make_problem(family: Family, params: dict[str, Any], split: str, index: int, seed: int = 0) -> Problem:
    """One synth problem for a parameter dict of `family`."""
    template = family.render(params)
    def_line = f"def {params['fn']}({params['arg']}):\n"
    values = _test_values(family, params, seed)
    examples = _public_values(family, params, seed, values)
    wrong_kinds = tuple(sorted(template.wrong))
    return Problem(
        task_id=f"synth/{split}/{family.name}/{index}",
        benchmark="synth",
        prompt=f"# {template.comment}\n{def_line}",
        test_kind=TestKind.CALL,
        entry_point=params["fn"],
        inputs=tuple([value] for value in values),
        outputs=tuple(family.reference(params, value) for value in values),
        fn_name=params["fn"],
        solutions=(def_line + template.body,),
        difficulty=family.difficulty,
        metadata={
            "family": family.name,
            "params": dict(params),
            "stop": list(STOP),
            "wrong_kinds": wrong_kinds,
            "wrong_solutions": tuple(def_line + template.wrong[kind] for kind in wrong_kinds),
            "split": split,
            "seed": seed,
            "public_tests": tuple(([value], family.reference(params, value)) for value in examples),
        },
    )


def load_synth(split: str, seed: int = 0, n: int | None = None) -> list[Problem]:
    """`n` problems of `split` ("train" or "test"), balanced across families; defaults 2000 / 200.

    Raises ValueError for an unknown split or an `n` larger than a family's pool allows.
    """
    if split not in DEFAULT_SIZES:
        raise ValueError(f"unknown synth split {split!r}; choose one of {sorted(DEFAULT_SIZES)}")
    n = DEFAULT_SIZES[split] if n is None else n
    if n < 0:
        raise ValueError(f"synth: n must be >= 0, got {n}")
    per_family = [n // len(FAMILIES) + (i < n % len(FAMILIES)) for i in range(len(FAMILIES))]
    by_family = []
    for family, count in zip(FAMILIES, per_family, strict=True):
        pool = family_pool(family, split)
        if count > len(pool):
            raise ValueError(
                f"synth: {split} split has {len(pool)} {family.name} problems, {count} asked (n={n}); lower n"
            )
        chosen = random.Random(f"synth/{seed}/{split}/{family.name}").sample(pool, count)
        by_family.append([make_problem(family, p, split, i, seed) for i, p in enumerate(chosen)])
    # Round-robin across families, so a prefix of the list is still balanced.
    return [p for row in itertools.zip_longest(*by_family) for p in row if p is not None]


def _def_line(problem: Problem) -> str:
    if problem.benchmark not in ("synth", "synth-repair"):
        raise ValueError(f"{problem.task_id}: not a synth problem")
    return problem.prompt[problem.prompt.rindex("\ndef ") + 1 :]  # synth-repair shows the buggy def first


def synth_program(problem: Problem, continuation: str) -> str:
    """The whole program for a model's `continuation` of `problem.prompt` (see the module docstring)."""
    def_line = _def_line(problem)
    cut = min((i for i in (continuation.find(stop) for stop in problem.metadata["stop"]) if i >= 0), default=None)
    body = continuation[:cut]
    if not body.endswith("\n"):
        body += "\n"
    return def_line + body


def _continuation(problem: Problem, program: str) -> str:
    return program[len(_def_line(problem)) :]


def sft_corpus(problems: list[Problem], wrong_share: float = 0.3, seed: int = 0) -> list[dict]:
    """SFT rows `{task_id, prompt, completion, correct, family, variant}`, one per problem, in order.

    `completion` is the body after the prompt (ending in a newline). In each family, `round(wrong_share *
    count)` rows, chosen at random, carry one of the problem's wrong bodies; `variant` names which
    ("correct" otherwise).
    """
    if not 0.0 <= wrong_share <= 1.0:
        raise ValueError(f"wrong_share must be in [0, 1], got {wrong_share}")
    rng = random.Random(f"synth-sft/{seed}")
    by_family: dict[str, list[int]] = defaultdict(list)
    for i, problem in enumerate(problems):
        _def_line(problem)
        by_family[problem.metadata["family"]].append(i)
    wrong: set[int] = set()
    for family in sorted(by_family):
        indices = by_family[family]
        wrong.update(rng.sample(indices, round(wrong_share * len(indices))))
    rows = []
    for i, problem in enumerate(problems):
        meta = problem.metadata
        if i in wrong:
            j = rng.randrange(len(meta["wrong_kinds"]))
            variant, program = meta["wrong_kinds"][j], meta["wrong_solutions"][j]
        else:
            variant, program = "correct", problem.solutions[0]
        rows.append(
            {
                "task_id": problem.task_id,
                "prompt": problem.prompt,
                "completion": _continuation(problem, program),
                "correct": i not in wrong,
                "family": meta["family"],
                "variant": variant,
            }
        )
    return rows


def preference_pairs(problems: list[Problem], seed: int = 0) -> list[dict]:
    """One pair per problem: `{task_id, prompt, chosen, rejected, variant}`, chosen = the correct body,
    rejected = one of its wrong bodies drawn with `seed` (`variant` names it)."""
    rng = random.Random(f"synth-pairs/{seed}")
    pairs = []
    for problem in problems:
        meta = problem.metadata
        j = rng.randrange(len(meta["wrong_kinds"]))
        pairs.append(
            {
                "task_id": problem.task_id,
                "prompt": problem.prompt,
                "chosen": _continuation(problem, problem.solutions[0]),
                "rejected": _continuation(problem, meta["wrong_solutions"][j]),
                "variant": meta["wrong_kinds"][j],
            }
        )
    return pairs
