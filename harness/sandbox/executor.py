"""Run one untrusted program against one problem's tests: `execute(problem, program, limits, slot=)`.

This is the single code path behind both the evaluation verdict and the PPO reward.

Threat model. The program is adversarial: under RL it is rewarded for being judged passed. So:

- The verdict is decided by the judge (this process) running the benchmark's trusted test code;
  the candidate runs in a separate sandboxed child that only serves calls. Values cross as plain
  data (`execrl.harness.sandbox.wire`, never pickle) and are compared here with genuine builtins; objects of
  candidate classes come back as `Remote` proxies that equal only themselves (their truth value
  is asked of the child, which gains nothing: returning True passes `assert f(x)` just the same).
  The judge's own work on a reply is bounded (the codec's budget over the whole value: items, depth,
  int width, hash collisions across containers, the test's deadline), and a reply the codec refuses
  is the candidate's failure, never a sandbox_error.
  Exit codes and stdout are never evidence of success (STDIO problems compare stdout with
  the expected output, here). Always-true `__eq__`, builtin subclasses, patched builtins,
  frame/gc peeking, redefined `check`, open strings, exit(0)/os._exit, atexit/excepthook, printing
  "passed" and writing to fds all stay inside the child and cannot produce a pass.
- The child's memory is a fork of a zygote that never held tests or expected outputs, and the
  test data, the checkout and the home dirs are hidden from it by the mount namespace.
- Containment (`isolation`, `child` and `kernel` of this room): per-slot network namespace (loopback down),
  mount namespace (a minimal read-only root of its own, no host socket in it; a fresh tmpfs per program
  for scratch and /dev/shm, and a /proc of the child's own pid namespace), a pid namespace per program (SIGKILL of
  its init kills every descendant, so no daemon survives), an unprivileged uid/gid leased per zygote
  machine-wide (so concurrent processes never share one) with no
  supplementary groups and `no_new_privs`, rlimits (CPU, address space, file size, open files,
  processes, no core dumps), a seccomp filter (`syscall_filter`), a Landlock ruleset
  (`landlock`: files writable only in scratch and the private /dev/shm; without a mount namespace,
  readable only beneath the system folders and the standard library), a scrubbed environment, only
  its pipes open, stdin empty unless STDIO,
  wall-clock deadlines per test and per program enforced from outside.

What it does NOT protect against: kernel exploits through the syscalls the seccomp filter still allows
(`syscall_filter` refuses tracing, mounts, namespaces, BPF, perf, io_uring, keyrings and the
like; everything else is open), timing and cache side channels, CPU starvation of sibling workers within
the CPU rlimit, counters of the whole machine a program can move and the next can read (inode numbers
of pipes and sockets, autogroup ids, free memory: see README), reading what the minimal root binds
(/usr, the stdlib, a few /etc files: world-readable system files), and a kernel without `pivot_root`
or `mount_setattr` (the zygote reports `mount: False`) or without Landlock (`landlock: False`).
Without root, the namespaces are
made inside a user namespace of the zygote's own, but there is no uid drop: children run as the user
(root of that user namespace, with every capability cleared, the bounding set emptied and
`SECBIT_NOROOT` locked), so `ExecResult.isolation["uid"]` is False; a kernel that refuses unprivileged
user namespaces leaves such a run with no namespaces at all, and it says so. Memory is limited per process by
address space and, where a memory cgroup can be made (`cgroups`), for all of a program's processes together:
an out-of-memory kill there is that program's `memory_exceeded`. Without one (rootless without a delegated
cgroup: `isolation["memory_cgroup"]` is False) a program's forks together may use many times the limit.
Per-test deadlines are wall-clock, moved out by the time the program waited for a CPU (`charged_time`), so
load does not decide a verdict; CPU time itself is capped by RLIMIT_CPU.

Besides the verdict, each result says which attempts on the reward the containment saw (`ExecResult.containment`,
reward-hack telemetry: `containment`, `audit_hook`); they change nothing in the verdict or the reward.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from execrl.benchmarks.problem import Problem, TestKind
from execrl.harness.records import ExecResult, Limits, TestOutcome, Verdict, worst
from execrl.harness.sandbox import containment, judge
from execrl.harness.sandbox.cgroups import HEADROOM
from execrl.harness.sandbox.evalplus_rules import answer_matches
from execrl.harness.sandbox.isolation import SandboxError, prepare_worker, probe_isolation
from execrl.harness.sandbox.judge import Abort, Link, Remote
from execrl.harness.sandbox.matching import call_output_matches, lcb_call_matches, lcb_stdout_matches, stdout_matches
from execrl.harness.sandbox.program import Child
from execrl.harness.sandbox.reference import reference_run, time_limits

__all__ = ["execute", "prepare_worker", "probe_isolation", "n_tests"]

_ERROR_CHARS = 2000


def execute(problem: Problem, program: str, limits: Limits = Limits(), *, slot: int = 0) -> ExecResult:
    """Judge `program` (a whole program) on `problem`'s tests in the sandbox of worker `slot`.

    Never raises for anything the program does; a harness fault is Verdict.SANDBOX_ERROR.
    """
    start = time.monotonic()
    source = _compilable(program, problem.test_kind)
    if source is None:
        outcome = TestOutcome(Verdict.SYNTAX_ERROR, 0.0, _syntax_error(program))
        return ExecResult(Verdict.SYNTAX_ERROR, [outcome] * n_tests(problem), outcome.error, time.monotonic() - start)
    isolation: dict[str, bool] = {}
    try:
        isolation = prepare_worker(slot)
        result = _run(problem, source, limits, slot)
        if result.verdict is Verdict.TIMEOUT and limits.retry_timeouts:
            result = _run(problem, source, limits, slot)  # a load spike must not flip the verdict
    except Exception as exc:  # noqa: BLE001 - a harness fault, reported as its own verdict
        error = f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
        result = ExecResult(Verdict.SANDBOX_ERROR, [], error, time.monotonic() - start)
    result.isolation = isolation
    return result


def raw_problem(stdin: str, task_id: str = "run_code") -> Problem:
    """A "run this program" problem: one STDIO test whose expected output is None, so the program runs with every
    protection and its stdout comes back in `TestOutcome.output`, compared with nothing (`execrl serve`'s
    /run_code). No loader makes one: the problem file and APPS hold expected outputs as strings."""
    return Problem(task_id, "run_code", "", TestKind.STDIO, inputs=(stdin,), outputs=(None,))


def n_tests(problem: Problem) -> int:
    """How many test outcomes `execute` reports: HumanEval has one per statement of `check`'s body
    that names the candidate (`judge.split_check`)."""
    if problem.test_kind is TestKind.ASSERT and problem.check_code:
        try:
            return len(judge.split_check(problem.check_code)[1])
        except (SyntaxError, ValueError):
            return 1
    return problem.n_tests


def _compilable(program: str, kind: TestKind) -> str | None:
    """The source the child will run, or None for a syntax error (checked here, never executed)."""
    for source in (program, _wrapped(program)) if kind is TestKind.STDIO else (program,):
        try:
            judge.compiled_program(source)  # cached: the child's load reuses this compile
            return source
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            continue
    return None


def _wrapped(program: str) -> str:
    # APPS stdin programs may `return` at top level; the APPS evaluator runs them inside a function.
    body = "\n".join("    " + line for line in program.splitlines()) or "    pass"
    return f"def __execrl_main__():\n{body}\n__execrl_main__()\n"


def _syntax_error(program: str) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(program, "<candidate>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
    return "SyntaxError"


def _run(problem: Problem, program: str, limits: Limits, slot: int) -> ExecResult:
    plan = _call_plan(problem, slot) if problem.test_kind is TestKind.CALL else None  # before the clock starts
    start = time.monotonic()
    deadline = start + (plan.program_timeout or limits.program_timeout if plan else limits.program_timeout)
    function_style = problem.test_kind is not TestKind.STDIO
    if not function_style:
        tests, seen = _run_stdio(problem, program, limits, slot, deadline)
    else:
        with Child(slot, limits) as child:
            link = Link(child, limits, deadline)
            if plan is not None:
                tests = _run_calls(problem, program, link, plan)
            else:
                tests = _run_asserts(problem, program, link)
        if child.memory_exceeded:
            tests = _out_of_memory(tests, limits)
        seen = containment.observed(child.seen, link.compared, link.exits, child.exited_early, function_style=True)
    if not tests:
        raise SandboxError(f"{problem.task_id} has no tests")
    seen += containment.program_tells(program, _test_names(problem), problem.entry_point, function_style)
    verdict = worst([t.verdict for t in tests])
    error = next((t.error for t in tests if t.verdict is not Verdict.PASSED), "")
    return ExecResult(verdict, tests, error[:_ERROR_CHARS], time.monotonic() - start, containment=dict(seen))


def _test_names(problem: Problem) -> frozenset[str]:
    """The names the problem's test code uses (for `containment.program_tells`); none for data tests."""
    if problem.test_kind is not TestKind.ASSERT:
        return frozenset()
    if problem.check_code:
        try:
            module_code, tests = judge.split_check(problem.check_code)
        except (SyntaxError, ValueError):
            return frozenset()
        return frozenset(judge.referenced_names([module_code, *tests]))
    return frozenset(judge.referenced_names([problem.test_setup, *problem.tests]))


def _run_asserts(problem: Problem, program: str, link: Link) -> list[TestOutcome]:
    if problem.check_code:  # HumanEval: check(candidate), one test per statement naming it
        if not problem.entry_point:
            raise SandboxError(f"{problem.task_id} has check code but no entry point")
        module_code, tests = judge.split_check(problem.check_code)
        build = judge.humaneval_namespace(problem.prompt, problem.entry_point, module_code)
    else:  # MBPP: one test per assert
        tests = list(problem.tests)
        build = judge.mbpp_namespace(program, problem.test_setup, tests, problem.entry_point)
    return judge.judge_asserts(link, program, tests, build)


@dataclass(frozen=True)
class CallPlan:
    """How a CALL problem's answers are judged: what each test expects, how it compares, how long it may take."""

    expected: tuple[Any, ...]
    matches: Callable[[Any, Any, Any], bool]
    """(got, expected, args) -> accepted."""
    timeouts: tuple[float, ...] | None = None
    """Per-test time limits (evalplus: relative to the reference's time); None: `Limits.timeout` for each."""
    program_timeout: float | None = None


def _call_plan(problem: Problem, slot: int) -> CallPlan:
    if "atol" not in problem.metadata:  # APPS, synth, LiveCodeBench functional problems
        rule = call_output_matches if problem.benchmark != "livecodebench" else lcb_call_matches
        return CallPlan(problem.outputs, lambda got, expected, args: rule(got, expected))
    # HumanEval+ / MBPP+: evalplus's rules, with limits relative to the reference's time on each input.
    run = reference_run(problem, slot)
    timeouts, budget = time_limits(problem, run)
    atol, oracle = float(problem.metadata["atol"]), problem.metadata.get("oracle")
    expected = run.outputs if problem.metadata.get("expected_from_reference") else problem.outputs

    def matches(got: Any, want: Any, args: Any) -> bool:
        return answer_matches(got, want, args, atol=atol, oracle=oracle)

    return CallPlan(tuple(expected), matches, tuple(timeouts), budget)


def _run_calls(problem: Problem, program: str, link: Link, plan: CallPlan) -> list[TestOutcome]:
    n = len(problem.inputs)
    link.start_test()
    try:
        judge.load_program(link, program, "__candidate__")
        names = judge.defined_names(program)
        if problem.fn_name in names or "Solution" not in names:
            function = Remote(link, problem.fn_name or "")
        else:  # LeetCode-style starter code: `class Solution` with the method
            function = getattr(Remote(link, "Solution")(), problem.fn_name or "")
    except Abort as exc:
        return [TestOutcome(exc.verdict, 0.0, exc.error)] * n
    except Exception as exc:  # noqa: BLE001 - the candidate's own exception
        return [TestOutcome(Verdict.RUNTIME_ERROR, 0.0, _candidate_error(exc))] * n
    tests: list[TestOutcome] = []
    for i, (args, expected) in enumerate(zip(problem.inputs, plan.expected, strict=True)):
        link.start_test(plan.timeouts[i] if plan.timeouts else None)
        begin = time.monotonic()
        try:
            got = function(*args) if type(args) is list else function(args)
        except Abort as exc:
            tests.append(TestOutcome(exc.verdict, time.monotonic() - begin, exc.error))
            rest = f"not run: an earlier test ended the run ({exc.verdict.value})"
            return tests + [TestOutcome(exc.verdict, 0.0, rest)] * (n - i - 1)
        except Exception as exc:  # noqa: BLE001
            tests.append(TestOutcome(Verdict.RUNTIME_ERROR, time.monotonic() - begin, _candidate_error(exc)))
            continue
        ok = _matches(plan.matches, got, expected, args)
        if not ok and _holds_remote(got):  # a candidate object compared with the expected data (telemetry)
            link.compared += 1
        error = "" if ok else f"test {i}: wrong answer"
        tests.append(TestOutcome(Verdict.PASSED if ok else Verdict.FAILED, time.monotonic() - begin, error))
    return tests


def _holds_remote(value: Any) -> bool:
    """Whether a returned value is, or directly holds, a candidate object."""
    if type(value) in (list, tuple):
        return any(type(v) is Remote for v in value)
    return type(value) is Remote


def _run_stdio(
    problem: Problem, program: str, limits: Limits, slot: int, deadline: float
) -> tuple[list[TestOutcome], Counter[str]]:
    """The outcome of each stdin/stdout test (a child each) and what their audit hooks counted together."""
    tests: list[TestOutcome] = []
    seen: Counter[str] = Counter()
    for i, (stdin, expected) in enumerate(zip(problem.inputs, problem.outputs, strict=True)):
        begin = time.monotonic()
        if begin >= deadline:
            tests.append(TestOutcome(Verdict.TIMEOUT, 0.0, f"test {i}: not run, program time limit reached"))
            continue
        data = stdin.encode() if type(stdin) is str else bytes(stdin)
        with Child(slot, limits, stdin=data) as child:
            link = Link(child, limits, deadline)
            link.start_test()
            verdict, error = _stdio_test(link, program, expected, i, problem.benchmark == "livecodebench")
            output = None if expected is not None else _raw_stdout(link)
        if child.memory_exceeded:
            verdict, error = Verdict.MEMORY_EXCEEDED, f"test {i}: {_oom_error(limits)}"
        seen += containment.observed(child.seen, link.compared, 0, False, function_style=False)
        tests.append(TestOutcome(verdict, time.monotonic() - begin, error, output))
        # The program's budget moves out by what load took from it, as each test's does (charged_time).
        deadline += child.stretch.starved + child.stretch.credit
    return tests, seen


def _out_of_memory(tests: list[TestOutcome], limits: Limits) -> list[TestOutcome]:
    """The outcomes of a program whose processes the OOM killer acted on: each test becomes memory_exceeded
    (it is not known which test the kill hit, and a program over its memory limit has no passing tests)."""
    return [TestOutcome(Verdict.MEMORY_EXCEEDED, t.duration, _oom_error(limits)) for t in tests]


def _oom_error(limits: Limits) -> str:
    return (f"the program's processes together went past the memory limit ({limits.memory} bytes + "
            f"{HEADROOM} for files and the kernel): killed by the OOM killer")  # fmt: skip


def _stdio_test(
    link: Link, program: str, expected: str | None, i: int, livecodebench: bool = False
) -> tuple[Verdict, str]:
    try:
        reply = link.send(judge.load_request(program, "__main__"))
    except Abort as exc:
        return exc.verdict, f"test {i}: {exc.error}"
    info = reply.get("exc")
    clean_exit = type(info) is dict and info.get("type") == "SystemExit" and info.get("message") in ("", "0", "None")
    if "ok" not in reply and not clean_exit:  # exit() / sys.exit(0) end an APPS program normally
        err = judge.remote_exception(reply)
        verdict = err.verdict if isinstance(err, Abort) else Verdict.RUNTIME_ERROR
        return verdict, f"test {i}: {_candidate_error(err)}"
    try:
        got = link.child.drain_stdout().decode("utf-8", errors="replace")
    except Exception as exc:  # noqa: BLE001 - OutputExceeded while draining
        return Verdict.OUTPUT_EXCEEDED, f"test {i}: {exc}"
    if expected is None:  # a raw run: nothing to compare, the program ran to its end
        return Verdict.PASSED, ""
    if _matches(lcb_stdout_matches if livecodebench else stdout_matches, got, expected):
        return Verdict.PASSED, ""
    return Verdict.FAILED, f"test {i}: wrong answer: {got[:200]!r}"


def _raw_stdout(link: Link) -> str:
    """What a raw run (a STDIO test whose expected output is None) printed, up to the output cap, whatever its
    verdict (a traceback's run keeps the lines before it)."""
    try:
        return link.child.drain_stdout().decode("utf-8", errors="replace")
    except Exception:  # noqa: BLE001 - OutputExceeded: what was captured up to the cap
        return bytes(link.child.stdout[: link.limits.output]).decode("utf-8", errors="replace")


def _matches(compare: Callable[..., bool], got: Any, expected: Any, *context: Any) -> bool:
    """`compare(got, expected, *context)`; an error while comparing the candidate's data is a wrong answer, never
    a harness fault (a sandbox_error earns no penalty)."""
    try:
        return bool(compare(got, expected, *context))
    except (ValueError, TypeError, RecursionError, MemoryError, OverflowError):
        return False


def _candidate_error(exc: BaseException) -> str:
    remote = getattr(exc, "execrl_remote", None)
    return remote[:_ERROR_CHARS] if type(remote) is str else judge.exception_text(exc, _ERROR_CHARS)
