"""PPO on MBPP, APPS and a problem file: each sample is judged by its own problem's tests, and the reward says so."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from execrl.benchmarks.problem import Problem
from execrl.benchmarks.prompts import build_prompt
from execrl.benchmarks.registry import load_problems
from execrl.harness.records import ExecResult, Verdict
from execrl.harness.sandbox.executor import n_tests
from execrl.harness.sandbox.pool import execute_many
from execrl.trainers.ppo import train_ppo
from execrl.trainers.ppo_config import PRESETS, PPOConfig
from execrl.trainers.ppo_setup import mixed_rewards
from execrl.trainers.rewards import partial_reward
from execrl.trainers.tracking import read_metrics

N_PROBLEMS = 4
SOURCES = {
    "mbpp": {"benchmark": ["mbpp"], "split": "train"},
    "apps": {"benchmark": ["apps"], "split": "train", "difficulty": "introductory"},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, shared_data_dir: Path) -> Path:
    """A tiny untrained model whose tokenizer knows MBPP's and APPS's text (the policy needs no skill here)."""
    from execrl.trainers.tiny import build_tiny_model

    problems = load_problems("mbpp", "train", shared_data_dir, limit=20)
    problems += load_problems("apps", "train", shared_data_dir, difficulty="introductory", limit=20)
    corpus = [build_prompt(p) + p.solutions[0] for p in problems]
    folder = tmp_path_factory.mktemp("tiny") / "model"
    return build_tiny_model(folder, corpus, vocab_size=300, n_layer=1, d_model=32, n_head=2, max_positions=192)


def _ppo(model: Path, out: Path, **source) -> Path:
    settings = {
        **PRESETS["cpu-tiny"],
        "iterations": 2, "batch_size": 8, "samples_per_prompt": 4, "minibatch_size": 8, "max_new_tokens": 12,
        "max_prompt_tokens": 128, "eval_every": 0, "workers": 1, "device": "cpu", "log_rollouts": True,
        "reward": "partial",
    }  # fmt: skip
    return train_ppo(PPOConfig(model=str(model), out=out, **{**settings, **source}))


def _rollouts(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rollouts.jsonl").read_text().splitlines()]


def _check_rewards_come_from_each_problems_own_tests(rows: list[dict], problems: list[Problem]) -> None:
    by_id = {p.task_id: p for p in problems}
    assert len(rows) == 2 * 8 and {r["step"] for r in rows} == {1, 2}
    assert {r["task_id"] for r in rows} <= set(by_id), "every prompt is one of the training problems"
    for row in rows:
        problem, result = by_id[row["task_id"]], ExecResult.from_json(row)
        # one outcome per MBPP assert / APPS input of this very problem, and the reward is computed from them
        assert len(row["tests"]) == n_tests(problem), (row["task_id"], len(row["tests"]))
        assert row["reward"] == pytest.approx(partial_reward([problem], [row["program"]], [result])[0])
    # Running the logged programs again against their problems reproduces the logged per-test verdicts.
    again = execute_many([by_id[r["task_id"]] for r in rows], [r["program"] for r in rows], workers=1)
    assert [[t.verdict for t in r.tests] for r in again] == [[Verdict(t["verdict"]) for t in r["tests"]] for r in rows]


@pytest.mark.parametrize("source", list(SOURCES), ids=["mbpp-train", "apps-train-introductory"])
def test_two_ppo_iterations_on_a_benchmarks_train_split_are_rewarded_by_its_own_tests(
    tiny, shared_data_dir, tmp_path, source
) -> None:
    flags = {**SOURCES[source], "data_dir": shared_data_dir, "limit": N_PROBLEMS}
    out = _ppo(tiny, tmp_path / "ppo", **flags)
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1, 2]
    extra = {"difficulty": "introductory"} if source == "apps" else {}
    problems = load_problems(source, "train", shared_data_dir, limit=N_PROBLEMS, **extra)
    _check_rewards_come_from_each_problems_own_tests(_rollouts(out), problems)


def test_the_in_loop_evaluation_samples_the_benchmarks_held_out_split(tiny, shared_data_dir, tmp_path) -> None:
    flags = {**SOURCES["mbpp"], "data_dir": shared_data_dir, "limit": N_PROBLEMS}
    out = _ppo(tiny, tmp_path / "ppo", **flags, iterations=1, eval_every=1, eval_problems=2, eval_samples=1)
    (row,) = read_metrics(out / "metrics.jsonl")
    assert 0.0 <= row["eval/mbpp/pass@1"] <= 1.0 and "eval/synth/pass@1" not in row


def _constant_program(problem: Problem) -> str:
    """A program passing exactly the tests whose expected value is the first test's: MBPP's `f(...) == value`
    asserts get a function returning the first value; APPS stdin problems a program printing the first output."""
    if problem.benchmark == "mbpp":
        expected = ast.unparse(ast.parse(problem.tests[0]).body[0].test.comparators[0])  # type: ignore[attr-defined]
        return f"def {problem.entry_point}(*args):\n    return {expected}\n"
    return f"print({problem.outputs[0]!r}, end='')\n"


def test_partial_credit_counts_each_mbpp_assert_and_each_apps_input_passed(shared_data_dir) -> None:
    mbpp = [p for p in load_problems("mbpp", "train", shared_data_dir) if p.task_id == "Mbpp/604"]
    apps = [
        p
        for p in load_problems("apps", "train", shared_data_dir)  # introductory rows mostly have one test
        if p.test_kind.value == "stdio" and len(set(p.outputs)) >= 3
    ][:1]
    problems = mbpp + apps
    programs = [_constant_program(p) for p in problems]
    results = execute_many(problems, programs, workers=1)
    cfg = PPOConfig(model="m", out=Path("o"), reward="partial")
    rewards = mixed_rewards(cfg, problems, programs, results)
    for problem, result, reward in zip(problems, results, rewards, strict=True):
        verdicts = [t.verdict for t in result.tests]
        assert verdicts[0] is Verdict.PASSED and Verdict.FAILED in verdicts, (problem.task_id, verdicts)
        assert len(verdicts) == n_tests(problem)
        assert reward == pytest.approx(-0.3 + 1.3 * result.n_passed / len(verdicts)), problem.task_id


def test_ppo_on_a_problem_file_prompts_and_assembles_each_row_as_it_says(tiny, tmp_path) -> None:
    rows = [
        {"task_id": "mine/add", "prompt": "def add(a, b):\n", "completion": "body", "entry_point": "add",
         "tests": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]},
        {"task_id": "mine/echo", "prompt": "Print the line twice.\n", "stdio": [{"input": "a\n", "output": "a\na\n"}]},
    ]  # fmt: skip
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = _ppo(tiny, tmp_path / "ppo", problems=path)
    from execrl.benchmarks.problem_file import load_problem_file

    problems = load_problem_file(path)
    logged = _rollouts(out)
    _check_rewards_come_from_each_problems_own_tests(logged, problems)
    # "body": the program is the prompt followed by the sample; "program": the sample is the whole program.
    assert all(r["program"].startswith("def add(a, b):\n") for r in logged if r["task_id"] == "mine/add")
