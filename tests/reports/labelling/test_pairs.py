"""Pairs in: a pairs file (each bad line named), run folders, and the mix of undecided and decided pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execrl.benchmarks.errors import UserError
from execrl.reports.labelling.pairs import Pair, Side, draw, pairs_from_runs, read_pairs_file

from tests.evaluated_runs import write_humaneval_run

from .conftest import pair_row, write_pairs

GOOD = json.dumps(pair_row(0))

BAD_LINES = [
    ("not json", "not-json", ":2: "),  # a torn or garbage line in the middle
    ('["a", "b"]', "not-an-object", ":2: "),  # valid JSON, wrong shape
    (json.dumps({**pair_row(1), "b": 3}), "program-not-a-string", ":2: missing string field(s) b"),
    (
        json.dumps({k: v for k, v in pair_row(1).items() if k != "task_id"}),
        "no-task-id",
        ":2: missing string field(s) task_id",
    ),  # noqa: E501
    (json.dumps({**pair_row(1), "result_a": {"verdict": "great"}}), "unknown-verdict", ":2: result_a verdict must be"),
    (
        json.dumps({**pair_row(1), "result_b": {"verdict": "passed", "tests": "all"}}),
        "tests-not-a-list",
        ":2: result_b tests must be a list",
    ),  # noqa: E501
    (json.dumps({**pair_row(1), "statement": ["x"]}), "statement-not-a-string", ":2: statement must be a string"),
]


@pytest.mark.parametrize(("line", "why", "needle"), BAD_LINES, ids=[row[1] for row in BAD_LINES])
def test_a_bad_pairs_line_is_an_error_naming_the_file_and_line(
    tmp_path: Path, line: str, why: str, needle: str
) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(f"{GOOD}\n{line}\n{GOOD}\n")
    with pytest.raises(UserError) as error:
        read_pairs_file(path)
    assert f"{path}{needle}" in str(error.value), why


def test_a_pairs_file_keeps_verdicts_tests_and_a_stable_pair_id(tmp_path: Path) -> None:
    pairs = read_pairs_file(write_pairs(tmp_path / "p.jsonl", [pair_row(0), pair_row(1)]))
    assert [p.decided for p in pairs] == [True, False]  # pair 0: A passed, B failed; pair 1: both passed
    assert pairs[0].b.tests[1] == {"verdict": "failed", "error": "assert f(2) == 3"}
    again = read_pairs_file(write_pairs(tmp_path / "q.jsonl", [pair_row(0)]))
    assert again[0].pair_id == pairs[0].pair_id and Pair.from_json(pairs[0].to_json()) == pairs[0]


def _pairs(n: int, decided: bool) -> list[Pair]:
    verdicts = ("passed", "failed") if decided else ("passed", "passed")
    return [Pair(f"t/{decided}/{i}", "p", "p", Side(f"a{i}", "", verdicts[0]), Side(f"b{i}", "", verdicts[1]))
            for i in range(n)]  # fmt: skip


@pytest.mark.parametrize(
    ("n_undecided", "n_decided", "n", "share", "expected"),
    [
        (50, 50, 10, 0.8, (8, 2)),  # the share holds when both kinds are plentiful
        (3, 50, 10, 0.8, (3, 7)),  # too few undecided pairs: decided ones fill up
        (50, 1, 10, 0.5, (9, 1)),  # too few decided pairs: undecided ones fill up
        (2, 2, 10, 0.8, (2, 2)),  # fewer than asked in all
    ],
    ids=["share", "few-undecided", "few-decided", "too-few"],
)
def test_draw_keeps_the_undecided_share_where_it_can(n_undecided, n_decided, n, share, expected) -> None:
    drawn = draw(_pairs(n_undecided, False), _pairs(n_decided, True), n, share, seed=0)
    assert (sum(not p.decided for p in drawn), sum(p.decided for p in drawn)) == expected


def test_pairs_from_runs_pair_two_samples_of_one_problem_and_prefer_undecided_ones(tmp_path: Path) -> None:
    run = write_humaneval_run(
        tmp_path / "run",
        {
            "HumanEval/0": ["passed", "passed", "failed", "sandbox_error"],
            "HumanEval/1": ["failed", "runtime_error"],
            "HumanEval/2": ["passed"],  # one sample: no pair
        },
    )
    pairs = pairs_from_runs([run], max_pairs=3, undecided_share=1.0, pairs_per_task=5, seed=0)
    assert len(pairs) == 3 and all(p.task_id in ("HumanEval/0", "HumanEval/1") for p in pairs)
    assert sum(not p.decided for p in pairs) == 2  # the two undecided pairs first, one decided to fill up
    assert all("sandbox_error" not in p.a.response + p.b.response for p in pairs)
    h0 = next(p for p in pairs if p.task_id == "HumanEval/0")
    assert h0.prompt.startswith("from typing import List") and h0.a.program == h0.prompt + h0.a.response


def test_pairs_from_runs_refuses_a_folder_without_results(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no results.jsonl"):
        pairs_from_runs([tmp_path / "empty"], max_pairs=3, undecided_share=0.8)
