"""The Markdown twin: hostile strings from run folders stay literal text, one row per attack."""

from __future__ import annotations

import pytest
from execrl.reports.blocks import Heading, Interval, Table, Text
from execrl.reports.markdown import md_escape, render_markdown


@pytest.mark.parametrize(
    "text, escaped, reason",
    [
        ("<script>alert(1)</script>", "\\<script\\>alert(1)\\</script\\>", "raw HTML passes through Markdown"),
        ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)\\>", "an element with a handler"),
        ("[click](javascript:alert(1))", "\\[click\\](javascript:alert(1))", "a link a viewer may follow"),
        ("![x](http://evil/p.png)", "!\\[x\\](http://evil/p.png)", "an image: a request to a tracker"),
        ("a | b", "a \\| b", "a pipe splits a table cell"),
        ("```\n# heading", "\\`\\`\\` # heading", "a fence or a heading needs its own line: lines are joined"),
        ("&lt;b&gt;", "\\&lt;b\\&gt;", "an entity would decode to markup-looking text"),
        ("\\<b>", "\\\\\\<b\\>", "a backslash of the input cannot cancel the escape of <"),
        ("**bold**", "\\*\\*bold\\*\\*", "emphasis that could fake a verdict line"),
        ("base\\udcff", "base\\udcff", "a backslash before a letter is literal and left alone"),
    ],
    ids=[
        "script",
        "img-onerror",
        "link",
        "image",
        "pipe",
        "fence-and-heading",
        "entity",
        "backslash",
        "bold",
        "plain",
    ],
)
def test_md_escape_keeps_hostile_text_literal(text, escaped, reason) -> None:
    assert md_escape(text) == escaped, reason


def test_numbers_and_intervals_are_not_escaped_but_text_cells_are() -> None:
    table = Table(["run", "pass@1", "95% CI", "delta CI"], [["<b>", 0.5, Interval(0.25, 0.75), (-0.1, 0.2)]])
    markdown = render_markdown([Heading("T <i>", 1), Text("warn", warning=True), table])
    assert markdown.splitlines()[0] == "# T \\<i\\>"
    assert "**warn**" in markdown
    assert "| \\<b\\> | 0.500 | [0.250, 0.750] | [-0.100, +0.200] |" in markdown
