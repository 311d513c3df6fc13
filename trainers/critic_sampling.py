"""CodeRL's critic sampling at inference (Le et al. 2022, arXiv:2207.01780, sec. 3.3), as `execrl generate --strategy
critic-sampling`: draft, run the drafts on the public examples, repair the failing ones from the feedback, submit.

Per problem:

1. sample `--n` drafts from the problem's prompt;
2. run every draft on the problem's public example tests in the sandbox (`execrl.benchmarks.public_tests`; the
   hidden tests that decide the verdict are never run or shown here);
3. if some pass every example, submit the one the ranker puts first;
4. otherwise, for each of `--rounds` rounds: the ranker picks the `--refine` most promising failing programs, each
   gets `--repairs` samples from the repair prompt (`execrl.benchmarks.repair`: the program, the feedback of the
   first example it fails, then the prompt), those run on the examples, and a passing one is submitted;
5. after the last round, the ranker's first program of all is submitted.

The ranker is the critic's P(passed) (`--critic DIR`, `execrl train critic`), or without one, the order programs
were made in ("first that passes the examples"). CodeRL ranks and refines sub-sequences with the critic's token
values; this ranks whole programs. Every model sample and sandbox run is counted (`budget` in config.json and
`budget.json`), so a comparison with plain sampling can be matched on model calls.

OUT gets `samples.jsonl` (one submitted program per problem, the format `execrl evaluate` reads, with `origin`:
`draft` or `repair/R`), `candidates.jsonl` (every program made, with its origin, parent, public-example verdict
and rank score) and `budget.json`. Problems are done in batches and a rerun skips finished ones.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from execrl.benchmarks.errors import UserError
from execrl.benchmarks.problem import Problem
from execrl.benchmarks.prompts import build_prompt, stop_sequences
from execrl.benchmarks.public_tests import public_problem
from execrl.benchmarks.repair import example_feedback, repair_prompt
from execrl.harness import runfolder
from execrl.harness.extract import extract
from execrl.harness.flags import BenchmarkFlags, DeviceFlags, OutputFlags, SandboxFlags, parse
from execrl.harness.records import ExecResult, Limits, Verdict

SAMPLES, CANDIDATES, BUDGET = "samples.jsonl", "candidates.jsonl", "budget.json"


@dataclass(kw_only=True)
class StrategyConfig(DeviceFlags, OutputFlags, BenchmarkFlags, SandboxFlags):
    """Critic sampling (CodeRL sec. 3.3): drafts run on the public examples, failing ones repaired from the feedback,
    the critic ranking what to refine and what to submit. Writes samples.jsonl (one program per problem)."""

    model: str
    """Model folder or hub id (completion-style prompts)."""
    strategy: Literal["critic-sampling"] = "critic-sampling"
    """The strategy (plain sampling is `execrl generate` without --strategy)."""
    critic: str = ""
    """Critic folder (execrl train critic) ranking programs by P(passed); empty: first that passes the examples."""
    n: int = 4
    """Drafts per problem."""
    rounds: int = 1
    """Repair rounds for a problem none of whose programs passes its examples."""
    refine: int = 2
    """Failing programs repaired per round (the ranker's first)."""
    repairs: int = 2
    """Repair samples per refined program."""
    limit: int | None = None
    """Only the first N problems."""
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 128
    batch_size: int = 16
    """Problems per batch (each batch: one draft call, one sandbox run, repair calls)."""
    seed: int = 0


@dataclass
class Candidate:
    problem: Problem
    program: str
    raw: str
    origin: str
    parent: int | None = None
    public: ExecResult | None = None
    score: float = 0.0
    row: dict[str, Any] = field(default_factory=dict)
    """The samples.jsonl row (`completion` or `solution`) the program came from."""

    @property
    def passes_examples(self) -> bool:
        return self.public is not None and self.public.verdict is Verdict.PASSED


@dataclass
class Budget:
    model_calls: int = 0
    """Programs sampled (drafts and repairs): the budget a plain-sampling baseline is matched on."""
    sandbox_runs: int = 0
    """Programs run on public examples."""
    critic_calls: int = 0
    problems: int = 0
    submitted_from_repair: int = 0
    no_public_tests: int = 0


def select(candidates: Sequence[Candidate]) -> Candidate:
    """The program to submit: the best-ranked that passes the examples, else the best-ranked of all. Ties keep
    the order programs were made in (so without a critic: the first that passes)."""
    passing = [c for c in candidates if c.passes_examples]
    pool = passing or list(candidates)
    return max(pool, key=lambda c: c.score)  # max keeps the first of equal scores


def to_refine(candidates: Sequence[Candidate], k: int) -> list[Candidate]:
    """The `k` best-ranked failing programs that compiled (a syntax error's feedback has no example in it)."""
    failing = [
        c for c in candidates if not c.passes_examples and c.public and c.public.verdict is not Verdict.SYNTAX_ERROR
    ]
    return sorted(failing, key=lambda c: -c.score)[:k]


def feedback_of(public: Problem, result: ExecResult) -> str:
    """The first failed example of a run on `public`'s tests, in words."""
    for i, outcome in enumerate(result.tests):
        if outcome.verdict is not Verdict.PASSED:
            return example_feedback(public, i, outcome.error)
    return example_feedback(public, 0, result.error)


class Strategy:
    """The live parts of a run: the generator, the sandbox pool, the ranker, the counters."""

    def __init__(self, cfg: StrategyConfig, generator: Any, pool: Any, critic: Any) -> None:
        self.cfg, self.generator, self.pool, self.critic = cfg, generator, pool, critic
        self.budget = Budget()

    def sample(self, problems: Sequence[Problem], prompts: Sequence[str], n: int, seed: int, origin: str,
               parents: Sequence[int | None]) -> list[Candidate]:  # fmt: skip
        from execrl.harness.generation.base import SamplingRequest

        cfg = self.cfg
        request = SamplingRequest(n=n, temperature=cfg.temperature, top_p=cfg.top_p,
                                  max_new_tokens=cfg.max_new_tokens, seed=seed)  # fmt: skip
        outputs = self.generator.generate(list(prompts), [stop_sequences(p) for p in problems], request)
        made = []
        for problem, parent, raws in zip(problems, parents, outputs, strict=True):
            for raw in raws:
                row = extract(problem, raw)
                program = problem.program(row["completion"]) if "completion" in row else row["solution"]
                made.append(Candidate(problem, program, raw, origin, parent, row=row))
        self.budget.model_calls += len(made)
        return made

    def check(self, candidates: Sequence[Candidate], publics: dict[str, Problem]) -> None:
        """Run each candidate on its problem's public examples and rank it."""
        from execrl.harness.sandbox.pool import execute_many

        runnable = [c for c in candidates if c.problem.task_id in publics]
        results = execute_many([publics[c.problem.task_id] for c in runnable], [c.program for c in runnable],
                               pool=self.pool)  # fmt: skip
        for candidate, result in zip(runnable, results, strict=True):
            candidate.public = result
        self.budget.sandbox_runs += len(runnable)
        if self.critic is not None and candidates:
            p_passed = self.critic.predict_proba(
                [c.problem.prompt for c in candidates], [c.program for c in candidates]
            )
            for candidate, p in zip(candidates, p_passed[:, 3], strict=True):
                candidate.score = float(p)
            self.budget.critic_calls += len(candidates)

    def solve(self, problems: Sequence[Problem], seed: int) -> list[list[Candidate]]:
        """Every candidate made for each problem (drafts, then repairs), in the order they were made."""
        cfg = self.cfg
        publics = {p.task_id: q for p in problems if (q := public_problem(p)) is not None}
        self.budget.no_public_tests += sum(p.task_id not in publics for p in problems)
        drafts = self.sample(
            problems, [build_prompt(p) for p in problems], cfg.n, seed, "draft", [None] * len(problems)
        )
        self.check(drafts, publics)
        by_problem: list[list[Candidate]] = [drafts[i * cfg.n : (i + 1) * cfg.n] for i in range(len(problems))]
        for round_no in range(1, cfg.rounds + 1):
            picked: list[tuple[int, Candidate]] = []
            for i, made in enumerate(by_problem):
                if problems[i].task_id in publics and not any(c.passes_examples for c in made):
                    picked += [(i, c) for c in to_refine(made, cfg.refine)]
            if not picked:
                break
            prompts = [repair_prompt(c.problem, c.program, feedback_of(publics[c.problem.task_id], c.public))
                       for _, c in picked]  # fmt: skip
            parents = [by_problem[i].index(c) for i, c in picked]
            repairs = self.sample([c.problem for _, c in picked], prompts, cfg.repairs,
                                  seed + 7919 * round_no, f"repair/{round_no}", parents)  # fmt: skip
            self.check(repairs, publics)
            for j, (i, _) in enumerate(picked):
                by_problem[i] += repairs[j * cfg.repairs : (j + 1) * cfg.repairs]
        return by_problem


def _candidate_row(problem: Problem, k: int, c: Candidate, chosen: bool) -> dict[str, Any]:
    verdict = c.public.verdict.value if c.public else None
    return {
        "task_id": problem.task_id, "candidate": k, "origin": c.origin, "parent": c.parent,
        "public_verdict": verdict, "score": round(c.score, 6), "chosen": chosen, "program": c.program,
    }  # fmt: skip


def run(cfg: StrategyConfig, generator: Any = None) -> Path:
    """Critic sampling over the chosen problems into `cfg.out`; returns it. A rerun skips finished problems.
    `generator` (a `execrl.harness.generation.base.Generator`) replaces the HF engine on `cfg.model`."""
    from execrl.benchmarks.registry import default_data_dir, load_problems
    from execrl.harness.generation.hf_engine import HFGenerator
    from execrl.harness.sandbox.pool import open_pool
    from tqdm import tqdm

    for name, value in (
        ("--n", cfg.n),
        ("--refine", cfg.refine),
        ("--repairs", cfg.repairs),
        ("--batch-size", cfg.batch_size),
    ):
        if value < 1:
            raise UserError(f"{name} must be >= 1, got {value}")
    if cfg.rounds < 0:
        raise UserError(f"--rounds must be >= 0, got {cfg.rounds}")
    out = Path(cfg.out)
    record = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items() if k != "force"}
    runfolder.claim(out, record, outputs=(SAMPLES, CANDIDATES, BUDGET), force=cfg.force)
    data_dir = cfg.data_dir or default_data_dir()
    problems = load_problems(cfg.benchmark, cfg.split, data_dir, variant=cfg.variant, difficulty=cfg.difficulty,
                             limit=cfg.limit, online=cfg.online)  # fmt: skip
    done = {task_id for task_id, _ in runfolder.written_keys(out / SAMPLES)}
    budget = Budget(**runfolder.read_json(out / BUDGET))
    critic = None
    if cfg.critic:
        from execrl.trainers.critic import Critic

        critic = Critic.load(cfg.critic, cfg.device)
    if generator is None:
        generator = HFGenerator(cfg.model, device=cfg.device, precision=cfg.precision, batch_size=64)
    limits = Limits(timeout=cfg.timeout)
    hidden = [data_dir] if data_dir else []
    todo = [(i, p) for i, p in enumerate(problems) if p.task_id not in done]
    pool = open_pool(cfg.sandbox, cfg.workers, limits, hidden=hidden, ray_address=cfg.ray_address)
    bar = tqdm(total=len(problems), initial=len(problems) - len(todo), unit="problem", file=sys.stderr)
    with pool, bar, open(out / SAMPLES, "a") as samples, open(out / CANDIDATES, "a") as candidates:
        strategy = Strategy(cfg, generator, pool, critic)
        strategy.budget = budget
        for start in range(0, len(todo), cfg.batch_size):
            chunk = todo[start : start + cfg.batch_size]
            made = strategy.solve([p for _, p in chunk], cfg.seed + 1_000_003 * chunk[0][0])
            sample_lines, candidate_lines = [], []
            for (_, problem), programs in zip(chunk, made, strict=True):
                chosen = select(programs)
                candidate_lines += [
                    json.dumps(_candidate_row(problem, k, c, c is chosen)) for k, c in enumerate(programs)
                ]
                row = {"task_id": problem.task_id, "completion_id": 0, **chosen.row, "raw": chosen.raw}
                sample_lines.append(json.dumps({**row, "origin": chosen.origin}))
                budget.problems += 1
                budget.submitted_from_repair += chosen.origin != "draft"
            # A batch is written at its end, samples last: a kill redoes the batch, and its counts with it.
            candidates.write("".join(line + "\n" for line in candidate_lines))
            candidates.flush()
            samples.write("".join(line + "\n" for line in sample_lines))
            samples.flush()
            runfolder.write_json(out / BUDGET, asdict(budget))
            bar.update(len(chunk))
    runfolder.write_json(out / BUDGET, asdict(budget))
    print(
        f"critic sampling: {budget.problems} problems, {budget.model_calls} model calls, {budget.sandbox_runs} "
        f"example runs, {budget.submitted_from_repair} submitted from a repair",
        file=sys.stderr,
    )
    return out


def main(argv: list[str]) -> int:
    print(run(parse(StrategyConfig, argv, description=__doc__.splitlines()[0])))
    return 0


STRATEGIES = ("plain", "critic-sampling", "repair")
"""`execrl generate --strategy`: plain sampling (the default), critic sampling (this module), or repair: plain
sampling of a repair benchmark (`synth-repair`), whose prompts hold the broken program and its feedback."""


def generate_main(argv: list[str]) -> int:
    """`execrl generate`: plain sampling (`execrl.harness.generate`) unless `--strategy critic-sampling` asks for
    this module. The choice is made here, on the trainers' side, because critic sampling needs the critic."""
    from execrl.harness import generate

    strategy, rest = _strategy(argv)
    if strategy == "critic-sampling":
        return main(["--strategy", strategy, *rest])
    if strategy == "repair" and not _names_repair_benchmark(rest):
        raise UserError("--strategy repair samples a repair benchmark: add --benchmark synth-repair")
    return generate.main(rest)


def _strategy(argv: list[str]) -> tuple[str, list[str]]:
    rest, strategy, i = [], "plain", 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--strategy" and i + 1 < len(argv):
            strategy, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--strategy="):
            strategy, i = arg.split("=", 1)[1], i + 1
            continue
        rest.append(arg)
        i += 1
    if strategy not in STRATEGIES:
        raise UserError(f"--strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    return strategy, rest


def _names_repair_benchmark(argv: list[str]) -> bool:
    """Whether `--benchmark` (either spelling) names synth-repair: the value after the flag, not any substring."""
    for i, arg in enumerate(argv):
        if arg == "--benchmark" and i + 1 < len(argv):
            return argv[i + 1] == "synth-repair"
        if arg.startswith("--benchmark="):
            return arg.split("=", 1)[1] == "synth-repair"
    return False
