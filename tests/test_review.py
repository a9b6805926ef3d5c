"""The QA review domain (pipeline/review.py) on SQLite and PostgreSQL, with real pages through the real pipeline."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from pipeline import review, stages
from pipeline.finalise import finalise_batch
from pipeline.service import BatchMeta, KhanaService, NotRescannable, Upload
from storage.models import AuditEvent, Batch, Delivery, Page


# text_png, cut_png, blank_png: the review pages (tests/conftest.py, session-scoped)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def db_rt(request, tmp_path):
    """A Runtime on SQLite (embedded default) or on a fresh PostgreSQL database."""
    from fixtures_services import drop_postgres_db, make_postgres_db
    from khana.bootstrap import build_runtime
    from khana.settings import Settings

    pg_url = None
    if request.param == "sqlite":
        settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'khana.db'}")
    else:  # a fresh database for each test
        pg_url = make_postgres_db(request.getfixturevalue("postgres_server_url"))
        settings = Settings(home=tmp_path / "home", database_url=pg_url)
    rt = build_runtime(settings)
    assert rt.db.engine.dialect.name == request.param
    yield rt
    rt.close()
    if pg_url:
        drop_postgres_db(pg_url)


def submit(rt, files: list[tuple[str, bytes]], **meta) -> tuple[str, list[str]]:
    """Upload a filing and run it through the real pipeline (both page stages, then finalise)."""
    m = BatchMeta(office=meta.get("office", "11-2301"), court=meta.get("court", "tehran-civil-12"),
                  case_number=meta.get("case_number", "140209987654321"), document_type="petition",
                  deadline=meta.get("deadline"))
    sub = KhanaService(rt).submit_batch([Upload(n, d) for n, d in files], m)
    for pid in sub.page_ids:
        stages.run_page(rt, pid)
    finalise_batch(rt, sub.batch_id)
    return sub.batch_id, sub.page_ids


def events(rt, batch_id: str, action: str) -> list[AuditEvent]:
    with rt.db.session() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.batch_id == batch_id, AuditEvent.action == action)))
        s.expunge_all()
    return rows


def batch_status(rt, batch_id: str) -> str:
    return KhanaService(rt).batch_status(batch_id)


# --- the queue ---------------------------------------------------------------------------------------------
def test_queue_orders_by_deadline_then_age_and_filters(db_rt, blank_png, text_png):
    today = date.today()
    late, _ = submit(db_rt, [("blank.png", blank_png)], office="office-a", deadline=today + timedelta(days=20))
    none, _ = submit(db_rt, [("blank.png", blank_png)], office="office-b")
    soon, _ = submit(db_rt, [("blank.png", blank_png), ("blank2.png", blank_png)], office="office-b",
                     deadline=today + timedelta(days=2))
    older_none, _ = submit(db_rt, [("blank.png", blank_png)], office="office-a")
    with db_rt.db.session() as s:  # the filing without deadline uploaded first comes first among those
        s.get(Batch, older_none).created_at = datetime.now(timezone.utc) - timedelta(hours=3)

    q = review.held_pages(db_rt)
    assert [(h.batch, h.page) for h in q] == [(soon, 1), (soon, 2), (late, 1), (older_none, 1), (none, 1)]
    first = q[0]
    assert first.reasons == ["blank"] and first.office == "office-b" and first.deadline == today + timedelta(days=2)
    assert first.file == "blank.png" and first.ocr_done is False and first.has_corrected_image
    assert first.as_dict()["deadline"] == (today + timedelta(days=2)).isoformat()

    assert [h.batch for h in review.held_pages(db_rt, office="office-a")] == [late, older_none]
    assert review.held_pages(db_rt, reason="blank") == q
    assert review.held_pages(db_rt, reason="cut_off") == []
    assert len(review.held_pages(db_rt, limit=2)) == 2
    f = review.queue_filters(db_rt)
    assert f == {"offices": ["office-a", "office-b"], "reasons": ["blank"]}


# --- override ----------------------------------------------------------------------------------------------
def _check_forwarded_with_text_layer(rt, batch: str, page_id: str, reason: str) -> None:
    """The overridden page passes, carries its OCR text, and is in the delivered PDF with its text layer."""
    import pikepdf
    from pypdf import PdfReader

    with rt.db.session() as s:
        p = s.get(Page, page_id)
        assert p.decision == "pass" and p.reasons == [] and p.held_reasons == ["cut_off"]
        assert p.override_reason == reason and p.reviewed_by == "qa:maryam" and p.reviewed_at is not None
        assert p.ocr_confidence is not None and len(p.text) > 50 and p.words_key and p.pdf_image
        assert p.report["decision"] == "pass" and p.report["reasons"] == [] and p.report["hold_kind"] is None
        assert "qa_override" in p.report["warnings"] and p.report["text"] == p.text
        b = s.get(Batch, batch)
        pdf = rt.store.get("documents", b.pdf_key, b.pdf_sha256)
        assert s.scalar(select(Delivery).where(Delivery.batch_id == batch)) is not None
        overridden_text = p.text
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 2
    layer = reader.pages[1].extract_text()
    words = [w for w in overridden_text.split() if len(w) > 3][:5]
    assert words and sum(w in layer for w in words) >= 3, (words, layer[:200])
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert len(doc.pages[1].images) == 1
    assert len(events(rt, batch, "batch_forwarded")) == 1


@pytest.mark.slow
def test_override_of_a_page_held_before_its_read_reads_it_and_forwards_the_filing(db_rt, text_png, cut_png):
    """A page held at once for an image fault whose read has not run yet (its OCR task still queued)."""
    sub = KhanaService(db_rt).submit_batch([Upload("petition.png", text_png), Upload("annex.png", cut_png)],
                                           BatchMeta(office="11-2301", court="tehran-civil-12", document_type="petition"))
    stages.run_page(db_rt, sub.page_ids[0])
    stages.run_quality(db_rt, sub.page_ids[1])  # decided (held) by the quality stage; not read yet
    batch = sub.batch_id
    assert finalise_batch(db_rt, batch) == "held"
    (held,) = review.held_pages(db_rt)
    assert (held.batch, held.page, held.reasons, held.ocr_done) == (batch, 2, ["cut_off"], False)
    assert held.ocr_confidence is None

    res = review.override(db_rt, batch, 2, "  لبه صفحه در اصل سند هم سفید است؛ متن کامل است.  ", "qa:maryam")
    assert res.batch_status == "forwarded" and res.decision == "pass" and res.ocr_rerun
    assert res.reason == "لبه صفحه در اصل سند هم سفید است؛ متن کامل است."
    assert review.held_pages(db_rt) == []
    _check_forwarded_with_text_layer(db_rt, batch, sub.page_ids[1], res.reason)
    (ev,) = events(db_rt, batch, "page_override")
    assert ev.actor == "qa:maryam" and ev.detail["reason"] == res.reason and ev.detail["held_reasons"] == ["cut_off"]
    assert ev.detail["ocr_rerun"] is True and ev.at is not None
    # the queued OCR task arrives late: it finds the page read and decided, and changes nothing
    assert stages.run_ocr(db_rt, sub.page_ids[1]) == "done"
    _check_forwarded_with_text_layer(db_rt, batch, sub.page_ids[1], res.reason)
    # a second override of the same page is refused: it no longer waits for QA
    with pytest.raises(review.NotAwaitingReview):
        review.override(db_rt, batch, 2, "again", "qa:ali")


@pytest.mark.slow
def test_override_of_a_page_read_for_qa_keeps_its_read(db_rt, text_png, cut_png):
    batch, pids = submit(db_rt, [("petition.png", text_png), ("annex.png", cut_png)])
    (held,) = review.held_pages(db_rt)
    assert held.reasons == ["cut_off"] and held.ocr_done and held.ocr_confidence is not None
    with db_rt.db.session() as s:
        words_key = s.get(Page, pids[1]).words_key
    res = review.override(db_rt, batch, 2, "متن کامل است.", "qa:maryam")
    assert res.batch_status == "forwarded" and not res.ocr_rerun
    _check_forwarded_with_text_layer(db_rt, batch, pids[1], "متن کامل است.")
    with db_rt.db.session() as s:
        assert s.get(Page, pids[1]).words_key == words_key  # not read a second time


def test_override_of_one_of_two_held_pages_keeps_the_filing_held(db_rt, blank_png):
    batch, pids = submit(db_rt, [("a.png", blank_png), ("b.png", blank_png)])
    res = review.override(db_rt, batch, 1, "صفحهٔ سفید عمدی است (پشت برگ).", "qa:maryam")
    assert res.batch_status == "held" and res.ocr_rerun  # a blank page is read too: it has no text, and passes
    assert [(h.batch, h.page) for h in review.held_pages(db_rt)] == [(batch, 2)]
    res = review.override(db_rt, batch, 2, "پشت برگ دوم هم سفید است.", "qa:maryam")
    assert res.batch_status == "forwarded"
    with db_rt.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Delivery).where(Delivery.batch_id == batch)) == 1


@pytest.mark.parametrize("reason", ["", "   ", "\n\t", None])
def test_every_action_needs_a_written_reason(rt, blank_png, reason):
    batch, pids = submit(rt, [("blank.png", blank_png)])
    with pytest.raises(review.ReasonRequired) as exc:
        review.override(rt, batch, 1, reason, "qa:ali")
    assert "reason" in exc.value.one_line() and "دلیل" in exc.value.one_line()
    with pytest.raises(review.ReasonRequired):
        review.request_rescan(rt, batch, 1, reason, "qa:ali")
    with pytest.raises(review.ReasonRequired):
        review.reject(rt, batch, reason, "qa:ali")
    # nothing changed, nothing audited
    assert batch_status(rt, batch) == "held"
    assert [h.batch for h in review.held_pages(rt)] == [batch]
    with rt.db.session() as s:
        actions = set(s.scalars(select(AuditEvent.action).where(AuditEvent.batch_id == batch)))
    assert actions == {"batch_received", "page_decided", "batch_held"}


def test_unknown_page_or_filing_and_passing_pages_are_refused(rt, blank_png):
    batch, _ = submit(rt, [("blank.png", blank_png)])
    with pytest.raises(review.ReviewNotFound):
        review.override(rt, batch, 7, "x", "qa:ali")
    with pytest.raises(review.ReviewNotFound):
        review.override(rt, "0" * 32, 1, "x", "qa:ali")
    with pytest.raises(review.ReviewNotFound):
        review.reject(rt, "0" * 32, "x", "qa:ali")
    with pytest.raises(review.ReviewNotFound):
        review.page_detail(rt, batch, 2)


def test_a_page_whose_file_could_not_be_read_can_only_be_rescanned(rt, text_png):
    sub = KhanaService(rt).submit_batch([Upload("p.png", text_png)], BatchMeta(office="o", court="c"))
    # the original became unreadable in storage after it was accepted: the pipeline holds the page
    with rt.db.session() as s:
        key = s.get(Page, sub.page_ids[0]).file.object_key
    rt.store.put("originals", key, b"not an image any more", "image/png")
    with rt.db.session() as s:
        s.get(Page, sub.page_ids[0]).file.sha256 = __import__("hashlib").sha256(b"not an image any more").hexdigest()
    stages.run_page(rt, sub.page_ids[0])
    finalise_batch(rt, sub.batch_id)
    (held,) = review.held_pages(rt)
    assert held.reasons == ["unreadable_file"] and not held.has_corrected_image
    with pytest.raises(review.CannotOverride):
        review.override(rt, sub.batch_id, 1, "looks fine", "qa:ali")
    assert review.request_rescan(rt, sub.batch_id, 1, "فایل خراب است؛ دوباره اسکن کنید.", "qa:ali").batch_status == "held"


# --- request rescan, reject ------------------------------------------------------------------------------
def test_rescan_request_is_shown_to_the_station(db_rt, blank_png):
    batch, pids = submit(db_rt, [("blank.png", blank_png)])
    reason = "صفحه خالی اسکن شده؛ لطفاً صفحهٔ ۲ دادخواست را دوباره اسکن کنید."
    res = review.request_rescan(db_rt, batch, 1, reason, "qa:ali")
    assert res.batch_status == "held" and res.action == "request_rescan"
    report = KhanaService(db_rt).report(batch)  # what the station's batch status shows
    assert report["status"] == "held"
    assert report["rescan_requests"] == [{"page": 1, "file": "blank.png", "file_page": 1, "reason": reason,
                                          "at": report["rescan_requests"][0]["at"]}]
    assert report["pages"][0]["reasons"] == ["blank"] and "rescan_request" not in report["pages"][0]
    (h,) = review.held_pages(db_rt)
    assert h.rescan_requested and h.rescan_reason == reason
    assert review.held_pages(db_rt, rescan_requested=False) == []
    assert review.held_pages(db_rt, rescan_requested=True) == [h]
    detail = review.page_detail(db_rt, batch, 1)
    assert detail["rescan_requested_by"] == "qa:ali" and detail["awaiting_review"]
    (ev,) = events(db_rt, batch, "page_rescan_requested")
    assert ev.actor == "qa:ali" and ev.detail["reason"] == reason and ev.page_id == pids[0]
    # another reviewer overrides it after all: the request is withdrawn, the filing forwarded
    assert review.override(db_rt, batch, 1, "برگ سفید عمدی است.", "qa:maryam").batch_status == "forwarded"
    assert KhanaService(db_rt).report(batch)["rescan_requests"] == []


@pytest.mark.slow
def test_rejected_filing_is_never_forwarded_and_the_station_sees_why(db_rt, blank_png, text_png):
    batch, pids = submit(db_rt, [("blank.png", blank_png)])
    reason = "پرونده ناقص است: دادخواست امضا ندارد."
    res = review.reject(db_rt, batch, reason, "qa:ali")
    assert res.batch_status == "rejected"
    report = KhanaService(db_rt).report(batch)
    assert report["status"] == "rejected" and report["rejection"]["reason"] == reason
    assert review.held_pages(db_rt) == []
    with pytest.raises(review.NotAwaitingReview):
        review.override(db_rt, batch, 1, "ok", "qa:ali")
    with pytest.raises(review.NotAwaitingReview):
        review.reject(db_rt, batch, "again", "qa:ali")
    # even when the station rescans the page after the rejection and the new scan passes: nothing is forwarded
    svc = KhanaService(db_rt)
    try:
        redo = svc.rescan_page(batch, 1, Upload("rescan.png", text_png))
    except NotRescannable:  # refusing the rescan of a rejected filing outright is fine too
        pass
    else:
        for pid in redo.page_ids:
            stages.run_page(db_rt, pid)
        assert finalise_batch(db_rt, batch) == "rejected"
    assert finalise_batch(db_rt, batch) == "rejected"
    assert KhanaService(db_rt).report(batch)["status"] == "rejected"
    with db_rt.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0
    (ev,) = events(db_rt, batch, "batch_rejected")
    assert ev.actor == "qa:ali" and ev.detail["reason"] == reason


def test_a_forwarded_filing_cannot_be_rejected(rt, text_png):
    batch, _ = submit(rt, [("p.png", text_png)])
    assert batch_status(rt, batch) == "forwarded"
    with pytest.raises(review.NotAwaitingReview):
        review.reject(rt, batch, "too late", "qa:ali")


# --- statistics --------------------------------------------------------------------------------------------
def test_period_is_a_solar_hijri_month_in_iran_time():
    p = review.Period.parse("۱۴۰۵-۰۹")
    assert (p.year, p.month, str(p)) == (1405, 9, "1405-09")
    assert review.Period.parse("1405/9") == p
    # Azar 1st 1405 = 2026-11-22, midnight in Tehran (UTC+3:30) = 20:30 UTC the day before
    assert p.start() == datetime(2026, 11, 21, 20, 30, tzinfo=timezone.utc)
    assert p.end() == review.Period(1405, 10).start()
    assert review.Period.of(datetime(2026, 11, 21, 20, 31, tzinfo=timezone.utc)) == p
    assert review.Period.of(datetime(2026, 11, 21, 20, 29, tzinfo=timezone.utc)) == review.Period(1405, 8)
    assert review.Period(1405, 12).next() == review.Period(1406, 1)
    assert review.Period(1406, 1).previous() == review.Period(1405, 12)
    for bad in ["1405-13", "1405", "abc", "", "1405-00"]:
        with pytest.raises(review.BadInput):
            review.Period.parse(bad)


def test_office_stats_per_office_and_month(db_rt, blank_png, text_png):
    now = datetime.now(timezone.utc)
    period = review.Period.of(now)
    a1, _ = submit(db_rt, [("blank.png", blank_png), ("b2.png", blank_png)], office="office-a")
    a2, _ = submit(db_rt, [("p.png", text_png)], office="office-a")  # forwarded
    b1, pb = submit(db_rt, [("blank.png", blank_png)], office="office-b")
    old, _ = submit(db_rt, [("blank.png", blank_png)], office="office-b")
    review.override(db_rt, a1, 1, "پشت برگ", "qa:ali")  # was held for blank: still counts as held
    review.request_rescan(db_rt, b1, 1, "دوباره اسکن شود", "qa:ali")
    # the station rescans b1's page (the held scan is superseded); the new scan is blank again: held
    svc = KhanaService(db_rt)
    redo = svc.rescan_page(b1, 1, Upload("rescan.png", blank_png))
    for pid in redo.page_ids:
        stages.run_page(db_rt, pid)
    assert finalise_batch(db_rt, b1) == "held"
    review.reject(db_rt, b1, "ناقص", "qa:ali")
    with db_rt.db.session() as s:
        # a2 was uploaded 90 minutes before it was delivered
        d = s.scalar(select(Delivery).where(Delivery.batch_id == a2))
        s.get(Batch, a2).created_at = d.delivered_at - timedelta(minutes=90)
        # `old` was uploaded last month: not in this period
        s.get(Batch, old).created_at = period.start() - timedelta(minutes=1)

    from pipeline.accounts import Accounts

    Accounts(db_rt.db).add_office("office-a", "دفتر خدمات قضایی شمارهٔ ۱۲ تهران")
    stats = {r.office: r for r in review.office_stats(db_rt, str(period))}
    assert set(stats) == {"office-a", "office-b"}
    a, b = stats["office-a"], stats["office-b"]
    assert (a.office_name, b.office_name) == ("دفتر خدمات قضایی شمارهٔ ۱۲ تهران", "")
    assert (a.batches, a.pages_received, a.pages_held, a.overrides, a.forwarded, a.rejected) == (2, 3, 2, 1, 1, 0)
    assert a.held_by_reason == {"blank": 2} and a.share("blank") == pytest.approx(2 / 3)
    assert a.median_forward_minutes == pytest.approx(90, abs=0.1)
    assert (b.batches, b.pages_received, b.pages_held, b.rescans, b.rescan_requests, b.rejected) == (1, 2, 2, 1, 1, 1)
    assert b.held_share == pytest.approx(1.0) and b.median_forward_minutes is None
    last = {r.office: r for r in review.office_stats(db_rt, period.previous())}
    assert last["office-b"].pages_received == 1 and "office-a" not in last
    assert review.office_stats(db_rt, period, office="office-a")[0].office == "office-a"
    assert str(period) in [str(p) for p in review.periods_with_data(db_rt)]

    rows = list(csv.DictReader(io.StringIO(review.stats_csv(list(stats.values())))))
    assert [r["office"] for r in rows] == ["office-a", "office-b"]
    assert rows[0]["office_name"] == "دفتر خدمات قضایی شمارهٔ ۱۲ تهران"
    assert rows[0]["period"] == str(period) and rows[0]["pages_received"] == "3"
    assert float(rows[0]["held_share_blank"]) == pytest.approx(0.6667, abs=1e-4)
    assert float(rows[0]["median_forward_minutes"]) == pytest.approx(90, abs=0.1)
    assert rows[1]["median_forward_minutes"] == "" and rows[1]["rescans"] == "1"
