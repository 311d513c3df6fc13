"""MBPP loads from the real files: counts, splits by task id, test forms, entry points."""

from __future__ import annotations

import ast
import json

import pytest
from execrl.benchmarks.datafiles import DataError
from execrl.benchmarks.mbpp import entry_point_of, load_mbpp
from execrl.benchmarks.problem import TestKind as Kind  # the alias keeps pytest from collecting TestKind


@pytest.mark.parametrize(
    ("variant", "split", "expected"),
    [
        ("full", "all", 974),
        ("full", "test", 500),
        ("full", "prompt", 10),
        ("full", "validation", 90),
        ("full", "train", 374),
        ("sanitized", "all", 427),
        ("sanitized", "test", 257),
    ],
    ids=[
        "full dataset has 974 tasks",
        "paper test range 11-510",
        "few-shot prompt range 1-10",
        "validation range 511-600",
        "train range 601-974",
        "sanitized subset has 427 tasks",
        "sanitized tasks inside the test range",
    ],
)
def test_split_sizes_follow_the_task_id_ranges(shared_data_dir, variant, split, expected):
    assert len(load_mbpp(split, shared_data_dir, variant=variant)) == expected


def test_test_split_holds_exactly_task_ids_11_to_510_in_order(shared_data_dir):
    ids = [p.task_id for p in load_mbpp("test", shared_data_dir)]
    assert ids == [f"Mbpp/{n}" for n in range(11, 511)]


def test_full_rows_become_assert_problems_with_lf_solutions(shared_data_dir):
    rows = {row["task_id"]: row for row in map(json.loads, (shared_data_dir / "mbpp" / "mbpp.jsonl").open())}
    for problem in load_mbpp("all", shared_data_dir):
        row = rows[int(problem.task_id.split("/")[1])]
        assert problem.test_kind is Kind.ASSERT
        assert problem.prompt == row["text"]
        assert problem.tests == tuple(row["test_list"])
        assert "\r" not in problem.solutions[0]
        assert problem.solutions[0].splitlines() == row["code"].splitlines()


@pytest.mark.filterwarnings("ignore:invalid escape sequence")  # a few references hold regexes like "\\d"
def test_every_entry_point_is_defined_by_the_reference_and_called_by_each_test(shared_data_dir):
    for variant in ("full", "sanitized"):
        for problem in load_mbpp("all", shared_data_dir, variant=variant):
            defined = {node.name for node in ast.parse(problem.solutions[0]).body if hasattr(node, "name")}
            assert problem.entry_point in defined, problem.task_id
            assert all(problem.entry_point in test for test in problem.tests), problem.task_id


def test_sanitized_setup_is_the_joined_test_imports(shared_data_dir):
    problems = {p.task_id: p for p in load_mbpp("all", shared_data_dir, variant="sanitized")}
    assert problems["Mbpp/82"].test_setup == "import math"
    assert problems["Mbpp/2"].prompt == "Write a function to find the shared elements from the given two lists."


def test_full_setup_code_is_kept_for_tasks_that_have_it(shared_data_dir):
    problem = next(p for p in load_mbpp("all", shared_data_dir) if p.task_id == "Mbpp/367")
    assert problem.test_setup.startswith("root = Node(1)")
    assert "\r" not in problem.test_setup


def test_challenge_tests_are_appended_only_when_asked(shared_data_dir):
    plain = {p.task_id: p for p in load_mbpp("all", shared_data_dir)}
    extended = {p.task_id: p for p in load_mbpp("all", shared_data_dir, challenge_tests=True)}
    grown = [tid for tid in plain if len(extended[tid].tests) > len(plain[tid].tests)]
    assert len(grown) == 11  # the data README: only 11 tasks have a challenge_test_list
    assert all(extended[tid].tests[:3] == plain[tid].tests for tid in grown)
    assert all(extended[tid].metadata["n_prompt_tests"] == len(plain[tid].tests) for tid in grown)


@pytest.mark.parametrize(
    ("test", "reference", "expected"),
    [
        ("assert min_cost([[1]], 0, 0) == 1", "def min_cost(c, m, n): pass", "min_cost"),
        ("assert set(similar(((3, 4), (4,)))) == set((4,))", "def similar(a, b): pass", "similar"),
        ("assert sum(10,15) == 6", "def sum(a, b): pass", "sum"),
        (
            "assert max_chain_length([Pair(5, 24)], 1) == 1",
            "class Pair: pass\ndef max_chain_length(a, n): pass",
            "max_chain_length",
        ),
        ("assert math.isclose(area(2), 4.0)", "", "area"),
    ],
    ids=[
        "plain call",
        "entry point wrapped in a builtin call",
        "entry point shadows a builtin (task 126)",
        "test also builds instances of a helper class (task 601)",
        "no reference: first non-builtin call",
    ],
)
def test_entry_point_is_the_function_the_assert_calls(test, reference, expected):
    assert entry_point_of(test, reference) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "dev"}, "unknown MBPP split 'dev'"),
        ({"variant": "tiny"}, "unknown MBPP variant 'tiny'"),
    ],
    ids=["unknown split", "unknown variant"],
)
def test_unknown_names_are_refused_with_the_choices(shared_data_dir, kwargs, message):
    with pytest.raises(DataError, match=message) as caught:
        load_mbpp(data_dir=shared_data_dir, **kwargs)
    assert "choose one of" in str(caught.value)


def test_truncated_jsonl_line_names_file_and_line(tmp_path, shared_data_dir):
    lines = (shared_data_dir / "mbpp" / "mbpp.jsonl").read_text().splitlines()
    (tmp_path / "mbpp").mkdir()
    broken = tmp_path / "mbpp" / "mbpp.jsonl"
    broken.write_text("\n".join(lines[:4] + [lines[4][:50]]) + "\n")
    truncated = r"mbpp\.jsonl:5: not valid JSON"
    with pytest.warns(UserWarning, match="sha256"), pytest.raises(DataError, match=truncated):
        load_mbpp("all", tmp_path)


def test_online_rows_from_the_hub_are_merged_and_resplit_by_task_id(monkeypatch, shared_data_dir):
    datasets = pytest.importorskip("datasets")
    rows = [json.loads(line) for line in (shared_data_dir / "mbpp" / "mbpp.jsonl").open()]
    hub = {"train": rows[600:], "test": rows[10:510], "validation": rows[510:600], "prompt": rows[:10]}
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kw: calls.append(args) or hub)
    online = load_mbpp("validation", online=True)
    assert calls == [("google-research-datasets/mbpp", "full")]
    assert online == load_mbpp("validation", shared_data_dir)
