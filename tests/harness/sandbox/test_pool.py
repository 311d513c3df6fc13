"""SandboxPool mechanics (ordering, caching, dead and hung workers) against a scripted stand-in executor,
and the real sandbox through `execute_many` when it is present."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path

import pytest
from execrl.benchmarks.problem import Problem, TestKind
from execrl.harness.records import ExecResult, Limits, Verdict
from execrl.harness.sandbox import pool as pool_module
from execrl.harness.sandbox.charged_time import STRETCH_CAP
from execrl.harness.sandbox.pool import Job, SandboxPool, execute_many

from tests.builders import assert_problem, call_problem


def _problem(task_id: str = "t/0") -> Problem:
    return Problem(task_id=task_id, benchmark="synth", prompt="", test_kind=TestKind.CALL, entry_point="f")


def _scripted_execute(problem: Problem, program: str, limits: Limits = Limits(), *, slot: int = 0) -> ExecResult:
    """Programs are scripts for the stand-in: 'ok', 'fail', 'die' (worker exits), 'sleep:S', 'raise'."""
    if program == "die":
        os._exit(7)
    if program == "raise":
        raise OSError("stand-in harness fault")
    if program.startswith("sleep:"):
        time.sleep(float(program.split(":")[1]))
    verdict = Verdict.FAILED if program == "fail" else Verdict.PASSED
    # The error field reports which worker ran it and the problems it has been sent, for the assertions.
    return ExecResult(verdict, error=f"{os.getpid()} {problem.task_id}")


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install the stand-in as execrl.harness.sandbox.executor; forked workers inherit it."""
    fake = types.ModuleType("execrl.harness.sandbox.executor")
    fake.execute = _scripted_execute
    fake.prepare_worker = lambda slot, hidden=(): {"net": True, "pid": slot == 0}
    monkeypatch.setitem(sys.modules, "execrl.harness.sandbox.executor", fake)
    import execrl.harness.sandbox as sandbox

    monkeypatch.setattr(sandbox, "executor", fake, raising=False)


def test_results_cover_every_job_once_and_execute_many_keeps_input_order(scripted: None) -> None:
    programs = ["ok", "fail"] * 20
    with SandboxPool(workers=2) as pool:
        seen = [job.key for job, _ in pool.run(Job(i, _problem(), p) for i, p in enumerate(programs))]
        results = execute_many([_problem()] * len(programs), programs, pool=pool)
    assert sorted(seen) == list(range(len(programs)))
    assert [r.verdict for r in results] == [Verdict.PASSED if p == "ok" else Verdict.FAILED for p in programs]


def test_isolation_is_a_protection_only_when_every_worker_reports_it(scripted: None) -> None:
    with SandboxPool(workers=2) as pool:
        assert pool.isolation == {"net": True, "pid": False}


def test_a_worker_that_dies_fails_only_its_job_and_is_restarted(scripted: None) -> None:
    programs = ["ok"] * 6 + ["die"] + ["ok"] * 6
    with SandboxPool(workers=2) as pool:
        pids_before = {w.process.pid for w in pool._workers}
        results = execute_many([_problem()] * len(programs), programs, pool=pool)
        pids_after = {w.process.pid for w in pool._workers}
    assert results[6].verdict is Verdict.SANDBOX_ERROR
    assert "died" in results[6].error and "exit code 7" in results[6].error
    assert all(r.verdict is Verdict.PASSED for i, r in enumerate(results) if i != 6)
    assert len(pids_before & pids_after) == 1, "exactly one worker was replaced"


def test_a_worker_found_dead_when_fed_is_replaced_and_its_new_job_still_runs(scripted: None) -> None:
    with SandboxPool(workers=1) as pool:
        dead = pool._workers[0].process
        dead.kill()
        dead.join()  # its pipe is closed: the next send fails before any sentinel is waited on
        results = execute_many([_problem()] * 3, ["ok", "fail", "ok"], pool=pool)
        assert pool._workers[0].process.pid != dead.pid
    assert [r.verdict for r in results] == [Verdict.PASSED, Verdict.FAILED, Verdict.PASSED]


def test_a_harness_exception_is_a_sandbox_error_not_a_crash(scripted: None) -> None:
    results = execute_many([_problem()] * 3, ["ok", "raise", "ok"], workers=1)
    assert [r.verdict for r in results] == [Verdict.PASSED, Verdict.SANDBOX_ERROR, Verdict.PASSED]
    assert "stand-in harness fault" in results[1].error


def test_a_hung_worker_is_killed_after_the_outer_deadline(scripted: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "_deadline", lambda limits: 0.5)
    results = execute_many([_problem()] * 3, ["ok", "sleep:30", "ok"], workers=1)
    assert [r.verdict for r in results] == [Verdict.PASSED, Verdict.SANDBOX_ERROR, Verdict.PASSED]
    assert "did not answer" in results[1].error


@pytest.mark.parametrize("limits", [Limits(), Limits(retry_timeouts=False), Limits(timeout=1.0, program_timeout=6.0)])
def test_the_outer_deadline_outlasts_the_longest_run_the_executor_allows(limits: Limits) -> None:
    # Found by a red-team review: test deadlines stretch by the program's run-queue wait (charged_time), up to
    # STRETCH_CAP times, so a STDIO program pinned to a busy core at nice 19 ran 137 s under the default limits
    # and the pool killed it at 100 s: a sandbox_error, which earns no penalty, instead of its timeout.
    runs = 2 if limits.retry_timeouts else 1
    assert pool_module._deadline(limits) > runs * STRETCH_CAP * limits.program_timeout


def test_a_job_with_limits_of_its_own_is_given_their_outer_deadline(scripted: None, monkeypatch) -> None:
    # Found by a red-team review: the outer deadline came from the pool's limits only, so a job run under
    # longer limits of its own (timeout calibration runs every reference under program_timeout=300 s in a pool
    # whose limits give 100 s) was killed while the executor still had time for it: a sandbox_error.
    monkeypatch.setattr(pool_module, "_deadline", lambda limits: limits.program_timeout)
    jobs = [Job(0, _problem(), "sleep:1.5", Limits(program_timeout=30.0)), Job(1, _problem(), "sleep:30")]
    with SandboxPool(workers=1, limits=Limits(program_timeout=0.5)) as pool:
        verdicts = {job.key: result.verdict for job, result in pool.run(jobs)}
    assert verdicts == {0: Verdict.PASSED, 1: Verdict.SANDBOX_ERROR}


def test_each_problem_crosses_to_a_worker_once(scripted: None, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[bool] = []
    original = pool_module.SandboxPool._send

    def counting_send(self: SandboxPool, worker: object, job: Job) -> None:
        sent.append(job.problem.task_id not in worker.cached)  # type: ignore[attr-defined]
        original(self, worker, job)

    monkeypatch.setattr(pool_module.SandboxPool, "_send", counting_send)
    problems = [_problem(f"t/{i % 3}") for i in range(30)]
    results = execute_many(problems, ["ok"] * 30, workers=1)
    assert sum(sent) == 3
    assert [r.error.split()[1] for r in results] == [p.task_id for p in problems]


def test_an_abandoned_run_does_not_leak_results_into_the_next(scripted: None) -> None:
    with SandboxPool(workers=2) as pool:
        stream = pool.run(Job(i, _problem(), "sleep:0.05") for i in range(10))
        next(stream)
        stream.close()
        later = [job.key for job, _ in pool.run(Job(f"b{i}", _problem(), "ok") for i in range(4))]
    assert sorted(later) == ["b0", "b1", "b2", "b3"]


def test_in_flight_jobs_stay_bounded_while_streaming(scripted: None) -> None:
    pulled = 0

    def jobs():
        nonlocal pulled
        for i in range(200):
            pulled += 1
            yield Job(i, _problem(), "ok")

    with SandboxPool(workers=2, depth=2) as pool:
        for done, _ in enumerate(pool.run(jobs()), start=1):
            assert pulled - done <= 2 * 2 + 1


def test_unknown_backend_is_refused_before_any_worker_starts() -> None:
    with pytest.raises(ValueError, match="unknown backend 'vm'"):
        SandboxPool(workers=1, backend="vm")


def _hello_problem() -> Problem:
    return call_problem("t/hello", "f", [[2]], [4])


@pytest.mark.parametrize("backend", ["local", "subprocess"], ids=["warm forked workers", "fresh interpreter each"])
def test_backends_agree_on_a_right_and_a_wrong_program(backend: str) -> None:
    right, wrong = "def f(x):\n    return x * 2\n", "def f(x):\n    return x + 3\n"
    with SandboxPool(workers=1, backend=backend) as pool:
        results = execute_many([_hello_problem()] * 2, [right, wrong], pool=pool)
    assert [r.verdict for r in results] == [Verdict.PASSED, Verdict.FAILED]


@pytest.fixture
def world_readable_secret():
    # Beneath /usr, which Landlock lets programs read, and outside /tmp, /root and the checkout, which the
    # sandbox hides anyway: a folder only `hidden` can cover.
    share = "/usr/local/share"
    folder = Path(tempfile.mkdtemp(prefix="execrl-hidden-test-", dir=share if os.access(share, os.W_OK) else None))
    folder.chmod(0o755)
    secret = folder / "answers.txt"
    secret.write_text("SECRET-EXPECTED-OUTPUT")
    secret.chmod(0o644)
    yield secret
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("hide", [False, True], ids=["control: readable when not hidden", "hidden data dir"])
def test_pool_hides_the_data_dir_from_candidates(world_readable_secret: Path, hide: bool) -> None:
    if str(world_readable_secret).startswith("/tmp"):
        pytest.skip("/usr/local/share is not writable here, and /tmp is hidden from candidates anyway")
    problem = call_problem("t/0", "f", [[]], ["SECRET-EXPECTED-OUTPUT"])
    program = f"def f():\n    return open({str(world_readable_secret)!r}).read()\n"
    hidden = [world_readable_secret.parent] if hide else []
    with SandboxPool(1, hidden=hidden) as pool:
        [result] = execute_many([problem], [program], pool=pool)
    assert result.passed is (not hide), result.error


def test_two_problems_with_one_task_id_are_never_confused_by_the_worker_cache() -> None:
    # MBPP full and sanitized share task ids with different tests; one pool may serve both.
    def problem(expected: int) -> Problem:
        return assert_problem("Mbpp/1", "f", [f"assert f() == {expected}"])

    one, two = problem(1), problem(2)
    with SandboxPool(1) as pool:
        results = execute_many([one, two, one, two], ["def f():\n    return 1\n"] * 4, pool=pool)
    assert [r.passed for r in results] == [True, False, True, False]


def test_a_backend_that_cannot_start_is_a_user_error_naming_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from execrl.benchmarks.errors import UserError

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("no engine here")

    monkeypatch.setattr(pool_module, "open_backend", refuse)  # forked workers inherit it
    with pytest.raises(UserError, match="failed to start: .*no engine here"):
        SandboxPool(workers=1)
