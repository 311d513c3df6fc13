"""CPU seconds of a process and its descendants, from the kernel (`getrusage` and `/proc/<pid>/stat`), Linux only.

Wall time on a shared machine measures the other users as much as the code; CPU time (user + system) counts only
the time a process actually ran. For a process tree the kernel keeps each process's own time (utime, stime) and the
time of the children it reaped (cutime, cstime, `proc(5)`), so summing own + reaped over the live processes of a
tree, plus what the root has reaped (`RUSAGE_CHILDREN`), counts every CPU-second of the tree once: a process that
exited without being reaped by anyone in the tree (an orphan re-parented outside it) is the only one missed.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """CPU seconds: user and system."""

    user: float = 0.0
    system: float = 0.0

    @property
    def total(self) -> float:
        return self.user + self.system

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.user + other.user, self.system + other.system)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.user - other.user, self.system - other.system)


def rusage(who: int) -> Usage:
    """`resource.getrusage(who)` (RUSAGE_SELF: every thread of this process; RUSAGE_CHILDREN: reaped descendants)."""
    usage = resource.getrusage(who)
    return Usage(usage.ru_utime, usage.ru_stime)


def own() -> Usage:
    return rusage(resource.RUSAGE_SELF)


def reaped() -> Usage:
    return rusage(resource.RUSAGE_CHILDREN)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces), or None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_usage(pid: int) -> Usage:
    """The process's own CPU plus that of the children it reaped (proc(5): utime, stime, cutime, cstime)."""
    fields = _stat(pid)
    if fields is None:
        return Usage()
    # After ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
    utime, stime, cutime, cstime = (int(x) / TICK for x in fields[11:15])
    return Usage(utime + cutime, stime + cstime)


def children_map() -> dict[int, list[int]]:
    """Parent pid -> its live child pids, for every process in /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def subtree(root: int, tree: dict[int, list[int]]) -> list[int]:
    """`root` and its live descendants."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += tree.get(pid, [])
    return found


def tree_usage(roots: list[int], tree: dict[int, list[int]] | None = None) -> Usage:
    """CPU of the live subtrees under `roots` (each process's own plus reaped time, once each)."""
    tree = children_map() if tree is None else tree
    pids = {pid for root in roots for pid in subtree(root, tree)}
    total = Usage()
    for pid in pids:
        total += process_usage(pid)
    return total


def live_children(pid: int | None = None) -> list[int]:
    """The live children of `pid` (default: this process)."""
    return children_map().get(os.getpid() if pid is None else pid, [])


def machine_busy() -> float:
    """CPU seconds every core of the machine has spent not idle since boot (/proc/stat's first line, proc(5))."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / TICK  # user nice system idle iowait irq softirq steal (guest is in user)
