"""Markdown, the plain-text twin of the HTML report (for PR comments in CI): the same blocks in the same order.

Run folders are hostile input, and Markdown passes raw HTML through (GitHub sanitises it; other viewers may
not), so every string from a block is escaped with `md_escape`: a backslash before each character Markdown
or HTML would act on (CommonMark 0.31, sec. 2.4: any ASCII punctuation may be backslash-escaped). Programs
are not copied into the Markdown; the HTML holds them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from execrl.reports.blocks import (
    Block,
    Drilldown,
    Heading,
    Headline,
    HeadlineRow,
    Health,
    Image,
    Interval,
    RunSide,
    Table,
    Tabs,
    Text,
    fmt,
    points,
)

# Characters that start markup a reader could be fooled by (code, emphasis, links and images, raw HTML,
# entities, table cells); `_` and `~` are left alone for readability (in GFM they only emphasise or strike).
# A backslash before ASCII punctuation is itself escaped, so a `\<` in the input cannot undo the escape of `<`.
_SPECIAL = re.compile(r"([`*\[\]<>|&]|\\(?=[!-/:-@\[-`{-~]))")


def md_escape(text: str) -> str:
    """`text` as literal Markdown inline text: specials backslash-escaped, line breaks as spaces."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))


def _is_numeric(cell: object) -> bool:
    """Cells formatted here from numbers alone (so they hold no markup and are left readable, unescaped)."""
    if cell is None or isinstance(cell, Interval):
        return True
    if isinstance(cell, tuple) and len(cell) == 2:
        return all(isinstance(v, float) for v in cell)
    return isinstance(cell, (int, float))


def _cell(cell: object) -> str:
    return fmt(cell) if _is_numeric(cell) else md_escape(fmt(cell))


def _table(block: Table) -> str:
    lines = ["| " + " | ".join(md_escape(h) for h in block.header) + " |", "|" + "---|" * len(block.header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in block.rows]
    return "\n".join(lines)


def headline_line(row: HeadlineRow) -> str:
    """One benchmark's verdict in words, as Markdown: the names escaped, the numbers formatted here."""
    p = "" if row.p_value is None else f", p = {row.p_value:.4f}"
    return (
        f"{md_escape(row.benchmark)}: {md_escape(row.metric)} {row.baseline:.3f} → {row.candidate:.3f}, "
        f"{points(row.delta)} points "
        f"(95% CI [{points(row.ci95[0])}, {points(row.ci95[1])}]){p} over {row.n_problems} problems: {row.verdict}"
    )


def _headline(block: Headline) -> str:
    lines = [f"## {md_escape(block.title)}", ""]
    lines += [f"- **{headline_line(row)}**" for row in block.rows]
    lines += [f"- {md_escape(line)}" for line in (*block.collapsed, *block.notes)]
    if block.provenance is not None:
        lines += ["", "Provenance:", "", _table(block.provenance)]
    return "\n".join(lines)


def side_summary(side: RunSide) -> str:
    return f"{side.passed}/{side.n} passed ({', '.join(side.verdicts)})"


def _drilldown(block: Drilldown) -> str:
    flips = [p for p in block.problems if p.flip]
    lines = [*(md_escape(note) for note in block.notes)]
    if not flips:
        return "\n\n".join([*lines, "No flips."])
    base, cand = flips[0].sides[0].run, flips[0].sides[1].run
    table = Table(
        ["benchmark", "task", "difficulty", "flip", base, cand],
        [[p.benchmark, p.task_id, p.difficulty, p.flip, *(side_summary(s) for s in p.sides)] for p in flips],
    )
    return "\n\n".join([*lines, _table(table)])


def _health(block: Health) -> str:
    lines = [f"### Training health: {md_escape(block.run)}", ""]
    lines += [f"- WARNING: {md_escape(w)}" for w in block.warnings] or ["No warnings."]
    lines += ["", _table(block.summary)]
    if block.image is not None:
        lines += ["", _image(block.image)]
    return "\n".join(lines)


def _image(block: Image) -> str:
    return f"![{md_escape(block.title)}]({block.path.name})"


def render_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {md_escape(block.text)}"
    if isinstance(block, Text):
        return f"**{md_escape(block.text)}**" if block.warning else md_escape(block.text)
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Image):
        return _image(block)
    if isinstance(block, Headline):
        return _headline(block)
    if isinstance(block, Drilldown):
        return _drilldown(block)
    if isinstance(block, Health):
        return _health(block)
    if isinstance(block, Tabs):
        panels = (f"## {md_escape(tab.title)}\n\n" + render_markdown(tab.blocks).rstrip() for tab in block.tabs)
        return "\n\n".join(panels)
    raise TypeError(f"not a report block: {block!r}")


def render_markdown(blocks: Sequence[Block]) -> str:
    return "\n\n".join(render_block(block) for block in blocks) + "\n"
