"""The labelling page in a real browser: Playwright driving the system's Chromium against `execrl label serve`.

Browsers cannot be downloaded here, so Playwright launches Debian's `chromium` (`executable_path`); without it
these tests are skipped with the reason. Each test starts the real server as a subprocess on a free port.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("playwright")
CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.chromium,
    pytest.mark.skipif(CHROMIUM is None, reason="no `chromium` binary (apt-get install -y chromium)"),
]

from execrl.harness.cli import main as execrl  # noqa: E402
from execrl.reports.labelling.store import Store  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from .conftest import pair_row, write_pairs  # noqa: E402

# Set by any script that manages to run; the page's own script never sets it.
PWNED = "window.__pwned"
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective));
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(db: Path, pairs: Path, k: int = 2) -> Iterator[tuple[str, subprocess.Popen]]:
    """`execrl label serve` on a free port; yields (base url, process) once it answers."""
    port = free_port()
    argv = [sys.executable, "-m", "execrl.harness.cli", "label", "serve", "--db", str(db), "--pairs", str(pairs)]
    proc = subprocess.Popen(
        [*argv, "--port", str(port), "--k", str(k)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {proc.stdout.read().decode()[-2000:]}") from None
                time.sleep(0.2)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        # --no-sandbox: Chromium's own sandbox refuses to start as root (the test machines run as root)
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture()
def page(browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(WATCH)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs  # type: ignore[attr-defined]
    yield page
    context.close()


def link(db: Path, name: str, base: str) -> str:
    return f"{base}/l/{Store(db).add_labeller(name)}"


def shown_task(page: Page) -> str:
    return page.locator("main h2").inner_text()


def press(page: Page, key: str) -> None:
    """Press a choice key and wait for the next page (post, redirect, get)."""
    with page.expect_navigation():
        page.keyboard.press(key)


def label_by_keyboard(page: Page, keys: str, start: int = 0) -> list[str]:
    tasks = []
    for i, key in enumerate(keys, start):
        tasks.append(shown_task(page))
        assert page.locator("#progress").inner_text().startswith(f"{i} labelled")
        press(page, key)
    return tasks


def test_two_labellers_label_five_pairs_by_keyboard_resume_after_a_reload_and_rm_trains_on_the_export(
    tmp_path: Path, page: Page, browser
) -> None:
    torch = pytest.importorskip("torch")
    pairs, db = write_pairs(tmp_path / "pairs.jsonl", [pair_row(i) for i in range(5)]), tmp_path / "labels.sqlite"
    with serving(db, pairs) as (base, _):
        page.goto(link(db, "ann", base))
        ann = label_by_keyboard(page, "12")
        open_task = shown_task(page)
        page.reload()  # half-way: the same pair again, two labels kept
        assert shown_task(page) == open_task and page.locator("#progress").inner_text().startswith("2 labelled")
        page.fill("#comment", "B repeats itself")
        page.keyboard.press("Escape")  # out of the comment box: the keys choose again
        ann += label_by_keyboard(page, "111", start=2)
        assert "Nothing left to label" in page.locator("#done").inner_text()

        bob_page = browser.new_page()
        bob_page.goto(link(db, "bob", base))
        bob = label_by_keyboard(bob_page, "12113")
        assert sorted(bob) == sorted(ann) == [f"t/{i}" for i in range(5)]
        assert page.evaluate(PWNED) is None and page.evaluate("window.__violations") == []
        bob_page.close()

    out = tmp_path / "prefs.jsonl"
    assert execrl(["label", "export", "--db", str(db), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by_task = {r["task_id"]: r for r in rows}
    assert set(by_task) == {"t/0", "t/1", "t/2", "t/3"}  # t/4: ann said A, bob tie: no majority
    assert {(r["n_labellers"], r["agreement"]) for r in rows} == {(2, 1.0)}
    assert by_task["t/1"]["chosen"] == pair_row(1)["b"] and by_task["t/0"]["chosen"] == pair_row(0)["a"]
    comment = [label.comment for label in Store(db).all_labels() if label.comment]
    assert comment == ["B repeats itself"]

    from execrl.trainers.tiny import build_tiny_model

    corpus = [r["prompt"] + r["chosen"] + r["rejected"] for r in rows]
    model = build_tiny_model(tmp_path / "tiny", corpus, vocab_size=300, n_layer=1, d_model=64, max_positions=64)
    rm = tmp_path / "rm"
    argv = ["train", "rm", "--model", str(model), "--pairs", str(out), "--out", str(rm), "--max-steps", "3"]
    assert execrl([*argv, "--max-length", "64", "--eval-share", "0.25", "--batch-size", "2"]) == 0
    metrics = json.loads((rm / "rm_metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_eval"] == 4 and torch.isfinite(torch.tensor(metrics["rm/eval_loss"]))


# One attack per row: a hostile program (side B) and why it would run if written into the page as markup.
HOSTILE_PROGRAMS = [
    ("</script><script>window.__pwned = 'script'</script>", "closes a script element and opens its own"),
    ("<img src=x onerror=\"window.__pwned = 'img'\">", "an image that fails to load runs its onerror handler"),
    ("<svg onload=\"window.__pwned = 'svg'\"></svg>", "an SVG element runs its onload handler"),
    ("</pre></code><iframe srcdoc=\"<script>parent.__pwned = 'iframe'</script>\"></iframe>", "a framed document"),
]


def test_hostile_programs_show_as_text_and_run_nothing(tmp_path: Path, page: Page) -> None:
    rows = [pair_row(i, b=f"    return x  # {text}\n") for i, (text, _) in enumerate(HOSTILE_PROGRAMS)]
    rows[0]["result_b"] = {"verdict": "failed", "tests": [{"verdict": "failed", "error": HOSTILE_PROGRAMS[1][0]}]}
    rows[1]["statement"] = HOSTILE_PROGRAMS[0][0]
    db = tmp_path / "labels.sqlite"
    with serving(db, write_pairs(tmp_path / "pairs.jsonl", rows), k=1) as (base, _):
        page.goto(link(db, "ann", base))
        for text, why in HOSTILE_PROGRAMS:
            side_b = page.locator("#side-b .code").inner_text()
            assert text in side_b, f"{why}: not shown as text"
            injected = page.locator("main img, main svg, main iframe, main script, body script:not([src])").count()
            assert injected == 0, why
            assert page.evaluate(PWNED) is None and page.dialogs == [], why
            assert page.evaluate("window.__violations") == [], why  # not even an attempt the CSP had to block
            press(page, "3")
        assert "Nothing left to label" in page.locator("#done").inner_text()
        assert page.evaluate(PWNED) is None


def test_a_killed_server_loses_no_committed_label_and_the_labeller_resumes(tmp_path: Path, page: Page) -> None:
    pairs, db = write_pairs(tmp_path / "pairs.jsonl", [pair_row(i) for i in range(5)]), tmp_path / "labels.sqlite"
    with serving(db, pairs) as (base, proc):
        url = link(db, "ann", base)
        page.goto(url)
        done = label_by_keyboard(page, "124")
        proc.send_signal(signal.SIGKILL)  # mid-session, no shutdown
        proc.wait(timeout=30)
    labels = Store(db).all_labels()
    assert [label.choice for label in labels if label.labeller == "ann"] != []
    assert sorted(label.choice for label in labels) == ["a", "b", "both_bad"]
    with serving(db, pairs) as (base, _):
        page.goto(base + url[url.index("/l/") :])
        assert page.locator("#progress").inner_text().startswith("3 labelled")
        assert shown_task(page) not in done
        label_by_keyboard(page, "33", start=3)
        assert "Nothing left to label" in page.locator("#done").inner_text()


def test_a_post_without_the_labellers_token_or_csrf_token_or_from_another_page_is_refused(
    tmp_path: Path, page: Page
) -> None:
    pairs, db = write_pairs(tmp_path / "pairs.jsonl", [pair_row(0)]), tmp_path / "labels.sqlite"
    with serving(db, pairs) as (base, _):
        url = link(db, "ann", base)
        other = link(db, "bob", base)
        page.goto(url)
        fields = {name: page.locator(f"input[name={name}]").get_attribute("value") for name in ("pair_id", "csrf")}
        attempts = [
            ("no CSRF token", f"{url}/label", {"pair_id": fields["pair_id"], "choice": "a"}, {403}),
            ("no labeller token", f"{base}/l//label", {**fields, "choice": "a"}, {404, 405}),
            ("another labeller's token with ann's CSRF token", f"{other}/label", {**fields, "choice": "a"}, {403}),
        ]
        for why, target, form, status in attempts:
            assert page.request.post(target, form=form).status in status, why
        # A page of another origin carrying ann's real tokens (a stolen form): the browser says where it came from.
        forged = page.context.new_page()
        hidden = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in {**fields, "choice": "b"}.items())
        forged.set_content(f'<form method="post" action="{url}/label">{hidden}<button>go</button></form>')
        with forged.expect_navigation():
            forged.click("button")
        assert "cross-site request refused" in forged.content()
        assert Store(db).all_labels() == []
