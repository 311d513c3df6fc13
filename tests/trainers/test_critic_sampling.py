"""Critic sampling: drafts run on the public examples, failing ones repaired from the feedback, one program submitted;
the budget counters add up; no hidden test reaches a prompt; the CLI runs with a real tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execrl.benchmarks.errors import UserError
from execrl.benchmarks.public_tests import public_problem
from execrl.benchmarks.synth import load_synth
from execrl.harness.records import ExecResult, TestOutcome, Verdict
from execrl.trainers.critic_sampling import (
    Candidate,
    StrategyConfig,
    feedback_of,
    generate_main,
    run,
    select,
    to_refine,
)

PROBLEMS = load_synth("test", n=6)


class Scripted:
    """A Generator (the engine seam) that writes a wrong body for a draft and the right one for a repair prompt,
    recording every prompt it was given."""

    def __init__(self, problems) -> None:
        self.by_prompt_end = {p.prompt: p for p in problems}
        self.prompts: list[str] = []

    def generate(self, prompts, stop, request):
        self.prompts += prompts
        outputs = []
        for prompt in prompts:
            problem = next(p for end, p in self.by_prompt_end.items() if prompt.endswith(end))
            right = problem.solutions[0].split("\n", 1)[1]
            wrong = "    return None\n"  # fails every example (no synth answer is None)
            outputs.append([right if "# this version is wrong:" in prompt else wrong] * request.n)
        return outputs


def _cfg(tmp_path: Path, **extra) -> StrategyConfig:
    values = {"n": 2, "refine": 1, "repairs": 2, "rounds": 1, "workers": 2, "batch_size": 4, "limit": 6, **extra}
    return StrategyConfig(model="unused", benchmark="synth", out=tmp_path / "run", **values)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _candidate(score: float, verdict: Verdict | None) -> Candidate:
    result = None if verdict is None else ExecResult(verdict)
    return Candidate(PROBLEMS[0], f"# {score}", "", "draft", public=result, score=score)


def test_select_prefers_the_best_ranked_program_that_passes_the_examples() -> None:
    a, b, c = _candidate(0.9, Verdict.FAILED), _candidate(0.2, Verdict.PASSED), _candidate(0.4, Verdict.PASSED)
    assert select([a, b, c]) is c
    assert select([a, _candidate(0.1, Verdict.FAILED)]) is a  # none passes: the best-ranked of all
    first, second = _candidate(0.0, Verdict.PASSED), _candidate(0.0, Verdict.PASSED)
    assert select([first, second]) is first  # no critic: the first that passes


def test_refinement_takes_the_best_ranked_failing_programs_that_compiled() -> None:
    low, high = _candidate(0.1, Verdict.FAILED), _candidate(0.8, Verdict.RUNTIME_ERROR)
    broken, passing = _candidate(0.9, Verdict.SYNTAX_ERROR), _candidate(0.95, Verdict.PASSED)
    assert to_refine([low, high, broken, passing], 1) == [high]
    assert to_refine([low, high, broken, passing], 5) == [high, low]


def test_feedback_names_the_first_failed_example_and_its_expected_answer() -> None:
    public = public_problem(PROBLEMS[0])
    result = ExecResult(
        Verdict.FAILED, [TestOutcome(Verdict.PASSED), TestOutcome(Verdict.FAILED, 0, "test 1: wrong answer")]
    )
    args, expected = public.inputs[1], public.outputs[1]
    text = feedback_of(public, result)
    assert text.startswith(f"{public.fn_name}({', '.join(map(repr, args))}) should return {expected!r}")


def test_failing_drafts_are_repaired_from_feedback_and_the_repair_is_submitted(tmp_path: Path) -> None:
    engine = Scripted(PROBLEMS)
    out = run(_cfg(tmp_path), generator=engine)
    samples = _rows(out / "samples.jsonl")
    assert [s["task_id"] for s in samples] == [p.task_id for p in PROBLEMS]
    assert all(s["origin"] == "repair/1" for s in samples)
    for sample, problem in zip(samples, PROBLEMS, strict=True):
        assert sample["solution"] == problem.solutions[0]
    # Every repair prompt holds the failing draft and the feedback of a public example; none holds a hidden test.
    repairs = [p for p in engine.prompts if "# this version is wrong:" in p]
    assert len(repairs) == len(PROBLEMS)  # --refine 1: one failing draft per problem
    for prompt, problem in zip(repairs, PROBLEMS, strict=True):
        assert problem.prompt.split("\n")[1] + "\n    return None\n# fixed:" in prompt  # the failing draft
        examples = {repr(args[0]) for args, _ in problem.metadata["public_tests"]}
        assert any(example in prompt for example in examples)
        hidden = {repr(args[0]) for args in problem.inputs} - examples
        assert not any(f"({h})" in prompt for h in hidden if len(h) > 4)


def test_budget_counters_add_up(tmp_path: Path) -> None:
    out = run(_cfg(tmp_path), generator=Scripted(PROBLEMS))
    budget = json.loads((out / "budget.json").read_text())
    drafts, repairs = 6 * 2, 6 * 1 * 2  # problems x n, problems x refine x repairs
    assert budget["model_calls"] == drafts + repairs == budget["sandbox_runs"]
    assert budget["problems"] == 6 and budget["submitted_from_repair"] == 6 and budget["critic_calls"] == 0
    candidates = _rows(out / "candidates.jsonl")
    assert len(candidates) == drafts + repairs
    assert sum(c["chosen"] for c in candidates) == 6
    assert {c["origin"] for c in candidates} == {"draft", "repair/1"}
    config = json.loads((out / "config.json").read_text())
    assert config["n"] == 2 and config["repairs"] == 2  # the settings a comparison is matched on


def test_a_rerun_skips_finished_problems_and_keeps_the_budget(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    run(cfg, generator=Scripted(PROBLEMS))
    engine = Scripted(PROBLEMS)
    run(cfg, generator=engine)
    assert engine.prompts == []
    assert json.loads((cfg.out / "budget.json").read_text())["problems"] == 6


def test_no_repair_round_when_drafts_pass(tmp_path: Path) -> None:
    class Right(Scripted):
        def generate(self, prompts, stop, request):
            self.prompts += prompts
            return [[self.by_prompt_end[p].solutions[0].split("\n", 1)[1]] * request.n for p in prompts]

    engine = Right(PROBLEMS)
    out = run(_cfg(tmp_path), generator=engine)
    assert all(s["origin"] == "draft" for s in _rows(out / "samples.jsonl"))
    assert json.loads((out / "budget.json").read_text())["model_calls"] == 12


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--strategy", "best"], "choose one of plain, critic-sampling, repair"),
        (["--strategy", "repair", "--benchmark", "synth"], "--benchmark synth-repair"),
        (["--strategy", "repair", "--out", "--benchmark synth-repair"], "--benchmark synth-repair"),
    ],
    ids=["unknown strategy", "repair without a repair benchmark", "the benchmark's name only inside another value"],
)
def test_strategy_flag_mistakes_are_user_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        generate_main(argv)


@pytest.mark.slow
def test_cli_runs_critic_sampling_with_a_real_tiny_model_and_evaluate_reads_its_samples(tmp_path: Path) -> None:
    from execrl.benchmarks.synth import sft_corpus
    from execrl.harness.cli import main as execrl
    from execrl.trainers.tiny import build_tiny_model

    rows = sft_corpus(load_synth("train")[:40], 0.3, 0)
    model = build_tiny_model(tmp_path / "m", [r["prompt"] + r["completion"] for r in rows], vocab_size=300,
                             n_layer=1, d_model=32, n_head=2, max_positions=128)  # fmt: skip
    out = tmp_path / "cs"
    argv = ["generate", "--strategy", "critic-sampling", "--model", str(model), "--benchmark", "synth", "--limit", "3",
            "--n", "2", "--max-new-tokens", "12", "--workers", "2", "--out", str(out)]  # fmt: skip
    assert execrl(argv) == 0
    budget = json.loads((out / "budget.json").read_text())
    assert budget["problems"] == 3 and budget["model_calls"] >= 6
    assert execrl(["evaluate", "--benchmark", "synth", "--samples", str(out / "samples.jsonl"),
                   "--out", str(tmp_path / "ev"), "--workers", "2"]) == 0  # fmt: skip
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["n_samples"] == 3
