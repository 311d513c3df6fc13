"""Deadlines that a busy machine does not shorten: a test's wall-clock budget, stretched by the time its
program spent waiting for a CPU.

Under load a program gets a share of a core, so a fixed wall-clock deadline turned verdicts into
`timeout` (a gradual memory bomb timed out before it reached its memory limit with both cores busy).
The time a test is charged is what the program used or chose to spend: CPU time, and time asleep or
blocked. Time spent runnable but not running (on the run queue, behind other processes) is not charged,
and the deadline moves out by it. Per process the kernel counts both in /proc/PID/schedstat (run time and
run-queue wait, in ns; Documentation/scheduler/sched-stats.rst). The wait read there is the program's
main process; CPU time is the whole slot's (`cgroups.SlotCgroup.cpu_ns`), so a program whose own forks
keep its main process waiting gains nothing: what it is credited is
`min(main's run-queue wait, wall time - CPU time of all its processes)`.

A test that ends within `PROBE_AFTER` (nearly all of them) costs nothing: the counters are read only once a
test has run that long, and again when its deadline passes. The wall clock stays an outer bound:
`STRETCH_CAP` times the budget. Stdlib only.
"""

from __future__ import annotations

from collections.abc import Callable

PROBE_AFTER = 0.05
"""Seconds into a test before the first reading (starvation before it is not credited)."""
STRETCH_CAP = 10.0
"""A test never waits more than this many times its wall-clock budget."""
_MIN_GAIN = 0.001


def schedstat(pid: int) -> tuple[int, int]:
    """(ns on a CPU, ns waiting on a run queue) of process `pid`; OSError if it cannot be read."""
    with open(f"/proc/{pid}/schedstat") as f:
        run, wait, _ = f.read().split()
    return int(run), int(wait)


class Stretch:
    """The effective deadline of the current test of one child.

    The judge passes one deadline per test (every request of a test carries the same value), so a new value
    starts a new budget; the credit earned under a value carries across that test's requests.
    """

    def __init__(self, pid: Callable[[], int], cpu_ns: Callable[[], int]) -> None:
        self._pid = pid
        """The main process's pid here, found when first needed (0: unknown)."""
        self._cpu_ns = cpu_ns
        """CPU ns of all the program's processes, or -1 (then the main process's own is used)."""
        self.deadline = -1.0
        self.credit = 0.0
        self.starved = 0.0
        """Seconds credited in earlier tests of this child (the program's deadline may move out by them)."""
        self._begin = 0.0
        self._base: tuple[float, int, int] | None = None

    def effective(self, deadline: float, now: float) -> float:
        """When the test whose judge-side deadline is `deadline` times out, as far as is known at `now`."""
        if deadline != self.deadline:
            self.starved += self.credit
            self.deadline, self.credit, self._begin, self._base = deadline, 0.0, now, None
        return deadline + self.credit

    def wake_by(self, now: float) -> float:
        """The latest time to look again (to take the first reading), or infinity."""
        return self._begin + PROBE_AFTER if self._base is None else float("inf")

    def observe(self, now: float) -> None:
        """Take the first reading once the test has run `PROBE_AFTER`."""
        if self._base is None and now >= self._begin + PROBE_AFTER:
            self._base = self._reading(now)

    def expired(self, now: float) -> bool:
        """Called at the effective deadline: True if the test's budget is spent, else it was extended."""
        if self._base is None or self._base[1] < 0:
            return True
        reading = self._reading(now)
        if reading[1] < 0:
            return True
        wall, wait, cpu = (reading[i] - self._base[i] for i in range(3))
        starved = max(0.0, min(wait / 1e9, wall - cpu / 1e9))
        cap = (STRETCH_CAP - 1.0) * max(0.0, self.deadline - self._begin)
        credit = min(starved, cap)
        if credit < self.credit + _MIN_GAIN:
            return True
        self.credit = credit
        return now >= self.deadline + self.credit

    def _reading(self, now: float) -> tuple[float, int, int]:
        """(now, main's run-queue wait ns, CPU ns of the program); wait -1 if unreadable."""
        pid = self._pid()
        try:
            run, wait = schedstat(pid) if pid > 0 else (-1, -1)
        except (OSError, ValueError):
            return now, -1, -1
        cpu = self._cpu_ns()
        return now, wait, run if cpu < 0 else cpu
