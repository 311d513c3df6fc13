"""From a model's raw output to what the sandbox runs: `{"completion": body}` or `{"solution": program}`.

Raw output is messy: markdown fences (maybe unterminated), chatter before and after the code, text past
a stop sequence, the prompt echoed back, a HumanEval body that lost its indentation or mixes tabs, or
nothing at all. The result is a Sample's payload:

- `completion` (HumanEval, and problem-file rows marked `"completion": "body"`: `Problem.completes_prompt`): the
  body after the prompt; `Problem.program` prepends the prompt.
- `solution`: the whole program. HumanEval gets one when the model wrote the whole function (chat
  models do): the prompt is kept in front of it so its imports and helper functions stay defined.

Nothing here judges the code; a repair is taken only when it makes the program parse, and otherwise the
text goes through unchanged so the sandbox reports the syntax error it really has. Raw output is also
untrusted text handled in the trusted process: parse errors of every kind (deep nesting raises
RecursionError or MemoryError, not SyntaxError) only mean "does not parse", and the one search that is
quadratic in the text's lines (`_trim_chatter`) stops at a budget.
"""

from __future__ import annotations

import ast
import re
import textwrap
import warnings

from execrl.benchmarks.problem import Problem
from execrl.benchmarks.prompts import stop_sequences
from execrl.benchmarks.synth import synth_program

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([\w+.#-]*)[^\n]*$")
PYTHON_TAGS = ("", "python", "py", "python3", "py3")
# Lines where a whole program may start once chatter before it is dropped.
CODE_START = re.compile(
    r"^(?:async def |def |class |import |from |@|if |for |while |with |try:|[A-Za-z_][\w.]*\s*[=(\[])"
)
TRIM_BUDGET = 2_000_000
"""Characters `_trim_chatter` may parse while it looks for code in prose; past it the text goes through
unchanged. Normal answers use a few hundred kB at most; 1,000 lines that never parse took 6 s unbounded."""
# Everything ast.parse raises on text it cannot take: SyntaxError, ValueError (NUL bytes, surrogates),
# RecursionError (deep nesting in ast construction), MemoryError (the parser's own stack).
PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


def extract(problem: Problem, raw: str, *, chat: bool = False) -> dict[str, str]:
    """The Sample payload for one raw model output (`chat`: the output answers `chat_messages`)."""
    text = raw.replace("\r\n", "\n")
    name = problem.entry_point or problem.fn_name
    block = _fenced_code(text, name)
    if block is not None and not chat:
        # A completion model that wrote code first and then opened a fence (for chatter) meant the code.
        before = text[: _first_fence(text)]
        if before.strip() and _is_code(before):
            block = None
            text = before
    if block is None and not chat:
        if problem.benchmark in ("synth", "synth-repair"):
            return {"solution": synth_program(problem, text)}
        code = _truncate(_strip_echo(problem, text), stop_sequences(problem))
    else:
        code = block if block is not None else _trim_chatter(text)

    if not problem.completes_prompt:
        return {"solution": _trim_chatter(code).strip("\n") + "\n" if code.strip() else ""}
    if _defines(code, problem.entry_point):
        return {"solution": problem.prompt + "\n" + _trim_chatter(code).strip("\n") + "\n"}
    return {"completion": _repair_body(problem.prompt, _strip_echo(problem, code))}


def program_of(problem: Problem, raw: str, *, chat: bool = False) -> str:
    """The program the sandbox runs for one raw model output: `extract`'s payload as `execrl evaluate` runs it."""
    payload = extract(problem, raw, chat=chat)
    return payload["solution"] if "solution" in payload else problem.program(payload["completion"])


def _first_fence(text: str) -> int:
    match = re.search(r"^ {0,3}(`{3,}|~{3,})", text, re.MULTILINE)
    return match.start() if match else len(text)


def _fenced_code(text: str, name: str | None) -> str | None:
    """The code of the fenced block to use, or None when the text has no fence.

    Preference: the block that defines `name`, then the first non-empty block tagged as Python (or
    untagged), then the first non-empty block. A fence left open runs to the end of the text. Fences
    that hold nothing leave the text before the first of them.
    """
    blocks: list[tuple[str, str]] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        marker, tag = opening.group(1), opening.group(2).lower()
        end = i + 1
        while end < len(lines) and not re.fullmatch(rf" {{0,3}}{marker[0]}{{{len(marker)},}}[ \t]*", lines[end]):
            end += 1
        blocks.append((tag, "\n".join(lines[i + 1 : end])))
        i = end + 1
    if not blocks:
        return None
    filled = [(tag, code) for tag, code in blocks if code.strip()]
    if not filled:
        return text[: _first_fence(text)]
    if name:
        for _, code in filled:
            if re.search(rf"^[ \t]*(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE):
                return code
    return next((code for tag, code in filled if tag in PYTHON_TAGS), filled[0][1])


def _truncate(text: str, stops: list[str]) -> str:
    """`text` up to the first stop sequence."""
    cut = min((at for at in (text.find(stop) for stop in stops if stop) if at >= 0), default=len(text))
    return text[:cut]


def _strip_echo(problem: Problem, text: str) -> str:
    """The text after the prompt when the model repeated the prompt first."""
    if not problem.completes_prompt:
        return text
    head = problem.prompt.strip()
    stripped = text.lstrip()
    if head and stripped.startswith(head):
        rest = stripped[len(head) :]
        return rest[1:] if rest.startswith("\n") else rest
    return text


def _defines(code: str, name: str | None) -> bool:
    return bool(name) and re.search(rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def _body_candidates(body: str) -> list[str]:
    """Ways to read a function body, least changed first (the last one is fully re-indented)."""
    detabbed = "\n".join(_expand_leading_tabs(line) for line in body.split("\n"))
    lines = detabbed.split("\n")
    first = next((k for k, line in enumerate(lines) if line.strip()), None)
    candidates = [body, detabbed]
    if first is not None and not lines[first].startswith(" "):
        # The model took the prompt's indentation as given: its first line starts at column 0.
        candidates.append("\n".join(lines[:first] + ["    " + lines[first]] + lines[first + 1 :]))
    candidates.append(textwrap.indent(textwrap.dedent(detabbed), "    "))
    return candidates


def _repair_body(prompt: str, body: str) -> str:
    """The first reading of `body` that completes the prompt's function; `body` unchanged when none does."""
    if not body.strip():
        return ""
    # The body must parse and stay inside the prompt's last function: no new top-level statements
    # (a dedented body also parses, as module-level code after a docstring-only function).
    n_statements = _n_statements(prompt)
    if n_statements < 0:  # a bare `def` line (a problem file's body-style prompt) parses once it has a body
        n_statements = _n_statements(prompt + "    pass\n")
    for candidate in _body_candidates(body):
        if _n_statements(prompt + candidate) == n_statements:
            return candidate
    return body


def _expand_leading_tabs(line: str) -> str:
    indent = len(line) - len(line.lstrip(" \t"))
    return line[:indent].expandtabs(4) + line[indent:]


def _trim_chatter(code: str) -> str:
    """`code` without prose before or after it: the widest span of lines that parses, from a line where code
    can start. Unchanged when it parses already or no span does."""
    if not code.strip() or _parses(code):
        return code
    lines = code.split("\n")
    starts = [k for k, line in enumerate(lines) if CODE_START.match(line)][:10]
    budget = TRIM_BUDGET
    for start in starts:
        for end in range(len(lines), start, -1):
            span = "\n".join(lines[start:end])
            budget -= len(span)
            if budget < 0:
                return code
            if _is_code(span):
                return span
    return code


def _is_code(text: str) -> bool:
    """Whether `text` parses as Python and holds more than a bare word (prose like "Sure" parses too)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(textwrap.dedent(text))
    except PARSE_ERRORS:
        return False
    return any(not isinstance(stmt, ast.Expr) or isinstance(stmt.value, ast.Call | ast.Await) for stmt in tree.body)


def _n_statements(text: str) -> int:
    """Top-level statements in `text`, or -1 when it does not parse."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return len(ast.parse(text).body)
    except PARSE_ERRORS:
        return -1


def _parses(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
    except PARSE_ERRORS:
        return False
    return True
