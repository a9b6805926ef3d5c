"""When every page of a batch is decided: searchable PDF, report, and forwarding to the court.

The searchable PDF holds the passing pages. The batch is forwarded (a delivery
with a manifest of SHA-256 digests in the court's `deliveries` folder) only when
every active page passed the gates; otherwise it waits in QA as `held`.
Re-running finalise on a finished batch changes nothing.

`finalise_or_park` is what the workers call: a finalise that fails the same way `max_attempts` times (a
missing or corrupted page object, a bug) parks the batch as `failed` with the error (audited
`batch_parked`) instead of being retried by every sweep forever; an outage (store, database) is not
counted and propagates for the worker to retry.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from sqlalchemy import func, select, update
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

import ocr
from pipeline import audit, court
from pipeline.runtime import Runtime
from core.status import BatchStatus, Decision, PageStatus
from pipeline.decide import image_dpi
from pipeline.stages import decode_png
from core.errors import Unavailable  # noqa: E402
from storage.models import AuditEvent, Batch, Delivery, Page

log = logging.getLogger("khana.pipeline")


def batch_report(batch: Batch, pages: list[Page]) -> dict:
    return {
        "batch": batch.id,
        "office": batch.office,
        "court": batch.court,
        "case_number": batch.case_number,
        "document_type": batch.document_type,
        "deadline": batch.deadline.isoformat() if batch.deadline else None,
        "status": batch.status,
        "pages_total": len(pages),
        "pages": [p.report for p in pages if p.status == PageStatus.decided and p.report],
        "searchable_pdf": batch.pdf_key,
        # QA's word to the station (pipeline.review): the filing refused, pages to rescan, and why
        "rejection": {"reason": batch.rejected_reason, "at": batch.rejected_at.isoformat()} if batch.rejected_at else None,
        "rescan_requests": [{"page": p.seq, "file": p.file.name, "file_page": p.file_page, "reason": p.rescan_reason,
                             "at": p.rescan_requested_at.isoformat()} for p in pages if p.rescan_requested_at],
    }


def _ocr_words(rt: Runtime, page: Page) -> list:
    if not page.words_key:
        return []
    raw = json.loads(rt.store.get("pages", page.words_key))
    return [ocr.Word(**w) for w in raw]


def _encoded(rt: Runtime, info: dict) -> "ocr.EncodedImage":
    data = rt.store.get("pages", info["key"], info["sha256"])
    return ocr.EncodedImage(data, info["filter"], int(info["width"]), int(info["height"]), int(info.get("bits", 8)))


def finalise_batch(rt: Runtime, batch_id: str, actor: str = "worker") -> str:
    """Assemble, report and deliver; returns the batch's status."""
    with rt.db.session() as s:
        batch = s.get(Batch, batch_id, with_for_update=True)  # one finalise of a batch at a time (a re-delivered
        # message may run while the first is still assembling); SQLite has no row locks and needs none (one writer)
        if batch is None:
            raise LookupError(f"no batch {batch_id}")
        if batch.status == BatchStatus.forwarded:
            return batch.status
        if batch.rejected_at is not None:  # refused by QA: never forwarded, whatever happened to it since
            batch.status = BatchStatus.rejected
            return batch.status
        pages = list(s.scalars(select(Page).where(Page.batch_id == batch_id, Page.status != PageStatus.superseded).order_by(Page.seq)))
        if any(p.status != PageStatus.decided for p in pages):
            return batch.status  # not complete yet
        passing = [p for p in pages if p.decision == Decision.passed]
        all_pass = bool(pages) and len(passing) == len(pages)
        pdf_key = pdf_sha = None
        if passing:
            pdf_pages = [
                ocr.PdfPage(
                    image=None if p.pdf_image else decode_png(rt.store.get("pages", p.corrected_key, p.corrected_sha256)),
                    dpi=int(round(image_dpi(p.measures or {}, rt.config.raster_dpi))),
                    words=_ocr_words(rt, p),
                    label=f"{p.seq}",
                    encoded=_encoded(rt, p.pdf_image) if p.pdf_image else None,
                )
                for p in passing
            ]
            meta = {"case_number": batch.case_number or "", "office": batch.office, "court": batch.court,
                    "document_type": batch.document_type, "batch": batch.id}
            title = f"{batch.document_type or 'filing'} {batch.case_number or batch.id}".strip()
            pdf = ocr.build_searchable_pdf(pdf_pages, title=title, metadata=meta)
            pdf_key = f"{batch.id}/filing.pdf"
            pdf_sha = rt.store.put("documents", pdf_key, pdf, "application/pdf").sha256
        batch.pdf_key, batch.pdf_sha256 = pdf_key, pdf_sha
        batch.status = BatchStatus.passed if all_pass else BatchStatus.held
        report = batch_report(batch, pages)
        report_key = f"{batch.id}/report.json"
        report_info = rt.store.put("documents", report_key, json.dumps(report, ensure_ascii=False, indent=2).encode(), "application/json")
        batch.report_key = report_key
        audit.record(s, actor, "batch_" + batch.status, batch_id=batch.id,
                     held_pages=[p.seq for p in pages if p.decision != Decision.passed])
        if all_pass and batch.court:
            _deliver(rt, s, batch, pages, pdf_sha, report_info.sha256, actor)
        return batch.status


def _deliver(rt: Runtime, s, batch: Batch, pages: list[Page], pdf_sha: str, report_sha: str, actor: str) -> None:
    if s.scalar(select(Delivery).where(Delivery.batch_id == batch.id)):
        batch.status = BatchStatus.forwarded
        return
    objects = [
        {"bucket": "documents", "key": batch.pdf_key, "sha256": pdf_sha},
        {"bucket": "documents", "key": batch.report_key, "sha256": report_sha},
    ]
    for f in batch.files:
        objects.append({"bucket": "originals", "key": f.object_key, "sha256": f.sha256})
    for p in pages:
        objects.append({"bucket": "pages", "key": p.corrected_key, "sha256": p.corrected_sha256})
    manifest = {
        "batch": batch.id,
        "court": batch.court,
        "office": batch.office,
        "case_number": batch.case_number,
        "document_type": batch.document_type,
        "pages": len(pages),
        "delivered_at": datetime.now(timezone.utc).isoformat(),
        "objects": objects,
    }
    key = f"{batch.court}/{batch.id}/manifest.json"
    info = rt.store.put("deliveries", key, json.dumps(manifest, ensure_ascii=False, indent=2).encode(), "application/json")
    s.add(Delivery(batch_id=batch.id, court=batch.court, manifest_key=key, manifest_sha256=info.sha256))
    batch.status = BatchStatus.forwarded
    court.index_filing(s, batch, pages)  # searchable by the court's clerks, in the delivery's transaction
    audit.record(s, actor, "batch_forwarded", batch_id=batch.id, court=batch.court, manifest=key)


def finalise_or_park(rt: Runtime, batch_id: str, actor: str = "worker") -> str:
    """`finalise_batch`, parking the batch as `failed` after `max_attempts` failures that are not outages."""
    try:
        return finalise_batch(rt, batch_id, actor)
    except (Unavailable, OperationalError, InterfaceError, DisconnectionError, ConnectionError, TimeoutError):
        raise  # an outage: the worker retries, nothing is counted
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:500]
        parked = 0
        with rt.db.session() as s:
            audit.record(s, actor, "batch_finalise_failed", batch_id=batch_id, error=detail)
            s.flush()
            failures = s.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.batch_id == batch_id, AuditEvent.action == "batch_finalise_failed"))
            if failures >= rt.config.max_attempts:
                parked = s.execute(update(Batch).where(Batch.id == batch_id, Batch.status.in_(
                    (BatchStatus.received, BatchStatus.processing))).values(status=BatchStatus.failed)).rowcount
                if parked:
                    audit.record(s, actor, "batch_parked", batch_id=batch_id, failures=failures, error=detail)
        if failures < rt.config.max_attempts:
            log.warning("batch %s: finalise failed (%d of %d): %s", batch_id, failures, rt.config.max_attempts, detail)
            raise
        if parked:
            log.error("batch %s: finalise failed %d times (%s): parked as failed for an operator", batch_id,
                      failures, detail)
        return BatchStatus.failed
