"""HTML reports: the blocks of `execrl.reports.blocks` through Jinja2 templates, one self-contained file.

The page opens from a file:// URL with no network and no server: CSS and a little vanilla JS (filters,
tabs, sortable columns) are inline, PNGs are base64 data URIs, syntax highlighting is Pygments with inline
styles.

Escape discipline. Program text, error text, task ids, problem statements, run and model names come from
run folders and are hostile (under RL, a policy is paid for output that fools its judge). Autoescaping is on
for every template, nothing in a template is marked `|safe`, and data never enters the inline script (the
JS reads the page's escaped attributes and text). The one piece of markup made in Python is Pygments'
highlighting, in `highlight_python`, and the comment there says why that is safe.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from execrl.reports.blocks import Block, Interval, fmt, points
from execrl.reports.markdown import side_summary
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

HIGHLIGHT_LIMIT = 20_000
"""Programs longer than this (characters) are shown cut to it: Pygments is linear, but a page of
megabyte-sized programs is not one a reviewer can use (the drill-down says how much was cut)."""


def highlight_python(code: str) -> Markup:
    """`code` as highlighted HTML (inline styles, no stylesheet needed).

    Marking this output safe is sound only because Pygments' HtmlFormatter escapes the text of every token
    (`&`, `<`, `>`, `"` and `'`; `escape_html` in pygments/formatters/html.py) before wrapping it in a
    `<span style=...>` whose style is one of the formatter's own constants: nothing of `code` reaches the
    page as markup. A `</script>` or `<img onerror=...>` in a program stays text.
    """
    return Markup(highlight(code, PythonLexer(stripnl=False, ensurenl=True), _formatter()))


@cache
def _formatter() -> HtmlFormatter:
    return HtmlFormatter(noclasses=True, style="default", cssstyles="margin: 0")


def _is_number(value: Any) -> bool:
    """Cells shown right-aligned and sorted as numbers: numbers, intervals (by their low end), blanks."""
    if value is None or isinstance(value, Interval):
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sort_key(value: Any) -> str:
    """`data-value` of a numeric cell, for the sortable tables ("" when not a number)."""
    if isinstance(value, Interval):
        value = value.lo
    return repr(float(value)) if isinstance(value, (int, float)) and value == value else ""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _slug(text: str) -> str:
    """A CSS class fragment from data (a verdict): letters, digits, `_` and `-` only."""
    return re.sub(r"[^a-z0-9_-]", "", str(text).lower())


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("execrl.reports", "templates"),
        autoescape=True,  # every {{ }} is escaped; see the module docstring
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt, points=points, python=highlight_python, data_uri=_data_uri, slug=_slug)
    env.filters.update(sort_key=_sort_key)
    env.tests["number"] = _is_number
    env.globals.update(side_summary=side_summary)
    return env


def render_html(blocks: Sequence[Block], title: str) -> str:
    return environment().get_template("page.html.j2").render(blocks=blocks, title=title)
