"""Small data files in each upstream format, built by the tests (nothing is downloaded).

- evalplus release files (`HumanEvalPlus.jsonl.gz`, `MbppPlus.jsonl.gz`): `base_input`, `plus_input`, `atol`,
  `canonical_solution`, JSON inputs (MBPP+ tuples stored as lists, as evalplus serialises them);
- evalplus hub rows (`evalplus/humanevalplus`, `evalplus/mbppplus` `test.jsonl`): inputs and results as Python
  reprs inside a `test` program shaped like evalplus's `tools/*/to_original_fmt.py` output;
- LiveCodeBench `code_generation_lite` rows, private tests packed as base64(zlib(pickle(JSON text))).

The problems are real task ids with small made-up inputs; the references are ordinary solutions.
"""

from __future__ import annotations

import base64
import gzip
import json
import pickle
import zlib
from pathlib import Path
from typing import Any

HUMANEVAL_PLUS: list[dict[str, Any]] = [
    {
        "task_id": "HumanEval/2",
        "entry_point": "truncate_number",
        "prompt": 'def truncate_number(number: float) -> float:\n    """The decimal part of a positive number."""\n',
        "canonical_solution": "    return number % 1.0\n",
        "base_input": [[3.5]],
        "plus_input": [[1.25], [123.456], [0.0001]],
        "atol": 0,
    },
    {
        "task_id": "HumanEval/32",
        "entry_point": "find_zero",
        "prompt": (
            "import math\n\n\ndef poly(xs: list, x: float):\n    return sum([coeff * math.pow(x, i) for i, coeff in "
            'enumerate(xs)])\n\n\ndef find_zero(xs: list):\n    """A zero of the polynomial xs."""\n'
        ),
        "canonical_solution": (
            "    begin, end = -1.0, 1.0\n    while poly(xs, begin) * poly(xs, end) > 0:\n        begin *= 2.0\n"
            "        end *= 2.0\n    while end - begin > 1e-10:\n        center = (begin + end) / 2.0\n"
            "        if poly(xs, center) * poly(xs, begin) > 0:\n            begin = center\n        else:\n"
            "            end = center\n    return begin\n"
        ),
        "base_input": [[[1, 2]]],
        "plus_input": [[[-6, 11, -6, 1]], [[2, -3, 1]]],
        "atol": 1e-4,
    },
    {
        "task_id": "HumanEval/0",
        "entry_point": "has_close_elements",
        "prompt": (
            "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
            '    """Whether two numbers are closer than threshold."""\n'
        ),
        "canonical_solution": (
            "    for i, a in enumerate(numbers):\n        for j, b in enumerate(numbers):\n"
            "            if i != j and abs(a - b) < threshold:\n                return True\n    return False\n"
        ),
        "base_input": [[[1.0, 2.0, 3.0], 0.5]],
        "plus_input": [[[1.0, 2.8, 3.0], 0.3], [[], 1.0]],
        "atol": 0,
    },
]

MBPP_PLUS: list[dict[str, Any]] = [
    {
        "task_id": "Mbpp/2",
        "entry_point": "similar_elements",
        "prompt": '"""\nWrite a function to find the shared elements from the given two lists.\n'
        'assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))\n"""\n',
        "canonical_solution": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n",
        "base_input": [[[3, 4, 5, 6], [5, 7, 4, 10]]],
        "plus_input": [[[1, 2, 3], [4, 5, 6]], [[11, 12, 14, 13], [17, 15, 14, 13]]],
        "atol": 0,
    },
    {
        "task_id": "Mbpp/17",
        "entry_point": "square_perimeter",
        "prompt": '"""\nWrite a function that returns the perimeter of a square given its side length.\n'
        'assert square_perimeter(10)==40\n"""\n',
        "canonical_solution": "def square_perimeter(a):\n    return 4 * a\n",
        "base_input": [[10], [5]],
        "plus_input": [[2.5], [0.1]],
        "atol": 1e-4,
    },
    {
        "task_id": "Mbpp/809",
        "entry_point": "check_smaller",
        "prompt": '"""\nWrite a function to check if each element of second tuple is smaller than its '
        'corresponding element in the first tuple.\nassert check_smaller((1, 2, 3), (2, 3, 4)) == False\n"""\n',
        "canonical_solution": "def check_smaller(a, b):\n    assert type(a) is tuple\n"
        "    return all(x > y for x, y in zip(a, b))\n",
        "base_input": [[[1, 2, 3], [2, 3, 4]], [[4, 5, 6], [3, 4, 5]]],
        "plus_input": [[[11, 12, 13], [10, 11, 12]]],
        "atol": 0,
    },
]

# The Python value of each MBPP+ release input, which the hub rows write as reprs (tuples stay tuples).
MBPP_TUPLE_ARGS = {"Mbpp/2", "Mbpp/809"}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_release(root: Path, benchmark: str) -> Path:
    """evalplus's release file for `benchmark` under `root/<benchmark>/`."""
    if benchmark == "humanevalplus":
        return _write_jsonl(root / benchmark / "HumanEvalPlus.jsonl.gz", HUMANEVAL_PLUS)
    return _write_jsonl(root / benchmark / "MbppPlus.jsonl.gz", MBPP_PLUS)


def _reference_answers(row: dict[str, Any], inputs: list[Any], whole: str) -> list[Any]:
    namespace: dict[str, Any] = {}
    exec(whole, namespace)  # the fixture's own reference, written above
    return [namespace[row["entry_point"]](*args) for args in inputs]


def hub_test_code(entry: str, inputs: list[Any], results: list[Any] | None, atol: float, *, humaneval: bool) -> str:
    """A `test` program in the shape evalplus's to_original_fmt writes (reprs of inputs and results)."""
    call = "candidate(*inp)" if humaneval else f"{entry}(*inp)"
    assertion = "def assertion(out, exp, atol):\n    assert out == exp or abs(out - exp) <= atol\n"
    if results is None:  # the cross-check form: the reference is in the test code
        body = f"inputs = {inputs!r}\nfor i, inp in enumerate(inputs):\n    assertion({call}, ref_func(*inp), {atol})"
    else:
        body = (
            f"inputs = {inputs!r}\nresults = {results!r}\nfor i, (inp, exp) in enumerate(zip(inputs, results)):\n"
            f"    assertion({call}, exp, {atol})"
        )
    if humaneval:
        body = "def check(candidate):\n" + "\n".join("    " + line for line in body.splitlines())
    return f"import numpy as np\nfrom math import inf\n\n{assertion}\n{body}\n"


def write_hub(root: Path, benchmark: str, *, cross_check: tuple[str, ...] = ()) -> Path:
    """The hub dataset's `test.jsonl` for `benchmark` under `root/<benchmark>/`; tasks in `cross_check` store no
    results (evalplus's cross-check form)."""
    rows = []
    for row in HUMANEVAL_PLUS if benchmark == "humanevalplus" else MBPP_PLUS:
        inputs = row["base_input"] + row["plus_input"]
        if benchmark == "mbppplus" and row["task_id"] in MBPP_TUPLE_ARGS:
            inputs = [[tuple(arg) for arg in args] for args in inputs]
        whole = row["prompt"] + row["canonical_solution"]
        results = None if row["task_id"] in cross_check else _reference_answers(row, inputs, whole)
        test = hub_test_code(row["entry_point"], inputs, results, row["atol"], humaneval=benchmark == "humanevalplus")
        if benchmark == "humanevalplus":
            rows.append({key: row[key] for key in ("task_id", "prompt", "canonical_solution", "entry_point")})
        else:
            text = row["prompt"].strip('"\n').splitlines()[0]
            first_assert = row["prompt"].strip('"\n').splitlines()[1]
            rows.append({
                "task_id": int(row["task_id"].split("/")[1]), "code": row["canonical_solution"], "prompt": text,
                "source_file": "Benchmark Questions Verification V2.ipynb", "test_imports": [],
                "test_list": [first_assert],
            })  # fmt: skip
        rows[-1]["test"] = test
    return _write_jsonl(root / benchmark / "test.jsonl", rows)


def pack(value: Any) -> str:
    """LiveCodeBench's packed form of a test list: base64(zlib(pickle(JSON text)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(value)))).decode()


def lcb_row(question_id: str, date: str, tests: list[tuple[str, str]], *, functional: str | None = None,
            difficulty: str = "easy", platform: str = "atcoder", packed: bool = True) -> dict[str, Any]:  # fmt: skip
    """One code_generation_lite row; the first test is public, the rest private (packed unless `packed=False`)."""
    kind = "functional" if functional else "stdin"
    cases = [{"input": i, "output": o, "testtype": kind} for i, o in tests]
    starter = f"class Solution:\n    def {functional}(self, a: int, b: int) -> int:\n        " if functional else ""
    return {
        "question_title": f"Problem {question_id}",
        "question_content": f"Statement of {question_id}.",
        "platform": platform,
        "question_id": question_id,
        "contest_id": question_id.split("_")[0],
        "contest_date": f"{date}T00:00:00",
        "starter_code": starter,
        "difficulty": difficulty,
        "public_test_cases": json.dumps(cases[:1]),
        "private_test_cases": pack(cases[1:]) if packed else json.dumps(cases[1:]),
        "metadata": json.dumps({"func_name": functional} if functional else {}),
    }


LCB_V1 = [
    lcb_row("abc301_a", "2023-07-01", [("1 2\n", "3\n"), ("10 20\n", "30\n"), ("0 0\n", "0\n")]),
    lcb_row("2727", "2023-10-15", [("1\n2", "3"), ("5\n7", "12")], functional="addTwo", difficulty="medium",
            platform="leetcode", packed=False),
]  # fmt: skip
LCB_V2 = [
    lcb_row("1873_A", "2024-04-20", [("1\n", "0.5\n"), ("3\n", "1.5\n")], difficulty="hard", platform="codeforces"),
]


def write_livecodebench(root: Path, v1: list[dict[str, Any]] = LCB_V1, v2: list[dict[str, Any]] = LCB_V2) -> Path:
    """`test.jsonl` (release_v1) and `test2.jsonl` (what release_v2 adds) under `root/livecodebench/`."""
    _write_jsonl(root / "livecodebench" / "test.jsonl", v1)
    return _write_jsonl(root / "livecodebench" / "test2.jsonl", v2)
