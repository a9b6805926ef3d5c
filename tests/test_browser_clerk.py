"""A court clerk in a real browser (Playwright + Debian's Chromium) against a real `khana serve`:
signs in, sees the inbox, finds a filing by a Persian word typed with Arabic yeh, opens it and
downloads its PDF. Screenshots of every page in Persian and English go to tests/_screenshots/
(the README's are copied to docs/screenshots/)."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from test_court_api import ARABIC_YEH, YEH, _bearer, a_word_with_yeh, upload
from web_fixtures import publish_shot, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_clerk_finds_a_filing_by_a_word_typed_with_arabic_yeh_and_downloads_it(live_server, page, tmp_path):
    s = live_server
    st = s.token("station", office="11-2301")
    soon = (date.today() + timedelta(days=2)).isoformat()
    first = upload(s, st, "tehran-civil-12", "140209987654321", seed=21)
    second = httpx.post(f"{s.url}/api/v1/batches", headers=_bearer(st), timeout=60,
                        data={"court": "tehran-civil-12", "case_number": "۱۴۰۳۰۱۲۳۴۵۶۷۸۹۰", "document_type": "لایحه",
                              "deadline": soon},
                        files=[("files", ("a.png", _page_png(22), "image/png")), ("files", ("b.png", _page_png(23), "image/png"))])
    assert second.status_code == 202, second.text
    second = second.json()["batch"]
    for b in (first, second):
        assert s.wait_batch(b, st, statuses=("forwarded", "held", "failed"), timeout=300)["status"] == "forwarded"
    text = s.wait_batch(first, st)["pages"][0]["text"]
    other = " ".join(p["text"] for p in s.wait_batch(second, st)["pages"])
    word = a_word_with_yeh(text, avoid=other)  # a word only the first filing has
    typed = word.replace(YEH, ARABIC_YEH)

    s.user("maryam", "a long clerk password", "clerk", court="tehran-civil-12")
    s.login(page, "maryam", "a long clerk password")

    # inbox: the filing with the nearest deadline first
    page.goto(f"{s.url}/court")
    rows = page.locator("table.court-table tbody tr")
    assert rows.count() == 2
    assert "۱۴۰۳۰۱۲۳۴۵۶۷۸۹۰" in rows.nth(0).inner_text()  # Persian digits, the urgent one on top
    assert "فوری" in rows.nth(0).inner_text()
    assert page.locator("html").get_attribute("dir") == "rtl"
    shot(page, "clerk-inbox-fa")

    # search with Arabic yeh: found, the hit word marked
    page.fill("input[name=q]", typed)
    page.click("form.court-search button[type=submit]")
    page.wait_for_load_state("networkidle")
    hits = page.locator("ol.hits li.hit")
    assert hits.count() == 1
    assert "۱۴۰۲۰۹۹۸۷۶۵۴۳۲۱" in hits.first.inner_text()
    assert page.locator("ol.hits mark").count() >= 1
    shot(page, "clerk-search-fa")

    # open the filing, see its page, download the PDF
    hits.first.locator("a.hit-title").click()
    page.wait_for_load_state("networkidle")
    assert page.locator(".court-page img").count() == 1
    assert page.locator(".court-page img").evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.locator(".page-text mark").count() >= 1
    shot(page, "clerk-filing-fa")
    with page.expect_download() as dl:
        page.click("a[download]")
    pdf = Path(dl.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF"), (dl.value.url, pdf[:600].decode("utf-8", "replace"))
    # the viewer link opens the PDF inline (the browser's own viewer)
    href = page.locator("a.button.primary").get_attribute("href")
    r = page.request.get(s.url + href)
    assert r.status == 200 and r.headers["content-disposition"].startswith("inline")

    # the same pages in English
    page.goto(f"{s.url}/court?lang=en")
    assert page.locator("html").get_attribute("dir") == "ltr"
    assert "140301234567890" in page.locator("table.court-table").inner_text()
    shot(page, "clerk-inbox-en")
    page.goto(f"{s.url}/court/search?q={typed}")
    assert page.locator("ol.hits li.hit").count() == 1
    shot(page, "clerk-search-en")
    page.goto(f"{s.url}/court/filings/{first}?q={typed}")
    shot(page, "clerk-filing-en")
    page.goto(f"{s.url}/court/search?q=%D9%88%D8%A7%DA%98%D9%87%E2%80%8C%D9%86%D8%A7%DB%8C%D8%A7%D8%A8&lang=fa")
    assert page.locator("ol.hits").count() == 0
    shot(page, "clerk-search-empty-fa")
    for name in ("clerk-search-fa", "clerk-filing-fa", "clerk-inbox-fa"):
        publish_shot(name)


def _page_png(seed: int) -> bytes:
    from conftest import png_bytes
    from testpages import render_page

    return png_bytes(render_page(n_words=60, seed=seed).image)
