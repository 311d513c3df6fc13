"""One warm sandbox pool per process, for callers that are handed one program batch at a time (the TRL and veRL
adapters): `shared_pool(settings)` starts it on first use, later calls get the same pool, and it is closed at exit.

Fork safety: RL stacks fork (veRL's reward workers, dataloader workers). A pool's workers and pipes belong to the
process that started it; a forked child that used them would steal its parent's results. So the pool is kept with
the pid that made it, and a child sees no pool and starts its own (the parent's is left alone, never closed
from the child). A lock serialises batches of one process: a pool runs one `run` at a time.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from execrl.benchmarks.errors import UserError
from execrl.benchmarks.problem import Problem
from execrl.harness.records import ExecResult, Limits
from execrl.harness.sandbox.pool import SandboxPool, execute_many, open_pool


@dataclass(frozen=True)
class PoolSettings:
    workers: int | None = None
    """Worker processes (None: all CPU cores)."""
    limits: Limits = Limits()
    backend: str = "local"
    """A backend of `execrl.harness.sandbox.backends.BACKENDS` (the `--sandbox` choices)."""
    hidden: tuple[str, ...] = field(default=())
    """Folders the candidates must not read (the data dir)."""
    ray_address: str | None = None
    """With backend "ray": the cluster's address (None: `ray.init`'s own rules)."""


_lock = threading.Lock()
_state: dict[str, object] = {"pid": None, "pool": None, "settings": None}


def shared_pool(settings: PoolSettings) -> SandboxPool:
    """This process's warm pool, started on first use with `settings`; asking for other settings is an error."""
    with _lock:
        return _pool_locked(settings)


def _pool_locked(settings: PoolSettings) -> SandboxPool:
    if _state["pid"] != os.getpid():  # first use, or a forked child holding its parent's pool: never touch that one
        _state.update(pid=os.getpid(), pool=None, settings=None)
    pool = _state["pool"]
    if pool is None:
        pool = open_pool(
            settings.backend, settings.workers, settings.limits, hidden=settings.hidden,
            ray_address=settings.ray_address,
        )  # fmt: skip
        _state.update(pool=pool, settings=settings)
    elif _state["settings"] != settings:
        raise UserError(
            f"this process already runs a sandbox pool with {_state['settings']}; one pool per process serves "
            f"every reward function, so give them the same sandbox settings (asked for {settings})"
        )
    return pool  # type: ignore[return-value]


def execute_shared(settings: PoolSettings, problems: Sequence[Problem], programs: Sequence[str]) -> list[ExecResult]:
    """Results in input order, through this process's shared pool (one batch at a time)."""
    with _lock:
        return execute_many(problems, programs, pool=_pool_locked(settings))


def close_shared() -> None:
    """Close this process's pool (at exit; tests call it too). A forked child's inherited pool is not its own."""
    with _lock:
        pool = _state["pool"]
        if pool is not None and _state["pid"] == os.getpid():
            pool.close()  # type: ignore[attr-defined]
        _state.update(pid=None, pool=None, settings=None)


def _fresh_lock_in_child() -> None:
    # A fork taken while another thread held the lock would leave it held forever in the child.
    global _lock
    _lock = threading.Lock()


atexit.register(close_shared)
os.register_at_fork(after_in_child=_fresh_lock_in_child)
