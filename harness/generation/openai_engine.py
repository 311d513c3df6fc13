"""Sampling from an OpenAI-compatible HTTP server (a vLLM or TGI server, or the OpenAI API itself).

Plain `urllib.request`, no client package: one POST per prompt to `/v1/completions` (or `/v1/chat/completions`
with `chat=True`) asking for all `n` samples at once, several prompts in flight at a time. 5xx, 429 and
connection errors are retried with exponential backoff; anything else fails at once with a `GenerationError`
naming the URL and the server's reply. Completions are cut at the stops again locally, since servers differ
in how many stop sequences they honour (the OpenAI API takes at most four).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from execrl.harness.generation.base import (
    GenerationError,
    Prompt,
    SamplingRequest,
    as_messages,
    as_plain,
    check_stops,
    truncate_at_stop,
)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class OpenAIGenerator:
    """`Generator` over an OpenAI-compatible server at `base_url` (with or without the trailing `/v1`)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        chat: bool = False,
        *,
        concurrency: int = 8,
        retries: int = 5,
        backoff: float = 1.0,
        timeout: float = 600.0,
    ) -> None:
        root = base_url.rstrip("/")
        root = root if root.endswith("/v1") else root + "/v1"
        self.url = root + ("/chat/completions" if chat else "/completions")
        self.model = model
        self.api_key = api_key
        self.chat = chat
        self.concurrency = max(1, concurrency)
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout

    def generate(self, prompts: list[Prompt], stop: list[list[str]], request: SamplingRequest) -> list[list[str]]:
        check_stops(prompts, stop)
        n = request.n

        def one(i: int) -> list[str]:
            body: dict[str, Any] = {
                "model": self.model,
                "n": n,
                "temperature": request.temperature,
                "top_p": request.top_p,
                "max_tokens": request.max_new_tokens,
                "seed": request.seed + i,
            }
            if stop[i]:
                body["stop"] = stop[i]
            if self.chat:
                body["messages"] = as_messages(prompts[i])
            else:
                body["prompt"] = as_plain(prompts[i])
            choices = sorted(self._post(body).get("choices", []), key=lambda c: c.get("index", 0))
            if len(choices) != n:
                raise GenerationError(f"{self.url}: asked for n={n} choices, the server returned {len(choices)}")
            texts = [
                (c.get("message") or {}).get("content") or "" if self.chat else c.get("text") or "" for c in choices
            ]
            return [truncate_at_stop(text, stop[i]) for text in texts]

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, range(len(prompts))))

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode()
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                detail = e.read().decode(errors="replace")[:500]
                if e.code not in RETRY_STATUS or attempt == self.retries:
                    raise GenerationError(f"{self.url}: HTTP {e.code}: {detail}") from e
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                if attempt == self.retries:
                    raise GenerationError(f"{self.url}: cannot reach the server after {attempt + 1} tries: {e}") from e
            except json.JSONDecodeError as e:
                raise GenerationError(f"{self.url}: the reply is not JSON: {e}") from e
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")
