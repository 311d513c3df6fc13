"""`execrl serve`'s routes in process (FastAPI's TestClient over a real warm pool): OpenRLHF's batch,
SandboxFusion's /run_code, the native endpoint, /metrics, and every hostile request refused with its code."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi")

from execrl.harness.problem_lookup import ProblemLookup  # noqa: E402
from execrl.harness.records import Limits  # noqa: E402
from execrl.harness.sandbox.pool import SandboxPool  # noqa: E402
from execrl.harness.serve.app import ServeSettings, create_app  # noqa: E402
from execrl.harness.serve.dispatch import Dispatcher  # noqa: E402
from execrl.trainers.rewards import REWARDS  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

ADD = {"task_id": "mine/add", "tests": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"], "entry_point": "add"}
RIGHT = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"
EQ_ATTACK = "class Yes:\n    def __eq__(self, o):\n        return True\n\ndef add(a, b):\n    return Yes()\n"
EXIT_ATTACK = "import sys\nsys.exit(0)\n" + WRONG
MAX_BODY, MAX_BATCH = 64 * 1024, 8


@pytest.fixture(scope="module")
def client():
    pool = SandboxPool(2, Limits(timeout=2.0, program_timeout=5.0, retry_timeouts=False))
    dispatcher = Dispatcher(pool, max_queue=64)
    settings = ServeSettings(max_body=MAX_BODY, max_batch=MAX_BATCH, limits=pool.limits)
    with TestClient(create_app(dispatcher, ProblemLookup(), settings, REWARDS["binary"])) as c:
        yield c
    dispatcher.close()


def _fenced(code: str) -> str:
    return f"Sure.\n```python\n{code}```<|im_end|>"


def test_an_openrlhf_batch_gets_one_reward_per_query_with_verdicts(client) -> None:
    prompt = "<|im_start|>user\nWrite add.<|im_end|>\n<|im_start|>assistant\n"
    body = {"query": [prompt + _fenced(p) for p in (RIGHT, WRONG, "def add(:")], "prompts": [prompt] * 3,
            "labels": [json.dumps(ADD), ADD, json.dumps(ADD)]}  # fmt: skip
    reply = client.post("/get_reward", json=body)
    assert reply.status_code == 200, reply.text
    out = reply.json()
    assert out["rewards"] == out["scores"] == [1.0, 0.0, 0.0]
    assert out["verdicts"] == ["passed", "failed", "syntax_error"]
    assert out["extra_logs"]["pass"] == [1.0, 0.0, 0.0] and out["extra_logs"]["sandbox_error"] == [0.0] * 3


# Attacks through /get_reward: (program, why). Each must get the failing reward.
ATTACKS = [
    (EQ_ATTACK, "an object whose __eq__ is always true: compared outside the child, it equals only itself"),
    (EXIT_ATTACK, "sys.exit(0) before the asserts: an exit is never a pass"),
    ("import os\ndef add(a, b):\n    os._exit(0)\n", "os._exit(0) inside the candidate while a test runs"),
    ("def add(a, b):\n    print('passed'); return None\n", "printing what looks like a pass"),
]


@pytest.mark.parametrize(("program", "why"), ATTACKS, ids=[a[1] for a in ATTACKS])
def test_attacks_through_get_reward_get_the_failing_reward(client, program, why) -> None:
    reply = client.post("/get_reward", json={"query": [_fenced(program)], "labels": [ADD]})
    assert reply.status_code == 200 and reply.json()["rewards"] == [0.0], reply.text


# SandboxFusion's /run_code: (request fields, status, run_result fields, why).
RUN_CODE = [
    (
        {"code": "print(input()[::-1])", "stdin": "abc"},
        "Success",
        {"status": "Finished", "return_code": 0, "stdout": "cba\n"},
        "stdin in, stdout back",
    ),  # fmt: skip
    (
        {"code": "print('a')\nraise ValueError('boom')"},
        "Failed",
        {"status": "Finished", "return_code": 1, "stdout": "a\n"},
        "an exception: return code 1, traceback in stderr",
    ),  # fmt: skip
    ({"code": "import sys\nsys.exit(3)"}, "Failed", {"status": "Finished", "return_code": 3}, "an exit status"),
    (
        {"code": "while True:\n    pass", "run_timeout": 0.5},
        "Failed",
        {"status": "TimeLimitExceeded"},
        "run_timeout is the per-run deadline",
    ),  # fmt: skip
    (
        {"code": "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)"},
        "Failed",
        {"status": "Finished", "return_code": 1},
        "no network: the sandbox's protections apply to raw runs",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("fields", "status", "run", "why"), RUN_CODE, ids=[r[3] for r in RUN_CODE])
def test_run_code_answers_in_sandboxfusion_fields(client, fields, status, run, why) -> None:
    request = {"language": "python", "compile_timeout": 10, "memory_limit_MB": 512, "files": {}, "fetch_files": [],
               **fields}  # fmt: skip
    reply = client.post("/run_code", json=request)
    assert reply.status_code == 200, reply.text
    out = reply.json()
    assert out["status"] == status and out["compile_result"] is None
    assert {k: out["run_result"][k] for k in run} == run
    assert set(out["run_result"]) == {"status", "execution_time", "return_code", "stdout", "stderr"}
    if status == "Failed" and run.get("return_code") == 1:
        assert "Error" in out["run_result"]["stderr"]


def test_native_execute_returns_our_result_records(client) -> None:
    reply = client.post("/v1/execute", json={"problem": ADD, "programs": [RIGHT, WRONG]})
    assert reply.status_code == 200, reply.text
    rows = reply.json()["results"]
    assert [(r["task_id"], r["completion_id"], r["verdict"], r["n_passed"]) for r in rows] == [
        ("mine/add", 0, "passed", 2), ("mine/add", 1, "failed", 0)]  # fmt: skip
    humaneval = client.post(
        "/v1/execute", json={"task_id": "HumanEval/2", "completions": ["    return number % 1.0\n"]}
    )
    assert humaneval.json()["results"][0]["verdict"] == "passed"


def test_metrics_count_verdicts_in_prometheus_text(client) -> None:
    client.post("/v1/execute", json={"problem": ADD, "programs": [RIGHT]})
    text = client.get("/metrics").text
    assert "# TYPE execrl_queue_depth gauge" in text and "execrl_in_flight 0" in text
    passed = next(line for line in text.splitlines() if line.startswith('execrl_verdicts_total{verdict="passed"}'))
    assert int(passed.split()[-1]) >= 1
    assert "execrl_sandbox_errors_total 0" in text and "execrl_executions_per_second" in text
    assert client.get("/health").json()["status"] == "ok"


def _chunks(data: bytes):
    for i in range(0, len(data), 4096):
        yield data[i : i + 4096]


# Hostile requests: (endpoint, body (bytes, or an object sent as JSON), status, why).
HOSTILE = [
    ("/get_reward", b"{not json", 400, "malformed JSON"),
    ("/get_reward", b"\xff\xfe", 400, "a body that is not even UTF-8"),
    ("/get_reward", {"query": "x", "labels": ["mine/add"]}, 422, "query is a string, not a list"),
    ("/get_reward", {"query": [1], "labels": ["HumanEval/0"]}, 422, "a query that is a number"),
    ("/get_reward", {"query": ["x"]}, 422, "labels missing"),
    ("/get_reward", {"query": ["x", "y"], "labels": ["HumanEval/0"]}, 422, "one label for two queries"),
    ("/get_reward", {"query": ["x"], "labels": ["Nope/1"]}, 422, "a label naming no benchmark"),
    (
        "/get_reward",
        {"query": ["x"], "labels": [{"task_id": "a", "tests": [], "entry_point": "f"}]},
        422,
        "an inline problem with no tests",
    ),  # fmt: skip
    (
        "/get_reward",
        {"query": ["x"] * (MAX_BATCH + 1), "labels": ["HumanEval/0"] * (MAX_BATCH + 1)},
        413,
        "a batch over --max-batch",
    ),  # fmt: skip
    ("/get_reward", b"[" + b" " * MAX_BODY + b"]", 413, "a body over --max-body-mb"),
    ("/get_reward", [], 422, "a JSON array instead of an object"),
    ("/run_code", {"code": "print(1)", "language": "cpp"}, 400, "an unknown language is refused, not run as python"),
    ("/run_code", {"code": "print(1)"}, 422, "language missing"),
    ("/run_code", {"code": 5, "language": "python"}, 422, "code is not a string"),
    ("/run_code", {"code": "1", "language": "python", "run_timeout": -1}, 422, "a negative timeout"),
    ("/run_code", {"code": "1", "language": "python", "files": {"a.py": "eA=="}}, 400, "files are not supported"),
    ("/v1/execute", {"task_id": "HumanEval/0", "problem": ADD, "programs": []}, 422, "two problems at once"),
    ("/v1/execute", {"task_id": "HumanEval/0"}, 422, "no programs"),
    ("/v1/execute", {"task_id": "HumanEval/0", "programs": ["x"], "extra": 1}, 422, "an unknown field"),
]


@pytest.mark.parametrize(("path", "body", "status", "why"), HOSTILE, ids=[h[3] for h in HOSTILE])
def test_hostile_requests_are_refused_with_their_code(client, path, body, status, why) -> None:
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    reply = client.post(path, **kwargs)
    assert reply.status_code == status, reply.text
    assert "detail" in reply.json()


def test_a_chunked_body_over_the_limit_is_refused_without_a_length_header(client) -> None:
    reply = client.post("/get_reward", content=_chunks(b"[" + b" " * (2 * MAX_BODY) + b"]"))
    assert reply.status_code == 413


def test_the_reward_choices_of_serve_are_the_reward_functions() -> None:
    from typing import get_args

    from execrl.harness.serve.cli import RewardName

    assert set(get_args(RewardName)) == set(REWARDS)


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["--max-queue", "0"], "a queue that holds nothing"),
        (["--token", " "], "an empty token would accept an empty header"),
        (["--token-file", "/nonexistent/token"], "a token file that cannot be read"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_serve_refuses_bad_flags_in_one_line(argv, why, capsys) -> None:
    from execrl.harness.cli import main

    assert main(["serve", *argv]) == 2
    assert capsys.readouterr().err.startswith("execrl serve: ")


def test_after_shutdown_begins_new_work_gets_503_and_queued_work_still_finishes() -> None:
    from execrl.benchmarks.problem_file import problem_from_row
    from execrl.harness.sandbox.pool import Job

    problem = problem_from_row({**ADD, "prompt": ""})
    pool = SandboxPool(1)
    dispatcher = Dispatcher(pool, max_queue=8)
    pending = dispatcher.submit([Job(None, problem, RIGHT)] * 3)
    dispatcher.close(timeout=60)
    assert [r.verdict.value for r in pending.result(timeout=0)] == ["passed"] * 3
    app = create_app(dispatcher, ProblemLookup(), ServeSettings(), REWARDS["binary"])
    with TestClient(app) as late:
        reply = late.post("/v1/execute", json={"problem": ADD, "programs": [RIGHT]})
    assert reply.status_code == 503 and reply.headers["Retry-After"]


def test_a_worker_dying_mid_run_is_a_sandbox_error_reward_not_a_zero() -> None:
    import threading
    import time

    pool = SandboxPool(1)
    dispatcher = Dispatcher(pool, max_queue=8)
    slow = "import time\ndef add(a, b):\n    time.sleep(3)\n    return a + b\n"
    with TestClient(create_app(dispatcher, ProblemLookup(), ServeSettings(), REWARDS["coderl"])) as c:
        replies: list = []
        thread = threading.Thread(target=lambda: replies.append(c.post("/get_reward", json={
            "query": [_fenced(slow)], "labels": [ADD]})))  # fmt: skip
        thread.start()
        deadline = time.monotonic() + 10
        while dispatcher.snapshot()["in_flight"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        pool._workers[0].process.kill()  # a real fault of the harness: the worker running the program dies
        thread.join(timeout=30)
    dispatcher.close()
    out = replies[0].json()
    assert out["rewards"] == [None] and out["verdicts"] == ["sandbox_error"]
    assert out["extra_logs"]["sandbox_error"] == [1.0]
