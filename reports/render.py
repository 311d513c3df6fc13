"""Writing reports: one list of blocks rendered twice, as Markdown and as self-contained HTML.

A report is a list of blocks (`execrl.reports.blocks`), so report.md (`execrl.reports.markdown`) and
report.html (`execrl.reports.html`: Jinja2 templates, every PNG a base64 data URI, CSS and JS inline) always
say the same thing in the same order: the file can be mailed or attached to a CI run and opens with no
other asset.

Output folders are claimed with `claim_output`: a stamp file records the inputs a folder was made
from; a rerun with the same inputs writes only the files that are missing, other inputs are refused
unless the caller's force flag is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from execrl.harness import runfolder
from execrl.reports.blocks import Block, Heading, Image, Table, Text, fmt
from execrl.reports.html import render_html
from execrl.reports.markdown import render_markdown

__all__ = [
    "Block",
    "Heading",
    "Image",
    "Table",
    "Text",
    "claim_output",
    "fmt",
    "render_html",
    "render_markdown",
    "write_report",
]

STAMP = ".execrl-report.json"


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
