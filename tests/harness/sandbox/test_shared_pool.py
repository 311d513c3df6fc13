"""One warm pool per process: reused across calls, refused with other settings, and never shared with a fork."""

from __future__ import annotations

import os

import pytest
from execrl.benchmarks.errors import UserError
from execrl.benchmarks.problem_file import problem_from_row
from execrl.harness.sandbox.shared_pool import PoolSettings, close_shared, execute_shared, shared_pool

PROBLEM = problem_from_row({"task_id": "t", "prompt": "", "tests": ["assert f() == 1"], "entry_point": "f"})
SETTINGS = PoolSettings(workers=1)


@pytest.fixture(autouse=True)
def _closed_after():
    yield
    close_shared()


def test_the_pool_is_started_once_and_reused() -> None:
    first = shared_pool(SETTINGS)
    assert shared_pool(PoolSettings(workers=1)) is first
    assert [r.passed for r in execute_shared(SETTINGS, [PROBLEM] * 2, ["def f():\n    return 1\n", "x"])] == [
        True, False]  # fmt: skip
    with pytest.raises(UserError, match="one pool per process"):
        shared_pool(PoolSettings(workers=2))


def test_a_forked_child_starts_its_own_pool_and_leaves_the_parents_alone() -> None:
    parent = shared_pool(SETTINGS)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: must not get the parent's pool, and its own must work
        try:
            mine = shared_pool(SETTINGS)
            ok = mine is not parent and execute_shared(SETTINGS, [PROBLEM], ["def f():\n    return 1\n"])[0].passed
            os.write(write, b"1" if ok else b"0")
            close_shared()
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    assert shared_pool(SETTINGS) is parent
    assert execute_shared(SETTINGS, [PROBLEM], ["def f():\n    return 1\n"])[0].passed  # its workers still answer
