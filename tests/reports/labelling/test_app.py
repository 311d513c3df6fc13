"""The labelling server through FastAPI's TestClient: tokens, CSRF, isolation between labellers, hostile text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from execrl.reports.labelling.app import CSP, create_app  # noqa: E402
from execrl.reports.labelling.pairs import read_pairs_file  # noqa: E402
from execrl.reports.labelling.store import Store  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from markupsafe import escape  # noqa: E402

from .conftest import pair_row, write_pairs  # noqa: E402

TEMPLATES = Path(__file__).resolve().parents[3] / "reports" / "labelling" / "templates"


@pytest.fixture()
def client(store: Store) -> TestClient:
    return TestClient(create_app(store.path, k=2), follow_redirects=False)


def form_of(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page))


def post(client: TestClient, token: str, **fields: str):
    return client.post(f"/l/{token}/label", data=fields)


def test_a_label_posted_with_token_and_csrf_is_stored_and_redirects_to_the_next_pair(client, store) -> None:
    token = store.add_labeller("ann")
    page = client.get(f"/l/{token}")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    answer = post(client, token, **form_of(page.text), choice="a", comment="clearer")
    assert answer.status_code == 303 and answer.headers["location"] == f"/l/{token}"
    assert [(x.choice, x.comment) for x in store.own_labels(store.labeller(token))] == [("a", "clearer")]
    assert "1 labelled" in client.get(f"/l/{token}").text


REFUSED = [
    ("no-csrf", lambda f: {"pair_id": f["pair_id"]}, {}, 403),  # the form's CSRF token left out
    ("wrong-csrf", lambda f: {**f, "csrf": "0" * 64}, {}, 403),  # a guessed token
    ("csrf-of-another-pair", lambda f: {**f, "pair_id": "f" * 16}, {}, 403),  # a token is bound to its pair
    ("cross-origin", lambda f: f, {"origin": "http://evil.example"}, 403),  # a form posted from another site
    ("cross-site-fetch", lambda f: f, {"sec-fetch-site": "cross-site"}, 403),  # the browser says so
    ("bad-choice", lambda f: {**f, "choice": "c"}, {}, 400),  # not one of the choices
]


@pytest.mark.parametrize(("why", "change", "headers", "status"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_post_without_a_valid_csrf_token_or_from_another_site_is_refused(
    client, store, why, change, headers, status
):
    token = store.add_labeller("ann")
    fields = {"choice": "a", **form_of(client.get(f"/l/{token}").text)}
    answer = client.post(f"/l/{token}/label", data=change(fields), headers=headers)
    assert answer.status_code == status, why
    assert store.own_labels(store.labeller(token)) == []


@pytest.mark.parametrize(
    ("path", "why"),
    [("/l/not-a-token/label", "an unknown token"), ("/l//label", "no token at all")],
    ids=["unknown-token", "no-token"],
)
def test_a_post_without_a_labellers_token_is_refused(client, store, path: str, why: str) -> None:
    token = store.add_labeller("ann")
    fields = form_of(client.get(f"/l/{token}").text)
    assert client.post(path, data={**fields, "choice": "a"}).status_code in (403, 404, 405), why
    assert store.all_labels() == []


def test_no_labeller_can_read_or_change_another_labellers_label(client, store) -> None:
    ann, bob = store.add_labeller("ann"), store.add_labeller("bob")
    fields = form_of(client.get(f"/l/{ann}").text)
    post(client, ann, **fields, choice="a", comment="ann-secret-note")
    pair_id = fields["pair_id"]
    # bob asks for ann's pair page and list: his own (empty) list, and her pair is not his
    assert client.get(f"/l/{bob}/pair/{pair_id}").status_code == 404
    assert "ann-secret-note" not in client.get(f"/l/{bob}/mine").text
    # bob's own page for the same pair (served to him as well: k=2) shows nothing of ann's label
    bob_page = client.get(f"/l/{bob}").text
    assert form_of(bob_page)["pair_id"] == pair_id and "ann-secret-note" not in bob_page
    post(client, bob, **form_of(bob_page), choice="b", comment="bob")
    assert [(x.choice, x.comment) for x in store.own_labels(store.labeller(ann))] == [("a", "ann-secret-note")]
    # ann can reopen and change her own label
    assert "ann-secret-note" in client.get(f"/l/{ann}/pair/{pair_id}").text
    page = client.get(f"/l/{ann}/pair/{pair_id}").text
    post(client, ann, **form_of(page), choice="tie", comment="changed")
    assert store.own_label(store.labeller(ann), pair_id).choice == "tie"


# One attack per row: the text, where it goes, and why it is dangerous unescaped.
HOSTILE = [
    ("</script><script>window.__pwned=1</script>", "program", "closes a script element and opens one"),
    ("<img src=x onerror=window.__pwned=2>", "program", "an event handler on a tag that loads at once"),
    ('" onmouseover="window.__pwned=3" x="', "test_error", "breaks out of the title attribute it is shown in"),
    ("</textarea><script>window.__pwned=4</script>", "comment", "breaks out of the comment box"),
    ("<svg onload=window.__pwned=5>", "statement", "an SVG event handler in the problem statement"),
    (
        "</pre><form action=http://evil.example method=post><button>go</button></form>",
        "statement",
        "a form that would post the labeller's page elsewhere",
    ),
    ("<style>body{display:none}</style>", "program", "a stylesheet that hides the page"),
    ("<script>window.__pwned=6</script>", "task_id", "a task id is shown in the title and heading"),
    ("{{ 7 * 7 }}{% raw %}", "program", "template syntax must stay text (no second rendering)"),
]


def hostile_pair(text: str, where: str) -> dict:
    row = pair_row(0, b=f"    return x  # {text}\n" if where == "program" else None)
    if where == "test_error":
        row["result_b"] = {"verdict": "failed", "tests": [{"verdict": "failed", "error": text}]}
    if where == "statement":
        row["statement"] = text
    if where == "task_id":
        row["task_id"] = text
    return row


@pytest.mark.parametrize(("text", "where", "why"), HOSTILE, ids=[f"{r[1]}-{i}" for i, r in enumerate(HOSTILE)])
def test_hostile_text_is_escaped_wherever_it_appears(tmp_path: Path, text: str, where: str, why: str) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.add_pairs(read_pairs_file(write_pairs(tmp_path / "p.jsonl", [hostile_pair(text, where)])))
    token = store.add_labeller("ann")
    client = TestClient(create_app(store.path), follow_redirects=False)
    page = client.get(f"/l/{token}").text
    if where == "comment":
        post(client, token, **form_of(page), choice="a", comment=text)
        pages = [client.get(f"/l/{token}/mine").text, client.get(f"/l/{token}/pair/{form_of(page)['pair_id']}").text]
    else:
        pages = [page]
    for shown in pages:
        assert str(escape(text)) in shown, f"{why}: not shown as text"
        if escape(text) != text:  # it holds markup: that must never reach the page as markup
            assert text not in shown, why
        assert shown.count("<script") == 1  # only the page's own script file


def test_no_template_turns_escaping_off() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert "|safe" not in text.replace(" ", "") and "autoescape" not in text and "Markup" not in text, template
