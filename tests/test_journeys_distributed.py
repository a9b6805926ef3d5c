"""The three users' journeys through the API on the production stack: `khana serve` handing pages to real
Celery workers over Redis, PostgreSQL for the records and the S3 server (moto, real `minio` client) for the
objects. A station uploads a filing with a blurred page and sees it held; QA overrides the hold with a
reason; the clerk of the court finds the filing by a word typed with Arabic yeh and downloads its PDF.
"""
from __future__ import annotations

import re
import time

import httpx
import pytest

from conftest import png_bytes
from fixtures_services import KhanaStack

pytestmark = [pytest.mark.slow, pytest.mark.services]

OFFICE, COURT = "11-2301", "tehran-civil-12"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def prod_server(tmp_path, redis_url, postgres_url, s3_server):
    from web_fixtures import start_server, stop_server

    stack = KhanaStack(tmp_path, redis_url=redis_url, database_url=postgres_url,
                       s3_endpoint=s3_server.endpoint)
    stack.worker("quality,ocr,assemble", concurrency=2)
    env = {k: v for k, v in stack.env.items() if k.startswith("KHANA_")}
    srv = start_server(tmp_path / "serve-home", env)
    try:
        yield srv
    finally:
        stop_server(srv)
        stack.close()


def test_station_qa_and_clerk_on_postgres_redis_and_s3(prod_server):
    from testpages import degrade, render_page

    srv = prod_server
    station, qa, clerk = srv.token("station", office=OFFICE), srv.token("qa"), srv.token("clerk", court=COURT)
    other_clerk = srv.token("clerk", court="shiraz-criminal-2")
    page = render_page(n_words=80, seed=21)
    blurred = degrade.blur(render_page(n_words=80, seed=22).image, 6.0)

    # the station: upload, then the blurred page is held with its reason and its picture
    r = httpx.post(f"{srv.url}/api/v1/batches", headers={**bearer(station), "Idempotency-Key": "journey-1"},
                   data={"court": COURT, "case_number": "140209987654321", "document_type": "دادخواست"},
                   files=[("files", ("p1.png", png_bytes(page.image), "image/png")),
                          ("files", ("p2.png", png_bytes(blurred), "image/png"))], timeout=60)
    assert r.status_code == 202, r.text
    batch = r.json()["batch"]
    status = srv.wait_batch(batch, station, timeout=240)
    assert status["status"] == "held", status
    (rescan,) = status["rescan"]
    assert rescan["file"] == "p2.png" and rescan["seq"] == 2 and "blurred" in [m["code"] for m in rescan["reasons"]]
    assert all(re.search("[\u0600-\u06ff]", m["fa"]) for m in rescan["reasons"])  # Persian for the operator
    pic = httpx.get(f"{srv.url}/api/v1/batches/{batch}/pages/2/problems.png", headers=bearer(station), timeout=30)
    assert pic.status_code == 200 and pic.content.startswith(b"\x89PNG")

    # QA: the held page is in the queue; an empty reason is refused, a written one overrides the hold
    queue = httpx.get(f"{srv.url}/api/v1/review", headers=bearer(qa), timeout=30).json()
    (item,) = [i for i in queue if i["batch"] == batch]
    assert item["page"] == 2 and item["office"] == OFFICE and "blurred" in item["reasons"]
    url = f"{srv.url}/api/v1/review/{batch}/pages/2/override"
    assert httpx.post(url, json={"reason": "  "}, headers=bearer(qa), timeout=30).status_code == 422
    r = httpx.post(url, json={"reason": "پیوست تصویری است؛ متن اصلی در صفحهٔ ۱ خواناست."}, headers=bearer(qa),
                   timeout=180)
    assert r.status_code == 200, r.text
    assert srv.wait_batch(batch, station, statuses=("forwarded",), timeout=240)["status"] == "forwarded"

    # the clerk: found by a word of page 1 typed with Arabic yeh, and the PDF downloads
    words = [w for w in re.findall(r"[\u0600-\u06ff]+", page.text) if "ی" in w and len(w) >= 5]
    query = max(words, key=len).replace("ی", "ي")
    deadline = time.monotonic() + 60
    while True:
        found = httpx.get(f"{srv.url}/api/v1/court/filings", params={"q": query}, headers=bearer(clerk), timeout=30)
        assert found.status_code == 200
        if [f["batch"] for f in found.json()] == [batch] or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert [(f["batch"], f["case_number"]) for f in found.json()] == [(batch, "140209987654321")]
    pdf = httpx.get(f"{srv.url}/api/v1/court/filings/{batch}/pdf", headers=bearer(clerk), timeout=60)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    # another court's clerk neither finds it nor opens it
    assert httpx.get(f"{srv.url}/api/v1/court/filings", params={"q": query}, headers=bearer(other_clerk),
                     timeout=30).json() == []
    assert httpx.get(f"{srv.url}/api/v1/court/filings/{batch}/pdf", headers=bearer(other_clerk),
                     timeout=30).status_code == 404
