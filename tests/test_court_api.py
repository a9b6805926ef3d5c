"""The court clerk's API against a real `khana serve` process: inbox, search, PDF and page images,
access rules (a clerk sees only their court's forwarded filings; nothing without credentials), audit.

Filings get there the real way: a station uploads clean synthetic pages, Khana processes them
(Tesseract) and forwards them to their court.
"""
from __future__ import annotations

import re

import httpx
import pytest

from conftest import png_bytes

pytestmark = [pytest.mark.slow]

YEH, ARABIC_YEH, KAF, ARABIC_KAF = "ی", "ي", "ک", "ك"


def audit_rows(server) -> list[tuple]:
    from sqlalchemy import create_engine, text

    url = server.env.get("KHANA_DATABASE_URL") or f"sqlite:///{server.home / 'khana.db'}"
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return [tuple(r) for r in c.execute(text(
                "SELECT actor, action, batch_id FROM audit_events WHERE action LIKE 'court_%'"))]
    finally:
        eng.dispose()


def _bearer(token: str | None) -> dict:
    return {"Authorization": f"Bearer {token}"} if token else {}


def upload(server, token: str, court: str, case_number: str, seed: int, document_type: str = "دادخواست") -> str:
    from testpages import render_page

    page = render_page(n_words=70, seed=seed)
    r = httpx.post(f"{server.url}/api/v1/batches", headers=_bearer(token), timeout=60,
                   data={"court": court, "case_number": case_number, "document_type": document_type},
                   files=[("files", (f"p{seed}.png", png_bytes(page.image), "image/png"))])
    assert r.status_code == 202, r.text
    return r.json()["batch"]


def a_word_with_yeh(text: str, avoid: str = "") -> str:
    """A word of the page's OCR text that has a Persian yeh (and no digit), as the clerk will type it;
    with `avoid`, one that does not occur in that other text (so that one filing alone matches)."""
    from ocr.search_text import index_text, query_terms

    other = set(index_text(avoid).split())
    words = [w for w in re.findall(r"[\u0600-\u06ff\u200c]+", text) if YEH in w and len(w) >= 4
             and not any(set(t.forms) & other for t in query_terms(w))]
    assert words, text
    return max(words, key=len)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def server(request, tmp_path):
    """`khana serve` on the embedded default (SQLite), or on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield request.getfixturevalue("live_server")
        return
    from fixtures_services import drop_postgres_db, make_postgres_db
    from web_fixtures import start_server, stop_server

    db_url = make_postgres_db(request.getfixturevalue("postgres_server_url"), prefix="khana_court")
    srv = start_server(tmp_path / "khana-home", {"KHANA_DATABASE_URL": db_url})
    try:
        yield srv
    finally:
        stop_server(srv)
        drop_postgres_db(db_url)


@pytest.fixture
def court_world(server):
    return make_world(server)


def make_world(s) -> dict:
    """A station sending one filing each to court-a and court-b, both forwarded; a clerk token for each court."""
    st = s.token("station", office="office-7")
    a = upload(s, st, "court-a", "۱۴۰۲-۰۹۹۸-۷۶۵۴۳۲۱", seed=11)
    b = upload(s, st, "court-b", "140311112222333", seed=12)
    body_a = s.wait_batch(a, st, statuses=("forwarded", "held", "failed"), timeout=240)
    body_b = s.wait_batch(b, st, statuses=("forwarded", "held", "failed"), timeout=240)
    assert body_a["status"] == "forwarded", body_a
    assert body_b["status"] == "forwarded", body_b
    return {"server": s, "station": st, "a": a, "b": b, "text_a": body_a["pages"][0]["text"],
            "text_b": body_b["pages"][0]["text"], "clerk_a": s.token("clerk", court="court-a"),
            "clerk_b": s.token("clerk", court="court-b")}


def test_clerk_inbox_search_pdf_and_access_rules(court_world):
    w = court_world
    url = w["server"].url
    ca, cb = _bearer(w["clerk_a"]), _bearer(w["clerk_b"])

    # the inbox: only the court's own forwarded filings
    r = httpx.get(f"{url}/api/v1/court/filings", headers=ca, timeout=30)
    assert r.status_code == 200, r.text
    [only] = r.json()
    assert only["batch"] == w["a"] and only["case_number"] == "140209987654321"
    assert only["office"] == "office-7" and only["pages"] == 1 and only["document_type"] == "دادخواست"
    assert [f["batch"] for f in httpx.get(f"{url}/api/v1/court/filings", headers=cb, timeout=30).json()] == [w["b"]]

    # search by a Persian word typed with Arabic yeh (and kaf), and by case number in any digits/separators
    word = a_word_with_yeh(w["text_a"])
    typed = word.replace(YEH, ARABIC_YEH).replace(KAF, ARABIC_KAF)
    r = httpx.get(f"{url}/api/v1/court/filings", params={"q": typed}, headers=ca, timeout=30)
    hits = r.json()
    assert [h["batch"] for h in hits] == [w["a"]], (typed, hits)
    assert "<mark>" in hits[0]["snippets"][0]["html"]
    for q in ["14020998765432 1".replace(" ", ""), "۱۴۰۲۰۹۹۸۷۶۵۴۳۲۱", "1402/0998/7654321"]:
        assert [h["batch"] for h in httpx.get(f"{url}/api/v1/court/filings", params={"q": q}, headers=ca,
                                                timeout=30).json()] == [w["a"]], q

    # court B's clerk finds none of court A's filing, by its words or by its case number
    for q in [typed, "14020998765432" + "1"]:
        found = httpx.get(f"{url}/api/v1/court/filings", params={"q": q}, headers=cb, timeout=30).json()
        assert w["a"] not in [h["batch"] for h in found], q

    # the PDF: inline for the browser's viewer, or as a download
    r = httpx.get(f"{url}/api/v1/court/filings/{w['a']}/pdf", headers=ca, timeout=30)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert r.headers["content-type"] == "application/pdf" and r.headers["content-disposition"].startswith("inline")
    r = httpx.get(f"{url}/api/v1/court/filings/{w['a']}/pdf?download=1", headers=ca, timeout=30)
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")
    r = httpx.get(f"{url}/api/v1/court/filings/{w['a']}/pages/1.png", headers=ca, timeout=30)
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
    r = httpx.get(f"{url}/api/v1/court/filings/{w['a']}", headers=ca, timeout=30)
    assert r.status_code == 200 and r.json()["page_list"][0]["page"] == 1

    # court B's clerk: 404 for court A's filing, whatever the path
    for path in ["", "/pdf", "/pdf?download=1", "/pages/1.png"]:
        assert httpx.get(f"{url}/api/v1/court/filings/{w['a']}{path}", headers=cb, timeout=30).status_code == 404, path
    # other roles: 404 (never reveal a filing exists); no credentials or a bad token: 401
    qa = _bearer(w["server"].token("qa"))
    st = _bearer(w["station"])
    for path in ["/api/v1/court/filings", f"/api/v1/court/filings/{w['a']}", f"/api/v1/court/filings/{w['a']}/pdf",
                 f"/api/v1/court/filings/{w['a']}/pages/1.png"]:
        assert httpx.get(url + path, headers=st, timeout=30).status_code == 404, path
        assert httpx.get(url + path, headers=qa, timeout=30).status_code == 404, path
        r = httpx.get(url + path, timeout=30)
        assert r.status_code == 401 and b"%PDF" not in r.content and b"PNG" not in r.content, path
        assert httpx.get(url + path, headers=_bearer("not-a-token"), timeout=30).status_code == 401, path
    # the web pages: without a session, a redirect to the login page, never a document
    for path in ["/court", "/court/search?q=x", f"/court/filings/{w['a']}"]:
        r = httpx.get(url + path, timeout=30)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path

    # every retrieval is in the audit log, with who did it
    rows = audit_rows(w["server"])
    actions = {(a, b) for _actor, a, b in rows}
    assert ("court_pdf_retrieved", w["a"]) in actions
    assert ("court_page_retrieved", w["a"]) in actions
    assert ("court_filing_viewed", w["a"]) in actions
    assert ("court_search", None) in actions
    pdf_events = [r for r in rows if r[1] == "court_pdf_retrieved"]
    assert len(pdf_events) == 2 and all(r[0].startswith("clerk:") for r in pdf_events)  # the 404s are not retrievals


def test_inbox_is_newest_first(live_server):
    w = make_world(live_server)
    s = w["server"]
    second = upload(s, w["station"], "court-a", "140400000000001", seed=13)
    assert s.wait_batch(second, w["station"], statuses=("forwarded", "held", "failed"), timeout=240)["status"] == "forwarded"
    got = [f["batch"] for f in httpx.get(f"{s.url}/api/v1/court/filings", headers=_bearer(w["clerk_a"]), timeout=30).json()]
    assert got == [second, w["a"]]
