"""The labelling web app (FastAPI, server-rendered Jinja2 pages, one small script for the keyboard).

Routes, all under a labeller's personal link `/l/TOKEN` (the token is the credential, as in a capability URL):
`GET /l/TOKEN` the next pair (or the one left open: a reload resumes), `POST /l/TOKEN/label` a choice or a
skip, then a redirect (post/redirect/get, so a reload never posts twice), `GET /l/TOKEN/pair/ID` one of the
labeller's own pairs to change its label, `GET /l/TOKEN/mine` the labeller's own labels.

Security (the programs on the page are hostile text; see page.py for escaping):
- every response carries a strict Content-Security-Policy: scripts and styles only from this server's
  /static files, no inline script or style, no framing, forms only to this server; plus nosniff and a
  same-origin referrer policy (the token is in the URL);
- every POST needs the labeller's token (in its path) and a CSRF token, an HMAC of the labeller and the pair
  under a secret kept in the database (so forms stay valid across a restart), compared in constant time; a
  POST whose Origin is another site, or whose Sec-Fetch-Site says cross-site, is refused too;
- a labeller can label only pairs served to them and read only their own labels (`store.Store`);
- bodies are capped (`MAX_BODY`) and comments cut to `MAX_COMMENT` characters.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from execrl.reports.labelling.page import code_css, pair_view, templates
from execrl.reports.labelling.store import CHOICES, Labeller, Store
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

MAX_BODY = 64 * 1024
MAX_COMMENT = 4000
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'none'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: the link's token never leaves in a Referer, and Chromium still sends a real
    # Origin on our own form posts (under no-referrer it sends `Origin: null`, which the cross-site check refuses)
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
CHOICE_NAMES = {"a": "A better", "b": "B better", "tie": "tie", "both_bad": "both bad"}


def csrf_token(secret: str, who: Labeller, pair_id: str) -> str:
    return hmac.new(secret.encode(), f"{who.id}:{pair_id}".encode(), hashlib.sha256).hexdigest()


def _page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(templates().get_template(name).render(choice_names=CHOICE_NAMES, **values), status)


def _refuse(status: int, why: str) -> PlainTextResponse:
    return PlainTextResponse(why, status)


def _cross_site(request: Request) -> bool:
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc != request.headers.get("host")


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded form of a POST (one value per field), None when too large or not a form."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in fields.items()}


def create_app(db: Path, k: int = 2) -> FastAPI:
    """The app over labelling database `db`, serving each pair to at most `k` labellers."""
    store = Store(db)
    secret = store.meta("csrf_secret") or ""
    app = FastAPI(title="execrl label", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    def show(who: Labeller, token: str, pair: Any, current: Any = None) -> HTMLResponse:
        return _page(
            "pair.html",
            pair=pair_view(pair),
            who=who.name,
            base=f"/l/{token}",
            csrf=csrf_token(secret, who, pair.pair_id),
            progress=store.progress(who, k),
            current=current,
        )

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return _page("index.html")

    @app.get("/code.css")
    def stylesheet() -> Response:
        return Response(code_css(), media_type="text/css")

    @app.get("/l/{token}", response_class=HTMLResponse)
    def next_pair(token: str) -> Response:
        who = store.labeller(token)
        if who is None:
            return _refuse(403, "unknown labeller link")
        pair = store.next_pair(who, k)
        if pair is None:
            return _page("done.html", who=who.name, base=f"/l/{token}", progress=store.progress(who, k))
        return show(who, token, pair)

    @app.get("/l/{token}/pair/{pair_id}", response_class=HTMLResponse)
    def own_pair(token: str, pair_id: str) -> Response:
        who = store.labeller(token)
        if who is None:
            return _refuse(403, "unknown labeller link")
        pair = store.pair(pair_id) if store.assigned(who, pair_id) else None
        if pair is None:
            return _refuse(404, "no such pair among yours")
        return show(who, token, pair, store.own_label(who, pair_id))

    @app.get("/l/{token}/mine", response_class=HTMLResponse)
    def mine(token: str) -> Response:
        who = store.labeller(token)
        if who is None:
            return _refuse(403, "unknown labeller link")
        labels = [(label, store.pair(label.pair_id)) for label in store.own_labels(who)]
        return _page("mine.html", who=who.name, base=f"/l/{token}", labels=labels, progress=store.progress(who, k))

    @app.post("/l/{token}/label")
    async def label(token: str, request: Request) -> Response:
        if _cross_site(request):
            return _refuse(403, "cross-site request refused")
        who = store.labeller(token)
        if who is None:
            return _refuse(403, "unknown labeller link")
        form = await _form(request)
        if form is None:
            return _refuse(400, "expected a form (application/x-www-form-urlencoded, at most 64 KiB)")
        pair_id, choice = form.get("pair_id", ""), form.get("choice", "")
        if not hmac.compare_digest(form.get("csrf", ""), csrf_token(secret, who, pair_id)):
            return _refuse(403, "missing or wrong CSRF token; reload the page")
        if choice == "skip":
            store.skip(who, pair_id)
        elif choice not in CHOICES:
            return _refuse(400, f"choice must be one of {', '.join(CHOICES)} or skip")
        elif not store.record_label(who, pair_id, choice, form.get("comment", "")[:MAX_COMMENT]):
            return _refuse(404, "no such pair among yours")
        return RedirectResponse(f"/l/{token}", status_code=303)

    return app
