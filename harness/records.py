"""Records of one program's run that cross stage boundaries: the `Verdict` Enum and its severity order,
the `Containment` kinds, the resource `Limits`, per-test `TestOutcome`s and the program's `ExecResult`.

A `Result` line in `results.jsonl` is `ExecResult.to_json()` plus `task_id` and `completion_id`. Samples
(the programs) are `execrl.harness.samples`; problems are `execrl.benchmarks.problem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Verdict(str, Enum):
    """How one program (or one of its tests) ended. Error text is a separate field."""

    PASSED = "passed"
    FAILED = "failed"
    SYNTAX_ERROR = "syntax_error"
    RUNTIME_ERROR = "runtime_error"
    TIMEOUT = "timeout"
    MEMORY_EXCEEDED = "memory_exceeded"
    OUTPUT_EXCEEDED = "output_exceeded"
    SANDBOX_ERROR = "sandbox_error"


class Containment(str, Enum):
    """A kind of attempt on the reward the sandbox saw and neutralised (reward-hack telemetry, issue 16).

    Each is something an honest program has no reason to do; resource limits hit (timeouts, memory, output)
    are never one. How each is observed, and what is not: `execrl.harness.sandbox.containment` and the README.
    """

    OPAQUE_ANSWER = "opaque_answer"
    """The test compared an answer that came back as an opaque handle, an object of a candidate class that
    defines `__eq__`/`__ne__` (the always-true `__eq__` family, rigged builtin subclasses), with plain data."""
    EARLY_EXIT = "early_exit"
    """A function-style program (assert or call tests) exited while the judge was calling it (`sys.exit`,
    `os._exit`, `exit()`), or set up an exit hook (`atexit.register`, `sys.excepthook`)."""
    PATCHED_CHECK = "patched_check"
    """The program rebinds `builtins`, `sys.modules`, an attribute of a module the tests use, or a builtin the
    tests use (`math.isclose = ...`, `def abs`)."""
    FS_ESCAPE = "fs_escape"
    """The program opened or listed a path outside what the sandbox gives it (the host's checkout, home, data
    dirs, /opt..., the zygote's procfs, another process's environ) or opened one for writing outside /tmp and
    /dev."""
    NETWORK = "network"
    """A socket of any family but AF_UNIX, a name lookup, or a unix socket outside /tmp (or abstract)."""
    REFUSED_SYSCALL = "refused_syscall"
    """The program looked up a libc wrapper of a syscall the seccomp filter refuses (ptrace, unshare, mount,
    keyctl...) or ran a tool that makes them (unshare, nsenter, mount, gdb...)."""
    INTROSPECTION = "introspection"
    """Garbage-collector walks (`gc.get_objects`, `get_referrers`), tracing hooks, or `sys._getframe` reaching
    the sandbox's own frames above the program's."""


# When tests end differently, the program's verdict is the worst one in this order
# (a sandbox fault first: it says nothing about the program).
VERDICT_SEVERITY: tuple[Verdict, ...] = (
    Verdict.SANDBOX_ERROR,
    Verdict.SYNTAX_ERROR,
    Verdict.MEMORY_EXCEEDED,
    Verdict.OUTPUT_EXCEEDED,
    Verdict.TIMEOUT,
    Verdict.RUNTIME_ERROR,
    Verdict.FAILED,
    Verdict.PASSED,
)


@dataclass(frozen=True)
class Limits:
    """Resource limits for one program. Times in seconds, sizes in bytes."""

    timeout: float = 3.0
    """Wall-clock limit per test."""
    program_timeout: float = 20.0
    """Wall-clock limit for the whole program, all tests together."""
    memory: int = 2 * 1024**3
    """Address-space limit per process (RLIMIT_AS), and the limit of all of a program's processes together
    (plus `cgroups.HEADROOM`) where the sandbox has a memory cgroup."""
    output: int = 1024**2
    """Cap on captured stdout + stderr; past it the run ends as output_exceeded."""
    file_size: int = 16 * 1024**2
    """Largest file the program may write (RLIMIT_FSIZE)."""
    open_files: int = 64
    processes: int = 32
    """RLIMIT_NPROC for the sandbox user (each worker slot has its own uid), and the cap on the program's tasks
    (threads included) where the sandbox has a pids cgroup."""
    retry_timeouts: bool = True
    """Run a program that timed out once more before the timeout counts (load spikes)."""


@dataclass
class TestOutcome:
    verdict: Verdict
    duration: float = 0.0
    error: str = ""
    output: str | None = None
    """A raw run's stdout (a STDIO test with no expected output: `execrl serve`'s /run_code); None otherwise."""

    def to_json(self) -> dict[str, Any]:
        row = {"verdict": self.verdict.value, "duration": round(self.duration, 6), "error": self.error}
        return row if self.output is None else {**row, "output": self.output}


@dataclass
class ExecResult:
    verdict: Verdict
    tests: list[TestOutcome] = field(default_factory=list)
    error: str = ""
    """Truncated error text (traceback tail, first failing assert)."""
    duration: float = 0.0
    """Wall-clock seconds for the whole program, retries excluded."""
    isolation: dict[str, bool] = field(default_factory=dict)
    """Which protections were in force, e.g. {"net": True, "pid": True, "mount": True, "uid": True}."""
    containment: dict[str, int] = field(default_factory=dict)
    """What the containment saw: `Containment` value -> count of events; empty for an honest program."""

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASSED

    @property
    def n_passed(self) -> int:
        return sum(t.verdict is Verdict.PASSED for t in self.tests)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "verdict": self.verdict.value,
            "n_tests": len(self.tests),
            "n_passed": self.n_passed,
            "tests": [t.to_json() for t in self.tests],
            "error": self.error,
            "duration": round(self.duration, 6),
            "isolation": self.isolation,
            "containment": self.containment,
        }

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> ExecResult:
        return cls(
            verdict=Verdict(row["verdict"]),
            tests=[
                TestOutcome(Verdict(t["verdict"]), t.get("duration", 0.0), t.get("error", "")) for t in row["tests"]
            ],
            error=row.get("error", ""),
            duration=row.get("duration", 0.0),
            isolation=row.get("isolation", {}),
            containment=row.get("containment", {}),  # absent in results files written before issue 16
        )


def worst(verdicts: list[Verdict]) -> Verdict:
    """The program verdict for a list of test verdicts (PASSED for an empty list is refused)."""
    if not verdicts:
        raise ValueError("no test verdicts")
    return min(verdicts, key=VERDICT_SEVERITY.index)
