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
import time
from typing import Literal

import cv2
import numpy as np
from sqlalchemy import func, select, update

import ocr
import quality
from pipeline import audit
from pipeline.decode import UnreadableFile, decode_page
from pipeline.runtime import Runtime
from storage.models import Batch, Page

Next = Literal["ocr", "finalise", "done"]

ACTIVE = ("pending", "corrected", "decided")


def encode_png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("stored page image cannot be decoded")
    return img


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


def _overlay(rt: Runtime, page: Page, image: np.ndarray, measures, reasons: list[str], boxes=()) -> str:
    over = quality.annotate_problems(image, measures, reasons, list(boxes))
    key = _page_key(page, "problems.png")
    rt.store.put("pages", key, encode_png(over), "image/png")
    return key


def run_quality(rt: Runtime, page_id: str, actor: str = "worker") -> Next:
    t0 = time.perf_counter()
    with rt.db.session() as s:
        page = s.get(Page, page_id)
        if page is None or page.status in ("decided", "superseded"):
            return "done"
        if page.status == "corrected":
            return "ocr"
        s.execute(update(Page).where(Page.id == page_id).values(attempts=Page.attempts + 1))
        report = base_report(page)
        file = page.file
        file_key, file_sha, file_page = file.object_key, file.sha256, page.file_page
    try:
        data = rt.store.get("originals", file_key, file_sha)
        decoded = decode_page(data, file_page, dpi=rt.settings.raster_dpi, max_pixels=rt.settings.max_image_pixels)
    except UnreadableFile as exc:
        report.update(reasons=["unreadable_file"], warnings=[str(exc)], seconds=round(time.perf_counter() - t0, 3))
        return _decide(rt, page_id, "pending", report, {"seconds": report["seconds"]}, actor)

    corrected = quality.correct_page(decoded.image)
    measures = quality.measure_page(decoded.image, corrected, decoded.dpi)
    legibility = float(quality.legibility_score(measures))
    early = quality.early_gate(measures, rt.policy)
    report.update(
        skew_degrees=round(float(corrected.skew_degrees), 2) + 0.0,  # never "-0.0"
        rotation=int(corrected.rotation),
        legibility=round(legibility, 3),
    )
    mdict = measures.as_dict()
    mdict["dpi"] = float(decoded.dpi)
    with rt.db.session() as s:
        page = s.get(Page, page_id)
        key = _page_key(page, "corrected.png")
        info = rt.store.put("pages", key, encode_png(corrected.image), "image/png")
        values = {"measures": mdict, "legibility": legibility, "corrected_key": key, "corrected_sha256": info.sha256}
        if early:
            values["overlay_key"] = _overlay(rt, page, corrected.image, measures, early)
    seconds = time.perf_counter() - t0
    if early:
        report.update(reasons=list(early), seconds=round(seconds, 3))
        return _decide(rt, page_id, "pending", report, {**values, "seconds": seconds}, actor)
    with rt.db.session() as s:
        res = s.execute(
            update(Page).where(Page.id == page_id, Page.status == "pending")
            .values(status="corrected", report=report, seconds=seconds, **values)
        )
    return "ocr" if res.rowcount == 1 else "done"


def _measures_from_dict(d: dict):
    names = {f.name for f in dataclasses.fields(quality.PageMeasures)}
    return quality.PageMeasures(**{k: v for k, v in d.items() if k in names})


def run_ocr(rt: Runtime, page_id: str, actor: str = "worker") -> Next:
    t0 = time.perf_counter()
    with rt.db.session() as s:
        page = s.get(Page, page_id)
        if page is None or page.status != "corrected":
            return "done"
        report = dict(page.report or base_report(page))
        measures = _measures_from_dict(page.measures or {})
        dpi = int(round((page.measures or {}).get("dpi", rt.settings.raster_dpi)))
        key, sha, prior_seconds = page.corrected_key, page.corrected_sha256, page.seconds or 0.0
        declared_case = page.batch.case_number
    image = decode_png(rt.store.get("pages", key, sha))
    reasons: list[str]
    words: list = []
    try:
        result = ocr.recognise(image, dpi=dpi, timeout_s=rt.settings.ocr_timeout_s, lang=rt.settings.ocr_lang)
    except ocr.OcrTimeout:
        result = None
        reasons = ["ocr_timeout"]
    if result is not None:
        words = result.words
        om = ocr.ocr_measures(result)
        reasons = list(quality.final_gate(measures, om, rt.policy))
        fields = ocr.extract_fields(result.text)
        warnings = list(report.get("warnings", []))
        if ocr.case_number_mismatch(fields, declared_case):
            warnings.append("case_number_mismatch")
        report.update(
            text=result.text,
            ocr_confidence=None if result.mean_confidence is None else round(float(result.mean_confidence), 2),
            fields=[f.as_dict() for f in fields],
            warnings=warnings,
        )
    report["reasons"] = reasons
    report["decision"] = "hold" if reasons else "pass"
    values: dict = {"ocr_confidence": report["ocr_confidence"], "text": report["text"], "search_text": ocr.search_form(report["text"])}
    with rt.db.session() as s:
        page = s.get(Page, page_id)
        wkey = _page_key(page, "words.json")
        rt.store.put("pages", wkey, json.dumps([dataclasses.asdict(w) for w in words], ensure_ascii=False).encode(), "application/json")
        values["words_key"] = wkey
        if reasons:
            floor = float(getattr(rt.policy, "low_word_confidence", 60.0))
            low = [(w.left, w.top, w.width, w.height) for w in words if w.conf < floor]
            values["overlay_key"] = _overlay(rt, page, image, measures, reasons, low)
    seconds = prior_seconds + time.perf_counter() - t0
    report["seconds"] = round(seconds, 3)
    values["seconds"] = seconds
    return _decide(rt, page_id, "corrected", report, values, actor)


def run_page(rt: Runtime, page_id: str, actor: str = "worker") -> Next:
    """Both page stages in one process (the embedded worker); returns "finalise" when the batch is complete."""
    nxt = run_quality(rt, page_id, actor)
    if nxt == "ocr":
        nxt = run_ocr(rt, page_id, actor)
    return nxt
