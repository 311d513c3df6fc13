"""Writing reports: one list of blocks rendered twice, as Markdown and as self-contained HTML.

A report is a list of blocks — `Heading`, `Text`, `Table`, `Image` — so report.md and report.html
always say the same thing. The HTML embeds every PNG as a base64 data URI and carries its own CSS:
the file can be mailed or attached to a CI run and opens with no other asset.

Output folders are claimed with `claim_output`: a stamp file records the inputs a folder was made
from; a rerun with the same inputs writes only the files that are missing, other inputs are refused
unless the caller's force flag is given.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from execrl.harness import runfolder

STAMP = ".execrl-report.json"


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]


@dataclass(frozen=True)
class Image:
    title: str
    path: Path


Block = Heading | Text | Table | Image


def fmt(value: Any) -> str:
    """Cells: floats with 3 decimals (NaN and None as an en dash), CIs as [lo, hi], the rest as str."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return f"[{value[0]:+.3f}, {value[1]:+.3f}]"
    return str(value)


def render_markdown(blocks: Sequence[Block]) -> str:
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Text):
            out.append(block.text)
        elif isinstance(block, Table):
            lines = ["| " + " | ".join(block.header) + " |", "|" + "---|" * len(block.header)]
            lines += ["| " + " | ".join(fmt(cell).replace("|", "\\|") for cell in row) + " |" for row in block.rows]
            out.append("\n".join(lines))
        else:
            out.append(f"![{block.title}]({block.path.name})")
    return "\n\n".join(out) + "\n"


CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 4px 10px; text-align: right; }
th { background: #eef; } td:first-child, th:first-child { text-align: left; }
td.text { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
"""


def _cell(value: Any) -> str:
    """Numbers right-aligned (the CSS default for td), text left."""
    numeric = isinstance(value, (int, float, tuple, list)) or value is None
    return f"<td>{html.escape(fmt(value))}</td>" if numeric else f'<td class="text">{html.escape(fmt(value))}</td>'


def render_html(blocks: Sequence[Block], title: str) -> str:
    out = [
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        f"<style>{CSS}</style></head><body>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            out.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
            body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in block.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        else:
            data = base64.b64encode(block.path.read_bytes()).decode("ascii")
            out.append(
                f'<figure><img alt="{html.escape(block.title)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(block.title)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def claim_output(out: Path, stamp: dict[str, Any], outputs: Sequence[str], force: bool, force_flag: str) -> None:
    """Make `out` ours (`execrl.harness.runfolder.claim`, the stamp being the report's inputs): refuse a folder
    holding outputs made from other inputs unless forced; with `force` the listed outputs are deleted so that
    everything is recomputed, else only missing outputs are written."""
    runfolder.claim(out, stamp, outputs=outputs, force=force, stamp=STAMP, hint=f"pass {force_flag} to overwrite")


def write_report(out: Path, stem: str, blocks: Sequence[Block], title: str) -> list[Path]:
    """`stem`.md and `stem`.html, each only when missing (claim_output has cleared stale ones)."""
    written = []
    for path, render in ((out / f"{stem}.md", render_markdown), (out / f"{stem}.html", None)):
        if path.exists():
            continue
        # Names and ids come from run folders, so a lone surrogate (JSON "\ud800", a non-UTF-8 path) is
        # possible; it is written as its escape instead of failing the whole report.
        text = render(blocks) if render else render_html(blocks, title)
        path.write_text(text, encoding="utf-8", errors="backslashreplace")
        written.append(path)
    return written
