"""Deadlines that a busy machine does not shorten: a test's wall-clock budget, stretched by the time its
program spent waiting for a CPU.

Under load a program gets a share of a core, so a fixed wall-clock deadline turned verdicts into
`timeout` (a gradual memory bomb timed out before it reached its memory limit with both cores busy).
The time a test is charged is what the program used or chose to spend: CPU time, and time asleep or
blocked. Time spent runnable but not running (on the run queue, behind other processes) is not charged,
and the deadline moves out by it. Per process the kernel counts both in /proc/PID/schedstat (run time and
run-queue wait, in ns; Documentation/scheduler/sched-stats.rst). The wait read there is that of the
program's tasks (its cgroup's); CPU time is the whole slot's (`cgroups.SlotCgroup.cpu_ns`), so a program
whose own forks keep it waiting gains nothing: what it is credited is `min(the longest run-queue wait of one
of its tasks, wall time - CPU time of all its tasks)`. Without a cgroup nothing is credited (the caller
lists no tasks): the CPU of a program's other processes is then unknown, and a main task waiting behind its
own forks would look starved.

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

    def __init__(self, tasks: Callable[[], list[int]], cpu_ns: Callable[[], int]) -> None:
        self._tasks = tasks
        """The program's tasks (pids or thread ids here): its cgroup's; none without one (nothing is credited)."""
        self._cpu_ns = cpu_ns
        """CPU ns of all the program's processes, or -1 (then the listed tasks' own is used)."""
        self.deadline = -1.0
        self.credit = 0.0
        self.starved = 0.0
        """Seconds credited in earlier tests of this child (the program's deadline may move out by them)."""
        self._begin = 0.0
        self._base: tuple[float, dict[int, int], int] | None = None

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
        """Called at the effective deadline: True if the test's budget is spent, else it was extended.

        The wait credited is the longest any one task of the program waited (a task born since the first
        reading counts from its birth; one that ended is not counted): a program whose processes run in
        parallel loses wall time to load as its most-delayed task does.
        """
        if self._base is None or not self._base[1]:
            return True
        wall_now, waits, cpu_now = self._reading(now)
        if not waits:
            return True
        wall_then, waits_then, cpu_then = self._base
        wait = max(w - waits_then.get(tid, 0) for tid, w in waits.items())
        starved = max(0.0, min(wait / 1e9, (wall_now - wall_then) - (cpu_now - cpu_then) / 1e9))
        cap = (STRETCH_CAP - 1.0) * max(0.0, self.deadline - self._begin)
        credit = min(starved, cap)
        if credit < self.credit + _MIN_GAIN:
            return True
        self.credit = credit
        return now >= self.deadline + self.credit

    def _reading(self, now: float) -> tuple[float, dict[int, int], int]:
        """(now, {task: run-queue wait ns}, CPU ns of the program); no tasks if none could be read."""
        waits, run = {}, 0
        for tid in self._tasks():
            try:
                ran, waits[tid] = schedstat(tid)
            except (OSError, ValueError):  # ended since it was listed
                continue
            run += ran
        cpu = self._cpu_ns()
        return now, waits, run if cpu < 0 else cpu
