"""Execution on a Ray cluster (`--sandbox ray`): one actor per node, or per N CPUs, each owning a warm local pool.

`RayPool` has the local pool's interface (`run`, `isolation`, `close`, a context manager), so `execute_many`,
evaluate and the trainers use it unchanged (`pool.open_pool` picks it). Ray places the actors; we never build a
cluster of our own (ARCHITECTURE.md, "Serving the reward and scaling out").

- Placement (`actor_plan`): an actor per alive node with CPUs, pinned there (`NodeAffinitySchedulingStrategy`,
  not soft) and reserving one CPU per sandbox worker; with `workers=N`, one actor per N CPUs of each node.
- Isolation is per node: each actor reports its node's protections (`nodes`); `isolation` holds a protection
  only where every node has it, and a degraded node is named in a warning (and in evaluate's metrics.json).
- Streaming: programs go out in batches of a few per worker, `depth` batches in flight per actor, and an actor
  that answers gets the next batch at once, so a fast node takes more of the work than a slow one.
- A node lost mid-run (`RayActorError`: the actor, its raylet or its machine died) takes its actor with it; the
  batches that actor had not answered go back to the front of the queue and run on the other actors. Results
  are yielded only from an answered batch, and each job once, so none is lost or doubled; evaluate keys them
  by task_id + completion_id in results.jsonl.
"""

from __future__ import annotations

import sys
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from execrl.harness.records import ExecResult, Limits
from execrl.harness.sandbox.pool import START_TIMEOUT, Job, SandboxStartError

BATCH_PER_WORKER = 4
"""Programs per batch for each of an actor's workers: enough to hide a round trip, few enough to rerun cheaply."""
REFS_KEPT = 1024
"""Problems kept in the object store at once (least recently sent dropped first; an in-flight batch pins its own)."""


def actor_plan(nodes: Sequence[tuple[str, float]], workers: int | None) -> list[tuple[str, int]]:
    """(node id, sandbox workers) for each actor to start, given (node id, CPUs) of the alive nodes.

    Without `workers`: one actor per node with a worker per whole CPU. With it: `workers` per actor, as many
    actors as fit in each node's CPUs, at least one (with fewer workers on a node smaller than `workers`).
    Nodes without a whole CPU (a head started with --num-cpus 0) get none.
    """
    plan = []
    for node_id, cpus in nodes:
        whole = int(cpus)
        if whole < 1:
            continue
        if workers is None:
            plan.append((node_id, whole))
        else:
            plan += [(node_id, min(workers, whole))] * max(1, whole // workers)
    return plan


def summarise_nodes(infos: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, bool]]:
    """Each actor's report with the protections its node lacks (`degraded`), and the pool's isolation: a protection
    counts only where every node has it (as a local pool counts one only where every worker has it)."""
    nodes = [{**info, "degraded": sorted(k for k, on in info["isolation"].items() if not on)} for info in infos]
    reports = [info["isolation"] for info in infos]
    return nodes, {k: all(r.get(k, False) for r in reports) for r in reports for k in r}


def degraded_warnings(nodes: Sequence[dict[str, Any]]) -> list[str]:
    """One loud line per node that runs with less isolation than the others could have."""
    return [
        f"WARNING: Ray node {node['host']} ({node['node_id'][:12]}) runs its sandbox WITHOUT "
        f"{', '.join(node['degraded'])} isolation"
        for node in nodes
        if node["degraded"]
    ]


@dataclass
class _Actor:
    handle: Any
    workers: int
    node: dict[str, Any]
    inflight: int = 0


@dataclass
class _Batch:
    actor: _Actor
    jobs: list[tuple[int, Job]] = field(default_factory=list)


class RayPool:
    """Sandbox actors on the nodes of a Ray cluster; `run` streams (job, result) pairs in completion order."""

    def __init__(
        self,
        workers: int | None = None,
        limits: Limits = Limits(),
        *,
        address: str | None = None,
        node_backend: str = "local",
        depth: int = 2,
        hidden: Sequence[str | Path] = (),
    ) -> None:
        try:
            import ray
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        except ImportError:
            raise SandboxStartError("--sandbox ray needs Ray: pip install 'execrl[ray]'") from None
        from execrl.harness.sandbox.ray_node import NodeSandbox

        self._ray, self.limits, self.depth, self.backend = ray, limits, depth, "ray"
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            try:
                ray.init(address=address, log_to_driver=False, logging_level="WARNING")
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise SandboxStartError(f"cannot join the Ray cluster at {address or 'auto'}: {e}") from None
        self._actors: list[_Actor] = []
        self._refs: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
        self.lost: list[dict[str, Any]] = []
        """Nodes whose actor was lost during a run (their unanswered programs ran elsewhere)."""
        try:
            alive = [(n["NodeID"], n["Resources"].get("CPU", 0.0)) for n in ray.nodes() if n["Alive"]]
            plan = actor_plan(alive, workers)
            if not plan:
                raise SandboxStartError("the Ray cluster has no node with a whole CPU for a sandbox actor")
            remote = ray.remote(NodeSandbox)
            hidden_paths = [str(Path(h).resolve()) for h in hidden]
            handles = [
                remote.options(
                    num_cpus=n,
                    max_restarts=0,
                    max_concurrency=depth + 2,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                ).remote(n, limits, node_backend, hidden_paths, 2)
                for node_id, n in plan
            ]
            infos = self._started(handles)
        except BaseException:
            self.close()
            raise
        self._actors = [_Actor(h, info["workers"], info) for h, info in zip(handles, infos, strict=True)]
        self.n_workers = sum(a.workers for a in self._actors)
        self.nodes, self.isolation = summarise_nodes(infos)
        for warning in degraded_warnings(self.nodes):
            print(warning, file=sys.stderr)

    def _started(self, handles: list[Any]) -> list[dict[str, Any]]:
        ray = self._ray
        infos = [h.info.remote() for h in handles]
        try:
            return ray.get(infos, timeout=START_TIMEOUT)
        except ray.exceptions.GetTimeoutError:
            self._actors = [_Actor(h, 0, {}) for h in handles]
            raise SandboxStartError(
                f"the Ray sandbox actors did not start within {START_TIMEOUT:.0f}s (are the nodes' CPUs taken?)"
            ) from None
        except ray.exceptions.RayError as e:
            self._actors = [_Actor(h, 0, {}) for h in handles]
            raise SandboxStartError(f"a Ray sandbox actor failed to start: {str(e).strip()[-800:]}") from None

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        ray = self._ray
        closing = []
        for actor in self._actors:
            try:
                closing.append(actor.handle.close.remote())
            except Exception:  # noqa: BLE001 - an actor already gone has nothing to close
                pass
        if closing:
            ray.wait(closing, num_returns=len(closing), timeout=60)
        for actor in self._actors:
            try:
                ray.kill(actor.handle, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        self._actors, self._refs = [], OrderedDict()
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()

    def _problem_ref(self, job: Job) -> Any:
        """The object reference of the job's problem, put once while it is among the REFS_KEPT latest."""
        key = id(job.problem)
        kept = self._refs.get(key)
        if kept is None or kept[0] is not job.problem:
            kept = (job.problem, self._ray.put(job.problem))
            self._refs[key] = kept
        self._refs.move_to_end(key)
        if len(self._refs) > REFS_KEPT:
            self._refs.popitem(last=False)
        return kept[1]

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, ExecResult]]:
        """Stream (job, result) pairs in completion order; an actor lost on the way has its batches rerun."""
        ray = self._ray
        source, pending = iter(jobs), deque[tuple[int, Job]]()
        seq, exhausted = 0, False
        batches: dict[Any, _Batch] = {}
        try:
            while True:
                # 1. keep every live actor fed: `depth` batches each (requeued programs first)
                for actor in self._actors:
                    while actor.inflight < self.depth and (pending or not exhausted):
                        batch = _Batch(actor)
                        while len(batch.jobs) < BATCH_PER_WORKER * actor.workers:
                            if pending:
                                batch.jobs.append(pending.popleft())
                                continue
                            job = next(source, None)
                            if job is None:
                                exhausted = True
                                break
                            batch.jobs.append((seq, job))
                            seq += 1
                        if not batch.jobs:
                            break
                        entries = [(s, self._problem_ref(j), j.program, j.limits) for s, j in batch.jobs]
                        batches[actor.handle.run.remote(entries)] = batch
                        actor.inflight += 1
                if not batches:
                    if pending:
                        raise SandboxStartError(f"every Ray sandbox actor was lost; {len(pending)} programs not run")
                    return
                # 2. wait for any batch, and hand its results out (or requeue an actor's batches if it is lost)
                ready, _ = ray.wait(list(batches), num_returns=1)
                for ref in ready:
                    batch = batches.pop(ref, None)
                    if batch is None:
                        continue  # requeued with its lost actor's other batches below
                    batch.actor.inflight -= 1
                    try:
                        answered = dict(ray.get(ref))
                    except ray.exceptions.RayError as e:
                        self._lose(batch.actor, e, batches, pending, batch)
                        continue
                    for s, job in batch.jobs:
                        yield job, answered[s]
        finally:
            for actor in self._actors:  # an abandoned run's batches finish on the actors, unread
                actor.inflight = 0

    def _lose(
        self, actor: _Actor, error: Exception, batches: dict[Any, _Batch], pending: deque, first: _Batch
    ) -> None:
        """Drop a lost actor: its unanswered batches go back to the front of the queue, in the order they were sent."""
        mine = [first] + [b for b in batches.values() if b.actor is actor]
        for ref in [r for r, b in batches.items() if b.actor is actor]:
            del batches[ref]
        requeued = sorted((entry for b in mine for entry in b.jobs), key=lambda e: e[0])
        pending.extendleft(reversed(requeued))
        self._actors.remove(actor)
        try:
            self._ray.kill(actor.handle, no_restart=True)
        except Exception:  # noqa: BLE001 - it is gone already
            pass
        self.lost.append({**actor.node, "error": f"{type(error).__name__}: {str(error).strip()[:300]}"})
        print(
            f"WARNING: Ray sandbox node {actor.node.get('host')} ({str(actor.node.get('node_id'))[:12]}) was lost "
            f"({type(error).__name__}); {len(requeued)} of its programs run again elsewhere "
            f"({len(self._actors)} actors left)",
            file=sys.stderr,
        )
