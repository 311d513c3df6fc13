"""Public example tests: the tests a model may see and run before it submits, kept apart from the hidden ones.

`public_problem(problem)` is a copy of `problem` whose tests are its public examples only (same test kind, so the
sandbox runs a program on them exactly as on the hidden tests), or None when it has none. Per benchmark:

- MBPP: the asserts its prompt shows (`test_list`; Austin et al. 2021 show them by protocol, so for MBPP the
  public tests are also scoring tests; only the challenge tests, when loaded, are hidden-only).
- HumanEval and HumanEval+: the examples in the prompt's docstring, `>>> call` then the expected value, or a line
  `name(args) => value` (also `==>`, `==`, `->`, `➞`), when the call and value are Python literals. Prose
  examples ("Example 1: Input: [4,2,3] Output: [2, 1]") are not parsed.
- APPS: the statement's examples: stdin problems' `-----Example(s)-----` sections (`Input` / `Output` blocks) or
  `-----Sample Input N-----` / `-----Sample Output N-----` pairs; call-based problems' `Input: a = 1, b = "x"` /
  `Output: 2` lines (JSON-style `true`/`false`/`null` read as Python's).
- LiveCodeBench: its rows' `public_test_cases` (the statement's examples; they are also scored, as LiveCodeBench
  does).
- synth: `metadata["public_tests"]`, examples drawn apart from the hidden tests (`execrl.benchmarks.synth`).
- A problem file: its rows' `public_tests`.

Examples are read from the text the model is shown, so they never add information the prompt lacks; a parser
that misreads one yields a test the reference solution fails, which the tests over the real data look for.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from typing import Any

from execrl.benchmarks.problem import Problem, TestKind

_ARROWS = ("==>", "=>", "->", "➞", "==")


def public_problem(problem: Problem) -> Problem | None:
    """`problem` with only its public example tests, or None when it has none."""
    if "public_tests" in problem.metadata:
        return _from_metadata(problem, problem.metadata["public_tests"])
    if problem.benchmark == "mbpp":
        shown = problem.tests[: problem.metadata.get("n_prompt_tests", len(problem.tests))]
        return dataclasses.replace(problem, tests=shown) if shown else None
    if problem.benchmark == "livecodebench":  # its public test cases come first among its tests
        n = problem.metadata.get("n_public", 0)
        return dataclasses.replace(problem, inputs=problem.inputs[:n], outputs=problem.outputs[:n]) if n else None
    if problem.benchmark in ("humaneval", "humanevalplus"):
        asserts = humaneval_examples(problem.prompt, problem.entry_point or "")
        return dataclasses.replace(problem, check_code="", test_setup="", tests=tuple(asserts)) if asserts else None
    if problem.benchmark == "apps":
        if problem.test_kind is TestKind.STDIO:
            pairs = stdio_examples(problem.prompt)
        else:
            pairs = call_examples(problem.prompt)
        if not pairs:
            return None
        return dataclasses.replace(problem, inputs=tuple(i for i, _ in pairs), outputs=tuple(o for _, o in pairs))
    return None


def _from_metadata(problem: Problem, tests: tuple) -> Problem | None:
    if not tests:
        return None
    if problem.test_kind is TestKind.ASSERT:
        return dataclasses.replace(problem, check_code="", tests=tuple(tests))
    return dataclasses.replace(problem, inputs=tuple(i for i, _ in tests), outputs=tuple(o for _, o in tests))


def humaneval_examples(prompt: str, entry_point: str) -> list[str]:
    """Assert statements for the docstring examples of `entry_point` that are literal calls and values."""
    lines = [line.strip() for line in prompt.splitlines()]
    asserts: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith(">>>"):
            call, value = line[3:].strip(), lines[i + 1] if i + 1 < len(lines) else ""
        else:
            call, value = _split_arrow(line)
        test = _literal_assert(call, value, entry_point)
        if test and test not in asserts:
            asserts.append(test)
    return asserts


def _split_arrow(line: str) -> tuple[str, str]:
    for arrow in _ARROWS:
        if arrow in line:
            call, value = line.split(arrow, 1)
            return call.strip(), value.strip()
    return "", ""


def _literal_assert(call: str, value: str, entry_point: str) -> str | None:
    """`assert call == value` when `call` is `entry_point(literals...)` and `value` a literal; floats compare
    within 1e-6, since a docstring rounds them."""
    try:
        node = ast.parse(call, mode="eval").body
        expected = ast.literal_eval(value)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point):
        return None
    try:
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            ast.literal_eval(arg)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(expected, float):
        return f"assert abs({call} - {expected!r}) < 1e-6"
    return f"assert {call} == {expected!r}"


_SECTION = re.compile(r"^-----\s*(Examples?|Sample Input|Sample Output|Note|Notes)\b[^-]*-----$", re.IGNORECASE)


def stdio_examples(question: str) -> list[tuple[str, str]]:
    """(stdin, expected stdout) pairs from an APPS standard-input statement's example sections."""
    lines = question.splitlines()
    pairs: list[tuple[str, str]] = []
    sample_inputs: list[str] = []
    i = 0
    while i < len(lines):
        header = _SECTION.match(lines[i].strip())
        if not header:
            i += 1
            continue
        kind = header.group(1).lower()
        end = next((j for j in range(i + 1, len(lines)) if _SECTION.match(lines[j].strip())), len(lines))
        body = lines[i + 1 : end]
        if kind.startswith("example"):
            pairs += _input_output_blocks(body)
        elif kind == "sample input":
            sample_inputs.append(_block(body))
        elif kind == "sample output" and sample_inputs:
            pairs.append((sample_inputs.pop(0), _block(body)))
        i = end
    return [(stdin, out) for stdin, out in pairs if stdin.strip() and out.strip()]


def _input_output_blocks(body: list[str]) -> list[tuple[str, str]]:
    """Pairs of `Input` / `Output` blocks inside an Example(s) section."""
    pairs, mode, current_in, current_out = [], None, [], []
    for line in body:
        word = line.strip().rstrip(":").lower()
        if word == "input":
            if mode == "output":
                pairs.append((_block(current_in), _block(current_out)))
                current_in, current_out = [], []
            mode = "input"
        elif word == "output" and mode == "input":
            mode = "output"
        elif mode == "input":
            current_in.append(line)
        elif mode == "output":
            current_out.append(line)
    if mode == "output":
        pairs.append((_block(current_in), _block(current_out)))
    return pairs


def _block(lines: list[str]) -> str:
    """Lines as the text a program reads or prints: surrounding blank lines dropped, one final newline."""
    text = "\n".join(lines).strip("\n")
    return text + "\n" if text else ""


_CALL_INPUT = re.compile(r"^\s*Input:\s*(.+)$")
_CALL_OUTPUT = re.compile(r"^\s*Output:\s*(.+)$")


def call_examples(question: str) -> list[tuple[list[Any], Any]]:
    """(arguments, expected value) pairs from LeetCode-style `Input: a = 1, b = [2]` / `Output: 3` lines."""
    lines = question.splitlines()
    pairs = []
    for i, line in enumerate(lines):
        match = _CALL_INPUT.match(line)
        if not match:
            continue
        output = next((_CALL_OUTPUT.match(x) for x in lines[i + 1 : i + 3] if _CALL_OUTPUT.match(x)), None)
        if output is None:
            continue
        args, value = _call_args(match.group(1)), _json_literal(output.group(1).strip())
        if args is not None and value is not _MISSING:
            pairs.append((args, value))
    return pairs


_MISSING = object()


def _call_args(text: str) -> list[Any] | None:
    """`a = 1, b = "x y"` (or a bare `[1, 2]`) as positional argument values, or None when unreadable."""
    names = re.findall(r"(?:^|,)\s*([A-Za-z_]\w*)\s*=", text)
    if names:
        values = re.split(r"(?:^|,)\s*[A-Za-z_]\w*\s*=\s*", text)[1:]
        parsed = [_json_literal(v.strip().rstrip(",").strip()) for v in values]
        return None if any(v is _MISSING for v in parsed) or len(parsed) != len(names) else parsed
    value = _json_literal(text.strip())
    return None if value is _MISSING else [value]


def _json_literal(text: str) -> Any:
    """A JSON or Python literal, or `_MISSING`."""
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return _MISSING
