"""The comparison report: self-contained HTML and its Markdown twin (the browser tests are in test_browser.py)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from execrl.reports.render import Heading, Table, Text, render_html, render_markdown

from tests.commands import command
from tests.reports.conftest import BAD_PROGRAM

report_main = command("report")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _report(make_run, tmp_path: Path) -> Path:
    tasks = [f"synth/{i}" for i in range(24)]
    difficulty = {t: ("easy", "hard")[i % 2] for i, t in enumerate(tasks)}
    base = make_run(
        "sft",
        {t: [i % 3 == 0, i % 4 == 0] for i, t in enumerate(tasks)},
        difficulty=difficulty,
        program=BAD_PROGRAM,
        fail_verdict="runtime_error",
    )
    cand = make_run("ppo", {t: [i % 2 == 0, i % 3 == 0] for i, t in enumerate(tasks)}, difficulty=difficulty)
    (cand / "train").mkdir()
    rows = [
        {"step": s, "ppo/mean_reward": 0.1 * s, "ppo/kl": 0.01 * s, "code/pass_rate": 0.3 + 0.02 * s, "time/step": 1.0}
        for s in range(10)
    ]
    (cand / "train" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "report"
    assert report_main(["compare", str(base), str(cand), "--out", str(out), "--bootstrap", "200"]) == 0
    return out


def test_html_report_is_self_contained_with_tables_and_embedded_plots(make_run, tmp_path) -> None:
    out = _report(make_run, tmp_path)
    page = (out / "report.html").read_text()
    sources = re.findall(r'<img[^>]*src="([^"]*)"', page)
    assert len(sources) == 5  # pass@k, verdicts, quality, difficulty, training curves of the candidate
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert not re.search(r'(href|src)="(?!data:)', page)
    assert {p.name for p in out.glob("*.png")} == {
        "pass_at_k.png",
        "verdicts.png",
        "quality.png",
        "difficulty.png",
        "training_1.png",
    }
    markdown = (out / "report.md").read_text()
    assert "| pass@1 |" in markdown and "![Verdict distribution](verdicts.png)" in markdown


def test_rerun_with_same_inputs_writes_only_missing_files_and_other_inputs_are_refused(
    make_run, tmp_path, capsys
) -> None:
    out = _report(make_run, tmp_path)
    (out / "quality.png").unlink()
    before = (out / "comparison.json").stat().st_mtime_ns
    argv = ["compare", str(tmp_path / "sft"), str(tmp_path / "ppo"), "--out", str(out), "--bootstrap", "200"]
    assert report_main(argv) == 0
    assert (out / "quality.png").exists() and (out / "comparison.json").stat().st_mtime_ns == before
    assert report_main([*argv[:-1], "300"]) == 2
    assert "--force" in capsys.readouterr().err
    assert report_main([*argv[:-1], "300", "--force"]) == 0
    assert (out / "comparison.json").stat().st_mtime_ns != before


def test_markdown_and_html_say_the_same_thing() -> None:
    blocks = [Heading("Title", 1), Text("a < b"), Table(["metric", "value"], [["pass@1", 0.5], ["x|y", None]])]
    markdown, page = render_markdown(blocks), render_html(blocks, "t")
    assert "| pass@1 | 0.500 |" in markdown and "| x\\|y | – |" in markdown
    assert '<td data-value="0.5">0.500</td>' in page and "a &lt; b" in page and "<h1>Title</h1>" in page


@pytest.mark.parametrize(
    "extra, message",
    [(["--bootstrap", "0"], "--bootstrap must be >= 1"), (["--names", "a", "b"], "no such run folder")],
    ids=["bad-flag-value", "missing-run-folder"],
)
def test_compare_usage_errors_exit_2_naming_the_flag_or_path(make_run, tmp_path, capsys, extra, message) -> None:
    a = make_run("a", {"synth/1": [True]})
    b = a if extra[0] == "--bootstrap" else tmp_path / "missing"
    assert report_main(["compare", str(a), str(b), "--out", str(tmp_path / "o"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_hostile_text_in_a_run_folder_still_gives_both_reports(make_run, tmp_path, monkeypatch) -> None:
    # Samples and config come from a model and a user: a lone surrogate (JSON can spell one, UTF-8 cannot
    # hold it) in the model name and in programs, a folder name that is not UTF-8 (it decodes to one), and
    # programs that stall or crash a static analyser.
    import os

    from execrl.harness.scoring import quality

    monkeypatch.setattr(quality, "SAMPLE_TIMEOUT", 1.0)
    tasks = [f"synth/{i}" for i in range(6)]
    difficulty = {t: ("easy", "hard\udfff")[i % 2] for i, t in enumerate(tasks)}
    outcomes = {t: [True, False] for t in tasks}
    base = make_run(os.fsdecode(b"base\xff"), outcomes, config={"model": "tiny\ud800"}, difficulty=difficulty)
    cand = make_run("cand", {t: [False, True] for t in tasks}, program="x = '\udfff'\n")
    hostile = ["x = [\n" + "    1,\n" * 6000 + "]\n", "x = " + "-" * 100000 + "1\n", "\x00", "pass\n" * 100000]
    rows = [json.loads(line) for line in (cand / "samples.jsonl").read_text().splitlines()]
    for row, program in zip(rows, hostile, strict=False):
        row["completion"] = program
    (cand / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "report"
    assert report_main(["compare", str(base), str(cand), "--out", str(out), "--bootstrap", "50"]) == 0
    assert "tiny\\ud800" in (out / "report.html").read_text(encoding="utf-8")
    assert "tiny\\ud800" in (out / "report.md").read_text(encoding="utf-8")
    assert "base\\udcff" in (out / "report.md").read_text(encoding="utf-8")
    assert {"pass_at_k.png", "verdicts.png", "quality.png", "difficulty.png"} <= {p.name for p in out.glob("*.png")}
