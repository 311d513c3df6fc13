"""What the labelling page shows, as data for the templates: highlighted lines, a diff, test outcomes.

Program text, comments and problem statements are hostile input (a policy under RL writes whatever it is
rewarded for, and a pairs file may come from anywhere). So no HTML is built here: Pygments only *splits* a
program into (token class, text) spans and the templates write each text through Jinja2's autoescaping
(`autoescape=True` for every template, and no template uses `|safe` or turns escaping off; a test reads them
all). The colours come from Pygments' own stylesheet for its short token class names, served as a file.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from typing import Any

from execrl.reports.labelling.pairs import Pair, Side

MAX_SHOWN = 200_000
"""Characters of one program shown; the rest is cut with a note (a page must stay usable whatever arrives)."""


@dataclass(frozen=True)
class Span:
    css: str
    """Pygments' short class name for the token type (`k` keyword, `s2` string...), "" for plain text."""
    text: str


def _css_class(ttype: Any) -> str:
    from pygments.token import STANDARD_TYPES

    while ttype not in STANDARD_TYPES:
        ttype = ttype.parent
    return STANDARD_TYPES[ttype]


def highlight(program: str) -> list[list[Span]]:
    """The program's lines, each a list of spans (Pygments' Python lexer; no HTML)."""
    from pygments.lexers import PythonLexer

    shown = program if len(program) <= MAX_SHOWN else program[:MAX_SHOWN]
    lines: list[list[Span]] = [[]]
    for ttype, value in PythonLexer(stripnl=False, ensurenl=False).get_tokens(shown):
        css = _css_class(ttype)
        for i, piece in enumerate(value.split("\n")):
            if i:
                lines.append([])
            if piece:
                lines[-1].append(Span(css, piece))
    if len(lines) > 1 and not lines[-1]:  # the newline that ends the last line starts no line of its own
        lines.pop()
    if len(program) > MAX_SHOWN:
        lines.append([Span("c", f"# ... {len(program) - MAX_SHOWN} more characters not shown")])
    return lines


def diff_lines(a: str, b: str) -> list[tuple[str, str]]:
    """A unified diff of A against B as (kind, text) rows: kind is `hunk`, `del` (only in A), `add` (only in B)
    or `same`."""
    rows = []
    kinds = {"@": "hunk", "-": "del", "+": "add", " ": "same"}
    for line in difflib.unified_diff(
        a[:MAX_SHOWN].splitlines(), b[:MAX_SHOWN].splitlines(), "A", "B", lineterm="", n=3
    ):
        if line.startswith(("---", "+++")):
            continue
        rows.append((kinds.get(line[:1], "same"), line))
    return rows


def side_view(side: Side) -> dict[str, Any]:
    return {
        "lines": highlight(side.program),
        "verdict": side.verdict or "not run",
        "passed": side.passed,
        "tests": [{"n": i, "verdict": t["verdict"], "error": t.get("error", "")} for i, t in enumerate(side.tests, 1)],
        "n_passed": sum(t["verdict"] == "passed" for t in side.tests),
        "error": side.error,
    }


def pair_view(pair: Pair) -> dict[str, Any]:
    """Everything pair.html shows of a pair."""
    return {
        "pair_id": pair.pair_id,
        "task_id": pair.task_id,
        "statement": pair.statement,
        "a": side_view(pair.a),
        "b": side_view(pair.b),
        "diff": diff_lines(pair.a.program, pair.b.program),
    }


@cache
def templates() -> Any:
    """The Jinja2 environment over this package's templates, escaping every value written into any of them."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("execrl.reports.labelling", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def code_css() -> str:
    """Pygments' stylesheet for its token classes, under `.code`."""
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".code")
