"""The TRL and veRL adapters on fixed completions: right, wrong and attacking programs get the sandbox's verdict,
through task ids and inline problems, plain and conversational, sync and async; and the module stays torch-free."""

from __future__ import annotations

import asyncio
import inspect
import json
import pickle
import subprocess
import sys

import pytest
from execrl.benchmarks.datafiles import DataError
from execrl.benchmarks.errors import UserError
from execrl.benchmarks.problem import Problem, TestKind
from execrl.harness.sandbox.shared_pool import PoolSettings, close_shared
from execrl.trainers.integrations import score_batch, trl_reward, verl_compute_score, verl_compute_score_batch

ADD_ROW = {"task_id": "mine/add", "tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"], "entry_point": "add"}
RIGHT = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"
EQ_ATTACK = (
    "class Yes:\n    def __eq__(self, other):\n        return True\n    __hash__ = None\n"
    "def add(a, b):\n    return Yes()\n"
)
EXIT_ATTACK = "import sys\nsys.exit(0)\ndef add(a, b):\n    return a - b\n"
HUMANEVAL_0_BODY = (
    "    for idx, elem in enumerate(numbers):\n        for idx2, elem2 in enumerate(numbers):\n"
    "            if idx != idx2:\n                distance = abs(elem - elem2)\n"
    "                if distance < threshold:\n                    return True\n\n    return False\n"
)


@pytest.fixture(scope="module", autouse=True)
def _one_pool_for_the_module():
    yield
    close_shared()


# One row per program kind: (completion, binary reward, why).
PROGRAMS = [
    (RIGHT, 1.0, "the right program passes every test"),
    (WRONG, 0.0, "a wrong program fails"),
    (EQ_ATTACK, 0.0, "an object whose __eq__ is always true is compared outside the child: no pass"),
    (EXIT_ATTACK, 0.0, "sys.exit(0) before the tests ends the run without a pass"),
    ("def add(a, b) return", 0.0, "a syntax error"),
    (f"Here you go:\n```python\n{RIGHT}```\nDone.", 1.0, "a chat-style answer: the fenced code is extracted"),
]


@pytest.mark.parametrize(("completion", "expected", "why"), PROGRAMS, ids=[r[2] for r in PROGRAMS])
def test_trl_reward_on_inline_columns_scores_each_completion_by_its_verdict(completion, expected, why) -> None:
    reward = trl_reward("binary", workers=2)
    columns = {key: [value] for key, value in ADD_ROW.items()}
    assert reward(prompts=["Write add."], completions=[completion], completion_ids=[[1]], **columns) == [expected]


def test_trl_reward_takes_task_ids_conversations_and_logs_through_trl_hooks() -> None:
    reward = trl_reward("coderl", workers=2)
    logged: dict = {}
    chat = [
        [{"role": "assistant", "content": f"```python\n{HUMANEVAL_0_BODY}```"}],
        [{"role": "assistant", "content": "oops("}],
    ]
    rewards = reward(
        prompts=[[{"role": "user", "content": "solve"}]] * 2, completions=chat, task_id=["HumanEval/0"] * 2,
        log_metric=lambda name, value: logged.setdefault(name, value),
        log_extra=lambda column, values: logged.setdefault(column, values),
    )  # fmt: skip
    assert rewards == [1.0, -1.0]
    assert logged == {"execrl/pass_rate": 0.5, "execrl/sandbox_errors": 0, "verdict": ["passed", "syntax_error"]}
    assert reward.__name__ == "execrl_coderl"
    assert pickle.loads(pickle.dumps(reward)).__name__ == "execrl_coderl"  # picklable, as TRL's reward forms are


def test_plain_humaneval_completions_are_bodies_after_the_prompt_as_in_evaluate() -> None:
    reward = trl_reward("binary", workers=2)
    assert reward(prompts=["p", "p"], completions=[HUMANEVAL_0_BODY, "    return True\n"],
                  task_id=["HumanEval/0", "HumanEval/0"]) == [1.0, 0.0]  # fmt: skip


def test_the_async_variant_is_a_coroutine_function_with_the_same_rewards() -> None:
    # TRL tells a callable instance's kind by its class's __call__ (trl/trainer/utils.py, is_async_callable).
    reward = trl_reward("binary", workers=2, asynchronous=True, name="code_exec")
    assert inspect.iscoroutinefunction(type(reward).__call__) and reward.__name__ == "code_exec"
    assert not inspect.iscoroutinefunction(type(trl_reward("binary", workers=2)).__call__)
    columns = {key: [value, value] for key, value in ADD_ROW.items()}
    assert asyncio.run(reward(prompts=["a", "b"], completions=[RIGHT, WRONG], **columns)) == [1.0, 0.0]


def test_a_sandbox_error_is_none_not_a_zero() -> None:
    # HumanEval-style check code with no entry point is a harness fault (executor: SandboxError).
    broken = Problem("bad/0", "humaneval", "", TestKind.ASSERT, check_code="def check(c):\n    assert c(1)\n")
    rewards, results = score_batch(PoolSettings(workers=2), "coderl", [broken], [RIGHT], [False])
    assert rewards == [None] and results[0].verdict.value == "sandbox_error"


@pytest.mark.parametrize(
    ("kwargs", "columns", "error", "why"),
    [
        ({"reward": "nope"}, {}, UserError, "an unknown reward name is refused when the function is made"),
        ({}, {"difficulty": ["easy"]}, DataError, "a row with neither a task id nor inline tests"),
        ({}, {"task_id": ["Nope/1"]}, DataError, "a task id of no benchmark"),
        ({}, {"task_id": ["mine/x"], "tests": ["assert f() =="]}, DataError, "inline tests that do not parse"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_columns_are_user_errors(kwargs, columns, error, why) -> None:
    with pytest.raises(error):
        trl_reward(workers=2, **kwargs)(prompts=["p"], completions=["x = 1"], **columns)


def test_asking_for_other_pool_settings_in_the_same_process_is_refused() -> None:
    trl_reward("binary", workers=2)(prompts=["p"], completions=[RIGHT], **{k: [v] for k, v in ADD_ROW.items()})
    with pytest.raises(UserError, match="one pool per process"):
        trl_reward("binary", workers=1)(prompts=["p"], completions=[RIGHT], **{k: [v] for k, v in ADD_ROW.items()})


# veRL: (solution_str, ground_truth, score, verdict, why). Responses are chat answers (veRL's usual case).
VERL_ROWS = [
    (f"```python\n{RIGHT}```", json.dumps(ADD_ROW), 1.0, "passed", "the right program, inline tests as JSON text"),
    (f"```python\n{WRONG}```", ADD_ROW, 0.0, "failed", "a wrong program, inline tests as a mapping"),
    (f"```python\n{EQ_ATTACK}```", ADD_ROW, 0.0, "failed", "an always-true __eq__ does not pass"),
    (f"```python\n{EXIT_ATTACK}```", ADD_ROW, 0.0, "runtime_error", "sys.exit(0) before the asserts is no pass"),
    (
        f"```python\ndef has_close_elements(numbers, threshold):\n{HUMANEVAL_0_BODY}```",
        "HumanEval/0",
        1.0,
        "passed",
        "a task id as ground truth",
    ),  # fmt: skip
    (
        "```python\nprint(int(input()) * 2)\n```",
        {"inputs": ["2\n", "5\n"], "outputs": ["4\n", "10\n"]},
        1.0,
        "passed",
        "veRL's own stdin/stdout test cases",
    ),  # fmt: skip
    (
        "```python\ndef neg(x):\n    return x\n```",
        {"inputs": [[1]], "outputs": [-1], "fn_name": "neg"},
        0.0,
        "failed",
        "veRL's call-based test cases",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("solution", "truth", "score", "verdict", "why"), VERL_ROWS, ids=[r[4] for r in VERL_ROWS])
def test_verl_compute_score_returns_the_verdict_and_per_test_counts(solution, truth, score, verdict, why) -> None:
    out = verl_compute_score("execrl", solution, truth, extra_info={"index": 0}, workers=2)
    assert out["score"] == score and out["verdict"] == verdict
    assert out["sandbox_error"] == 0.0 and 0 <= out["n_passed"] <= out["n_tests"] >= 1
    assert out["passed"] == float(verdict == "passed")


def test_verl_batch_form_matches_the_single_form() -> None:
    rows = VERL_ROWS[:4]
    batch = verl_compute_score_batch(["x"] * 4, [r[0] for r in rows], [r[1] for r in rows], None, workers=2)
    assert [b["score"] for b in batch] == [r[2] for r in rows]


def test_the_adapters_and_rewards_import_without_torch() -> None:
    code = ("import sys, execrl.trainers.integrations, execrl.trainers.rewards, execrl.trainers.serve; "
            "sys.exit(int('torch' in sys.modules or 'transformers' in sys.modules))")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
