"""The wire formats `execrl serve` speaks, as request models and reply builders (no HTTP here).

- OpenRLHF's remote reward model (openrlhf/utils/agent.py, `_fetch_rewards_via_http`; its own server is
  openrlhf/cli/serve_rm.py): POST `{"query": [...], "prompts": [...], "labels": [...]}` →
  `{"rewards": [...], "scores": [...], "extra_logs": {...}}`. `query` is the decoded prompt + response (decoded
  with its special tokens), `labels` the dataset's label column: here a task id or an inline problem.
- SandboxFusion's `/run_code` (sandbox/server/sandbox_api.py `RunCodeRequest`/`RunCodeResponse`,
  sandbox/runners/types.py `CommandRunResult`): `code`, `stdin`, `language`, `run_timeout`, `memory_limit_MB` →
  `status` (Success · Failed · SandboxError), `message`, `run_result` {status (Finished · TimeLimitExceeded ·
  Error), execution_time, return_code, stdout, stderr}. Python only.
- The native `/v1/execute`: a task id or an inline problem, plus whole programs or raw completions → our result
  records (`ExecResult.to_json()` with `task_id` and `completion_id`).
"""

from __future__ import annotations

import re
from typing import Any

from execrl.harness.records import ExecResult, Verdict
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

# Special tokens OpenRLHF leaves in `query` (it decodes with skip_special_tokens=False): <|im_end|>, </s>, ...
TRAILING_SPECIAL = re.compile(r"(?:\s*(?:<\|[^|<>\s]{1,40}\|>|</s>|<eos>|<pad>))+\s*$")
EXIT_STATUS = re.compile(r"^test 0: SystemExit: (-?\d+)\b")


class GetRewardRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenRLHF may add fields; the three below are its protocol

    query: list[StrictStr]
    prompts: list[StrictStr] | None = None
    labels: list[StrictStr | dict[str, Any]]

    @model_validator(mode="after")
    def _same_lengths(self) -> GetRewardRequest:
        if len(self.labels) != len(self.query) or (self.prompts is not None and len(self.prompts) != len(self.query)):
            raise ValueError("query, prompts and labels must have one entry per sample")
        return self


def response_text(query: str, prompt: str | None) -> str:
    """The model's response inside OpenRLHF's `query` (the prompt, then the response, then special tokens)."""
    text = query[len(prompt) :] if prompt and query.startswith(prompt) else query
    return TRAILING_SPECIAL.sub("", text)


def reward_reply(rewards: list[float | None], results: list[ExecResult]) -> dict[str, Any]:
    """OpenRLHF's reply; a sandbox error is `null` with `sandbox_error: 1`, never a plain 0."""
    return {
        "rewards": rewards,
        "scores": rewards,
        "extra_logs": {
            "pass": [float(r.passed) for r in results],
            "n_passed": [float(r.n_passed) for r in results],
            "sandbox_error": [float(r.verdict is Verdict.SANDBOX_ERROR) for r in results],
        },
        "verdicts": [r.verdict.value for r in results],
    }


class RunCodeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: StrictStr
    language: StrictStr
    stdin: StrictStr | None = None
    run_timeout: StrictFloat | StrictInt = Field(10, gt=0)
    compile_timeout: StrictFloat | StrictInt = Field(10, ge=0)
    """Accepted for compatibility; Python has no compile step."""
    memory_limit_MB: StrictInt = -1
    """-1: the server's limit."""
    files: dict[str, StrictStr | None] = {}
    fetch_files: list[StrictStr] = []


def run_code_reply(result: ExecResult) -> dict[str, Any]:
    """SandboxFusion's RunCodeResponse for one raw run (`TestOutcome.output` holds its stdout).

    `stderr` is the uncaught exception's traceback (the sandbox sends the program's own stderr nowhere);
    `return_code` is 0 for a clean end, SystemExit's code, 1 for an exception, -9 for a run killed at a limit.
    """
    test = result.tests[0] if result.tests else None
    stdout = (test.output if test is not None else None) or ""
    if result.verdict is Verdict.SANDBOX_ERROR:
        run = {"status": "Error", "execution_time": result.duration, "return_code": None, "stdout": stdout,
               "stderr": result.error}  # fmt: skip
        return _run_code_response("SandboxError", result.error, run)
    if result.verdict is Verdict.TIMEOUT:
        status, code = "TimeLimitExceeded", None
    elif result.verdict is Verdict.PASSED:
        status, code = "Finished", 0
    elif result.verdict in (Verdict.MEMORY_EXCEEDED, Verdict.OUTPUT_EXCEEDED):
        status, code = "Finished", -9
    else:
        match = EXIT_STATUS.match(result.error)
        status, code = "Finished", int(match.group(1)) if match else 1
    run = {"status": status, "execution_time": result.duration, "return_code": code, "stdout": stdout,
           "stderr": "" if result.passed else result.error}  # fmt: skip
    return _run_code_response("Success" if result.passed else "Failed", "", run)


def _run_code_response(status: str, message: str, run: dict[str, Any]) -> dict[str, Any]:
    return {"status": status, "message": message, "compile_result": None, "run_result": run,
            "executor_pod_name": None, "files": {}}  # fmt: skip


class ExecuteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: StrictStr | None = None
    problem: dict[str, Any] | None = None
    """An inline problem in the problem-file format."""
    programs: list[StrictStr] | None = None
    """Whole programs, run as given."""
    completions: list[StrictStr] | None = None
    """Raw model outputs, made into programs as `execrl generate` + `evaluate` do."""
    chat: StrictBool = False
    """The completions are chat replies (code in fences or prose)."""

    @model_validator(mode="after")
    def _one_of_each(self) -> ExecuteRequest:
        if (self.task_id is None) == (self.problem is None):
            raise ValueError("give exactly one of task_id and problem")
        if (self.programs is None) == (self.completions is None):
            raise ValueError("give exactly one of programs and completions")
        return self

    @property
    def texts(self) -> list[str]:
        return self.programs if self.programs is not None else self.completions  # type: ignore[return-value]


def execute_reply(task_id: str, results: list[ExecResult]) -> dict[str, Any]:
    return {"results": [{"task_id": task_id, "completion_id": i, **r.to_json()} for i, r in enumerate(results)]}
