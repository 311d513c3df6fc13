"""The OpenAI-compatible backend against a stub server the test starts on 127.0.0.1 (requests recorded)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from execrl.harness.generation.base import GenerationError, SamplingRequest
from execrl.harness.generation.openai_engine import OpenAIGenerator


class Stub:
    """Canned replies: `fail_first` requests get `fail_status`; then each request gets n choices."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict, dict[str, str]]] = []
        self.fail_first = 0
        self.fail_status = 503
        self.lock = threading.Lock()

    def reply(self, path: str, body: dict) -> tuple[int, dict]:
        with self.lock:
            failing = len(self.requests) <= self.fail_first  # this request is already recorded
        if failing:
            return self.fail_status, {"error": {"message": "stub says no"}}
        source = body.get("prompt") or body["messages"][-1]["content"]
        texts = [f"{source}|{i}|seed={body.get('seed')}\nSTOP tail" for i in range(body["n"])]
        if path.endswith("/chat/completions"):
            choices = [{"index": i, "message": {"role": "assistant", "content": t}} for i, t in enumerate(texts)]
        else:
            choices = [{"index": i, "text": t} for i, t in enumerate(texts)]
        return 200, {"choices": choices[::-1]}  # out of order on purpose: the client sorts by index


@pytest.fixture
def server() -> Iterator[tuple[str, Stub]]:
    stub = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with stub.lock:
                stub.requests.append((self.path, body, dict(self.headers)))
            status, payload = stub.reply(self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", stub
    httpd.shutdown()
    httpd.server_close()


def _generate(gen: OpenAIGenerator, prompts: list, stop: list[list[str]] | None = None, **kwargs: object) -> list:
    args = {"n": 2, "temperature": 0.8, "top_p": 0.95, "max_new_tokens": 64, "seed": 5}
    return gen.generate(prompts, stop or [["STOP"] for _ in prompts], SamplingRequest(**(args | kwargs)))


def test_completions_request_carries_every_sampling_field(server: tuple[str, Stub]) -> None:
    url, stub = server
    out = _generate(OpenAIGenerator(url, "tiny", api_key="sk-test"), ["p0", "p1"], stop=[["STOP"], ["\ndef"]])
    assert out == [["p0|0|seed=5\n", "p0|1|seed=5\n"], ["p1|0|seed=6\nSTOP tail", "p1|1|seed=6\nSTOP tail"]]
    # p1's only stop is "\ndef", which the reply lacks: its "STOP" stays.
    by_prompt = {body["prompt"]: (path, body, headers) for path, body, headers in stub.requests}
    path, body, headers = by_prompt["p1"]
    assert path == "/v1/completions"
    assert body == {
        "model": "tiny", "prompt": "p1", "n": 2, "temperature": 0.8, "top_p": 0.95, "max_tokens": 64,
        "seed": 6, "stop": ["\ndef"],
    }  # fmt: skip
    assert headers["Authorization"] == "Bearer sk-test"


def test_chat_mode_posts_messages_to_chat_completions(server: tuple[str, Stub]) -> None:
    url, stub = server
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "write add"}]
    out = _generate(OpenAIGenerator(url + "/v1/", "chat-model", chat=True), [messages, "plain"], n=1)
    assert out == [["write add|0|seed=5\n"], ["plain|0|seed=6\n"]]
    bodies = sorted((b for _, b, _ in stub.requests), key=lambda b: b["seed"])
    assert {p for p, _, _ in stub.requests} == {"/v1/chat/completions"}
    assert bodies[0]["messages"] == messages
    assert bodies[1]["messages"] == [{"role": "user", "content": "plain"}]
    assert "prompt" not in bodies[0]
    assert all("Authorization" not in h for _, _, h in stub.requests)


@pytest.mark.parametrize(
    ("status", "fail_first", "retries", "ok"),
    [(503, 2, 3, True), (500, 1, 1, True), (429, 1, 2, True), (503, 5, 2, False), (400, 1, 3, False)],
    ids=[
        "unavailable-twice-then-ok",
        "server-error-once-then-ok",
        "rate-limited-then-ok",
        "still-failing-after-all-retries",
        "client-error-is-not-retried",
    ],
)
def test_retries_server_errors_with_backoff_and_not_client_errors(
    server: tuple[str, Stub], status: int, fail_first: int, retries: int, ok: bool
) -> None:
    url, stub = server
    stub.fail_status, stub.fail_first = status, fail_first
    gen = OpenAIGenerator(url, "tiny", retries=retries, backoff=0.01)
    if ok:
        assert _generate(gen, ["p"], n=1) == [["p|0|seed=5\n"]]
        assert len(stub.requests) == fail_first + 1
    else:
        with pytest.raises(GenerationError, match=rf"{url}/v1/completions: HTTP {status}"):
            _generate(gen, ["p"], n=1)
        assert len(stub.requests) == (1 if status < 500 else retries + 1)


def test_unreachable_server_error_names_the_url(tmp_path: Path) -> None:
    gen = OpenAIGenerator("http://127.0.0.1:9", "tiny", retries=1, backoff=0.01)
    with pytest.raises(GenerationError, match=r"http://127\.0\.0\.1:9/v1/completions: cannot reach"):
        _generate(gen, ["p"], n=1)


def test_wrong_number_of_choices_is_an_error(server: tuple[str, Stub], monkeypatch: pytest.MonkeyPatch) -> None:
    url, stub = server
    monkeypatch.setattr(stub, "reply", lambda path, body: (200, {"choices": [{"index": 0, "text": "x"}]}))
    with pytest.raises(GenerationError, match="n=3"):
        _generate(OpenAIGenerator(url, "tiny"), ["p"], n=3)


def test_cli_runs_synth_through_the_openai_backend(server: tuple[str, Stub], tmp_path: Path) -> None:
    from execrl.harness.generate import main

    url, stub = server
    out = tmp_path / "run"
    argv = ["--model", "served", "--benchmark", "synth", "--limit", "2", "--n", "3", "--out", str(out)]
    assert main([*argv, "--engine", "openai", "--base-url", url]) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and len(stub.requests) == 2
    assert all(body["model"] == "served" and body["stop"] for _, body, _ in stub.requests)
    assert "api_key" not in json.loads((out / "config.json").read_text())
