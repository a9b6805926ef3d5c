"""Rescans over the real API: a held page is replaced by a new scan, runs through the same flow, and the filing is
forwarded once every page passes. Only a held page can be rescanned; one page per rescan; Idempotency-Key honoured."""
from __future__ import annotations

import io

import httpx
import pytest
from conftest import png_bytes
from PIL import Image

from testpages import degrade, render_page

FORM = {"court": "tehran-civil-12", "case_number": "140209987654321", "document_type": "petition"}


@pytest.mark.slow
def test_rescan_replaces_a_held_page_and_the_filing_is_forwarded(live_server):
    clean = render_page(n_words=50, seed=21, size_pt=14).image
    good, blurred = png_bytes(clean), png_bytes(degrade.blur(clean, 9.0))
    tok = live_server.token("station", office="11-2301")
    other = live_server.token("station", office="22-1000")
    h = {"Authorization": f"Bearer {tok}"}
    url = live_server.url
    r = httpx.post(f"{url}/api/v1/batches", data=FORM, headers=h, timeout=60,
                   files=[("files", ("p1.png", good, "image/png")), ("files", ("p2.png", blurred, "image/png"))])
    batch = r.json()["batch"]
    body = live_server.wait_batch(batch, tok)
    assert body["status"] == "held" and [(x["seq"], x["page"]) for x in body["rescan"]] == [(2, 1)]

    rescan = f"{url}/api/v1/batches/{batch}/pages/2/rescan"
    # only the owner, only a held page, exactly one page
    assert httpx.post(rescan, files={"file": ("n.png", good)}, headers={"Authorization": f"Bearer {other}"}).status_code == 404
    assert httpx.post(f"{url}/api/v1/batches/{batch}/pages/1/rescan", files={"file": ("n.png", good)}, headers=h).status_code == 409
    tiff = io.BytesIO()
    Image.fromarray(clean).save(tiff, "TIFF", save_all=True, append_images=[Image.fromarray(clean)])
    two = httpx.post(rescan, files={"file": ("two.tif", tiff.getvalue())}, headers=h, timeout=60)
    assert two.status_code == 400 and "one page" in two.json()["detail"]

    hk = {**h, "Idempotency-Key": "rescan-1"}
    first = httpx.post(rescan, files={"file": ("p2-new.png", good, "image/png")}, headers=hk, timeout=60)
    assert first.status_code == 202 and first.json()["created"], first.text
    again = httpx.post(rescan, files={"file": ("p2-new.png", good, "image/png")}, headers=hk, timeout=60)
    assert again.status_code == 202 and not again.json()["created"] and again.json()["page_id"] == first.json()["page_id"]
    assert httpx.post(rescan, files={"file": ("x.png", blurred)}, headers=hk, timeout=60).status_code == 409

    body = live_server.wait_batch(batch, tok, statuses=("forwarded", "held", "passed", "failed"))
    assert body["status"] == "forwarded", body
    assert [(p["seq"], p["file"], p["decision"]) for p in body["pages"]] == [(1, "p1.png", "pass"), (2, "p2-new.png", "pass")]
    pdf = httpx.get(f"{url}/api/v1/batches/{batch}/pdf", headers=h)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    from pypdf import PdfReader

    assert len(PdfReader(io.BytesIO(pdf.content)).pages) == 2
    # a forwarded filing takes no more rescans
    assert httpx.post(rescan, files={"file": ("n.png", good)}, headers=h, timeout=60).status_code == 409
