"""Users' own problems: the problem file (`--problems FILE.jsonl`), one problem per line, into `Problem` records.

A row holds a `task_id`, a `prompt`, and its hidden tests in exactly one of three forms:

    {"task_id": "mine/add", "prompt": "def add(a, b):\\n", "completion": "body", "tests": ["assert add(1, 2) == 3"]}
    {"task_id": "mine/echo", "prompt": "Print the line twice.", "stdio": [{"input": "a\\n", "output": "a\\na\\n"}]}
    {"task_id": "mine/neg", "prompt": "Write neg(x).", "fn_name": "neg", "calls": [{"args": [2], "output": -2}]}

Fields (`ROW_FIELDS` lists them; anything else is refused, naming the closest known field):

- `task_id` (string, unique in the file), `prompt` (string: the text the model continues, used as is).
- Tests, one of: `tests` — assert statements run against the program's names (optional `setup`: code run
  first, such as imports); `stdio` — `{"input", "output"}` string pairs fed on stdin and compared with stdout;
  `calls` — `{"args": [...], "output": ...}` calls of the function `fn_name` (a `class Solution` method works
  too, as in APPS).
- `entry_point`: the function the program must define (for `tests`; `fn_name` for `calls`).
- `completion`: `"program"` (default: the model writes the whole program) or `"body"` (HumanEval style: the
  program is the prompt followed by the completion).
- `solutions` (list of whole reference programs), `difficulty` (string), `starter_code` (string),
  `stop` (list of stop sequences for completion-style sampling).
- `public_tests`: example tests that may be shown to the model, in the same form as the row's hidden tests
  (a list of asserts, of stdio pairs, or of calls). They are kept in `metadata["public_tests"]`, apart from the
  hidden tests that decide the verdict.

Every mistake is a `DataError` naming the file, the line and the field.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from execrl.benchmarks.datafiles import DataError, iter_jsonl
from execrl.benchmarks.problem import Problem, TestKind

BENCHMARK = "problems"
"""`Problem.benchmark` of every problem-file problem."""
TEST_FORMS = {"tests": TestKind.ASSERT, "stdio": TestKind.STDIO, "calls": TestKind.CALL}
ROW_FIELDS = (
    "task_id",
    "prompt",
    *TEST_FORMS,
    "setup",
    "entry_point",
    "fn_name",
    "completion",
    "solutions",
    "difficulty",
    "starter_code",
    "stop",
    "public_tests",
)
COMPLETION_STYLES = ("program", "body")


def load_problem_file(path: str | Path) -> list[Problem]:
    """The problems of a problem file, in file order; a bad row or a repeated task id names its line."""
    path = Path(path)
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    for lineno, row in iter_jsonl(path):
        problem = problem_from_row(row, f"{path}:{lineno}")
        if problem.task_id in first_line:
            raise DataError(f"{path}:{lineno}: task_id {problem.task_id!r} repeats line {first_line[problem.task_id]}")
        first_line[problem.task_id] = lineno
        problems.append(problem)
    if not problems:
        raise DataError(f"{path}: no problems (one JSON object per line; see the README's problem file section)")
    return problems


def problem_from_row(row: Mapping[str, Any], where: str = "problem") -> Problem:
    """One problem-file row as a Problem; `where` (file:line, or a request field) starts every error."""
    if not isinstance(row, Mapping):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for key in row:
        if key not in ROW_FIELDS:
            close = difflib.get_close_matches(str(key), ROW_FIELDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise DataError(f"{where}: unknown field {key!r}{hint} (known: {', '.join(ROW_FIELDS)})")
    task_id = _string(row, "task_id", where, required=True)
    if not task_id.strip():
        raise DataError(f"{where}: field 'task_id' is empty")
    prompt = _string(row, "prompt", where, required=True)
    forms = [key for key in TEST_FORMS if key in row]
    if len(forms) != 1:
        given = f"got {', '.join(forms)}" if forms else "got none"
        raise DataError(f"{where}: give the hidden tests in exactly one of 'tests', 'stdio', 'calls' ({given})")
    form = forms[0]
    kind = TEST_FORMS[form]
    tests, inputs, outputs = _tests(row[form], form, f"{where}: field {form!r}", public=False)
    fn_name = _string(row, "fn_name", where) or None
    if kind is TestKind.CALL and not fn_name:
        raise DataError(f"{where}: field 'fn_name' is required with 'calls' (the function the calls name)")
    completion = _string(row, "completion", where) or "program"
    if completion not in COMPLETION_STYLES:
        styles = ", ".join(COMPLETION_STYLES)
        raise DataError(f"{where}: field 'completion' must be one of {styles}, got {completion!r}")
    metadata: dict[str, Any] = {"completion": completion, "stop": _strings(row, "stop", where)}
    if "public_tests" in row:
        metadata["public_tests"] = _public_tests(row["public_tests"], form, f"{where}: field 'public_tests'")
    return Problem(
        task_id=task_id,
        benchmark=BENCHMARK,
        prompt=prompt,
        test_kind=kind,
        entry_point=_string(row, "entry_point", where) or fn_name,
        test_setup=_string(row, "setup", where),
        tests=tests,
        inputs=inputs,
        outputs=outputs,
        fn_name=fn_name,
        starter_code=_string(row, "starter_code", where),
        solutions=tuple(_strings(row, "solutions", where)),
        difficulty=_string(row, "difficulty", where) or None,
        metadata=metadata,
    )


def _tests(value: Any, form: str, where: str, *, public: bool) -> tuple[tuple[str, ...], tuple, tuple]:
    """(asserts, inputs, outputs) of one test list in `form`; hidden tests may not be empty."""
    if not isinstance(value, list):
        raise DataError(f"{where}: expected a list, got {type(value).__name__}")
    if not value and not public:
        raise DataError(f"{where}: no tests (a problem needs at least one hidden test)")
    if form == "tests":
        for i, test in enumerate(value):
            if not isinstance(test, str) or not test.strip():
                raise DataError(f"{where}[{i}]: expected an assert statement as a non-empty string")
            _check_parses(test, f"{where}[{i}]")
        return tuple(value), (), ()
    inputs, outputs = [], []
    arg_key = "input" if form == "stdio" else "args"
    for i, pair in enumerate(value):
        item = f"{where}[{i}]"
        if not isinstance(pair, Mapping) or set(pair) != {arg_key, "output"}:
            raise DataError(f"{item}: expected an object with exactly the keys {arg_key!r} and 'output'")
        if form == "stdio" and not (isinstance(pair["input"], str) and isinstance(pair["output"], str)):
            raise DataError(f"{item}: 'input' and 'output' must be strings (stdin text and expected stdout)")
        if form == "calls" and not isinstance(pair["args"], list):
            raise DataError(f"{item}: 'args' must be a list of positional arguments")
        inputs.append(pair[arg_key])
        outputs.append(pair["output"])
    return (), tuple(inputs), tuple(outputs)


def _public_tests(value: Any, form: str, where: str) -> tuple:
    """Public example tests in the hidden tests' form: assert strings, or (input, output) pairs."""
    tests, inputs, outputs = _tests(value, form, where, public=True)
    return tests if form == "tests" else tuple(zip(inputs, outputs, strict=True))


def _check_parses(code: str, where: str) -> None:
    try:
        compile(code, where, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:  # ValueError: a NUL byte in the source
        raise DataError(f"{where}: not valid Python ({error})") from None


def _string(row: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str:
    if key not in row or row[key] is None:
        if required:
            raise DataError(f"{where}: missing field {key!r}")
        return ""
    if not isinstance(row[key], str):
        raise DataError(f"{where}: field {key!r} must be a string, got {type(row[key]).__name__}")
    return row[key]


def _strings(row: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = row.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{where}: field {key!r} must be a list of strings")
    return list(value)
