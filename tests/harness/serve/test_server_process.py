"""`execrl serve` for real: a uvicorn subprocess on a free port. The token is required, overload is answered
with 429 + Retry-After at once and no request is lost or left hanging, and a shutdown lets work in flight finish."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "execrl.harness.cli", "serve", "--port", str(self.port), *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"execrl serve exited: {self.process.stdout.read().decode()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("execrl serve did not come up within 60 s")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@pytest.fixture
def server(request):
    s = Server(*request.param)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def token_server():
    s = Server("--workers", "1", "--token", TOKEN)
    yield s
    s.stop()


def _run_code(url: str, code: str, headers: dict | None = None) -> httpx.Response:
    body = {"code": code, "language": "python", "run_timeout": 10}
    return httpx.post(f"{url}/run_code", json=body, headers=headers if headers is not None else AUTH, timeout=60)


@pytest.mark.parametrize(
    ("headers", "status", "why"),
    [
        ({}, 401, "no Authorization header"),
        ({"Authorization": "Bearer wrong"}, 401, "a wrong token"),
        ({"Authorization": f"Basic {TOKEN}"}, 401, "the right secret under another scheme"),
        ({"Authorization": f"Bearer {TOKEN}x"}, 401, "the token with a character more"),
        (AUTH, 200, "the right bearer token"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_every_route_but_health_needs_the_token(token_server, headers, status, why) -> None:
    url = token_server.url
    assert _run_code(url, "print(1)", headers).status_code == status
    assert httpx.get(f"{url}/metrics", headers=headers, timeout=10).status_code == status
    reward = {"query": ["def f():\n    return 1\n"], "labels": [{"task_id": "a", "tests": ["assert f() == 1"]}]}
    assert httpx.post(f"{url}/get_reward", json=reward, headers=headers, timeout=30).status_code == status
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200


@pytest.mark.parametrize("server", [("--workers", "1", "--max-queue", "2", "--token", TOKEN)], indirect=True)
def test_overload_is_answered_with_429_at_once_and_no_request_is_lost(server) -> None:
    n = 16
    code = "import time\ntime.sleep(0.3)\nprint(input() if False else 'done')"
    with ThreadPoolExecutor(n) as threads:
        replies = list(threads.map(lambda _: _run_code(server.url, code), range(n)))
    statuses = [r.status_code for r in replies]
    assert set(statuses) <= {200, 429} and statuses.count(200) >= 1 and statuses.count(429) >= 1, statuses
    accepted = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code == 429]
    assert all(r.json()["run_result"]["stdout"] == "done\n" for r in accepted)
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    # Refused at once: every 429 came back before the accepted work (0.3 s a program, one worker) was done.
    assert max(r.elapsed for r in refused) < max(r.elapsed for r in accepted)
    metrics = httpx.get(f"{server.url}/metrics", headers=AUTH, timeout=10).text
    assert f'execrl_rejected_total{{reason="overloaded"}} {statuses.count(429)}' in metrics
    assert f"execrl_executions_total {statuses.count(200)}" in metrics
    assert "execrl_queue_depth 0" in metrics and "execrl_in_flight 0" in metrics


@pytest.mark.parametrize("server", [("--workers", "1", "--token", TOKEN)], indirect=True)
def test_a_shutdown_lets_the_request_in_flight_finish(server) -> None:
    with ThreadPoolExecutor(1) as thread:
        slow = thread.submit(_run_code, server.url, "import time\ntime.sleep(1.5)\nprint('finished')")
        time.sleep(0.6)
        os.kill(server.process.pid, signal.SIGTERM)
        reply = slow.result(timeout=30)
    assert reply.status_code == 200 and reply.json()["run_result"]["stdout"] == "finished\n"
    assert server.process.wait(timeout=30) == 0
    with pytest.raises(httpx.TransportError):
        _run_code(server.url, "print(1)")
