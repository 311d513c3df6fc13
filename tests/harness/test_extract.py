"""Code extraction: one messy model output per row; the result must run and pass the problem's tests."""

from __future__ import annotations

import random
import textwrap
import time

import pytest
from execrl.benchmarks.problem import Problem
from execrl.benchmarks.problem import TestKind as Kind  # the alias keeps pytest from collecting TestKind
from execrl.harness.extract import extract

from tests.builders import assert_problem, call_problem

# HumanEval/0's canonical body, written out so each row below can mangle it.
BODY = (
    "    for idx, elem in enumerate(numbers):\n"
    "        for idx2, elem2 in enumerate(numbers):\n"
    "            if idx != idx2:\n"
    "                distance = abs(elem - elem2)\n"
    "                if distance < threshold:\n"
    "                    return True\n"
    "\n"
    "    return False\n"
)
SIGNATURE = "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
WHOLE = SIGNATURE + BODY

MBPP_ADD = assert_problem(
    "Mbpp/900",
    "add",
    ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"],
    prompt="Write a function to add two numbers.",
)


def _run_humaneval(problem: Problem, payload: dict[str, str]) -> None:
    program = problem.program(payload["completion"]) if "completion" in payload else payload["solution"]
    namespace: dict = {}
    exec(program + "\n" + problem.check_code + f"\ncheck({problem.entry_point})\n", namespace)  # noqa: S102


HUMANEVAL_ROWS = [
    (BODY, False, "completion"),
    (BODY + "\n\ndef main():\n    print(has_close_elements([1.0], 0.5))\n", False, "completion"),
    (BODY + "\nif __name__ == '__main__':\n    import doctest\n", False, "completion"),
    (BODY + "\n# Tests\nprint(has_close_elements([1.0, 2.0], 0.5))\n", False, "completion"),
    (textwrap.dedent(BODY), False, "completion"),
    (BODY.lstrip(), False, "completion"),
    (BODY.replace("    ", "\t"), False, "completion"),
    ("<PROMPT>" + BODY + "\n\ndef other():\n    pass\n", False, "completion"),
    (BODY + "```\n\nThis loops over all pairs.\n", False, "completion"),
    ("```python\nfrom typing import List\n\n" + WHOLE + "```\nThat is the answer.", False, "solution"),
    ("Sure! Here is the function:\n\n```python\n" + WHOLE + "```\n\nIt compares every pair.", True, "solution"),
    ("```python\n" + WHOLE, True, "solution"),
    ("Usage:\n```python\nprint(has_close_elements([1.0], 0.5))\n```\n```python\n" + WHOLE + "```\n", True, "solution"),
    ("~~~python\n" + WHOLE + "~~~\n", True, "solution"),
    ("```\n" + WHOLE + "```", True, "solution"),
    ("Here you go:\n" + WHOLE + "Hope this helps!\n", True, "solution"),
    ("```python\n" + BODY + "```", True, "completion"),
]
HUMANEVAL_IDS = [
    "clean body",
    "stop at a new top-level def",
    "stop at an if __name__ block",
    "stop at a column-0 comment",
    "body lost all indentation",
    "first line unindented, the rest indented",
    "indented with tabs",
    "prompt echoed before the body",
    "completion closes a fence and chats after it",
    "completion model wrote a fenced whole function",
    "chat: chatter around a python fence",
    "chat: unterminated fence",
    "chat: a usage example fence before the one defining the entry point",
    "chat: tilde fence",
    "chat: untagged fence",
    "chat: no fence, chatter before and after",
    "chat: fenced body only",
]


@pytest.mark.parametrize(("raw", "chat", "key"), HUMANEVAL_ROWS, ids=HUMANEVAL_IDS)
def test_messy_humaneval_output_becomes_a_passing_program(humaneval_problems, raw, chat, key):
    problem = humaneval_problems[0]
    assert problem.entry_point == "has_close_elements"
    payload = extract(problem, raw.replace("<PROMPT>", problem.prompt), chat=chat)
    assert list(payload) == [key]
    _run_humaneval(problem, payload)  # raises if the program does not define a passing function


def test_the_clean_body_comes_back_unchanged(humaneval_problems):
    assert extract(humaneval_problems[0], BODY) == {"completion": BODY}


def test_every_canonical_humaneval_body_survives_extraction(humaneval_problems):
    for problem in humaneval_problems:
        assert extract(problem, problem.solutions[0]) == {"completion": problem.solutions[0]}, problem.task_id


@pytest.mark.parametrize(
    ("problem_key", "chat", "expected"),
    [("humaneval", False, {"completion": ""}), ("mbpp", False, {"solution": ""}), ("mbpp", True, {"solution": ""})],
    ids=["humaneval completion", "mbpp completion", "mbpp chat"],
)
def test_empty_output_gives_an_empty_payload(humaneval_problems, problem_key, chat, expected):
    problem = humaneval_problems[0] if problem_key == "humaneval" else MBPP_ADD
    assert extract(problem, "", chat=chat) == expected


@pytest.mark.parametrize(
    ("raw", "chat"),
    [
        ("def add(a, b):\n    return a + b\nassert add(1, 2) == 3\n", False),
        ("def add(a, b):\r\n    return a + b\r\n", False),
        ("```py\ndef add(a, b):\n    return a + b\n```", True),
        ("I will write it.\n```python\nimport operator\n\ndef add(a, b):\n    return operator.add(a, b)\n", True),
        ("def add(a, b):\n    return a + b\n\nThe function returns the sum.", True),
    ],
    ids=[
        "completion stops at the model's own assert",
        "CRLF line ends",
        "py-tagged fence",
        "chatter then an unterminated fence",
        "no fence, prose after",
    ],
)
def test_mbpp_output_becomes_a_whole_program_that_passes(raw, chat):
    payload = extract(MBPP_ADD, raw, chat=chat)
    assert list(payload) == ["solution"]
    assert "assert" not in payload["solution"] and "\r" not in payload["solution"]
    exec(payload["solution"] + "\n" + "\n".join(MBPP_ADD.tests), {})  # noqa: S102


def test_apps_completion_stops_at_the_next_question():
    problem = Problem(
        task_id="APPS/1", benchmark="apps", prompt="Double n.", test_kind=Kind.STDIO, inputs=("2\n",), outputs=("4\n",)
    )
    raw = "n = int(input())\nprint(n * 2)\n\nQUESTION:\nAnother problem\nANSWER:\nprint(1)"
    assert extract(problem, raw) == {"solution": "n = int(input())\nprint(n * 2)\n"}


def test_apps_call_based_fence_is_chosen_by_its_method_name():
    problem = call_problem("APPS/2", "plus", [[1, 2]], [[3]], benchmark="apps", prompt="Add.")
    method = "class Solution:\n    def plus(self, a, b):\n        return a + b\n"
    raw = "```python\nx = Solution()\n```\n```python\n" + method + "```"
    namespace: dict = {}
    exec(extract(problem, raw, chat=True)["solution"], namespace)  # noqa: S102
    assert namespace["Solution"]().plus(1, 2) == 3


def test_synth_completion_is_cut_at_its_stops_and_put_under_its_def_line():
    from execrl.benchmarks.synth import load_synth

    problem = load_synth("test", n=1)[0]
    raw = "    return 0\n\ndef another(x):\n    return 1\n"
    solution = extract(problem, raw)["solution"]
    def_line = problem.prompt.split("\n")[1]
    assert solution == f"{def_line}\n    return 0\n"


def test_unparseable_output_goes_through_unchanged_for_an_honest_syntax_error():
    raw = "def add(a, b)\n    return a +\n"
    assert extract(MBPP_ADD, raw) == {"solution": raw}


_junk = random.Random(2)
HOSTILE_OUTPUTS = [
    # (id, raw output, why): extraction runs in the trusted process on a model's (a policy's) text
    ("deep-unary", "-" * 100_000 + "1\n", "the parser's stack overflows: MemoryError, not SyntaxError"),
    ("deep-unary-fenced", "```python\n" + "not " * 100_000 + "x\n```\n", "the same inside a fence, in chat mode"),
    ("deep-attributes", "x" + ".a" * 60_000 + "\n", "ast construction hits the recursion limit"),
    ("unclosed-brackets", "x = (\n" * 10 + "1,\n" * 3000, "never parses: the chatter search is quadratic in lines"),
    ("prose-100k-lines", "x = the answer is\n" * 100_000, "100,000 lines that look like code and never parse"),
    ("fence-spam", "```python\n" * 50_000, "50,000 fences, none closed"),
    ("lone-surrogates", "def add(a, b):\n    return a + b  # \ud800\nsure\udfff\n", "text no UTF-8 file can hold"),
    ("nul-bytes", "def add(a, b):\n    return a\x00 + b\nok\n", "NUL bytes: ast raises ValueError"),
    ("binary-junk", bytes(_junk.randrange(256) for _ in range(200_000)).decode("latin-1"), "200 kB of junk"),
    ("one-huge-line", "x = " + "1 + " * 200_000 + "1 oops", "an 800 kB line that never parses"),
]  # fmt: skip


@pytest.mark.parametrize("raw", [row[1] for row in HOSTILE_OUTPUTS], ids=[row[0] for row in HOSTILE_OUTPUTS])
@pytest.mark.parametrize("chat", [False, True], ids=["completion", "chat"])
def test_hostile_output_is_extracted_within_a_bound_without_raising(humaneval_problems, raw: str, chat: bool):
    for problem in (humaneval_problems[0], MBPP_ADD):
        start = time.monotonic()
        payload = extract(problem, raw, chat=chat)
        assert time.monotonic() - start < 10.0  # TRIM_BUDGET parses ~1 s at most; unbounded, minutes
        assert len(payload) == 1 and isinstance(next(iter(payload.values())), str)


@pytest.mark.parametrize(
    ("completion", "raw", "program"),
    [
        ("body", "    return x + 1\n\ndef other():\n", "def f(x):\n    return x + 1\n"),  # cut at HumanEval's stops
        ("body", "return x + 1\n", "def f(x):\n    return x + 1\n"),  # the body's lost indentation repaired
        ("program", "def f(x):\n    return x + 1\nassert f(1) == 2\n", "def f(x):\n    return x + 1\n"),  # MBPP's
    ],
    ids=["body-stops", "body-indent", "program-stops"],
)
def test_a_problem_file_row_is_extracted_like_its_completion_style(completion, raw, program) -> None:
    from execrl.benchmarks.problem_file import problem_from_row
    from execrl.harness.extract import program_of

    row = {"task_id": "t", "prompt": "def f(x):\n", "entry_point": "f", "completion": completion}
    problem = problem_from_row({**row, "tests": ["assert f(1) == 2"]})
    assert program_of(problem, raw) == program
