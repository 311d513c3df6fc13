"""Loading run folders: both layouts, bare metrics.json, evaluate's samples path, and clear errors."""

from __future__ import annotations

import json
import re

import pytest
from execrl.benchmarks.errors import UserError
from execrl.reports.runs import as_program, load_run


def test_one_benchmark_and_subfolder_layouts_load_the_same_counts(make_run, tmp_path) -> None:
    outcomes = {"synth/1": [True, False], "synth/2": [False, False]}
    single = load_run(make_run("single", outcomes))
    make_run("multi/synth", outcomes)
    make_run("multi/humaneval", {"HumanEval/0": [True]}, benchmark="humaneval")
    multi = load_run(tmp_path / "multi")
    assert sorted(multi.benchmarks) == ["humaneval", "synth"]
    assert (
        single.benchmarks["synth"].per_problem
        == multi.benchmarks["synth"].per_problem
        == {"synth/1": (2, 1), "synth/2": (2, 0)}
    )


def test_bare_metrics_json_uses_its_per_problem_counts(make_run) -> None:
    folder = make_run("run", {"synth/1": [True, True, False]})
    run = load_run(folder / "metrics.json")
    assert run.benchmarks["synth"].per_problem == {"synth/1": (3, 2)}
    assert run.benchmarks["synth"].results == []


def test_samples_are_read_from_the_path_evaluate_records_in_config(make_run, tmp_path) -> None:
    folder = make_run("run", {"synth/1": [True]})
    moved = tmp_path / "elsewhere.jsonl"
    (folder / "samples.jsonl").rename(moved)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "samples": str(moved)}))
    assert load_run(folder).benchmarks["synth"].programs[("synth/1", 0)].startswith('"""Adds."""')


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "results.jsonl").write_text('{"task_id": "synth/1"}\n{oops\n'), "results.jsonl:2: not valid"),
        (lambda f: (f / "metrics.json").unlink(), "no metrics.json"),
        (lambda f: (f / "samples.jsonl").write_text('{"completion": "x"}\n'), "row 1 has no task_id"),
        (lambda f: (f / "metrics.json").write_text("[1, 2]"), "expected a JSON object"),
        (
            lambda f: (f / "metrics.json").write_text("[" * 100_000 + "]" * 100_000),
            "metrics.json: not valid JSON (nested too deeply)",
        ),
        (
            lambda f: (f / "results.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n"),
            "results.jsonl:1: not valid JSON (nested too deeply)",
        ),
        (
            lambda f: (f / "samples.jsonl").write_text('{"task_id": ' + "9" * 5000 + "}\n"),
            "samples.jsonl:1: not valid JSON (an integer past",
        ),
    ],
    ids=[
        "bad-json-line-is-named-by-file-and-line",
        "no-metrics",
        "sample-without-task-id",
        "metrics-not-an-object",
        "metrics-nested-too-deeply-for-json",
        "results-line-nested-too-deeply",
        "sample-with-a-5000-digit-integer",
    ],  # fmt: skip
)
def test_broken_run_folder_raises_an_error_naming_the_file(make_run, damage, message) -> None:
    folder = make_run("run", {"synth/1": [True]})
    damage(folder)
    with pytest.raises(UserError, match=re.escape(message)):
        load_run(folder)


@pytest.mark.parametrize(
    "text, wrapped",
    [("    return 1\n", True), ("def f():\n    return 1\n", False), ("\n\n  x = 1\n", True)],
    ids=["human-eval-body", "whole-program", "body-after-blank-lines"],
)
def test_indented_bodies_are_wrapped_into_a_function_for_quality(text: str, wrapped: bool) -> None:
    program = as_program(text)
    assert program.startswith("def completion():") == wrapped
    compile(program, "<sample>", "exec")


def test_a_run_evaluated_from_samples_elsewhere_takes_the_model_from_generates_config(make_run, tmp_path) -> None:
    # The pipeline layout: generate wrote samples + its config in one folder, evaluate wrote results in another.
    folder = make_run("eval", {"synth/1": [True, False]})
    samples = tmp_path / "samples"
    samples.mkdir()
    (folder / "samples.jsonl").rename(samples / "samples.jsonl")
    (samples / "config.json").write_text(json.dumps({"model": "runs/default/ppo", "temperature": 1.0}))
    (folder / "config.json").write_text(json.dumps({"evaluate": {"samples": str(samples / "samples.jsonl")}}))
    run = load_run(folder)
    assert run.model == "runs/default/ppo"
    assert run.setting("temperature") == 1.0
