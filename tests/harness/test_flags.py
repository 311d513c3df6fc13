"""The shared flag groups and the dispatcher's one way of reporting a user error."""

from __future__ import annotations

import sys
import types
from typing import get_args

import pytest
from execrl.benchmarks.errors import UserError
from execrl.harness import cli, flags


def test_the_sandbox_choices_are_the_sandbox_backends() -> None:
    from execrl.harness.sandbox.backends import BACKENDS

    assert get_args(flags.SandboxName) == BACKENDS


def test_the_precision_choices_are_the_trainers_precisions() -> None:
    from execrl.harness.generation.hf_sampling import PRECISIONS

    assert get_args(flags.Precision) == PRECISIONS


def test_the_benchmark_choices_are_the_registry_benchmarks() -> None:
    from execrl.benchmarks.registry import BENCHMARKS, BenchmarkName

    assert get_args(BenchmarkName) == BENCHMARKS


@pytest.fixture
def failing_command(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, str]]:
    """A command module whose main raises a UserError deep inside, as any stage may."""
    module = types.ModuleType("execrl_test_failing")

    def main(argv: list[str]) -> int:
        raise UserError(f"{argv[0]}: no such folder; pass --force to start over")

    module.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return {"fail": (module.__name__, "fails")}


@pytest.mark.parametrize("prog", ["execrl", "execrl train"], ids=["top-level", "nested-group"])
def test_a_user_error_anywhere_is_one_line_on_stderr_and_exit_2(failing_command, capsys, prog: str) -> None:
    assert cli.dispatch(prog, failing_command, ["fail", "/x"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"{prog} fail: /x: no such folder; pass --force to start over\n" and not captured.out


def test_other_exceptions_are_not_taken_for_user_errors(failing_command, monkeypatch) -> None:
    monkeypatch.setattr(sys.modules["execrl_test_failing"], "main", lambda argv: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli.dispatch("execrl", failing_command, ["fail"])


@pytest.mark.parametrize(
    ("argv", "named"),
    [(["--backend", "docker"], "--backend was renamed: use --sandbox"), (["--dtype=bf16"], "--dtype was renamed")],
    ids=["flag-then-value", "flag=value"],
)
def test_a_renamed_flag_is_refused_naming_its_new_name(argv: list[str], named: str) -> None:
    with pytest.raises(UserError, match=named):
        flags.check_renamed(argv, {"--backend": "--sandbox", "--dtype": "--precision"})


PROBLEM_ROW = '{"task_id": "mine/1", "prompt": "Print 1.", "stdio": [{"input": "", "output": "1\\n"}]}\n'


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({}, "give --benchmark NAME or --problems FILE.jsonl"),  # no source at all
        ({"benchmark": "humaneval", "problems": "FILE"}, "not both"),  # two sources for one command
        ({"problems": "FILE", "split": "train"}, "--split: for --benchmark only"),  # a file has no splits
        ({"problems": "FILE", "online": True}, "--online: for --benchmark only"),  # nor a hub copy
        ({"benchmark": "humaneval", "variant": "sanitized"}, "--variant applies to mbpp only"),  # MBPP's option
        ({"benchmark": "mbpp", "difficulty": "interview"}, "--difficulty applies to apps or livecodebench"),  # theirs
        ({"benchmark": "humaneval", "limit": -1}, "--limit must be >= 0"),  # a negative count
        ({"benchmark": "humaneval", "split": "train"}, "HumanEval has only 'test'"),  # the registry's own check
    ],
    ids=["no-source", "both-sources", "split-of-a-file", "online-file", "variant", "difficulty", "limit", "split"],
)
def test_a_problem_source_that_cannot_be_loaded_is_one_user_error_naming_the_flag(tmp_path, given, named) -> None:
    path = tmp_path / "problems.jsonl"
    path.write_text(PROBLEM_ROW)
    values = {k: (path if v == "FILE" else v) for k, v in given.items()}
    with pytest.raises(UserError, match=named):
        flags.load_from_flags(flags.ProblemFlags(**values))


def test_a_problem_file_or_a_benchmark_loads_with_its_limit(tmp_path) -> None:
    path = tmp_path / "problems.jsonl"
    path.write_text(PROBLEM_ROW.replace("mine/1", "mine/a") + PROBLEM_ROW.replace("mine/1", "mine/b"))
    assert [p.task_id for p in flags.load_from_flags(flags.ProblemFlags(problems=path, limit=1))] == ["mine/a"]
    humaneval = flags.load_from_flags(flags.ProblemFlags(benchmark="humaneval", limit=2))
    assert [p.task_id for p in humaneval] == ["HumanEval/0", "HumanEval/1"]
    assert flags.load_from_flags(flags.ProblemFlags(limit=1), default="humaneval") == humaneval[:1]
