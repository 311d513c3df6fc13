"""Records of one program's run that cross stage boundaries: the `Verdict` Enum and its severity order,
the resource `Limits`, per-test `TestOutcome`s and the program's `ExecResult`.

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
        )


def worst(verdicts: list[Verdict]) -> Verdict:
    """The program verdict for a list of test verdicts (PASSED for an empty list is refused)."""
    if not verdicts:
        raise ValueError("no test verdicts")
    return min(verdicts, key=VERDICT_SEVERITY.index)
