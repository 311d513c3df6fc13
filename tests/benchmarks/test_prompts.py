"""Prompts, chat messages and stop sequences for each benchmark."""

from __future__ import annotations

import pytest
from execrl.benchmarks.apps import load_apps
from execrl.benchmarks.mbpp import load_mbpp
from execrl.benchmarks.problem import TestKind as Kind  # the alias keeps pytest from collecting TestKind
from execrl.benchmarks.prompts import build_prompt, chat_messages, stop_sequences


def test_humaneval_prompt_is_the_problem_prompt_with_the_usual_stops(humaneval_problems):
    for problem in humaneval_problems:
        assert build_prompt(problem) == problem.prompt
    assert stop_sequences(humaneval_problems[0]) == ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#"]


def test_mbpp_prompt_follows_austin_et_al(shared_data_dir):
    problem = load_mbpp("prompt", shared_data_dir)[1]  # Mbpp/2
    expected = (
        "You are an expert Python programmer, and here is your task: "
        "Write a function to find the similar elements from the given two tuple lists. "
        "Your code should pass these tests:\n\n"
        "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)\n"
        "assert similar_elements((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)\n"
        "assert similar_elements((11, 12, 14, 13),(17, 15, 14, 13)) == (13, 14)\n"
    )
    assert build_prompt(problem) == expected


def test_mbpp_challenge_tests_stay_out_of_the_prompt(shared_data_dir):
    problems = load_mbpp("all", shared_data_dir, challenge_tests=True)
    problem = next(p for p in problems if len(p.tests) > p.metadata["n_prompt_tests"])
    prompt = build_prompt(problem)
    assert all(test in prompt for test in problem.tests[: problem.metadata["n_prompt_tests"]])
    assert not any(test in prompt for test in problem.tests[problem.metadata["n_prompt_tests"] :])


@pytest.mark.parametrize(
    ("kind", "format_line"),
    [(Kind.STDIO, "\nUse Standard Input format\n"), (Kind.CALL, "\nUse Call-Based format\n")],
    ids=["stdin problems", "call-based problems"],
)
def test_apps_prompt_follows_hendrycks_et_al(shared_data_dir, kind, format_line):
    problem = next(p for p in load_apps("train", shared_data_dir) if p.test_kind is kind)
    prompt = build_prompt(problem)
    assert prompt == f"\nQUESTION:\n{problem.prompt}\n{problem.starter_code}\n{format_line}\nANSWER:\n"
    assert ("class Solution" in prompt) == (kind is Kind.CALL)


def test_chat_messages_are_a_system_and_a_user_turn_asking_for_one_fence(humaneval_problems, shared_data_dir):
    problems = [humaneval_problems[0], load_mbpp("test", shared_data_dir)[0], load_apps("train", shared_data_dir)[0]]
    for problem in problems:
        messages = chat_messages(problem)
        assert [m["role"] for m in messages] == ["system", "user"]
        assert "```python" in messages[0]["content"] + messages[1]["content"]
        assert problem.prompt in messages[1]["content"]
    assert "keep its signature" in chat_messages(humaneval_problems[0])[1]["content"].lower()


def test_synth_prompt_and_stops_are_its_own():
    from execrl.benchmarks.synth import load_synth

    problem = load_synth("test", n=1)[0]
    assert build_prompt(problem) == problem.prompt
    assert stop_sequences(problem) == list(problem.metadata["stop"])
    assert stop_sequences(problem) is not problem.metadata["stop"]  # callers may extend their copy


@pytest.mark.parametrize(
    ("row", "stops"),
    [
        ({"completion": "body", "tests": ["assert f(1) == 1"]}, ["\ndef ", "\nclass ", "\nprint("]),  # HumanEval's
        ({"tests": ["assert f(1) == 1"]}, ["\nassert ", "\nif __name__"]),  # a program with asserts: MBPP's
        ({"stdio": [{"input": "", "output": "1"}]}, []),  # a stdin program may end in `if __name__ == ...`
        ({"tests": ["assert f(1) == 1"], "stop": ["\n###"]}, ["\n###"]),  # the row's own list wins
    ],
    ids=["body-like-humaneval", "program-like-mbpp", "stdio-no-default-stop", "own-stop-list"],
)
def test_a_problem_file_row_is_prompted_as_written_and_stopped_by_its_completion_style(row, stops):
    from execrl.benchmarks.problem_file import problem_from_row

    problem = problem_from_row({"task_id": "t", "prompt": "def f(x):\n", "entry_point": "f", **row})
    assert build_prompt(problem) == "def f(x):\n"
    assert all(stop in stop_sequences(problem) for stop in stops) and (stops or not stop_sequences(problem))
    if row.get("stop"):
        assert stop_sequences(problem) == stops
    user = chat_messages(problem)[1]["content"]
    assert "def f(x):" in user and "```python" in user
