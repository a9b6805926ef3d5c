"""QA in a real browser (headless Chromium via Playwright) against a real `khana serve`.

A QA reviewer signs in, opens the held page from the queue, overrides it with a written reason, and the filing
is forwarded. Screenshots of every QA page in Persian and English go to tests/_screenshots/ (the README's to
docs/screenshots/).
"""
from __future__ import annotations

import re
from datetime import date, timedelta

import httpx
import pytest
from web_fixtures import image_loads, publish_shot, shot


pytestmark = [pytest.mark.browser, pytest.mark.slow]

OFFICE = "11-2301"
COURT = "tehran-civil-12"
PERSIAN_DIGIT = re.compile("[۰-۹]")


def _upload(server, token: str, files, case_number: str, deadline: date | None = None) -> str:
    data = {"court": COURT, "case_number": case_number, "document_type": "دادخواست"}
    if deadline:
        data["deadline"] = deadline.isoformat()
    r = httpx.post(f"{server.url}/api/v1/batches", headers={"Authorization": f"Bearer {token}"},
                   data=data, files=[("files", (n, c, "image/png")) for n, c in files], timeout=60)
    assert r.status_code == 202, r.text
    return r.json()["batch"]


def test_qa_overrides_a_held_page_with_a_reason_and_the_filing_is_forwarded(live_server, page, text_png, cut_png,
                                                                            blank_png):
    station = live_server.token("station", office=OFFICE)
    other = live_server.token("station", office="12-0457")
    text, cut, blank = text_png, cut_png, blank_png  # the review pages (tests/conftest.py)
    urgent = _upload(live_server, station, [("petition.png", text), ("annex.png", cut)], "140209987654321",
                     date.today() + timedelta(days=2))
    later = _upload(live_server, other, [("blank.png", blank)], "140209000000077")
    third = _upload(live_server, station, [("p.png", text), ("blank.png", blank)], "140209000000078")
    for b in (urgent, later, third):
        assert live_server.wait_batch(b, station if b != later else other)["status"] == "held"

    live_server.admin("office", "add", OFFICE, "--name", "دفتر خدمات قضایی ۲۳۰۱ تهران")
    live_server.user("maryam", "a long qa password 1405", "qa")
    live_server.login(page, "maryam", "a long qa password 1405")

    # the queue, in Persian (default): right to left, Persian digits, nearest deadline first
    page.goto(f"{live_server.url}/qa")
    assert page.locator("html").get_attribute("dir") == "rtl"
    rows = page.locator("table.queue tbody tr")
    assert rows.count() == 3
    assert rows.first.get_attribute("data-batch") == urgent and rows.first.get_attribute("data-page") == "2"
    assert "بریده" in rows.first.inner_text() and PERSIAN_DIGIT.search(rows.first.inner_text())
    assert "۱۴۰۲۰۹۹۸۷۶۵۴۳۲۱" in rows.first.inner_text()
    shot(page, "qa-queue-fa")
    publish_shot("qa-queue-fa")

    # filter by office
    page.select_option("select[name=office]", "12-0457")
    page.click("form.filters button[type=submit]")
    assert page.locator("table.queue tbody tr").count() == 1
    assert page.locator("table.queue tbody tr").first.get_attribute("data-batch") == later

    # open the urgent held page: images side by side, reasons, measures, no OCR text yet
    page.goto(f"{live_server.url}/qa")
    rows.first.locator("a.button").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/qa/{urgent}/pages/2")
    imgs = page.locator(".qa-images img")
    assert imgs.count() == 2
    for i in range(2):  # both images really loaded
        assert image_loads(page, imgs.nth(i))
    assert "بریده" in page.locator(".reasons").inner_text()
    shot(page, "qa-page-fa")
    publish_shot("qa-page-fa")

    # an empty reason is refused by the server too (the browser's `required` bypassed)
    page.evaluate("document.querySelector('#override-form textarea').removeAttribute('required')")
    page.fill("#override-form textarea", "   ")
    page.click("#override-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "دلیل" in page.locator(".alert.error").inner_text()
    assert live_server.wait_batch(urgent, station)["status"] == "held"

    # override with a reason: the filing is forwarded
    page.fill("#override-form textarea", "لبهٔ راست برگ در اصل سند هم سفید است؛ متنی بریده نشده است.")
    page.click("#override-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/qa\?done=override.*"), timeout=120_000)
    done = page.locator(".alert.ok").inner_text()
    assert "به دادگاه ارسال شد" in done
    shot(page, "qa-done-fa")
    status = live_server.wait_batch(urgent, station, statuses=("forwarded",), timeout=10)
    assert [p["decision"] for p in status["pages"]] == ["pass", "pass"]
    assert page.locator("table.queue tbody tr").count() == 2

    # the overridden page shows who overrode it, when and why; the OCR text read on override
    page.goto(f"{live_server.url}/qa/{urgent}/pages/2")
    assert "maryam" in page.locator("[data-state=overridden]").inner_text()
    assert len(page.locator(".ocr-text").inner_text()) > 50
    shot(page, "qa-page-overridden-fa")

    # request a rescan of the blank page of the third filing
    page.goto(f"{live_server.url}/qa/{third}/pages/2")
    page.fill("#rescan-form textarea", "برگ خالی اسکن شده؛ صفحهٔ دوم دادخواست را دوباره اسکن کنید.")
    page.click("#rescan-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/qa\?done=request_rescan.*"))
    status = live_server.wait_batch(third, station)
    assert status["rescan_requests"][0]["page"] == 2 and status["rescan_requests"][0]["reason"].startswith("برگ خالی")

    # statistics: chart with Persian labels, right to left
    page.goto(f"{live_server.url}/qa/stats")
    page.wait_for_selector("canvas#qa-chart[data-drawn='1']")
    assert "آذر" in page.locator("select[name=period]").inner_text() or PERSIAN_DIGIT.search(page.inner_text("h1"))
    assert page.locator("table.stats tbody tr").count() == 2
    assert "دفتر خدمات قضایی ۲۳۰۱ تهران" in page.locator("table.stats").inner_text()
    shot(page, "qa-stats-fa")
    publish_shot("qa-stats-fa")
    csv_link = page.locator("a[download]").get_attribute("href")
    r = page.request.get(live_server.url + csv_link)
    assert r.status == 200 and "held_share_blank" in r.text()

    # English
    page.goto(f"{live_server.url}/qa?lang=en")
    assert page.locator("html").get_attribute("dir") == "ltr"
    assert "Review queue" in page.inner_text("h1")
    assert not PERSIAN_DIGIT.search(page.locator("table.queue tbody").inner_text().replace("دادخواست", ""))
    shot(page, "qa-queue-en")
    publish_shot("qa-queue-en")
    page.goto(f"{live_server.url}/qa/{later}/pages/1")
    assert "Blank" in page.locator(".reasons").inner_text()
    assert "held before OCR" in page.inner_text("main")  # a blank page is never read before QA decides
    shot(page, "qa-page-en")
    page.goto(f"{live_server.url}/qa/stats")
    page.wait_for_selector("canvas#qa-chart[data-drawn='1']")
    shot(page, "qa-stats-en")
    publish_shot("qa-stats-en")
    page.goto(f"{live_server.url}/qa/{urgent}/pages/2")
    shot(page, "qa-page-overridden-en")


def test_pages_need_a_qa_session(live_server, page):
    live_server.user("sara", "a long station password", "station", office=OFFICE)
    page.goto(f"{live_server.url}/qa")
    assert "/login" in page.url  # not signed in: to the login page
    live_server.login(page, "sara", "a long station password")
    r = page.goto(f"{live_server.url}/qa")
    assert r.status == 404  # a station never sees the QA pages
    r = page.goto(f"{live_server.url}/qa/stats")
    assert r.status == 404
