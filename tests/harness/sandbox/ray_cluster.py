"""A real Ray cluster of several nodes on this machine, for the Ray sandbox tests and benchmark.

Each node is `ray start ... --block` in a session of its own (the head with `--head --port`, the others with
`--address`), with a few CPUs and a temp dir of the cluster's own, so killing a node's process group kills that
node only (its raylet and agents; its actors exit with their raylet), and stopping the cluster never touches
another Ray on the machine (`ray stop` would stop them all).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    def __init__(self) -> None:
        # Short: Ray's unix sockets live below it, and a socket path has at most 107 bytes.
        self.temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen] = []

    def _start(self, args: list[str]) -> subprocess.Popen:
        log = open(Path(self.temp) / f"node{len(self.nodes)}.log", "wb")
        node = subprocess.Popen(
            [RAY, "start", "--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=ENV,
            start_new_session=True,
        )
        self.nodes.append(node)
        return node

    def start_head(self, cpus: int) -> None:
        self._start(["--head", f"--port={self.port}", f"--num-cpus={cpus}", f"--temp-dir={self.temp}",
                     "--include-dashboard=false", "--dashboard-agent-listen-port", str(_free_port())])  # fmt: skip

    def add_node(self, cpus: int) -> subprocess.Popen:
        return self._start([f"--address={self.address}", f"--num-cpus={cpus}"])

    def wait_for(self, alive: int, timeout: float = 90.0) -> None:
        """Block until `alive` nodes have started: each `ray start` says so once its raylet has registered with the
        head (read from the node's log, so this process stays no driver and pays no `ray status`)."""
        deadline = time.monotonic() + timeout
        logs = sorted(Path(self.temp).glob("node*.log"))
        while time.monotonic() < deadline:
            if sum("Ray runtime started" in p.read_text(errors="replace") for p in logs) >= alive:
                return
            if any(n.poll() is not None for n in self.nodes):
                break
            time.sleep(0.2)
        tails = "\n".join(p.read_text(errors="replace")[-1500:] for p in logs)
        raise RuntimeError(f"the Ray cluster did not reach {alive} nodes: {tails}")

    @staticmethod
    def kill(node: subprocess.Popen) -> None:
        """Kill one node at once (its whole process group), as a machine lost would be."""
        try:
            os.killpg(node.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        node.wait()

    def stop(self) -> None:
        """Kill every node (a test cluster needs no graceful stop; its actors exit with their raylets)."""
        for node in reversed(self.nodes):  # workers first, the head last
            self.kill(node)
        shutil.rmtree(self.temp, ignore_errors=True)
