"""The station journey in headless Chromium (Debian's chromium, Playwright): sign in, drop a filing with a blurred
page, see it held with its picture and what to rescan, rescan it, see the filing forwarded. Screenshots of every
page in Persian and English go to tests/_screenshots/ (docs/screenshots/ has the chosen ones)."""
from __future__ import annotations

import base64
import re

import pytest
from conftest import png_bytes
from web_fixtures import image_loads, publish_shot, shot

from testpages import degrade, render_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LATIN_DIGIT = re.compile(r"[0-9]")


def drop_files(page, selector: str, files: list[tuple[str, bytes]]) -> None:
    """Drag and drop files onto an element, as a person does from the file manager."""
    payload = [{"name": n, "b64": base64.b64encode(d).decode()} for n, d in files]
    dt = page.evaluate_handle("""(files) => {
        const dt = new DataTransfer();
        for (const f of files) {
            const bin = atob(f.b64); const bytes = new Uint8Array(bin.length);
            for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
            dt.items.add(new File([bytes], f.name, {type: "image/png"}));
        }
        return dt; }""", payload)
    page.dispatch_event(selector, "dragenter", {"dataTransfer": dt})
    page.dispatch_event(selector, "drop", {"dataTransfer": dt})


def test_station_journey(live_server, page, tmp_path):
    url = live_server.url
    # first try: no accounts yet
    page.goto(url + "/")
    assert page.locator(".banner").is_visible()
    shot(page, "first-try-fa")
    page.goto(url + "/?lang=en")
    assert page.locator("html").get_attribute("dir") == "ltr" and "First-try mode" in page.locator(".banner").inner_text()
    shot(page, "first-try-en")
    page.goto(url + "/?lang=fa")
    live_server.user("sara", "a long enough password", "station", office="11-2301")
    live_server.user("admin", "another long password", "admin")

    page.goto(url + "/station")
    assert "/login" in page.url
    shot(page, "login-fa")
    page.goto(url + "/login?lang=en")
    shot(page, "login-en")
    page.goto(url + "/login?lang=fa")
    live_server.login(page, "sara", "a long enough password")
    assert page.url.endswith("/station")
    assert page.locator("html").get_attribute("dir") == "rtl"
    shot(page, "station-upload-empty-fa")

    clean = render_page(n_words=60, seed=5, size_pt=14).image
    good, blurred = png_bytes(clean), png_bytes(degrade.blur(clean, 9.0))
    drop_files(page, "[data-dropzone]", [("صفحه-۱.png", good), ("صفحه-۲.png", blurred)])
    assert page.locator("[data-filelist] li").count() == 2
    page.fill("input[name=court]", "tehran-civil-12")
    page.fill("input[name=case_number]", "۱۴۰۲۰۹۹۸۷۶۵۴۳۲۱")
    page.fill("input[name=document_type]", "دادخواست")
    page.fill("input[name=deadline]", "۱۴۰۵/۰۹/۲۰")
    shot(page, "station-upload-fa")
    page.click("[data-submit]")
    page.wait_for_url(re.compile(r"/station/batches/[0-9a-f]{32}$"), timeout=60_000)
    shot(page, "station-batch-processing-fa")
    page.wait_for_selector("[data-status=held]", timeout=180_000)
    page.wait_for_load_state("networkidle")

    # the held page: its picture with the problems marked, and what to do, in Persian with Persian digits
    todo = page.locator("[data-rescan='2']").inner_text()
    assert "صفحهٔ ۲" in todo and "اسکن" in todo and not LATIN_DIGIT.search(todo)
    held_img = page.locator("li[data-seq='2'] .thumb img")
    assert "problems.png" in held_img.get_attribute("src")
    assert image_loads(page, held_img)
    assert image_loads(page, page.locator("li[data-seq='1'] .thumb img"))
    facts = page.locator(".facts").inner_text()
    assert "۱۴۰۵/۰۹/۲۰" in facts  # the deadline as the operator wrote it
    shot(page, "station-batch-held-fa")
    publish_shot("station-batch-held-fa")

    page.click("a.lang-switch")
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("dir") == "ltr"
    assert "Rescan page 2" in page.locator("[data-rescan='2']").inner_text()
    shot(page, "station-batch-held-en")
    publish_shot("station-batch-held-en")
    page.goto(url + "/station")
    shot(page, "station-upload-en")
    page.goto(url + "/station/filings")
    shot(page, "station-filings-en")
    page.goto(url + "/station/filings?lang=fa")
    assert "۱۴۰۲۰۹۹۸۷۶۵۴۳۲۱" in page.locator("table").inner_text()
    shot(page, "station-filings-fa")

    # rescan page 2 from the page
    page.go_back()
    page.goto(page.url.split("/station/filings")[0] + "/station")
    page.locator(".recent a").first.click()
    path = tmp_path / "rescan.png"
    path.write_bytes(good)
    page.set_input_files("li[data-seq='2'] input[type=file]", str(path))
    page.click("li[data-seq='2'] [data-submit]")
    page.wait_for_selector("[data-status=forwarded]", timeout=180_000)
    page.wait_for_load_state("networkidle")
    assert "دادگاه" in page.locator(".alert.ok").inner_text()
    shot(page, "station-batch-forwarded-fa")
    page.goto(page.url + "?lang=en")
    shot(page, "station-batch-forwarded-en")
    page.goto(page.url.split("?")[0] + "?lang=fa")
    publish_shot("station-upload-fa")

    # the admin's accounts page, both languages
    page.click("button:has-text('خروج')")
    live_server.login(page, "admin", "another long password")
    assert page.url.endswith("/admin/accounts")
    shot(page, "admin-accounts-fa")
    page.goto(url + "/admin/accounts?lang=en")
    shot(page, "admin-accounts-en")
    page.goto(url + "/station/filings")
    assert page.locator(".big-code").inner_text().strip() == "404"  # an admin is not a station
    shot(page, "not-found-en")
