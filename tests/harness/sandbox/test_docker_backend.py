"""The docker backend for real: HumanEval's references agree with the local backend, the adversarial table runs
through containers, and no container outlives its pool. The engine is started and the image built when missing
(`docker_setup`); the tests are skipped, with the reason, only when no engine can be started here."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest
from execrl.benchmarks.humaneval import load_humaneval
from execrl.harness.records import Verdict
from execrl.harness.sandbox.docker_backend import DOCKER_LABEL
from execrl.harness.sandbox.pool import Job, SandboxPool, execute_many

from tests.harness.sandbox.adversarial_table import ADD, ATTACKS, HONEST, LIMITS, STILL_WORKS, with_names
from tests.harness.sandbox.docker_setup import docker_image_or_skip

pytestmark = pytest.mark.docker

DOCKER_LIMITS = replace(LIMITS, timeout=3.0)
"""The table's limits with a longer deadline per test: in a container the slot has no cgroup of its own, so a test's
deadline is not stretched by the time it waited for a CPU (`charged_time`), and on a loaded machine a row would
end as a timeout before it did what it is there to do."""
MEMORY_LIMITS = replace(LIMITS, timeout=10.0, program_timeout=20.0)
"""For the rows that must reach the memory cap before their deadline (they end as soon as they reach it): at a load
of 20 on 2 cores, filling the cap took longer than 3 s."""
# Rows whose verdict differs under docker, and why. The program is still not judged passed (every row asserts it).
DOCKER_VERDICTS: dict[str, tuple[Verdict, str]] = {
    "files in scratch and /dev/shm (one mapped) plus forks under the limit": (
        Verdict.FAILED,
        "pivot_root is refused inside a container, so the zygote has no minimal root of its own and the program no "
        "private /dev/shm; Landlock's fallback rules then let it write its scratch dir only, its first write to "
        "/dev/shm fails, and the probe ends before it allocates anything: failed, not memory_exceeded",
    ),
}


def _pids(pool: SandboxPool) -> set[str]:
    return {str(worker.process.pid) for worker in pool._workers}


def _our_containers(pids: set[str]) -> list[str]:
    """The containers the workers `pids` started (a container is named after its worker's pid: other pools, such
    as another xdist worker's, run at the same time)."""
    listed = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label={DOCKER_LABEL}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [name for name in listed.stdout.split() if name and name.split("-")[2] in pids]


SHM_REASON = (
    "a POSIX semaphore lives in /dev/shm, which the program may write only in a root of the zygote's own: where the "
    "engine's runtime cannot pivot_root inside a container (this machine's nested dockerd), Landlock's fallback "
    "rules let it write its scratch dir only (README, the docker backend)"
)
NEEDS_PRIVATE_SHM = {
    "a multiprocessing pool (fork)": SHM_REASON,
    "a multiprocessing queue, pipe and lock (a POSIX semaphore in /dev/shm)": SHM_REASON,
}
"""Honest programs that fail in a container without a minimal root, and why (the README says so too)."""


@pytest.fixture(scope="module")
def image() -> str:
    return docker_image_or_skip()


@pytest.fixture(scope="module")
def table_results(image, tmp_path_factory) -> dict[int, object]:
    """Every row of the adversarial table through two containers at once (the rows are independent)."""
    data = tmp_path_factory.mktemp("data") / "secret.txt"
    data.write_text("the expected output")
    memory = {i for i, row in enumerate(ATTACKS) if row[3] is Verdict.MEMORY_EXCEEDED}
    jobs = [
        Job(i, problem, with_names(program, 9, str(data)), MEMORY_LIMITS if i in memory else None)
        for i, (_, problem, program, _) in enumerate(ATTACKS)
    ]
    # Then honest programs on the same containers: after every attack, the sandbox still judges right.
    jobs += [Job(("honest", i), ADD, HONEST[ADD.task_id]) for i in range(4)]
    jobs += [Job(("still works", name), ADD, program) for name, program in STILL_WORKS]
    with SandboxPool(2, DOCKER_LIMITS, backend="docker") as pool:
        return {job.key: result for job, result in pool.run(jobs)}


def test_humaneval_references_pass_in_containers_as_they_do_locally(image) -> None:
    problems = load_humaneval()[:24]
    programs = [p.program(p.solutions[0]) for p in problems]
    with SandboxPool(2, backend="docker") as pool:
        assert pool.isolation["docker"] is True
        pids = _pids(pool)
        assert len(_our_containers(pids)) == 2
        docker = execute_many(problems, programs, pool=pool)
    with SandboxPool(2) as local_pool:
        local = execute_many(problems, programs, pool=local_pool)
    assert [r.verdict for r in docker] == [r.verdict for r in local] == [Verdict.PASSED] * len(problems)
    assert [len(r.tests) for r in docker] == [len(r.tests) for r in local]
    assert _our_containers(pids) == []


@pytest.mark.parametrize("row", range(len(ATTACKS)), ids=[a[0] for a in ATTACKS])
def test_attack_is_not_judged_passed_in_a_container(table_results, row) -> None:
    name, _, _, expected = ATTACKS[row]
    result = table_results[row]
    expected = DOCKER_VERDICTS.get(name, (expected, ""))[0]
    assert not result.passed
    assert result.verdict is expected, result.error
    if expected is not Verdict.SYNTAX_ERROR:
        assert all(result.isolation.values()) and result.isolation["docker"], result.isolation


def test_honest_programs_still_pass_in_the_containers_after_the_attacks(table_results) -> None:
    honest = [r for key, r in table_results.items() if isinstance(key, tuple) and key[0] == "honest"]
    assert [r.verdict for r in honest] == [Verdict.PASSED] * 4, [r.error for r in honest]


@pytest.mark.parametrize("name", [row[0] for row in STILL_WORKS])
def test_what_the_containment_must_leave_working_works_in_a_container(table_results, name) -> None:
    result = table_results[("still works", name)]
    if name in NEEDS_PRIVATE_SHM:
        pytest.xfail(NEEDS_PRIVATE_SHM[name])
    assert result.passed, result.error


def test_no_container_outlives_the_pool_even_when_its_worker_is_killed(image) -> None:
    pool = SandboxPool(1, backend="docker")
    try:
        pids = _pids(pool)
        assert len(_our_containers(pids)) == 1
        pool._workers[0].process.kill()  # no clean-up runs in the worker: the container must end by itself
        pool._workers[0].process.join()
    finally:
        pool.close()
    for _ in range(40):
        if not _our_containers(pids):
            break
        subprocess.run(["sleep", "0.25"])
    assert _our_containers(pids) == []
