"""The FastAPI app of `execrl serve`: routes, auth, request limits, and the map from refusals to HTTP codes.

Every request is hostile input until checked: the body is read up to `max_body` bytes (413 past it, before
parsing), parsed as JSON (400), validated against the endpoint's model (422), its batch bounded (413), and only
then queued (429 with Retry-After when the queue is full, 503 while shutting down). With a token, every route
but /health needs `Authorization: Bearer TOKEN` (401; compared in constant time).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from execrl.benchmarks.datafiles import DataError
from execrl.benchmarks.problem import Problem
from execrl.harness.problem_lookup import ProblemLookup, program_for
from execrl.harness.records import ExecResult, Limits
from execrl.harness.sandbox.executor import raw_problem
from execrl.harness.sandbox.pool import Job
from execrl.harness.serve import protocols
from execrl.harness.serve.dispatch import Dispatcher, Draining, Overloaded
from execrl.harness.serve.metrics import prometheus_text
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class ServeSettings:
    chat: bool = True
    """/get_reward responses are chat replies (code in fences or prose)."""
    token: str | None = None
    max_body: int = 16 * 1024**2
    max_batch: int = 1024
    limits: Limits = Limits()
    """The server's limits: /run_code may ask for less time or memory, never more."""


def _error(status: int, detail: Any, headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail=detail, headers=headers)


async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _error(413, f"request body of {declared} bytes; at most {limit}")
    body = bytearray()
    async for chunk in request.stream():  # a chunked body has no length: count as it comes
        body += chunk
        if len(body) > limit:
            raise _error(413, f"request body over {limit} bytes")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _error(400, f"the body is not valid JSON: {error}") from None


async def _parse(request: Request, model: type[BaseModel], settings: ServeSettings) -> Any:
    data = await _read_json(request, settings.max_body)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _error(422, json.loads(error.json(include_url=False, include_input=False))) from None


def _check_batch(n: int, settings: ServeSettings) -> None:
    if n > settings.max_batch:
        raise _error(413, f"{n} programs in one request; at most {settings.max_batch}")


async def _run(dispatcher: Dispatcher, jobs: list[Job]) -> list[ExecResult]:
    try:
        future = dispatcher.submit(jobs)
    except Overloaded as busy:
        raise _error(429, str(busy), {"Retry-After": str(busy.retry_after)}) from None
    except Draining as closing:
        raise _error(503, str(closing), {"Retry-After": "5"}) from None
    return await asyncio.wrap_future(future)


def create_app(
    dispatcher: Dispatcher, lookup: ProblemLookup, settings: ServeSettings, reward_fn: Callable[..., list]
) -> FastAPI:
    """The app over `dispatcher`'s pool; `reward_fn` has the reward functions' signature (`trainers.rewards`, which
    the harness may not import: the command's entry in trainers/ hands it in)."""
    app = FastAPI(title="execrl serve", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def bearer_token(request: Request, call_next: Any) -> Any:
        if settings.token is not None and request.url.path != "/health":
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), settings.token.encode()):
                return JSONResponse({"detail": "missing or wrong bearer token"}, 401, {"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    def resolve(spec: Any, where: str, prompt: str | None = None) -> Problem:
        try:
            return lookup.resolve(spec, where, prompt)
        except DataError as error:
            raise _error(422, str(error)) from None

    @app.get("/health")
    async def health() -> dict[str, Any]:
        isolation = dispatcher.pool.isolation
        return {"status": "ok", "workers": dispatcher.pool.n_workers, "sandbox": dispatcher.pool.backend,
                "isolation": isolation, "degraded": sorted(k for k, on in isolation.items() if not on)}  # fmt: skip

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(prometheus_text(dispatcher), media_type="text/plain; version=0.0.4")

    @app.post("/get_reward")
    async def get_reward(request: Request) -> dict[str, Any]:
        body = await _parse(request, protocols.GetRewardRequest, settings)
        _check_batch(len(body.query), settings)
        prompts = body.prompts or [None] * len(body.query)
        problems = [resolve(label, f"labels[{i}]", prompts[i]) for i, label in enumerate(body.labels)]
        programs = [
            program_for(p, protocols.response_text(q, prompt), chat=settings.chat)
            for p, q, prompt in zip(problems, body.query, prompts, strict=True)
        ]
        results = await _run(dispatcher, [Job(None, p, s) for p, s in zip(problems, programs, strict=True)])
        return protocols.reward_reply(reward_fn(problems, programs, results), results)

    @app.post("/run_code")
    async def run_code(request: Request) -> dict[str, Any]:
        body = await _parse(request, protocols.RunCodeRequest, settings)
        if body.language != "python":
            raise _error(400, f"language {body.language!r} is not supported: execrl serve runs python only")
        if body.files or body.fetch_files:
            raise _error(400, "files and fetch_files are not supported: the program runs in an empty scratch dir")
        base = settings.limits
        memory = base.memory if body.memory_limit_MB <= 0 else min(base.memory, body.memory_limit_MB * 1024**2)
        timeout = min(float(body.run_timeout), base.program_timeout)
        limits = replace(base, timeout=timeout, program_timeout=timeout, memory=memory, retry_timeouts=False)
        problem = raw_problem(body.stdin or "")  # the executor returns its stdout
        (result,) = await _run(dispatcher, [Job(None, problem, body.code, limits)])
        return protocols.run_code_reply(result)

    @app.post("/v1/execute")
    async def execute(request: Request) -> dict[str, Any]:
        body = await _parse(request, protocols.ExecuteRequest, settings)
        _check_batch(len(body.texts), settings)
        problem = resolve(body.task_id if body.task_id is not None else body.problem, "problem")
        programs = body.programs or [program_for(problem, c, chat=body.chat) for c in body.texts]
        results = await _run(dispatcher, [Job(None, problem, s) for s in programs])
        return protocols.execute_reply(problem.task_id, results)

    return app
