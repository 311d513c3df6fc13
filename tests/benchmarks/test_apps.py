"""APPS loads from the real train file: counts per difficulty, test forms, bad rows and missing splits."""

from __future__ import annotations

import json

import pytest
from execrl.benchmarks.apps import apps_problem, load_apps
from execrl.benchmarks.datafiles import DataError
from execrl.benchmarks.problem import TestKind as Kind  # the alias keeps pytest from collecting TestKind


def _rows(data_dir):
    return [json.loads(line) for line in (data_dir / "apps" / "train.jsonl").open()]


def test_train_split_has_153_problems_51_per_difficulty(shared_data_dir):
    problems = load_apps("train", shared_data_dir)
    assert len(problems) == 153
    for level in ("introductory", "interview", "competition"):
        assert sum(p.difficulty == level for p in problems) == 51


@pytest.mark.parametrize(
    ("difficulty", "expected"),
    [("competition", 51), (["introductory", "interview"], 102)],
    ids=["one difficulty as a string", "several difficulties as a list"],
)
def test_difficulty_filter_keeps_only_the_asked_levels(shared_data_dir, difficulty, expected):
    problems = load_apps("train", shared_data_dir, difficulty=difficulty)
    assert len(problems) == expected
    assert {p.difficulty for p in problems} == ({difficulty} if isinstance(difficulty, str) else set(difficulty))


def test_call_based_problems_keep_fn_name_argument_lists_and_stored_outputs(shared_data_dir):
    rows = {f"APPS/{row['problem_id']}": row for row in _rows(shared_data_dir)}
    calls = [p for p in load_apps("train", shared_data_dir) if p.test_kind is Kind.CALL]
    assert len(calls) == 13
    for problem in calls:
        io = json.loads(rows[problem.task_id]["input_output"])
        assert problem.fn_name == problem.entry_point == io["fn_name"]
        assert all(isinstance(args, list) for args in problem.inputs)
        assert list(problem.outputs) == io["outputs"]
        assert problem.starter_code.strip()


def test_stdin_problems_hold_strings_and_their_solutions(shared_data_dir):
    rows = {f"APPS/{row['problem_id']}": row for row in _rows(shared_data_dir)}
    stdio = [p for p in load_apps("train", shared_data_dir) if p.test_kind is Kind.STDIO]
    assert len(stdio) == 140
    for problem in stdio:
        assert problem.entry_point is None and problem.fn_name is None
        assert all(isinstance(x, str) for x in problem.inputs + problem.outputs)
        assert len(problem.inputs) == len(problem.outputs) >= 1
        assert problem.solutions == tuple(json.loads(rows[problem.task_id]["solutions"]))
        assert problem.metadata["url"] == rows[problem.task_id]["url"]


@pytest.mark.filterwarnings("ignore:.*differs from the pinned")  # the edited copy has another digest
def test_row_with_broken_json_field_is_skipped_with_a_warning_naming_it(tmp_path, shared_data_dir):
    rows = _rows(shared_data_dir)[:3]
    rows[1]["input_output"] = rows[1]["input_output"][:-5]
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.warns(UserWarning, match=f"APPS/{rows[1]['problem_id']}: skipped"):
        problems = load_apps("train", tmp_path)
    assert [p.task_id for p in problems] == [f"APPS/{rows[0]['problem_id']}", f"APPS/{rows[2]['problem_id']}"]


def test_missing_test_split_fails_naming_the_file_and_how_to_provide_it(shared_data_dir):
    with pytest.raises(DataError) as caught:
        load_apps("test", shared_data_dir)
    message = str(caught.value)
    assert "apps/test.jsonl" in message
    assert "--data-dir" in message and "EXECRL_DATA_DIR" in message and "--online" in message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "valid"}, "unknown APPS split 'valid'"),
        ({"split": "train", "difficulty": "hard"}, "unknown APPS difficulty hard"),
        ({"split": "train", "difficulty": ["interview", "easy"]}, "unknown APPS difficulty easy"),
    ],
    ids=["unknown split", "unknown difficulty", "one bad name in a list"],
)
def test_unknown_names_are_refused(shared_data_dir, kwargs, message):
    with pytest.raises(DataError, match=message):
        load_apps(data_dir=shared_data_dir, **kwargs)


def test_a_list_of_lines_as_stdin_is_joined_into_one_string():
    row = {
        "problem_id": 7,
        "question": "q",
        "solutions": "[]",
        "difficulty": "interview",
        "url": "u",
        "starter_code": "",
        "input_output": json.dumps({"inputs": [["1 2", "3"]], "outputs": ["6\n"]}),
    }
    problem = apps_problem(row)
    assert problem is not None and problem.inputs == ("1 2\n3",)
