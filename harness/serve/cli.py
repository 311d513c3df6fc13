"""`execrl serve`'s flags and its server loop (`serve(cfg, reward_fn)`); the command's entry is
`execrl.trainers.serve.main`, which picks the reward function (harness may not import trainers).

One warm pool, started before the first request; uvicorn's graceful shutdown (SIGINT/SIGTERM) stops accepting
connections and lets every request in flight get its answer, and only then is the pool closed.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from execrl.benchmarks.errors import UserError
from execrl.harness.flags import SandboxFlags
from execrl.harness.records import Limits

RewardName = Literal["binary", "coderl", "partial", "weighted"]
"""The reward functions of `execrl.trainers.rewards.REWARDS` (a test keeps the two in step)."""


@dataclass(kw_only=True)
class Config(SandboxFlags):
    """Serve sandbox verdicts over HTTP: /get_reward (OpenRLHF), /run_code (SandboxFusion), /v1/execute, /metrics."""

    host: str = "127.0.0.1"
    """Address to bind; anything but loopback exposes code execution to the network (use --token)."""
    port: int = 8000
    token: str | None = None
    """Require `Authorization: Bearer TOKEN` on every route but /health (the value shows in `ps`; see --token-file)."""
    token_file: Path | None = None
    """Read the bearer token from this file (its first line) instead of the command line."""
    reward: RewardName = "binary"
    """The reward /get_reward returns (execrl.trainers.rewards.REWARDS)."""
    plain: bool = False
    """/get_reward responses are plain continuations of the prompt, not chat replies."""
    max_queue: int = 4096
    """Programs that may wait for a worker; past it a request gets 429 with Retry-After."""
    max_batch: int = 1024
    """Programs per request; past it 413."""
    max_body_mb: float = 16.0
    """Largest request body, in MiB; past it 413."""
    graceful_timeout: float = 120.0
    """Seconds a shutdown waits for requests in flight before it stops them."""
    data_dir: Path | None = None
    """Local data folder for MBPP/APPS task ids (default: $EXECRL_DATA_DIR); hidden from the programs."""


def _token(cfg: Config) -> str | None:
    if cfg.token_file is not None:
        try:
            lines = cfg.token_file.read_text().splitlines()
        except OSError as error:
            raise UserError(f"--token-file: {error}") from None
        token = lines[0].strip() if lines else ""
        if not token:
            raise UserError(f"--token-file {cfg.token_file} is empty")
        return token
    if cfg.token is not None and not cfg.token.strip():
        raise UserError("--token is empty")
    return cfg.token


class _Stopped(Exception):
    """A shutdown signal arrived after uvicorn's graceful shutdown."""


def _stopped(signum: int, frame: object) -> None:
    raise _Stopped


def serve(cfg: Config, reward_fn: Callable[..., list]) -> int:
    """Run the server until SIGINT/SIGTERM; `reward_fn` scores /get_reward (`trainers.rewards` signature)."""
    try:
        import uvicorn
        from execrl.harness.serve.app import ServeSettings, create_app
    except ImportError as error:
        raise UserError(f"execrl serve needs the serve extra: pip install 'execrl[serve]' ({error})") from None
    from execrl.benchmarks.registry import default_data_dir
    from execrl.harness.problem_lookup import ProblemLookup
    from execrl.harness.sandbox.pool import open_pool
    from execrl.harness.serve.dispatch import Dispatcher

    for name, value in (("--max-queue", cfg.max_queue), ("--max-batch", cfg.max_batch), ("--port", cfg.port)):
        if value < 1:
            raise UserError(f"{name} must be >= 1, got {value}")
    if cfg.timeout <= 0 or cfg.max_body_mb <= 0:
        raise UserError("--timeout and --max-body-mb must be > 0")
    token = _token(cfg)
    data_dir = cfg.data_dir or default_data_dir()
    limits = replace(Limits(), timeout=cfg.timeout)
    settings = ServeSettings(
        chat=not cfg.plain,
        token=token,
        max_body=int(cfg.max_body_mb * 1024**2),
        max_batch=cfg.max_batch,
        limits=limits,
    )
    hidden = [data_dir] if data_dir else []
    pool = open_pool(cfg.sandbox, cfg.workers, limits, hidden=hidden, ray_address=cfg.ray_address)
    degraded = sorted(k for k, on in pool.isolation.items() if not on)
    if degraded:
        print(f"WARNING: SANDBOX ISOLATION DEGRADED: {', '.join(degraded)} not in force", file=sys.stderr)
    if cfg.host not in ("127.0.0.1", "localhost", "::1") and token is None:
        print(f"WARNING: serving code execution on {cfg.host} without --token", file=sys.stderr)
    dispatcher = Dispatcher(pool, cfg.max_queue)
    app = create_app(dispatcher, ProblemLookup(data_dir), settings, reward_fn)
    print(f"execrl serve: {pool.n_workers} {cfg.sandbox} workers on http://{cfg.host}:{cfg.port}", file=sys.stderr)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the handler it found; this one
    # ends the process normally, so the pool below is closed (its workers' cgroups removed) and the exit status is 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped)
    try:
        uvicorn.run(
            app, host=cfg.host, port=cfg.port, log_level="warning", timeout_graceful_shutdown=cfg.graceful_timeout
        )
    except _Stopped:
        pass
    finally:
        dispatcher.close(timeout=cfg.graceful_timeout)
    return 0
