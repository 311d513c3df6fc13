"""The headline: direction and colour, benchmarks both runs score zero on collapsed, the notes a reviewer must
see first (hack attempts and containment when evaluate recorded them), and the Markdown twin opening with it."""

from __future__ import annotations

import json

import pytest
from execrl.reports.compare import compare_runs
from execrl.reports.headline import build_headline, direction
from execrl.reports.runs import load_run

from tests.commands import command


@pytest.mark.parametrize(
    "delta, p_value, expected",
    [
        (0.2, 0.001, "better"),
        (-0.2, 0.001, "worse"),
        (0.2, 0.30, "unchanged"),  # large but not significant
        (0.0, 0.001, "unchanged"),
        (0.2, None, "unchanged"),  # no test: no colour
    ],
    ids=["significant-gain", "significant-loss", "not-significant", "no-change", "no-test"],
)
def test_direction_is_coloured_only_when_significant(delta, p_value, expected) -> None:
    assert direction(delta, p_value) == expected


def _pair(make_run, base_metrics: dict | None = None, cand_metrics: dict | None = None):
    tasks = [f"synth/{i}" for i in range(30)]
    base = make_run("a/synth", {t: [i % 3 == 0] for i, t in enumerate(tasks)})
    cand = make_run("b/synth", {t: [i % 3 != 1] for i, t in enumerate(tasks)})
    zero = {f"HumanEval/{i}": [False] for i in range(5)}
    make_run("a/humaneval", zero, benchmark="humaneval")
    make_run("b/humaneval", zero, benchmark="humaneval")
    for folder, extra in ((base, base_metrics), (cand, cand_metrics)):
        if extra:
            metrics = json.loads((folder / "metrics.json").read_text())
            (folder / "metrics.json").write_text(json.dumps({**metrics, **extra}))
    return load_run(base.parent, "SFT"), load_run(cand.parent, "PPO")


def test_zero_zero_benchmarks_are_collapsed_and_the_gain_leads(make_run) -> None:
    runs = _pair(make_run)
    headline = build_headline(compare_runs(*runs, n_boot=200), runs)
    assert [r.benchmark for r in headline.rows] == ["synth"]
    assert headline.rows[0].direction == "better" and round(headline.rows[0].delta, 3) == 0.333
    assert headline.collapsed == [
        "humaneval: both runs score 0 on pass@1 over 5 problems; nothing to compare (details below)."
    ]
    assert headline.notes == []  # no hack-attempt figures recorded: nothing said about them


def test_hack_attempts_and_containment_are_noted_when_recorded(make_run) -> None:
    runs = _pair(
        make_run,
        {"hack_attempt_rate": 0.0},
        {"hack_attempt_rate": 0.125, "containment": {"net_blocked": 3, "fs_write_denied": 0, "note": "x"}},
    )
    notes = build_headline(compare_runs(*runs, n_boot=100), runs).notes
    assert "synth: hack-attempt rate SFT 0.0%, PPO 12.5%." in notes
    assert "synth: PPO's programs were contained: net_blocked 3." in notes


def test_report_md_opens_with_the_same_headline_as_the_html(make_run, tmp_path) -> None:
    base, cand = (run.folder for run in _pair(make_run))
    out = tmp_path / "report"
    argv = ["compare", str(base), str(cand), "--out", str(out), "--names", "SFT", "PPO", "--bootstrap", "200"]
    assert command("report")(argv) == 0
    markdown = (out / "report.md").read_text().splitlines()
    assert markdown[0] == "## PPO vs SFT: pass@1 per benchmark"
    assert markdown[2].startswith("- **synth: pass@1 0.333 → 0.667, +33.3 points (95% CI [")
    assert markdown[2].endswith("over 30 problems: better (significant)**")
    assert markdown[3].startswith("- humaneval: both runs score 0")
    assert markdown.index("### synth") < markdown.index("### humaneval")  # the zero-zero evidence comes last
    page = (out / "report.html").read_text()
    assert page.index('id="headline"') < page.index("<h2>")  # the box comes before every section
