"""The per-page steps around the pure decision (`pipeline.decide`): read inputs, decide, persist.

quality stage : `run_quality`  original -> decode -> `decide.assess_image` -> corrected image, measures,
                early gate; a page held early is decided here
ocr stage     : `run_ocr`      corrected image -> `rt.ocr.recognise` -> `decide.assess_read` -> decided
both          : `run_page`     the embedded worker runs them in one process, handing the image over in memory

Each step is idempotent and safe to re-run. A page is decided exactly once: the decision is written with a
conditional UPDATE on the page's status, so a re-delivered task (a worker killed mid-OCR, a sweeper re-drive)
finds the page decided and does nothing. An image or OCR failure that is the page's fault holds the page as
`processing_error` for QA; a store or database outage propagates for the worker to retry.

Each stage leases its page while it works (`pipeline.lease`: claimed at the start, renewed by a heartbeat,
released with the result) and runs under a CPU budget (`pipeline.limits`). A stage that crashed or failed
`max_attempts` times is not run again: the page is parked for QA (`park`).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Literal

import cv2
import numpy as np
from sqlalchemy import func, select, update

import ocr
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from core.errors import MissingDependency, Unavailable
from core.status import OPEN_PAGE_STATUSES, BatchStatus, HoldKind, PageStatus
from pipeline import audit, lease
from pipeline.limits import PageTimeLimit, cpu_budget
from pipeline.decide import (ImageAssessment, assess_image, assess_read, image_dpi, measures_from_record)
from pipeline.decode import UnreadableFile, decode_page
from pipeline.report import PageReport
from pipeline.runtime import Runtime
from storage.models import Batch, Page

# "busy": another live process holds the page's lease (it is being worked on); the caller may try again later
Next = Literal["ocr", "finalise", "done", "busy"]

log = logging.getLogger("khana.pipeline")

__all__ = ["run_quality", "run_ocr", "run_page", "park", "encode_png", "decode_png", "image_dpi", "base_report", "Next"]

# Corrected pages are nearly bi-level (white paper, normalised ink): run-length deflate without
# PNG's row filters is 4x faster than the default and smaller (A4 300 dpi: ~0.03 s, ~160 KiB).
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
               cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]


def encode_png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img, _PNG_PARAMS)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("stored page image cannot be decoded")
    return img


def base_report(page: Page) -> PageReport:
    """A page's report before anything is known: held, no reasons yet."""
    return PageReport(file=page.file.name, page=page.file_page)


def _page_key(page: Page, name: str) -> str:
    return f"{page.batch_id}/{page.seq:04d}-{page.id}/{name}"


def _elapsed(t0: float) -> float:
    return time.perf_counter() - t0


def _decide(rt: Runtime, page_id: str, from_status: PageStatus, report: PageReport, values: dict, actor: str) -> Next:
    """Write the decision if the page is still in `from_status`; say what comes next."""
    with rt.db.session() as s:
        # Lock the batch row first: two pages of one batch decided at once in two processes must not
        # both count the other as still open (READ COMMITTED on PostgreSQL), or nobody finalises.
        batch_id = s.scalar(select(Page.batch_id).where(Page.id == page_id))
        s.execute(select(Batch.id).where(Batch.id == batch_id).with_for_update())
        res = s.execute(
            update(Page)
            .where(Page.id == page_id, Page.status == from_status)
            .values(status=PageStatus.decided, decision=str(report.decision), reasons=report.reasons,
                    report=report.as_dict(), lease_until=None, **values)
        )
        if res.rowcount != 1:
            return "done"  # someone else decided it first
        audit.record(s, actor, "page_decided", batch_id=batch_id, page_id=page_id,
                     decision=str(report.decision), reasons=report.reasons)
        s.flush()
        open_pages = s.scalar(
            select(func.count()).select_from(Page).where(Page.batch_id == batch_id, Page.status.in_(OPEN_PAGE_STATUSES))
        )
    return "finalise" if open_pages == 0 else "done"


@dataclasses.dataclass
class _Handoff:
    """The quality stage's results kept in memory when both stages run in one process."""

    image: np.ndarray | None = None
    measures: object | None = None


def _processing_error(rt: Runtime, page_id: str, from_status: PageStatus, report: PageReport, exc: Exception,
                      t0: float, actor: str) -> Next:
    """A page the image or OCR code could not handle is held for QA, never dropped or retried forever."""
    log.exception("page %s: processing failed", page_id)
    report.hold(["processing_error"])
    report.warnings.append(f"{type(exc).__name__}: {exc}"[:500])
    report.seconds = round(_elapsed(t0), 3)
    return _decide(rt, page_id, from_status, report, {"seconds": report.seconds}, actor)


def run_quality(rt: Runtime, page_id: str, actor: str = "worker", handoff: _Handoff | None = None) -> Next:
    """The quality stage of one page: decode its original, assess the image, store the corrected page.

    Returns "ocr" when the page goes on to OCR, "finalise" when this decided the batch's last open page
    (held early), "done" otherwise (already decided or superseded, decided early with pages still open, or
    leased by another live process).
    """
    with rt.db.session() as s:
        page = s.get(Page, page_id)
        if page is None or page.status in (PageStatus.decided, PageStatus.superseded):
            return "done"
        if page.status == PageStatus.corrected:
            return "ocr"
    return _leased(rt, page_id, PageStatus.pending, actor, lambda: _quality(rt, page_id, actor, handoff))


def _quality(rt: Runtime, page_id: str, actor: str, handoff: _Handoff | None) -> Next:
    t0 = time.perf_counter()
    with rt.db.session() as s:
        page = s.get(Page, page_id)
        s.execute(update(Batch).where(Batch.id == page.batch_id, Batch.status == BatchStatus.received)
                  .values(status=BatchStatus.processing))
        report = base_report(page)
        file_key, file_sha, file_page = page.file.object_key, page.file.sha256, page.file_page
        corrected_key, overlay_key = _page_key(page, "corrected.png"), _page_key(page, "problems.png")
    data = rt.store.get("originals", file_key, file_sha)
    try:
        decoded = decode_page(data, file_page, dpi=rt.config.raster_dpi, max_pixels=rt.config.max_image_pixels,
                              max_render_pixels=rt.config.max_render_pixels)
    except UnreadableFile as exc:
        report.hold(["unreadable_file"])
        report.warnings.append(exc.one_line())
        report.seconds = round(_elapsed(t0), 3)
        return _decide(rt, page_id, PageStatus.pending, report, {"seconds": report.seconds}, actor)
    try:
        a: ImageAssessment = assess_image(decoded.image, decoded.dpi, rt.policy)
    except PageTimeLimit:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug or an image the code cannot handle
        return _processing_error(rt, page_id, PageStatus.pending, report, exc, t0, actor)
    report.skew_degrees = round(float(a.corrected.skew_degrees), 2) + 0.0  # never "-0.0"
    report.rotation = int(a.corrected.rotation)
    report.legibility = round(a.image_legibility, 3)
    report.warnings.extend(a.warnings)
    info = rt.store.put("pages", corrected_key, encode_png(a.corrected.image), "image/png")
    values = {"measures": a.measures_record(), "legibility": a.image_legibility, "corrected_key": corrected_key,
              "corrected_sha256": info.sha256}
    if a.overlay is not None:
        rt.store.put("pages", overlay_key, encode_png(a.overlay), "image/png")
        values["overlay_key"] = overlay_key
    seconds = _elapsed(t0)
    if a.early_reasons:
        report.hold(a.early_reasons, HoldKind.hopeless if a.hopeless else HoldKind.image)
        report.seconds = round(seconds, 3)
        nxt = _decide(rt, page_id, PageStatus.pending, report, {**values, "seconds": seconds}, actor)
        if a.hopeless:
            return nxt
        # held for an image fault, decided at once; now read it for QA (run_ocr knows such a page)
        if handoff is not None:
            handoff.image, handoff.measures = a.corrected.image, a.measures
        return "ocr"
    with rt.db.session() as s:
        res = s.execute(
            update(Page).where(Page.id == page_id, Page.status == PageStatus.pending)
            .values(status=PageStatus.corrected, report=report.as_dict(), seconds=seconds, lease_until=None,
                    attempts=0, **values)
        )
    if res.rowcount == 1 and handoff is not None:
        handoff.image, handoff.measures = a.corrected.image, a.measures
    return "ocr" if res.rowcount == 1 else "done"


def run_ocr(rt: Runtime, page_id: str, actor: str = "worker", handoff: _Handoff | None = None) -> Next:
    """The OCR stage of one corrected page: read it, decide it, store words, PDF image and QA overlay.

    Returns "finalise" when this decided the batch's last open page, "done" otherwise. A missing Tesseract
    (`MissingDependency`) propagates: it is the installation's fault, not the page's.
    """
    if _held_unread(rt, page_id):
        return _read_for_qa(rt, page_id, actor, handoff)
    return _leased(rt, page_id, PageStatus.corrected, actor, lambda: _ocr(rt, page_id, actor, handoff))


def _held_unread(rt: Runtime, page_id: str) -> bool:
    """A page held at once for an image fault and not read yet (`run_quality` sends it on to be read)."""
    with rt.db.session() as s:
        page = s.get(Page, page_id)
        return bool(page is not None and page.status == PageStatus.decided and page.words_key is None
                    and page.report and page.report.get("hold_kind") == HoldKind.image)


def _read_for_qa(rt: Runtime, page_id: str, actor: str, handoff: _Handoff | None) -> Next:
    """Read a page already held for an image fault, under a lease, once. Its decision stands whatever happens:
    a read that fails is given up (QA's override reads the page again if it needs to)."""
    if lease.claim(rt, page_id, PageStatus.decided) is None:
        return "done"  # another process is reading it
    try:
        with lease.Heartbeat(rt, page_id), cpu_budget(rt.config.page_cpu_s):
            return _ocr(rt, page_id, actor, handoff)
    except (MissingDependency, ocr.OcrError):
        raise
    except Exception as exc:  # noqa: BLE001
        if _is_outage(exc):
            raise
        log.warning("page %s: the read for QA failed (%s: %s); its hold stands", page_id, type(exc).__name__, exc)
        return "done"
    finally:
        lease.release(rt, page_id)


def _ocr(rt: Runtime, page_id: str, actor: str, handoff: _Handoff | None) -> Next:
    t0 = time.perf_counter()
    with rt.db.session() as s:
        page = s.get(Page, page_id)
        if page is None:
            return "done"
        held_unread = (page.status == PageStatus.decided and page.words_key is None and page.report
                       and page.report.get("hold_kind") == HoldKind.image)
        if page.status != PageStatus.corrected and not held_unread:
            return "done"
        report = PageReport.from_dict(page.report) if page.report else base_report(page)
        mdict = page.measures or {}
        dpi = int(round(image_dpi(mdict, rt.config.raster_dpi)))
        key, sha, prior_seconds = page.corrected_key, page.corrected_sha256, page.seconds or 0.0
        image_legibility = float(mdict.get("image_legibility", page.legibility or 0.0))
        declared_case = page.batch.case_number
        words_key, overlay_key = _page_key(page, "words.json"), _page_key(page, "problems.png")
    if handoff is not None and handoff.image is not None:
        image, measures = handoff.image, handoff.measures
    else:
        image, measures = decode_png(rt.store.get("pages", key, sha)), measures_from_record(mdict)
    try:
        try:
            result = rt.ocr.recognise(image, dpi=dpi)
        except ocr.OcrTimeout:
            result = None
        r = assess_read(image, measures, result, rt.policy, image_legibility=image_legibility,
                        declared_case=declared_case, warnings=report.warnings)
        # encode the page for the searchable PDF here, in parallel, not in the batch's finalise step
        pdf_image = ocr.encode_page_image(image)
    except (MissingDependency, ocr.OcrError, PageTimeLimit):
        raise  # Tesseract or its language data missing: an installation problem, not the page's
    except Exception as exc:  # noqa: BLE001
        return _processing_error(rt, page_id, PageStatus.corrected, report, exc, t0, actor)
    if result is not None:
        report.legibility = round(float(r.legibility), 3)
        report.text = r.text  # a handwritten page's text holds only its confidently read words
        report.ocr_confidence = None if r.ocr_confidence is None else round(r.ocr_confidence, 2)
        report.fields = r.fields
    report.warnings = r.warnings
    if held_unread:  # decided already: the read adds what it found, it never takes a hold back
        report.hold(_ordered([*report.reasons, *r.reasons]), HoldKind.image)
    else:
        report.hold(r.reasons)
    values: dict = {"ocr_confidence": report.ocr_confidence, "text": report.text, "legibility": report.legibility,
                    "search_text": ocr.search_form(report.text)}
    rt.store.put("pages", words_key, json.dumps([_word_dict(w) for w in r.words], ensure_ascii=False).encode(),
                 "application/json")
    values["words_key"] = words_key
    pdf_key = words_key.rsplit("/", 1)[0] + "/pdf-image.bin"
    stored = rt.store.put("pages", pdf_key, pdf_image.data, "application/octet-stream")
    values["pdf_image"] = {"key": pdf_key, "sha256": stored.sha256, **pdf_image.as_dict()}
    if r.overlay is not None:
        rt.store.put("pages", overlay_key, encode_png(r.overlay), "image/png")
        values["overlay_key"] = overlay_key
    if held_unread:  # `seconds` stays the time to the decision, what the station waited for
        return _record_read(rt, page_id, report, values, actor)
    seconds = prior_seconds + _elapsed(t0)
    report.seconds = round(seconds, 3)
    values["seconds"] = seconds
    return _decide(rt, page_id, PageStatus.corrected, report, values, actor)


def _word_dict(w) -> dict:
    """`dataclasses.asdict` of a word (flat: str, float, int fields) without its deep copies (~0.04 s a page)."""
    return {f.name: getattr(w, f.name) for f in dataclasses.fields(w)}


def _ordered(codes: list[str]) -> list[str]:
    return list(dict.fromkeys(codes))


def _record_read(rt: Runtime, page_id: str, report: PageReport, values: dict, actor: str) -> Next:
    """Store the reading of a page held at once for an image fault (once: a re-run finds it read)."""
    with rt.db.session() as s:
        batch_id = s.scalar(select(Page.batch_id).where(Page.id == page_id))
        s.execute(select(Batch.id).where(Batch.id == batch_id).with_for_update())
        res = s.execute(update(Page).where(Page.id == page_id, Page.status == PageStatus.decided,
                                           Page.words_key.is_(None))
                        .values(reasons=report.reasons, report=report.as_dict(), lease_until=None, **values))
        if res.rowcount != 1:
            return "done"
        audit.record(s, actor, "page_read", batch_id=batch_id, page_id=page_id, reasons=report.reasons)
        s.flush()
        open_pages = s.scalar(select(func.count()).select_from(Page).where(
            Page.batch_id == batch_id, Page.status.in_(OPEN_PAGE_STATUSES)))
    # the batch may have been finalised without this page's text: finalise again once it is complete
    return "finalise" if open_pages == 0 else "done"


def run_page(rt: Runtime, page_id: str, actor: str = "worker") -> Next:
    """Both page stages in one process (the embedded worker); returns "finalise" when the batch is complete."""
    handoff = _Handoff()
    nxt = run_quality(rt, page_id, actor, handoff)
    if nxt == "ocr":
        nxt = run_ocr(rt, page_id, actor, handoff)
    return "done" if nxt == "busy" else nxt  # busy: its process lives (or its lease runs out: the sweep re-drives)


# --- leases, attempts and parking ------------------------------------------------------------------------
def _is_outage(exc: BaseException) -> bool:
    """A store, database or network outage: nobody's fault, the worker retries the step."""
    return isinstance(exc, (Unavailable, OperationalError, InterfaceError, DisconnectionError, ConnectionError,
                            TimeoutError))


def _leased(rt: Runtime, page_id: str, status: PageStatus, actor: str, work) -> Next:
    """Run `work` holding the page's lease, under the CPU budget; park the page after `max_attempts`."""
    attempt = lease.claim(rt, page_id, status)
    if attempt is None:  # it moved on, or a live process holds it (if that process dies, its lease runs out)
        with rt.db.session() as s:
            now_status = s.scalar(select(Page.status).where(Page.id == page_id))
        return "busy" if now_status == status else "done"
    if attempt > rt.config.max_attempts:
        return park(rt, page_id, status, actor,
                    detail=f"stopped {attempt - 1} times without finishing (worker lost or failed)")
    try:
        with lease.Heartbeat(rt, page_id), cpu_budget(rt.config.page_cpu_s):
            return work()
    except PageTimeLimit:
        log.warning("page %s: CPU budget of %.0f s exceeded; held as processing_timeout", page_id,
                    rt.config.page_cpu_s)
        return park(rt, page_id, status, actor, reason="processing_timeout",
                    detail=f"stopped after {rt.config.page_cpu_s:g} s of CPU time")
    except (MissingDependency, ocr.OcrError):
        lease.release(rt, page_id, forget_attempt=True)
        raise  # the installation's fault: not counted against the page
    except Exception as exc:
        if _is_outage(exc):
            lease.release(rt, page_id, forget_attempt=True)
            raise
        detail = f"{type(exc).__name__}: {exc}"[:500]
        try:
            with rt.db.session() as s:
                audit.record(s, actor, "page_failed", batch_id=s.scalar(select(Page.batch_id).where(Page.id == page_id)),
                             page_id=page_id, status=str(status), attempt=attempt, error=detail)
        except Exception:  # noqa: BLE001
            pass
        if attempt >= rt.config.max_attempts:
            log.error("page %s failed %d times (%s): parked for QA", page_id, attempt, detail)
            return park(rt, page_id, status, actor, detail=f"failed {attempt} times: {detail}")
        lease.release(rt, page_id, retry_soon=True)  # the sweeper tries it again at its next round
        raise


def park(rt: Runtime, page_id: str, from_status: PageStatus, actor: str, *, reason: str = "processing_error",
         detail: str = "") -> Next:
    """Decide a page that cannot be processed as held (`reason`, the error among its warnings), for QA.

    Audited as `page_parked`; the page is decided, so nothing retries it again. Returns what `_decide` does.
    """
    with rt.db.session() as s:
        page = s.get(Page, page_id)
        if page is None or page.status != from_status:
            return "done"
        report = PageReport.from_dict(page.report) if page.report else base_report(page)
        batch_id, attempts = page.batch_id, page.attempts
    report.hold([reason])
    if detail:
        report.warnings.append(detail[:500])
    nxt = _decide(rt, page_id, from_status, report, {}, actor)
    with rt.db.session() as s:
        audit.record(s, actor, "page_parked", batch_id=batch_id, page_id=page_id, reason=reason, attempts=attempts,
                     detail=detail[:500])
    return nxt
