"""Our sandbox verdict as the reward of other RL stacks, in the signatures they call. Torch-free: importing this
module loads no model code, so a TRL or veRL process pays only for the sandbox.

- `trl_reward(reward)`: a reward function for TRL's `GRPOTrainer(reward_funcs=[...])`, called by TRL as
  `f(prompts=, completions=, completion_ids=, **columns)` with every other dataset column as a keyword list
  (trl/trainer/grpo_trainer.py, `_calculate_rewards`): a `task_id` column (any benchmark execrl loads), or inline
  tests in the problem-file format (`tests` | `stdio` | `calls`, with `entry_point`, `fn_name`, `setup` ...).
  Completions are plain strings or conversations (lists of `{"role", "content"}` messages). It returns one
  `float | None` per completion; None (a sandbox error, which says nothing about the program) is TRL's "no
  reward" (it becomes NaN and is left out of the group's mean). `trl_reward(..., asynchronous=True)` is the
  `async def` form, which TRL runs on its event loop in parallel with other async reward functions.
- `verl_compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs)`: veRL's
  `compute_score` contract (verl/utils/reward_score/__init__.py, `default_compute_score`; the reward manager
  keeps every key of a returned dict as `reward_extra_info`): `{"score": float, "verdict", "passed", "n_tests",
  "n_passed", "sandbox_error"}`. `ground_truth` is a task id, an inline problem (a problem-file row, or veRL's
  own `{"inputs", "outputs", "fn_name"?}` test cases as its APPS/codecontests preprocessing stores them), either
  as a mapping or its JSON text. `verl_compute_score_batch` is the batch form of veRL's `BatchRewardManager`.

Both run through one warm sandbox pool per process (`execrl.harness.sandbox.shared_pool`), started on first use
and closed at exit; the reward is a function of `execrl.trainers.rewards.REWARDS`, named by `reward`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from execrl.benchmarks.datafiles import DataError
from execrl.benchmarks.errors import UserError
from execrl.benchmarks.problem import Problem
from execrl.benchmarks.problem_file import ROW_FIELDS, TEST_FORMS
from execrl.benchmarks.registry import default_data_dir
from execrl.harness.problem_lookup import ProblemLookup, program_for
from execrl.harness.records import ExecResult, Limits, Verdict
from execrl.harness.sandbox.executor import n_tests
from execrl.harness.sandbox.shared_pool import PoolSettings, execute_shared
from execrl.trainers.rewards import REWARDS

COMPLETION_STYLE_COLUMN = "completion_style"
"""TRL keeps a column named `completion` for itself, so a problem-file row's `completion` style comes in this one."""


def _settings(sandbox: str, workers: int | None, timeout: float | None, data_dir: str | Path | None) -> PoolSettings:
    limits = Limits() if timeout is None else replace(Limits(), timeout=timeout)
    return PoolSettings(workers, limits, sandbox, (str(Path(data_dir).resolve()),) if data_dir else ())


def _reward_fn(reward: str) -> Callable[..., list[float | None]]:
    if reward not in REWARDS:
        raise UserError(f"unknown reward {reward!r}; choose one of {', '.join(REWARDS)}")
    return REWARDS[reward]


def _text(message_or_text: Any) -> tuple[str, bool]:
    """(text, chat) of one TRL prompt or completion: a string, or a conversation whose last message is taken."""
    if isinstance(message_or_text, str):
        return message_or_text, False
    if isinstance(message_or_text, Sequence) and message_or_text and isinstance(message_or_text[-1], Mapping):
        content = message_or_text[-1].get("content", "")
        if isinstance(content, list):  # content blocks: [{"type": "text", "text": ...}]
            content = "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
        return str(content), True
    raise DataError(f"expected a string or a list of {{'role', 'content'}} messages, got {type(message_or_text)}")


def _row_spec(columns: Mapping[str, Sequence[Any]], i: int) -> Any:
    """Row `i`'s problem: its inline tests when it has any, else its task id."""
    row = {key: columns[key][i] for key in ROW_FIELDS if key in columns and key != "prompt"}
    if COMPLETION_STYLE_COLUMN in columns:
        row["completion"] = columns[COMPLETION_STYLE_COLUMN][i]
    if any(row.get(form) is not None for form in TEST_FORMS):
        return row
    if row.get("task_id") is not None:
        return row["task_id"]
    raise DataError(
        f"row {i}: no problem: give the dataset a task_id column (e.g. HumanEval/0) or inline tests "
        f"({', '.join(TEST_FORMS)}) in the problem-file format"
    )


def score_batch(
    settings: PoolSettings,
    reward: str,
    problems: Sequence[Problem],
    outputs: Sequence[str],
    chats: Sequence[bool],
) -> tuple[list[float | None], list[ExecResult]]:
    """Rewards and results of raw model `outputs` for `problems`, through the process's warm pool."""
    programs = [program_for(p, o, chat=c) for p, o, c in zip(problems, outputs, chats, strict=True)]
    results = execute_shared(settings, problems, programs)
    return _reward_fn(reward)(problems, programs, results), results


class TrlReward:
    """A TRL reward function (made by `trl_reward`): a picklable callable, named for TRL's logs by `__name__`."""

    def __init__(self, reward: str, settings: PoolSettings, data_dir: str | Path | None, name: str) -> None:
        self.reward, self.settings, self.lookup = reward, settings, ProblemLookup(data_dir)
        self.__name__ = name  # TRL logs a reward function by its __name__ (trl/trainer/utils.py, get_callable_name)

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], completion_ids: Any = None, **kwargs: Any
    ) -> list[float | None]:
        problems = [
            self.lookup.resolve(_row_spec(kwargs, i), f"row {i}", prompt=_text(prompt)[0])
            for i, prompt in enumerate(prompts)
        ]
        outputs, chats = zip(*(_text(c) for c in completions), strict=True) if completions else ((), ())
        rewards, results = score_batch(self.settings, self.reward, problems, outputs, chats)
        # TRL hands a reward function these two hooks (GRPOTrainer._log_metric / _log_completion_extra).
        if callable(kwargs.get("log_metric")):
            kwargs["log_metric"]("execrl/pass_rate", sum(r.passed for r in results) / max(len(results), 1))
            kwargs["log_metric"]("execrl/sandbox_errors", sum(r.verdict is Verdict.SANDBOX_ERROR for r in results))
        if callable(kwargs.get("log_extra")):
            kwargs["log_extra"]("verdict", [r.verdict.value for r in results])
        return rewards


class AsyncTrlReward(TrlReward):
    """The `async` form: TRL runs async reward functions together on its event loop (`asyncio.gather`)."""

    async def __call__(  # type: ignore[override]
        self, prompts: Sequence[Any], completions: Sequence[Any], completion_ids: Any = None, **kwargs: Any
    ) -> list[float | None]:
        # The pool blocks on its pipes; a thread keeps TRL's event loop free for the other reward functions.
        return await asyncio.to_thread(TrlReward.__call__, self, prompts, completions, completion_ids, **kwargs)


def trl_reward(
    reward: str = "binary",
    *,
    sandbox: str = "local",
    workers: int | None = None,
    timeout: float | None = None,
    data_dir: str | Path | None = None,
    asynchronous: bool = False,
    name: str | None = None,
) -> TrlReward:
    """A TRL reward function scoring each completion by its sandbox verdict (`reward`: a key of REWARDS).

    `sandbox`/`workers`/`timeout` set up the process's pool; `data_dir` holds MBPP/APPS for task ids (default:
    $EXECRL_DATA_DIR), hidden from the candidates. `name` is what TRL logs (`rewards/<name>/mean`).
    """
    _reward_fn(reward)
    data_dir = data_dir or default_data_dir()
    settings = _settings(sandbox, workers, timeout, data_dir)
    return (AsyncTrlReward if asynchronous else TrlReward)(reward, settings, data_dir, name or f"execrl_{reward}")


def _ground_truth_spec(ground_truth: Any, extra_info: Mapping[str, Any] | None) -> Any:
    """A ProblemLookup spec from veRL's ground truth: a task id, a problem-file row, or `{"inputs", "outputs"}`."""
    spec = ground_truth
    if isinstance(spec, str) and spec.lstrip().startswith("{"):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as error:
            raise DataError(f"ground_truth: not valid JSON ({error})") from None
    if isinstance(spec, Mapping) and "inputs" in spec and "outputs" in spec and not any(f in spec for f in TEST_FORMS):
        # veRL's code datasets (prime_code, sandbox_fusion): parallel lists of stdin/stdout or of call arguments.
        inputs, outputs = list(spec["inputs"]), list(spec["outputs"])
        if len(inputs) != len(outputs):
            raise DataError(f"ground_truth: {len(inputs)} inputs but {len(outputs)} outputs")
        pairs = zip(inputs, outputs, strict=True)
        row: dict[str, Any] = {"task_id": str((extra_info or {}).get("task_id", "verl"))}
        if spec.get("fn_name"):
            row["fn_name"] = spec["fn_name"]
            row["calls"] = [{"args": a if isinstance(a, list) else [a], "output": o} for a, o in pairs]
        else:
            row["stdio"] = [{"input": str(a), "output": str(o)} for a, o in pairs]
        return row
    return spec


def _verl_record(score: float | None, result: ExecResult, problem: Problem) -> dict[str, Any]:
    sandbox_error = result.verdict is Verdict.SANDBOX_ERROR
    return {
        # veRL needs a float; a sandbox error is flagged in its own key (and verdict), never hidden as a plain 0.
        "score": 0.0 if score is None else float(score),
        "verdict": result.verdict.value,
        "passed": float(result.passed),
        "n_tests": max(len(result.tests), n_tests(problem)),
        "n_passed": result.n_passed,
        "sandbox_error": float(sandbox_error),
    }


def verl_compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    reward: str = "binary",
    sandbox: str = "local",
    workers: int | None = None,
    timeout: float | None = None,
    data_dir: str | Path | None = None,
    chat: bool = True,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """veRL's batch form (`reward_model.reward_manager=batch`): one record per response, run in parallel.

    `chat`: responses are chat answers (code in a fence or in prose), the usual veRL case; False for plain
    continuations of the prompt. The keyword arguments come from `custom_reward_function.reward_kwargs`.
    """
    data_dir = data_dir or default_data_dir()
    settings = _settings(sandbox, workers, timeout, data_dir)
    lookup = ProblemLookup(data_dir)
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    problems = [
        lookup.resolve(_ground_truth_spec(gt, info), f"ground_truth {i}")
        for i, (gt, info) in enumerate(zip(ground_truths, infos, strict=True))
    ]
    scores, results = score_batch(settings, reward, problems, list(solution_strs), [chat] * len(problems))
    return [_verl_record(s, r, p) for s, r, p in zip(scores, results, problems, strict=True)]


def verl_compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """veRL's `compute_score`: the sandbox verdict of one response as `{"score": float, "verdict", ...}`."""
    return verl_compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], **kwargs)[0]
