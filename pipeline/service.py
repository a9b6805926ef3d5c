"""The service layer that the CLI, the API and the workers share.

`submit_batch` is the only way a batch enters Khana: every file is validated,
every original is durably stored and the batch recorded before the caller gets
an id. An idempotency key makes retries safe: the same key returns the same
batch, never a duplicate.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.exc import InterfaceError as DbInterfaceError
from sqlalchemy.exc import OperationalError as DbOperationalError

from core.errors import BadInput  # noqa: F401 - re-exported: the entry points catch it here
from core.errors import Unavailable
from core.text import printable
from core.status import BatchStatus, Decision, PageStatus
from pipeline import audit
from pipeline.decode import FileInfo
from pipeline.files import check_files
from pipeline.finalise import batch_report, finalise_batch
from pipeline.runtime import Runtime
from storage.models import Batch, OriginalFile, Page, new_id


class IdempotencyConflict(ValueError):
    """An Idempotency-Key already used for a different filing (HTTP 409): the new filing is NOT accepted."""

    def __init__(self, batch_id: str):
        super().__init__(
            "this Idempotency-Key was already used for a different filing; it was NOT accepted: send it with a new key")
        self.message_fa = ("این کلید تکرار (Idempotency-Key) پیش‌تر برای پرونده‌ای دیگر به کار رفته است؛ این پرونده "
                           "پذیرفته نشد: آن را با کلیدی تازه بفرستید")
        self.batch_id = batch_id


class NotRescannable(ValueError):
    """Only a held page can be replaced by a rescan (HTTP 409)."""


def filing_fingerprint(meta: "BatchMeta", uploads: "list[Upload]") -> str:
    """SHA-256 over the metadata and the files' digests: what an Idempotency-Key promises to repeat."""
    doc = {"office": meta.office, "court": meta.court, "case_number": meta.case_number,
           "document_type": meta.document_type, "deadline": meta.deadline.isoformat() if meta.deadline else None,
           "files": [hashlib.sha256(u.data).hexdigest() for u in uploads]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class DatabaseUnavailable(Unavailable):
    """The metadata database cannot be reached: nothing was accepted (transient: retry later)."""

    message_fa = "پایگاه داده در دسترس نیست؛ پرونده پذیرفته نشد، کمی بعد دوباره بفرستید"


@dataclass
class Upload:
    name: str
    data: bytes


@dataclass
class BatchMeta:
    office: str = ""
    court: str = ""
    case_number: str | None = None
    document_type: str = ""
    deadline: date | None = None


@dataclass
class Submitted:
    batch_id: str
    created: bool  # False when an idempotency key matched an earlier batch
    page_ids: list[str] = field(default_factory=list)
    priority: int = 5


class Dispatcher(Protocol):
    """Hands work to the workers: the embedded pool (`workers.embedded.BackgroundWorker`) or Celery
    (`workers.dispatch.CeleryDispatcher`). The service and the sweeper rely on all three methods."""

    def dispatch(self, batch_id: str, page_ids: list[str], priority: int) -> None:
        """Process these new pages of a batch (0 = most urgent .. 9)."""

    def redrive(self, page_id: str, status: str, priority: int) -> bool:
        """Run a page again from the stage its `status` waits for; False when it could not be handed over."""

    def finalise(self, batch_id: str, priority: int) -> bool:
        """Finalise a batch whose pages are all decided; False when it could not be handed over."""


def deadline_priority(deadline: date | None, today: date | None = None) -> int:
    """0 (most urgent) .. 9: filings whose legal deadline is near are processed first."""
    if deadline is None:
        return 6
    days = (deadline - (today or date.today())).days
    for limit, prio in ((0, 0), (1, 1), (2, 2), (3, 3), (7, 4), (14, 5)):
        if days <= limit:
            return prio
    return 6


_SAFE_NAME = re.compile(r"[^\w.\-]+", re.UNICODE)


def _safe_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return _SAFE_NAME.sub("_", base).strip("._")[:120] or "file"


class KhanaService:
    def __init__(self, rt: Runtime, dispatcher: Dispatcher | None = None):
        self.rt = rt
        self.dispatcher = dispatcher

    # --- intake -------------------------------------------------------------
    def check(self, uploads: list[Upload]) -> list[FileInfo]:
        """Validate a batch's files (type, integrity, size and page limits) without storing anything."""
        return check_files(((up.name, up.data) for up in uploads), self.rt.config)

    def submit_batch(self, uploads: list[Upload], meta: BatchMeta, *, idempotency_key: str | None = None,
                     actor: str = "station", source: str = "api", infos: list[FileInfo] | None = None) -> Submitted:
        """Accept a batch: returns only after every original is durably stored and the batch recorded.

        `infos` are the results of an earlier `check(uploads)` (saves decoding the files twice).
        """
        fingerprint = filing_fingerprint(meta, uploads) if idempotency_key else None
        if idempotency_key:
            try:
                existing = self._by_key(idempotency_key, fingerprint)
            except (DbOperationalError, DbInterfaceError) as exc:
                raise DatabaseUnavailable(f"the database is unavailable ({type(exc.orig or exc).__name__}); the "
                                          "batch was NOT accepted, retry later") from exc
            if existing:
                return existing
        if infos is None or len(infos) != len(uploads):
            infos = self.check(uploads)
        batch = Batch(id=new_id(), office=meta.office, court=meta.court, case_number=meta.case_number,
                      document_type=meta.document_type, deadline=meta.deadline, idempotency_key=idempotency_key,
                      fingerprint=fingerprint, priority=deadline_priority(meta.deadline), source=source)
        # 1. originals first, durably; 2. then the records in one transaction.
        files: list[OriginalFile] = []
        try:
            for pos, (up, info) in enumerate(zip(uploads, infos), start=1):
                key = f"{batch.id}/{pos:03d}-{_safe_name(up.name)}"
                stored = self.rt.store.put("originals", key, up.data, info.content_type)
                files.append(OriginalFile(batch_id=batch.id, position=pos, name=printable(up.name, 500), kind=info.kind, object_key=key,
                                          sha256=stored.sha256, size=stored.size, page_count=info.page_count))
            page_ids = self._record(batch, files, meta, actor)
        except DbIntegrityError:
            self._forget(files)
            existing = self._by_key(idempotency_key, fingerprint) if idempotency_key else None
            if existing:  # a concurrent retry with the same key won the race: answer with its batch
                return existing
            raise
        except (DbOperationalError, DbInterfaceError) as exc:
            self._forget(files)  # nothing half-recorded: no records, no orphaned originals
            raise DatabaseUnavailable(f"the database is unavailable ({type(exc.orig or exc).__name__}); the batch "
                                      "was NOT accepted, retry later") from exc
        except BaseException:
            self._forget(files)  # nothing half-recorded: no records, no orphaned originals
            raise
        submitted = Submitted(batch.id, True, page_ids, batch.priority)
        if self.dispatcher is not None:
            self.dispatcher.dispatch(batch.id, page_ids, batch.priority)
        return submitted

    def _record(self, batch: Batch, files: list[OriginalFile], meta: BatchMeta, actor: str) -> list[str]:
        page_ids: list[str] = []
        with self.rt.db.session() as sess:
            sess.add(batch)
            seq = 0
            for f in files:
                sess.add(f)
                sess.flush()
                for n in range(1, f.page_count + 1):
                    seq += 1
                    p = Page(batch_id=batch.id, file_id=f.id, file_page=n, seq=seq)
                    sess.add(p)
                    sess.flush()
                    page_ids.append(p.id)
            audit.record(sess, actor, "batch_received", batch_id=batch.id, files=len(files), pages=seq,
                         office=meta.office, court=meta.court, case_number=meta.case_number)
        return page_ids

    def _forget(self, files: list[OriginalFile]) -> None:
        for f in files:
            try:
                self.rt.store.delete("originals", f.object_key)
            except Exception:  # best effort: the store may still be down; unreferenced keys hold no record
                pass

    def _by_key(self, key: str, fingerprint: str | None = None) -> Submitted | None:
        with self.rt.db.session() as sess:
            b = sess.scalar(select(Batch).where(Batch.idempotency_key == key))
            if b is None:
                return None
            if fingerprint and b.fingerprint and b.fingerprint != fingerprint:
                raise IdempotencyConflict(b.id)
            ids = list(sess.scalars(select(Page.id).where(Page.batch_id == b.id).order_by(Page.seq)))
            return Submitted(b.id, False, ids, b.priority)

    # --- rescans ----------------------------------------------------------------
    def rescan_page(self, batch_id: str, seq: int, upload: Upload, *, idempotency_key: str | None = None,
                    actor: str = "station") -> Submitted:
        """Replace held page `seq` of a batch with a new scan (exactly one page).

        The new original is stored durably first; then, in one transaction, the old page is marked superseded,
        a new page with the same `seq` is added and the batch goes back to `processing`; then the page is
        dispatched. When every active page is decided the batch is finalised again (forwarded if all pass).
        The same Idempotency-Key with the same file answers the same rescan; with another file 409.
        """
        fingerprint = hashlib.sha256(f"{batch_id}:{seq}:".encode() + hashlib.sha256(upload.data).digest()).hexdigest()
        if idempotency_key:
            done = self._rescan_by_key(idempotency_key, fingerprint)
            if done:
                return done
        info = self.check([upload])[0]
        if info.page_count != 1:
            raise BadInput(f"{upload.name}: a rescan replaces one page, but this file has {info.page_count} pages")
        with self.rt.db.session() as sess:
            batch = sess.get(Batch, batch_id)
            if batch is None:
                raise LookupError(f"no batch {batch_id}")
            old = self._active_page(sess, batch_id, seq)
            if old is None:
                raise LookupError(f"batch {batch_id} has no page {seq}")
            if batch.status == BatchStatus.rejected:
                raise NotRescannable(f"the filing was rejected by QA ({batch.rejected_reason}); it cannot be rescanned: "
                                     "file it again as a new filing")
            if old.status != "decided" or old.decision != "hold" or batch.status == "forwarded":
                raise NotRescannable(f"page {seq} is not held (it is {old.decision or old.status}); only a held page "
                                     "can be rescanned")
            position = max((f.position for f in batch.files), default=0) + 1
            priority = batch.priority
        key = f"{batch_id}/{position:03d}-rescan-p{seq}-{_safe_name(upload.name)}"
        stored = self.rt.store.put("originals", key, upload.data, info.content_type)
        try:
            with self.rt.db.session() as sess:
                batch = sess.get(Batch, batch_id, with_for_update=True)
                old = self._active_page(sess, batch_id, seq)
                if old is None or old.status != "decided" or old.decision != "hold" or batch.status == "forwarded":
                    raise NotRescannable(f"page {seq} is no longer held (changed meanwhile)")
                f = OriginalFile(batch_id=batch_id, position=position, name=upload.name, kind=info.kind,
                                 object_key=key, sha256=stored.sha256, size=stored.size, page_count=1,
                                 idempotency_key=idempotency_key, fingerprint=fingerprint)
                sess.add(f)
                sess.flush()
                new = Page(batch_id=batch_id, file_id=f.id, file_page=1, seq=seq)
                sess.add(new)
                sess.flush()
                old.status = "superseded"
                old.superseded_by = new.id
                batch.status = "processing"
                batch.pdf_key = batch.pdf_sha256 = None
                audit.record(sess, actor, "page_rescanned", batch_id=batch_id, page_id=new.id, seq=seq,
                             replaces=old.id, file=upload.name)
                new_id_ = new.id
        except DbIntegrityError:
            self._forget([OriginalFile(object_key=key)])
            done = self._rescan_by_key(idempotency_key, fingerprint) if idempotency_key else None
            if done:
                return done
            raise
        except BaseException:
            self._forget([OriginalFile(object_key=key)])
            raise
        if self.dispatcher is not None:
            self.dispatcher.dispatch(batch_id, [new_id_], priority)
        return Submitted(batch_id, True, [new_id_], priority)

    @staticmethod
    def _active_page(sess, batch_id: str, seq: int) -> Page | None:
        return sess.scalar(select(Page).where(Page.batch_id == batch_id, Page.seq == seq,
                                              Page.status != "superseded"))

    def _rescan_by_key(self, key: str, fingerprint: str) -> Submitted | None:
        with self.rt.db.session() as sess:
            f = sess.scalar(select(OriginalFile).where(OriginalFile.idempotency_key == key))
            if f is None:
                return None
            if f.fingerprint != fingerprint:
                raise IdempotencyConflict(f.batch_id)
            page = sess.scalar(select(Page).where(Page.file_id == f.id))
            batch = sess.get(Batch, f.batch_id)
            return Submitted(f.batch_id, False, [page.id] if page else [], batch.priority if batch else 5)

    # --- processing (embedded, synchronous) ----------------------------------
    def finalise(self, batch_id: str) -> str:
        return finalise_batch(self.rt, batch_id)

    # --- queries --------------------------------------------------------------
    def batch_status(self, batch_id: str) -> str:
        with self.rt.db.session() as sess:
            b = sess.get(Batch, batch_id)
            if b is None:
                raise LookupError(f"no batch {batch_id}")
            return b.status

    def report(self, batch_id: str, *, with_seq: bool = False) -> dict:
        """The batch report; `with_seq` adds each page's batch sequence number `seq` (the API's page number)."""
        with self.rt.db.session() as sess:
            b = sess.get(Batch, batch_id)
            if b is None:
                raise LookupError(f"no batch {batch_id}")
            pages = list(sess.scalars(select(Page).where(Page.batch_id == batch_id, Page.status != PageStatus.superseded).order_by(Page.seq)))
            report = batch_report(b, pages)
            if with_seq:
                decided = [p for p in pages if p.status == "decided" and p.report]
                report["pages"] = [{**r, "seq": p.seq} for r, p in zip(report["pages"], decided)]
            return report

    def page_reports(self, batch_id: str) -> list[dict]:
        return self.report(batch_id)["pages"]

    def searchable_pdf(self, batch_id: str) -> bytes | None:
        with self.rt.db.session() as sess:
            b = sess.get(Batch, batch_id)
            if b is None or not b.pdf_key:
                return None
            key, sha = b.pdf_key, b.pdf_sha256
        return self.rt.store.get("documents", key, sha)

    def problem_images(self, batch_id: str) -> list[tuple[int, bytes]]:
        """(batch sequence number, PNG) of the overlays that show held pages' problems."""
        with self.rt.db.session() as sess:
            rows = list(sess.execute(select(Page.seq, Page.overlay_key).where(
                Page.batch_id == batch_id, Page.status != PageStatus.superseded, Page.decision == Decision.hold,
                Page.overlay_key.is_not(None)).order_by(Page.seq)))
        return [(seq, self.rt.store.get("pages", key)) for seq, key in rows]

    def problem_image(self, batch_id: str, seq: int) -> bytes | None:
        """The overlay of held page `seq` (problems marked), or None when that page is not held."""
        with self.rt.db.session() as sess:
            key = sess.scalar(select(Page.overlay_key).where(
                Page.batch_id == batch_id, Page.seq == seq, Page.status != "superseded", Page.decision == "hold"))
        return self.rt.store.get("pages", key) if key else None

    def page_image(self, batch_id: str, seq: int) -> tuple[str, bytes] | None:
        """(page id, PNG) of active page `seq` after correction (deskewed, normalised), or None before that."""
        with self.rt.db.session() as sess:
            row = sess.execute(select(Page.id, Page.corrected_key, Page.corrected_sha256).where(
                Page.batch_id == batch_id, Page.seq == seq, Page.status != "superseded")).first()
        if row is None or not row.corrected_key:
            return None
        return row.id, self.rt.store.get("pages", row.corrected_key, row.corrected_sha256)

    def pages_overview(self, batch_id: str) -> list[dict]:
        """Every active page in batch order: seq, its file and page in the file, state, decision and reasons."""
        with self.rt.db.session() as sess:
            rows = sess.execute(select(Page, OriginalFile.name).join(OriginalFile, Page.file_id == OriginalFile.id)
                                .where(Page.batch_id == batch_id, Page.status != "superseded").order_by(Page.seq))
            out = []
            for page, name in rows:
                rep = page.report or {}
                out.append({"seq": page.seq, "id": page.id, "file": name, "file_page": page.file_page,
                            "status": page.status, "decision": page.decision if page.status == "decided" else None,
                            "reasons": list(page.reasons or []) if page.status == "decided" else [],
                            "legibility": page.legibility, "ocr_confidence": page.ocr_confidence,
                            "has_image": bool(page.corrected_key), "has_overlay": bool(page.overlay_key),
                            "warnings": rep.get("warnings", []),
                            "rescanned": bool(sess.scalar(select(Page.id).where(Page.superseded_by == page.id)))})
            return out

    def batches_of(self, office: str | None, limit: int = 100) -> list[dict]:
        """The newest batches of an office (all offices when None), for the station's list."""
        from sqlalchemy import func

        with self.rt.db.session() as sess:
            q = select(Batch).order_by(Batch.created_at.desc()).limit(limit)
            if office is not None:
                q = q.where(Batch.office == office)
            batches = list(sess.scalars(q))
            counts = dict(sess.execute(select(Page.batch_id, func.count()).where(
                Page.batch_id.in_([b.id for b in batches]), Page.status != "superseded").group_by(Page.batch_id)).all())
            held = dict(sess.execute(select(Page.batch_id, func.count()).where(
                Page.batch_id.in_([b.id for b in batches]), Page.status == "decided",
                Page.decision == "hold").group_by(Page.batch_id)).all())
            return [{"batch": b.id, "office": b.office, "court": b.court, "case_number": b.case_number,
                     "document_type": b.document_type, "deadline": b.deadline, "status": b.status,
                     "created_at": b.created_at, "pages": counts.get(b.id, 0), "held": held.get(b.id, 0)}
                    for b in batches]

    def batch_meta(self, batch_id: str) -> dict:
        with self.rt.db.session() as sess:
            b = sess.get(Batch, batch_id)
            if b is None:
                raise LookupError(f"no batch {batch_id}")
            return {"batch": b.id, "office": b.office, "court": b.court, "case_number": b.case_number,
                    "document_type": b.document_type, "deadline": b.deadline, "status": b.status,
                    "created_at": b.created_at, "has_pdf": bool(b.pdf_key), "rejected_reason": b.rejected_reason,
                    "rescan_requests": {p.seq: p.rescan_reason for p in b.pages
                                        if p.status != PageStatus.superseded and p.rescan_requested_at}}
