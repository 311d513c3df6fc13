"""The HTML reports in a real browser: Playwright driving Debian's Chromium over file:// URLs, offline.

What a reviewer does with the page is what is tested: the headline is the first thing they see, a flip
opens onto both runs' programs, the filters narrow the problems, the leaderboard's tabs and columns work,
and hostile text from a run folder is shown as text and runs nothing. Set EXECRL_SCREENSHOT_DIR to keep
the screenshots the last test takes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from tests.commands import command
from tests.reports.conftest import BAD_PROGRAM, write_run

playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package (dev extra) is not installed")

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.chromium,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (apt-get install -y chromium)"),
]
report_main = command("report")

N_TASKS = 40


def _tasks(prefix: str) -> list[str]:
    return [f"{prefix}/{i}" for i in range(N_TASKS)]


def _difficulty(tasks: list[str]) -> dict[str, str]:
    return {t: ("easy", "hard")[i % 2] for i, t in enumerate(tasks)}


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser):
    """open_page(path) -> a page showing the file, offline; the test fails if the page asked the network."""
    contexts, requests = [], []

    def open_(path: Path, width: int = 1200, height: int = 900):
        context = browser.new_context(viewport={"width": width, "height": height}, offline=True)
        contexts.append(context)
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.resolve().as_uri())
        return page

    yield open_
    for context in contexts:
        context.close()
    assert all(url.startswith(("file:", "data:")) for url in requests), requests


@pytest.fixture(scope="module")
def comparison(tmp_path_factory) -> Path:
    """SFT vs PPO on synth (PPO clearly better; flips both ways) and humaneval (both score zero)."""
    root = tmp_path_factory.mktemp("cmp")
    synth = _tasks("synth")
    sft = {t: [i % 3 == 0, i % 3 == 0] for i, t in enumerate(synth)}
    ppo = {t: [i % 3 != 1, i % 3 != 1] for i, t in enumerate(synth)}  # gains i%3==2, loses none...
    ppo["synth/3"] = [False, False]  # ...but one loss
    zero = {t: [False] for t in _tasks("HumanEval")[:10]}
    for name, outcomes, program, fail in (("sft", sft, BAD_PROGRAM, "runtime_error"), ("ppo", ppo, None, "failed")):
        kwargs = {"program": program} if program else {}
        write_run(root / name / "synth", outcomes, difficulty=_difficulty(synth), fail_verdict=fail, **kwargs)
        write_run(root / name / "humaneval", zero, benchmark="humaneval", fail_verdict=fail, **kwargs)
    out = root / "report"
    argv = ["compare", str(root / "sft"), str(root / "ppo"), "--out", str(out), "--names", "SFT", "PPO"]
    assert report_main([*argv, "--bootstrap", "200"]) == 0
    return out / "report.html"


def _visible(page, selector: str) -> int:
    return page.locator(f"{selector}:visible").count()


def test_the_headline_is_the_first_thing_on_the_page(open_page, comparison) -> None:
    page = open_page(comparison)
    assert page.evaluate("document.body.firstElementChild.id") == "headline"
    box = page.locator("#headline").bounding_box()
    assert box["y"] < 40 and box["y"] + box["height"] < 900  # whole, above the fold
    verdict = page.locator("#headline li.verdict")
    assert verdict.count() == 1  # humaneval (both zero) is collapsed, not a row of the box
    assert verdict.get_attribute("data-benchmark") == "synth"
    assert "dir-better" in verdict.get_attribute("class")
    assert verdict.locator(".delta").inner_text() == "+30.0 points"  # pass@1 0.350 -> 0.650
    assert "both runs score 0" in page.locator("#headline li.collapsed").inner_text()
    provenance = page.locator("#headline details.provenance")
    assert not provenance.locator("table").is_visible()
    provenance.locator("summary").click()  # provenance is one click away
    assert provenance.locator("table").is_visible() and "tiny" in provenance.inner_text()


def test_a_flips_drill_down_opens_and_shows_both_programs(open_page, comparison) -> None:
    page = open_page(comparison)
    flip = page.locator('details.problem[data-flip="gained"]').first
    assert not flip.locator(".program").first.is_visible()
    flip.locator("summary").click()
    sides = flip.locator(".side")
    assert sides.count() == 2 and sides.nth(0).is_visible() and sides.nth(1).is_visible()
    assert "import os,sys" in sides.nth(0).locator(".program").first.inner_text()  # SFT's program
    assert '"""Return a + b."""' in sides.nth(1).locator(".program").first.inner_text()  # PPO's program
    assert sides.nth(0).locator(".badge").first.inner_text() == "runtime_error"
    assert sides.nth(1).locator(".badge").first.inner_text() == "passed"
    # highlighted: Pygments' inline styles, no stylesheet
    assert sides.nth(1).locator(".program span[style]").count() > 3


def _expected(flips: set[str], difficulty: str = "", benchmark: str = "", verdict: str = "") -> set[str]:
    """Which synth task ids the comparison fixture should show for a filter choice."""
    synth = _tasks("synth")
    sft_fails = {t for i, t in enumerate(synth) if i % 3 != 0}
    ppo_fails = {t for i, t in enumerate(synth) if i % 3 == 1} | {"synth/3"}
    gained = {t for t in sft_fails - ppo_fails}
    kinds = {"gained": gained, "lost": {"synth/3"}}
    every = set(synth) | set(_tasks("HumanEval")[:10])
    shown = set().union(*(kinds[k] for k in flips)) if flips else every
    if difficulty:
        shown &= {t for i, t in enumerate(synth) if ("easy", "hard")[i % 2] == difficulty}
    if benchmark:
        shown = {t for t in shown if t.lower().startswith(benchmark)}
    if verdict == "runtime_error":  # SFT's failures
        shown &= sft_fails | set(_tasks("HumanEval")[:10])
    return shown


@pytest.mark.parametrize(
    "controls, expected",
    [
        ({}, _expected({"gained", "lost"})),
        ({"f-flip": "lost"}, _expected({"lost"})),
        ({"f-flip": "gained", "f-difficulty": "hard"}, _expected({"gained"}, difficulty="hard")),
        ({"f-flip": ""}, _expected(set())),
        ({"f-flip": "", "f-benchmark": "humaneval"}, _expected(set(), benchmark="humaneval")),
        ({"f-flip": "", "f-verdict": "runtime_error"}, _expected(set(), verdict="runtime_error")),
        ({"f-flip": "", "f-search": "synth/17"}, {"synth/17"}),
    ],
    ids=["default-flips-only", "lost", "gained-and-hard", "all", "benchmark", "verdict", "search-task-id"],
)
def test_filters_show_exactly_the_matching_problems(open_page, comparison, controls, expected) -> None:
    page = open_page(comparison)
    for control, value in controls.items():
        if control == "f-search":
            page.fill(f"#{control}", value)
        else:
            page.select_option(f"#{control}", value)
    shown = set(page.locator("details.problem:visible .task").all_inner_texts())
    assert shown == expected
    total = page.locator("details.problem").count()
    assert page.locator("#f-count").inner_text() == f"{len(expected)} of {total} problems shown"


@dataclass(frozen=True)
class Attack:
    id: str
    where: str
    """Which field of the run folder carries the payload."""
    payload: str
    reason: str


# Each payload sets window.__xss_<id> if it ever runs.
HOSTILE = [
    Attack(
        "program_script",
        "program",
        "x = 1\n</script><script>window.__xss_program_script = 1</script>\n",
        "closes a script element and opens one: harmful wherever program text reaches a <script>",
    ),
    Attack(
        "program_img",
        "program",
        '# <img src=x onerror="window.__xss_program_img = 1">\n',
        "an element with an event handler, inside a comment (Pygments keeps comments verbatim)",
    ),
    Attack(
        "program_breakout",
        "program",
        's = """</pre></div></details><script>window.__xss_program_breakout = 1</script>"""\n',
        "closes the highlighted block and the problem's <details> from inside a string literal",
    ),
    Attack(
        "error",
        "error",
        "AssertionError: <script>window.__xss_error = 1</script>",
        "error text echoes program output",
    ),
    Attack(
        "test_error",
        "test_error",
        '"><img src=x onerror="window.__xss_test_error = 1">',
        "a per-test error lands in a title attribute: breaks out of the quotes",
    ),
    Attack(
        "task_id",
        "task_id",
        'synth/<svg onload="window.__xss_task_id = 1">',
        "task ids come from the samples file and appear in tables, summaries and data attributes",
    ),
    Attack(
        "difficulty",
        "difficulty",
        'x" autofocus onfocus="window.__xss_difficulty = 1" tabindex="1',
        "difficulty lands in a data attribute and a filter <option value>",
    ),
    Attack(
        "verdict",
        "verdict",
        'failed" onmouseover="window.__xss_verdict = 1',
        "a result's verdict is a string from results.jsonl: badge text, CSS class, data attribute, filter option",
    ),
    Attack(
        "statement",
        "statement",
        "def f():\n    '''</pre><script>window.__xss_statement = 1</script>'''\n",
        "a problem statement (the samples' prompt) inside <pre>",
    ),
    Attack(
        "run_name",
        "run_name",
        "<script>window.__xss_run_name = 1</script>",
        "--names is free text: headline title, table headers, drill-down sides",
    ),
    Attack(
        "model",
        "model",
        '<iframe srcdoc="<script>parent.__xss_model = 1</script>"></iframe>',
        "the model name from config.json, in the provenance table",
    ),
    Attack(
        "benchmark",
        "benchmark",
        'synth<img src=x onerror="window.__xss_benchmark = 1">',
        "the benchmark name from metrics.json: headline row, headings, filter options",
    ),
]


def _hostile_runs(root: Path) -> tuple[Path, Path, str]:
    """Two runs whose folders carry every HOSTILE payload in its place; returns (baseline, candidate, name)."""
    by_where = {a.where: a.payload for a in HOSTILE}
    benchmark = by_where["benchmark"]
    tasks = ["synth/0", "synth/1", "synth/2", by_where["task_id"]]
    difficulty = {t: "easy" for t in tasks} | {"synth/1": by_where["difficulty"]}
    runs = []
    for name, passes in (("base", [True, False, False, False]), ("cand", [False, True, True, True])):
        folder = write_run(
            root / name,
            {t: [p] for t, p in zip(tasks, passes, strict=True)},
            benchmark=benchmark,
            config={"model": by_where["model"]},
            difficulty=difficulty,
        )
        samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
        programs = [a.payload for a in HOSTILE if a.where == "program"]
        for row, program in zip(samples, programs, strict=False):
            row["completion"] = program
        for row in samples:
            row["prompt"] = by_where["statement"]
        (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in samples))
        results = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
        if name == "cand":
            results[0]["verdict"] = by_where["verdict"]  # a failed sample
        for row in results:
            row["error"] = by_where["error"]
            row["tests"] = [{"verdict": row["verdict"], "duration": 0.0, "error": by_where["test_error"]}]
        (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
        runs.append(folder)
    return runs[0], runs[1], by_where["run_name"]


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    base, cand, name = _hostile_runs(root)
    out = root / "report"
    assert report_main(["compare", str(base), str(cand), "--out", str(out), "--names", "SFT", name]) == 0
    return out


@pytest.fixture(scope="module")
def hostile_page(browser, hostile_report):
    context = browser.new_context(offline=True)
    page = context.new_page()
    page.goto((hostile_report / "report.html").as_uri())
    page.select_option("#f-flip", "")  # every problem, every <details> open: all payloads are in the live DOM
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    page.keyboard.press("Tab")  # a focus event, for a payload that waits for one
    page.wait_for_timeout(300)  # img onerror fires after the failed load
    yield page
    context.close()


@pytest.mark.parametrize("attack", HOSTILE, ids=[a.id for a in HOSTILE])
def test_hostile_text_renders_as_text_and_runs_nothing(hostile_page, attack: Attack) -> None:
    assert hostile_page.evaluate(f"window.__xss_{attack.id}") is None, attack.reason
    text = hostile_page.evaluate("document.body.textContent")
    # the payload is on the page, as text (line breaks may be where the page put them)
    visible = " ".join(attack.payload.split())
    assert visible in " ".join(text.split()), attack.reason  # markup would have been parsed, not shown
    handlers = """Array.from(document.querySelectorAll("*")).flatMap(e => Array.from(e.attributes))
        .filter(a => a.name.startsWith("on") || a.name === "srcdoc").map(a => a.value)"""
    assert not [h for h in hostile_page.evaluate(handlers) if f"__xss_{attack.id}" in h], attack.reason


def test_no_hostile_payload_became_an_element(hostile_page) -> None:
    injected = (
        "img:not([src^='data:image/png']), svg, iframe, object, embed, [onerror], [onload], [onfocus], [onmouseover]"
    )
    assert hostile_page.locator(injected).count() == 0
    assert hostile_page.locator("script").count() == 1  # ours, the one inline script


def test_hostile_text_is_escaped_in_the_markdown_twin(hostile_report) -> None:
    markdown = (hostile_report / "report.md").read_text(encoding="utf-8")
    assert not re.search(r"(?<!\\)<", markdown)  # every < from the data is backslash-escaped: no raw HTML
    assert "\\<script\\>window.__xss_run_name = 1\\</script\\>" in markdown  # the name, as text


@pytest.fixture(scope="module")
def leaderboard(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("board")
    runs = []
    for name, solved, temperature in (("mid", 5, 0.8), ("best", 9, 0.2), ("worst", 1, 0.2)):
        outcomes = {f"synth/{i}": [i < solved, i < solved - 1] for i in range(10)}
        write_run(root / name / "synth", outcomes, config={"temperature": temperature})
        humaneval = {f"HumanEval/{i}": [i < solved - 3] * 2 for i in range(10)}
        write_run(root / name / "humaneval", humaneval, benchmark="humaneval", config={"temperature": 0.2})
        runs.append(str(root / name))
    assert command("report", "leaderboard")([*runs, "--out", str(root / "lb")]) == 0
    return root / "lb" / "leaderboard.html"


def _runs_column(panel) -> list[str]:
    return [row.locator("td").nth(1).inner_text() for row in panel.locator("tbody tr").all()]


def test_leaderboard_tabs_switch_benchmarks_and_columns_sort(open_page, leaderboard) -> None:
    page = open_page(leaderboard)
    tabs = page.get_by_role("tab")
    assert tabs.all_inner_texts() == ["humaneval", "synth"]
    humaneval, synth = page.locator("#panel-0"), page.locator("#panel-1")
    assert humaneval.is_visible() and not synth.is_visible()
    assert not humaneval.locator("p.warning").count()  # same settings: no warning
    tabs.nth(1).click()
    assert synth.is_visible() and not humaneval.is_visible()
    assert tabs.nth(1).get_attribute("aria-selected") == "true"
    assert "temperature (0.2: best, worst; 0.8: mid)" in synth.locator("p.warning").inner_text()
    assert _runs_column(synth) == ["best", "mid", "worst"]  # by pass@1, best first
    header = synth.locator("th", has_text=re.compile(r"^pass@2"))
    header.click()
    assert _runs_column(synth) == ["best", "mid", "worst"] and header.get_attribute("aria-sort") == "descending"
    header.click()
    assert _runs_column(synth) == ["worst", "mid", "best"] and header.get_attribute("aria-sort") == "ascending"
    synth.locator("th", has_text=re.compile(r"^run$")).click()  # text column: descending, then by name
    assert _runs_column(synth) == ["worst", "mid", "best"]
    synth.locator("th", has_text=re.compile(r"^temperature")).click()
    assert _runs_column(synth)[0] == "mid"  # 0.8 first when descending
    cis = [row.locator("td").nth(3).inner_text() for row in synth.locator("tbody tr").all()]
    assert all(re.fullmatch(r"\[\d\.\d{3}, \d\.\d{3}\]", ci) for ci in cis)


def _ink(shot: Path) -> tuple[np.ndarray, np.ndarray]:
    pixels = imread(shot)[..., :3]  # (H, W, 3) floats in [0, 1]
    return (pixels < 0.95).any(axis=-1), pixels.max(axis=-1) - pixels.min(axis=-1)


def test_screenshots_of_the_report_and_the_leaderboard_show_the_page(
    open_page, comparison, leaderboard, tmp_path
) -> None:
    page = open_page(comparison, height=1000)
    page.screenshot(path=tmp_path / "comparison-top.png")
    page.locator('details.problem[data-flip="gained"]').first.locator("summary").click()
    page.screenshot(path=tmp_path / "comparison-full.png", full_page=True)
    page = open_page(leaderboard, width=1400, height=600)
    page.get_by_role("tab").nth(1).click()
    page.screenshot(path=tmp_path / "leaderboard.png")

    non_white, saturation = _ink(tmp_path / "comparison-top.png")
    assert non_white.shape == (1000, 1200)
    assert non_white[:200].mean() > 0.03  # the headline box at the top
    assert (saturation[:200] > 0.2).mean() > 0.003  # coloured by direction
    non_white, saturation = _ink(tmp_path / "comparison-full.png")
    assert non_white.shape[0] > 2000 and (saturation[-1500:] > 0.3).mean() > 0.005  # plots lower down
    non_white, _ = _ink(tmp_path / "leaderboard.png")
    assert non_white[100:400].mean() > 0.03
    keep = os.environ.get("EXECRL_SCREENSHOT_DIR")
    if keep:
        for shot in tmp_path.glob("*.png"):
            shutil.copy(shot, Path(keep) / shot.name)
