"""The QA review API against a real `khana serve` process (uvicorn, embedded worker, real pipeline)."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import httpx
import pytest


pytestmark = pytest.mark.slow

OFFICE = "11-2301"
COURT = "tehran-civil-12"


# text_png, cut_png, blank_png: the review pages (tests/conftest.py, session-scoped)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def upload(server, token: str, files: list[tuple[str, bytes]], deadline: date | None = None,
           case_number: str = "140209987654321") -> str:
    data = {"court": COURT, "case_number": case_number, "document_type": "petition"}
    if deadline:
        data["deadline"] = deadline.isoformat()
    r = httpx.post(f"{server.url}/api/v1/batches", headers=bearer(token), data=data,
                   files=[("files", (name, content, "image/png")) for name, content in files], timeout=60)
    assert r.status_code == 202, r.text
    return r.json()["batch"]


def test_qa_lists_held_pages_and_an_override_forwards_the_filing(live_server, text_png, cut_png):
    station = live_server.token("station", office=OFFICE)
    qa = live_server.token("qa")
    deadline = date.today() + timedelta(days=3)
    batch = upload(live_server, station, [("petition.png", text_png), ("annex.png", cut_png)], deadline)
    assert live_server.wait_batch(batch, station)["status"] == "held"

    r = httpx.get(f"{live_server.url}/api/v1/review", headers=bearer(qa), timeout=30)
    assert r.status_code == 200
    items = r.json()
    assert isinstance(items, list) and len(items) == 1
    item = items[0]
    assert (item["batch"], item["page"], item["office"], item["reasons"]) == (batch, 2, OFFICE, ["cut_off"])
    assert item["deadline"] == deadline.isoformat() and item["file"] == "annex.png"
    assert item["legibility"] is not None
    read_before = item["ocr_confidence"] is not None  # a page held for an image fault may have been read for QA
    (msg,) = item["messages"]
    assert msg["code"] == "cut_off" and msg["fa"] and msg["en"] and msg["fa"] != msg["en"]
    for kind in ("corrected", "problems"):
        img = httpx.get(live_server.url + item["links"][kind], headers=bearer(qa), timeout=30)
        assert img.status_code == 200 and img.headers["content-type"] == "image/png"
        assert img.content.startswith(b"\x89PNG")
    assert httpx.get(f"{live_server.url}/api/v1/review", params={"office": "other"}, headers=bearer(qa)).json() == []
    assert httpx.get(f"{live_server.url}/api/v1/review", params={"reason": "blank"}, headers=bearer(qa)).json() == []
    assert len(httpx.get(f"{live_server.url}/api/v1/review", params={"reason": "cut_off"},
                         headers=bearer(qa)).json()) == 1

    url = f"{live_server.url}/api/v1/review/{batch}/pages/2/override"
    for body in ({"reason": ""}, {"reason": "   "}, {}, {"reason": None}):
        r = httpx.post(url, json=body, headers=bearer(qa), timeout=30)
        assert r.status_code == 422, (body, r.text)
    assert live_server.wait_batch(batch, station)["status"] == "held"  # nothing happened

    reason = "لبهٔ راست در سند اصلی هم سفید است؛ متنی نبریده است."
    r = httpx.post(url, json={"reason": reason}, headers=bearer(qa), timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["batch_status"] == "forwarded" and body["decision"] == "pass" and body["reason"] == reason
    assert body["ocr_rerun"] is (not read_before)  # read on override only when it had not been read
    state = body["page_state"]
    assert state["decision"] == "pass" and state["override_reason"] == reason and state["text"]
    assert state["ocr_confidence"] is not None and state["held_reasons"] == ["cut_off"]

    status = live_server.wait_batch(batch, station, statuses=("forwarded",), timeout=10)
    assert [p["decision"] for p in status["pages"]] == ["pass", "pass"]
    assert "qa_override" in status["pages"][1]["warnings"]
    pdf = httpx.get(f"{live_server.url}/api/v1/batches/{batch}/pdf", headers=bearer(station), timeout=30)
    assert pdf.status_code == 200
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf.content))
    assert len(reader.pages) == 2 and reader.pages[1].extract_text().strip()
    assert httpx.get(f"{live_server.url}/api/v1/review", headers=bearer(qa)).json() == []
    # the court's clerk finds the filing by a word that only the overridden page has (its text was indexed)
    clerk = live_server.token("clerk", court=COURT)
    first_page = set(status["pages"][0]["text"].split())
    only_second = [w for w in state["text"].split() if len(w) >= 4 and w.isalpha() and w not in first_page]
    assert only_second
    found = httpx.get(f"{live_server.url}/api/v1/court/filings", params={"q": only_second[0]}, headers=bearer(clerk),
                      timeout=30)
    assert found.status_code == 200 and [f["batch"] for f in found.json()] == [batch], (only_second[0], found.text)
    again = httpx.post(url, json={"reason": "again"}, headers=bearer(qa), timeout=30)
    assert again.status_code == 409 and "QA" in again.json()["detail"]


def test_review_is_hidden_from_stations_and_clerks(live_server, blank_png):
    station = live_server.token("station", office=OFFICE)
    clerk = live_server.token("clerk", court=COURT)
    qa = live_server.token("qa")
    admin = live_server.token("admin")
    batch = upload(live_server, station, [("blank.png", blank_png)])
    assert live_server.wait_batch(batch, station)["status"] == "held"
    endpoints = [
        ("GET", "/api/v1/review", None),
        ("GET", f"/api/v1/review/{batch}/pages/1", None),
        ("GET", f"/api/v1/review/{batch}/pages/1/corrected.png", None),
        ("POST", f"/api/v1/review/{batch}/pages/1/override", {"reason": "ok"}),
        ("POST", f"/api/v1/review/{batch}/pages/1/request-rescan", {"reason": "ok"}),
        ("POST", f"/api/v1/review/{batch}/reject", {"reason": "ok"}),
        ("GET", "/api/v1/review/stats", None),
        ("GET", "/api/v1/review/stats.csv", None),
    ]
    for method, path, body in endpoints:
        for token in (station, clerk):
            r = httpx.request(method, live_server.url + path, json=body, headers=bearer(token), timeout=30)
            assert r.status_code == 404, (method, path, r.status_code)
        r = httpx.request(method, live_server.url + path, json=body, timeout=30)
        assert r.status_code == 401, (method, path, r.status_code)
    assert live_server.wait_batch(batch, station)["status"] == "held"  # none of it acted
    assert httpx.get(f"{live_server.url}/api/v1/review", headers=bearer(admin)).status_code == 200
    r = httpx.get(f"{live_server.url}/api/v1/review/{'0' * 32}/pages/1", headers=bearer(qa))
    assert r.status_code == 404


def test_rescan_request_and_rejection_reach_the_station(live_server, blank_png):
    station = live_server.token("station", office=OFFICE)
    qa = live_server.token("qa")
    first = upload(live_server, station, [("blank.png", blank_png)])
    second = upload(live_server, station, [("blank.png", blank_png)], case_number="140209000000002")
    for b in (first, second):
        assert live_server.wait_batch(b, station)["status"] == "held"

    url = f"{live_server.url}/api/v1/review/{first}/pages/1/request-rescan"
    assert httpx.post(url, json={"reason": " "}, headers=bearer(qa)).status_code == 422
    reason = "صفحهٔ خالی اسکن شده است؛ برگ درست را دوباره اسکن کنید."
    r = httpx.post(url, json={"reason": reason}, headers=bearer(qa), timeout=30)
    assert r.status_code == 200 and r.json()["batch_status"] == "held"
    status = live_server.wait_batch(first, station)
    assert [(r["page"], r["reason"]) for r in status["rescan_requests"]] == [(1, reason)]
    (item,) = [i for i in httpx.get(f"{live_server.url}/api/v1/review", headers=bearer(qa)).json() if i["batch"] == first]
    assert item["rescan_requested"] and item["rescan_reason"] == reason
    page = httpx.get(f"{live_server.url}/station/batches/{first}/pages", headers=bearer(station), timeout=30)
    assert page.status_code == 200 and reason in page.text  # the station's own page shows QA's request

    url = f"{live_server.url}/api/v1/review/{second}/reject"
    assert httpx.post(url, json={"reason": ""}, headers=bearer(qa)).status_code == 422
    why = "دادخواست امضا ندارد؛ پرونده ناقص است."
    r = httpx.post(url, json={"reason": why}, headers=bearer(qa), timeout=30)
    assert r.status_code == 200 and r.json()["batch_status"] == "rejected"
    status = live_server.wait_batch(second, station, statuses=("rejected",), timeout=10)
    assert status["rejection"]["reason"] == why
    page = httpx.get(f"{live_server.url}/station/batches/{second}/pages", headers=bearer(station), timeout=30)
    assert page.status_code == 200 and why in page.text and "hx-trigger" not in page.text  # told, and no more polling
    rescan = httpx.post(f"{live_server.url}/api/v1/batches/{second}/pages/1/rescan", headers=bearer(station),
                        files={"file": ("again.png", blank_png, "image/png")}, timeout=30)
    assert rescan.status_code == 409  # a rejected filing is not rescanned
    assert [i["batch"] for i in httpx.get(f"{live_server.url}/api/v1/review", headers=bearer(qa)).json()] == [first]
    assert httpx.post(url, json={"reason": "again"}, headers=bearer(qa)).status_code == 409


def test_office_statistics_json_and_csv(live_server, blank_png, text_png):
    station = live_server.token("station", office=OFFICE)
    qa = live_server.token("qa")
    held = upload(live_server, station, [("blank.png", blank_png), ("p.png", text_png)])
    live_server.wait_batch(held, station)
    r = httpx.get(f"{live_server.url}/api/v1/review/stats", headers=bearer(qa), timeout=30)
    assert r.status_code == 200
    body = r.json()
    import jdatetime

    today = jdatetime.date.today()
    assert body["period"] == f"{today.year:04d}-{today.month:02d}"
    (office,) = body["offices"]
    assert office["office"] == OFFICE and office["pages_received"] == 2 and office["pages_held"] == 1
    assert office["held_share_by_reason"] == {"blank": 0.5} and body["reasons"] == ["blank"]
    same = httpx.get(f"{live_server.url}/api/v1/review/stats", params={"period": body["period"].replace("-", "/")},
                     headers=bearer(qa)).json()
    assert same["offices"] == body["offices"]

    r = httpx.get(f"{live_server.url}/api/v1/review/stats.csv", params={"period": body["period"]},
                  headers=bearer(qa), timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows == [{**rows[0], "office": OFFICE, "pages_received": "2", "held_share_blank": "0.5"}]

    empty = httpx.get(f"{live_server.url}/api/v1/review/stats", params={"period": "1390-01"}, headers=bearer(qa))
    assert empty.status_code == 200 and empty.json()["offices"] == []
    bad = httpx.get(f"{live_server.url}/api/v1/review/stats", params={"period": "1405-13"}, headers=bearer(qa))
    assert bad.status_code == 422 and "۱۴۰۵-۰۹" in bad.json()["detail"]
