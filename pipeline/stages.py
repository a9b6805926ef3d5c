"""The per-page and per-batch steps. Each step is idempotent and safe to re-run.

quality stage : decode -> orientation + deskew + normalisation -> measures -> early gate
ocr stage     : Persian OCR -> OCR-confidence measures -> final gate -> page decided
finalise      : once every page of a batch is decided -> searchable PDF, report,
                and delivery to the court when every page passed

A page is decided exactly once: the decision is written with a conditional
UPDATE on the page's status, so a re-delivered task (a worker killed mid-OCR,
a sweeper re-drive) finds the page decided and does nothing.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from types import SimpleNamespace
from typing import Literal

import cv2
import numpy as np
from sqlalchemy import func, select, update

import ocr
import quality
from pipeline import audit
from pipeline.decode import UnreadableFile, decode_page
from pipeline.runtime import Runtime
from quality.page_frame import photo_dpi, rectify_page
from storage.models import Batch, Page

Next = Literal["ocr", "finalise", "done"]

log = logging.getLogger("khana.pipeline")


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


def image_dpi(measures: dict, default: float) -> float:
    """Resolution of the corrected page image (the scan's dpi times any upscaling of small text)."""
    return float(measures.get("image_dpi") or measures.get("dpi") or default)


def _blur_limit(rt: Runtime) -> float:
    """The gate policy's blur limit, for marking the blurred tiles on a held page's QA image."""
    return rt.policy.reasons.blur_rel_max


def base_report(page: Page) -> dict:
    return {
        "file": page.file.name,
        "page": page.file_page,
        "decision": "hold",
        "reasons": [],
        "skew_degrees": 0.0,
        "rotation": 0,
        "legibility": 0.0,
        "ocr_confidence": None,
        "text": "",
        "seconds": 0.0,
        "fields": [],
        "warnings": [],
    }


def _page_key(page: Page, name: str) -> str:
    return f"{page.batch_id}/{page.seq:04d}-{page.id}/{name}"


def _decide(rt: Runtime, page_id: str, from_status: str, report: dict, values: dict, actor: str) -> Next:
    """Write the decision if the page is still in `from_status`; say what comes next."""
    with rt.db.session() as s:
        # Lock the batch row first: two pages of one batch decided at once in two processes must not
        # both count the other as still open (READ COMMITTED on PostgreSQL), or nobody finalises.
        batch_id = s.scalar(select(Page.batch_id).where(Page.id == page_id))
        s.execute(select(Batch.id).where(Batch.id == batch_id).with_for_update())
        res = s.execute(
            update(Page)
            .where(Page.id == page_id, Page.status == from_status)
            .values(status="decided", decision=report["decision"], reasons=report["reasons"], report=report, **values)
        )
        if res.rowcount != 1:
            return "done"  # someone else decided it first
        page = s.get(Page, page_id)
        audit.record(s, actor, "page_decided", batch_id=page.batch_id, page_id=page_id,
                     decision=report["decision"], reasons=report["reasons"])
        s.flush()
        open_pages = s.scalar(
            select(func.count()).select_from(Page).where(Page.batch_id == page.batch_id, Page.status.in_(("pending", "corrected")))
        )
    return "finalise" if open_pages == 0 else "done"


@dataclasses.dataclass
class _Handoff:
    """The quality stage's results kept in memory when both stages run in one process."""

    image: np.ndarray | None = None
    measures: object | None = None


def _processing_error(rt: Runtime, page_id: str, from_status: str, report: dict, exc: Exception, t0: float, actor: str) -> Next:
    """A page the image or OCR code could not handle is held for QA, never dropped or retried forever."""
    log.exception("page %s: processing failed", page_id)
    report.update(decision="hold", reasons=["processing_error"],
                  warnings=[*report.get("warnings", []), f"{type(exc).__name__}: {exc}"[:500]],
                  seconds=round(time.perf_counter() - t0, 3))
    return _decide(rt, page_id, from_status, report, {"seconds": report["seconds"]}, actor)


def run_quality(rt: Runtime, page_id: str, actor: str = "worker", handoff: _Handoff | None = None) -> Next:
    t0 = time.perf_counter()
    with rt.db.session() as s:
        page = s.get(Page, page_id)
        if page is None or page.status in ("decided", "superseded"):
            return "done"
        if page.status == "corrected":
            return "ocr"
        s.execute(update(Page).where(Page.id == page_id).values(attempts=Page.attempts + 1))
        s.execute(update(Batch).where(Batch.id == page.batch_id, Batch.status == "received").values(status="processing"))
        report = base_report(page)
        file_key, file_sha, file_page = page.file.object_key, page.file.sha256, page.file_page
        corrected_key, overlay_key = _page_key(page, "corrected.png"), _page_key(page, "problems.png")
    data = rt.store.get("originals", file_key, file_sha)
    try:
        decoded = decode_page(data, file_page, dpi=rt.settings.raster_dpi, max_pixels=rt.settings.max_image_pixels)
    except UnreadableFile as exc:
        report.update(reasons=["unreadable_file"], warnings=[str(exc)], seconds=round(time.perf_counter() - t0, 3))
        return _decide(rt, page_id, "pending", report, {"seconds": report["seconds"]}, actor)
    try:
        frame = rectify_page(decoded.image)  # a photo of a sheet on a table -> a flat page
        raw, dpi = (frame.image, photo_dpi(frame.image)) if frame.found else (decoded.image, decoded.dpi)
        if frame.found:
            report["warnings"].append("photo_flattened")
        corrected = quality.correct_page(raw)
        measures = quality.measure_page(raw, corrected, dpi)
        legibility = float(quality.legibility_score(measures))
        early = list(quality.early_gate(measures, rt.policy))
        overlay = quality.annotate_problems(corrected.image, measures, early, [], _blur_limit(rt)) if early else None
    except Exception as exc:  # noqa: BLE001 - a bug or an image the code cannot handle
        return _processing_error(rt, page_id, "pending", report, exc, t0, actor)
    report.update(
        skew_degrees=round(float(corrected.skew_degrees), 2) + 0.0,  # never "-0.0"
        rotation=int(corrected.rotation),
        legibility=round(legibility, 3),
    )
    mdict = measures.as_dict()
    mdict["dpi"] = float(dpi)
    # small text is upscaled by the correction: OCR and the PDF see the corrected image's resolution
    mdict["image_dpi"] = float(dpi) * float(getattr(corrected, "upscale", 1.0) or 1.0)
    mdict["image_legibility"] = legibility  # the score from pixels alone; after OCR `legibility` becomes the final score
    info = rt.store.put("pages", corrected_key, encode_png(corrected.image), "image/png")
    values = {"measures": mdict, "legibility": legibility, "corrected_key": corrected_key, "corrected_sha256": info.sha256}
    if overlay is not None:
        rt.store.put("pages", overlay_key, encode_png(overlay), "image/png")
        values["overlay_key"] = overlay_key
    seconds = time.perf_counter() - t0
    if early:
        report.update(reasons=early, seconds=round(seconds, 3))
        return _decide(rt, page_id, "pending", report, {**values, "seconds": seconds}, actor)
    with rt.db.session() as s:
        res = s.execute(
            update(Page).where(Page.id == page_id, Page.status == "pending")
            .values(status="corrected", report=report, seconds=seconds, **values)
        )
    if res.rowcount == 1 and handoff is not None:
        handoff.image, handoff.measures = corrected.image, measures
    return "ocr" if res.rowcount == 1 else "done"


def _measures_from_dict(d: dict):
    names = {f.name for f in dataclasses.fields(quality.PageMeasures)}
    return quality.PageMeasures(**{k: v for k, v in d.items() if k in names})


def run_ocr(rt: Runtime, page_id: str, actor: str = "worker", handoff: _Handoff | None = None) -> Next:
    t0 = time.perf_counter()
    with rt.db.session() as s:
        page = s.get(Page, page_id)
        if page is None or page.status != "corrected":
            return "done"
        report = dict(page.report or base_report(page))
        mdict = page.measures or {}
        dpi = int(round(image_dpi(mdict, rt.settings.raster_dpi)))
        key, sha, prior_seconds = page.corrected_key, page.corrected_sha256, page.seconds or 0.0
        image_legibility = float(mdict.get("image_legibility", page.legibility or 0.0))
        declared_case = page.batch.case_number
        words_key, overlay_key = _page_key(page, "words.json"), _page_key(page, "problems.png")
    if handoff is not None and handoff.image is not None:
        image, measures = handoff.image, handoff.measures
    else:
        image, measures = decode_png(rt.store.get("pages", key, sha)), _measures_from_dict(mdict)
    words: list = []
    try:
        try:
            result = ocr.recognise(image, dpi=dpi, timeout_s=rt.settings.ocr_timeout_s, lang=rt.settings.ocr_lang)
        except ocr.OcrTimeout:
            result = None
            reasons = ["ocr_timeout"]
        if result is not None:
            words = result.words
            # the gate also checks that every text line seen in the image got OCR words
            om = SimpleNamespace(**ocr.ocr_measures(result).as_dict(), words=result.words)
            # text-like parts of the page that got no OCR word (blurred, faded, curled away)
            unread = quality.unread_text(image, result.words, measures, _blur_limit(rt))
            om.unread_text_share, om.unread_tiles = unread["unread_share"], unread["unread_tiles"]
            om.unread_blurred_tiles = len(unread["blurred_boxes"])
            if unread["blurred_boxes"]:  # mark every blurred text tile on the QA image, read or not
                measures.blur_regions = quality.blurred_regions(image, measures, _blur_limit(rt)) or unread["blurred_boxes"]
            reasons = list(quality.final_gate(measures, om, rt.policy))
            # legibility after OCR: the image score capped by how well this very read went
            legibility = quality.final_legibility(image_legibility, om, measures)
            legibility *= 1.0 - float(om.unread_text_share)  # text the OCR could not read at all
            fields = ocr.extract_fields(result.text)
            warnings = list(report.get("warnings", []))
            if ocr.case_number_mismatch(fields, declared_case):
                warnings.append("case_number_mismatch")
            report.update(
                legibility=round(legibility, 3),
                text=result.text,
                ocr_confidence=None if result.mean_confidence is None else round(float(result.mean_confidence), 2),
                fields=[f.as_dict() for f in fields],
                warnings=warnings,
            )
        # encode the page for the searchable PDF here, in parallel, not in the batch's finalise step
        pdf_image = ocr.encode_page_image(image)
        overlay = None
        if reasons:
            floor = rt.policy.final.low_word_confidence
            low = [(w.left, w.top, w.width, w.height) for w in words if w.conf < floor]
            overlay = quality.annotate_problems(image, measures, reasons, low, _blur_limit(rt))
    except ocr.OcrError:
        raise  # Tesseract or its language data missing: an installation problem, not the page's
    except Exception as exc:  # noqa: BLE001
        return _processing_error(rt, page_id, "corrected", report, exc, t0, actor)
    report["reasons"] = reasons
    report["decision"] = "hold" if reasons else "pass"
    values: dict = {"ocr_confidence": report["ocr_confidence"], "text": report["text"], "legibility": report["legibility"],
                    "search_text": ocr.search_form(report["text"])}
    rt.store.put("pages", words_key, json.dumps([dataclasses.asdict(w) for w in words], ensure_ascii=False).encode(),
                 "application/json")
    values["words_key"] = words_key
    pdf_key = words_key.rsplit("/", 1)[0] + "/pdf-image.bin"
    stored = rt.store.put("pages", pdf_key, pdf_image.data, "application/octet-stream")
    values["pdf_image"] = {"key": pdf_key, "sha256": stored.sha256, **pdf_image.as_dict()}
    if overlay is not None:
        rt.store.put("pages", overlay_key, encode_png(overlay), "image/png")
        values["overlay_key"] = overlay_key
    seconds = prior_seconds + time.perf_counter() - t0
    report["seconds"] = round(seconds, 3)
    values["seconds"] = seconds
    return _decide(rt, page_id, "corrected", report, values, actor)


def run_page(rt: Runtime, page_id: str, actor: str = "worker") -> Next:
    """Both page stages in one process (the embedded worker); returns "finalise" when the batch is complete."""
    handoff = _Handoff()
    nxt = run_quality(rt, page_id, actor, handoff)
    if nxt == "ocr":
        nxt = run_ocr(rt, page_id, actor, handoff)
    return nxt
