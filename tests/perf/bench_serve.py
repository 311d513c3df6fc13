"""`execrl serve` under load: 64 concurrent clients for 60 s against the same pool in process, side by side.

    .venv/bin/python tests/perf/bench_serve.py [--clients 64] [--seconds 60] [--rounds 6] [--workers N] [--batch 4]

Each client posts OpenRLHF-style /get_reward batches of `--batch` HumanEval canonical programs (chat answers in
fences, labels are task ids) as fast as the answers come. The reference is the same programs through
`execute_many` on an in-process SandboxPool of the same size. The machine is shared, so the two alternate: the
server's `--seconds` are cut into `--rounds` windows, each after an in-process window of the same length (the
server stays up throughout). Prints executions/s of both per round and in total, their ratio, p50/p99 request
latency, and the counts: answered, lost (no answer or a transport error), refused (429), other errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import aiohttp
import httpx
from execrl.benchmarks.humaneval import load_humaneval
from execrl.harness.sandbox.pool import SandboxPool, execute_many


def programs() -> list[tuple[str, str]]:
    return [(p.task_id, p.prompt + p.solutions[0]) for p in load_humaneval()]


def in_process(pool: SandboxPool, seconds: float) -> tuple[int, float]:
    """(programs, seconds) of the pool alone on the same programs, in batches of 64 x 4 like the clients'."""
    problems = {p.task_id: p for p in load_humaneval()}
    work = programs() * 2
    done, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        for i in range(0, len(work), 256):
            chunk = work[i : i + 256]
            results = execute_many([problems[t] for t, _ in chunk], [s for _, s in chunk], pool=pool)
            assert all(r.passed for r in results), [r.error for r in results if not r.passed][:3]
            done += len(results)
    return done, time.monotonic() - start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _client(url: str, work: list[tuple[str, str]], offset: int, batch: int, end: float, tally: dict) -> None:
    # aiohttp, as OpenRLHF's own client (openrlhf/utils/agent.py, `_fetch_rewards_via_http`).
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        i = offset
        while time.monotonic() < end:
            chunk = [work[(i + k) % len(work)] for k in range(batch)]
            i += batch * 64
            body = {"query": [f"```python\n{code}```" for _, code in chunk], "labels": [t for t, _ in chunk]}
            begin = time.monotonic()
            try:
                async with session.post(f"{url}/get_reward", json=body) as reply:
                    status, retry = reply.status, reply.headers.get("Retry-After", "1")
                    out = await reply.json() if status == 200 else None
            except (aiohttp.ClientError, asyncio.TimeoutError):
                tally["lost"] += 1
                continue
            if status == 429:
                tally["refused"] += 1
                await asyncio.sleep(max(0.0, min(float(retry), end - time.monotonic())))
                continue
            if status != 200 or out["rewards"] != [1.0] * batch:
                tally["errors"] += 1
                continue
            tally["latency"].append(time.monotonic() - begin)
            tally["executions"] += batch


async def load(url: str, clients: int, seconds: float, batch: int) -> tuple[dict, float]:
    work = programs()
    tally = {"lost": 0, "refused": 0, "errors": 0, "executions": 0, "latency": []}
    start = time.monotonic()
    end = start + seconds
    await asyncio.gather(*(_client(url, work, c * batch, batch, end, tally) for c in range(clients)))
    return tally, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-queue", type=int, default=4096, help="the server's --max-queue (lower: see 429s)")
    args = parser.parse_args()
    window = args.seconds / args.rounds

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "execrl.harness.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--max-queue",
            str(args.max_queue),
        ]
    )
    url = f"http://127.0.0.1:{port}"
    total = {"lost": 0, "refused": 0, "errors": 0, "executions": 0, "latency": []}
    served_s = reference_n = reference_s = 0.0
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        with SandboxPool(args.workers) as pool:
            for r in range(args.rounds):
                n, seconds = in_process(pool, window)
                tally, wall = asyncio.run(load(url, args.clients, window, args.batch))
                print(f"round {r}: in-process {n / seconds:.1f} programs/s, server {tally['executions'] / wall:.1f}",
                      flush=True)  # fmt: skip
                reference_n, reference_s, served_s = reference_n + n, reference_s + seconds, served_s + wall
                for key in ("lost", "refused", "errors", "executions", "latency"):
                    total[key] += tally[key]
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    served, reference = total["executions"] / served_s, reference_n / reference_s
    latency = sorted(total["latency"])
    p50 = latency[len(latency) // 2] if latency else float("nan")
    p99 = latency[min(len(latency) - 1, int(len(latency) * 0.99))] if latency else float("nan")
    sandbox_errors = next(line for line in metrics.splitlines() if line.startswith("execrl_sandbox_errors_total"))
    print(f"in-process pool: {reference:.1f} programs/s over {reference_s:.1f} s")
    print(f"server: {served:.1f} programs/s over {served_s:.1f} s with {args.clients} clients x {args.batch} programs")
    print(f"ratio server / in-process: {served / reference:.1%}")
    print(
        f"latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; requests answered {len(latency)}, "
        f"lost {total['lost']}, refused (429) {total['refused']}, other errors {total['errors']}; {sandbox_errors}"
    )


if __name__ == "__main__":
    main()
