"""The /proc and /sys sweep (state_sweep.py): its comparison against hand-made snapshots, then the sweep
itself on one worker, where a noisy program may move only what the whole machine shares."""

from __future__ import annotations

import pytest
from execrl.harness.sandbox.isolation import prepare_worker

from tests.harness.sandbox.adversarial_table import FULL_ISOLATION
from tests.harness.sandbox.state_sweep import MARGIN, differences, run_on_slot, sweep

SLOT = 8

MACHINE_WIDE = {
    "probe: inode of a new pipe (machine-wide)": "pipes, sockets and anonymous files take their inode numbers "
    "from one counter of the whole kernel (get_next_ino), which every process on the machine moves",
    "/proc/self/autogroup": "the autogroup id: one counter of the whole kernel that every setsid() on the "
    "machine moves (sched(7)); the file is per process, so no mount can hide it from its own process",
    "/proc/self/schedstat": "the reader's own CPU and wait time in ns, which the machine's load (and the "
    "caches a noisy program evicted) moves: a clock, like time itself",
    "/proc/self/sched": "the same clocks in another format",
}
"""What a noisy program may still move for the next one, and why: not state of a worker but of the whole
machine, which only a machine of its own per program would give back (see README, "What the sandbox does
not protect against")."""

SNAP = dict[str, str]


def pairs(*moves: tuple[str, str]) -> list[tuple[SNAP, SNAP]]:
    return [({"f": before}, {"f": after}) for before, after in moves]


COMPARISONS = [
    ("a counter only the noisy program moves", pairs(("n 5", "n 5"), ("n 7", "n 8")),
     pairs(("n 8", f"n {8 + 3 * MARGIN}"), ("n 400", f"n {400 + 3 * MARGIN}")), True),
    ("a clock both move alike", pairs(("t 100", "t 900"), ("t 900", "t 1700")),
     pairs(("t 1700", "t 2600"), ("t 2600", "t 3300")), False),
    ("a counter the noisy program moves only once (noise, not a mark)", pairs(("n 1", "n 1"), ("n 1", "n 1")),
     pairs(("n 1", f"n {1 + 3 * MARGIN}"), ("n 1", "n 1")), False),
    ("text that changes after every noisy program only", pairs(("a", "a"), ("a", "a")),
     pairs(("a", "b"), ("b", "c")), True),
    ("text that changes after quiet programs too", pairs(("a", "b"), ("b", "b")), pairs(("b", "c"), ("c", "d")),
     False),
]  # fmt: skip


@pytest.mark.parametrize(("quiet", "noisy", "reported"), [c[1:] for c in COMPARISONS], ids=[c[0] for c in COMPARISONS])
def test_differences_reports_only_what_the_noisy_program_moves_beyond_time(quiet, noisy, reported) -> None:
    assert ("f" in differences(quiet, noisy)) is reported


def test_differences_reports_a_file_that_appears_after_every_noisy_program() -> None:
    quiet = [({"a": "1"}, {"a": "1"})] * 2
    noisy = [({"a": "1"}, {"a": "1", "left": "x"})] * 2
    assert list(differences(quiet, noisy)) == ["left"]


def test_a_noisy_program_moves_nothing_in_proc_or_sys_for_the_next_beyond_the_machine_wide_counters() -> None:
    # Found by a red-team review: inode numbers on /dev/shm and network counters in /proc/net carried marks.
    # On the code before the fix this sweep reported 10 paths: pids (/proc/self, its stat, status and sched),
    # /proc/self/net/snmp, /proc/stat, /proc/softirqs, a cgroup's memory.stat under /sys, /dev/shm's inode
    # numbers, and the autogroup id.
    assert prepare_worker(SLOT) == FULL_ISOLATION
    found = sweep(run_on_slot(SLOT), rounds=3)
    assert {path: why for path, why in found.items() if path not in MACHINE_WIDE} == {}
