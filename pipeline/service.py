"""The service layer that the CLI, the API and the workers share.

`submit_batch` is the only way a batch enters Khana: every file is validated,
every original is durably stored and the batch recorded before the caller gets
an id. An idempotency key makes retries safe: the same key returns the same
batch, never a duplicate.
"""
from __future__ import annotations

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
from core.status import Decision, PageStatus
from pipeline import audit
from pipeline.decode import FileInfo, UnreadableFile, inspect
from pipeline.finalise import batch_report, finalise_batch
from pipeline.runtime import Runtime
from storage.models import Batch, OriginalFile, Page, new_id


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
        if not uploads:
            raise BadInput("a batch needs at least one file")
        s = self.rt.config
        infos = []
        total = 0
        for up in uploads:
            total += len(up.data)
            if total > s.max_upload_bytes:
                mib = s.max_upload_bytes // (1024 * 1024)
                raise BadInput(f"the batch is larger than {mib} MiB", fa=f"حجم این پرونده بیشتر از {mib} مگابایت است")
            name = printable(up.name, 200)
            try:
                infos.append(inspect(up.data, max_pixels=s.max_image_pixels))
            except UnreadableFile as exc:
                raise BadInput(f"{name}: {exc.message}", fa=f"{name}: {exc.message_fa}") from exc
        n_pages = sum(i.page_count for i in infos)
        if n_pages > s.max_pages_per_batch:
            raise BadInput(f"the batch has {n_pages} pages; at most {s.max_pages_per_batch} are accepted",
                           fa=f"این پرونده {n_pages} صفحه دارد؛ حداکثر {s.max_pages_per_batch} صفحه پذیرفته می‌شود")
        return infos

    def submit_batch(self, uploads: list[Upload], meta: BatchMeta, *, idempotency_key: str | None = None,
                     actor: str = "station", source: str = "api", infos: list[FileInfo] | None = None) -> Submitted:
        """Accept a batch: returns only after every original is durably stored and the batch recorded.

        `infos` are the results of an earlier `check(uploads)` (saves decoding the files twice).
        """
        if idempotency_key:
            try:
                existing = self._by_key(idempotency_key)
            except (DbOperationalError, DbInterfaceError) as exc:
                raise DatabaseUnavailable(f"the database is unavailable ({type(exc.orig or exc).__name__}); the "
                                          "batch was NOT accepted, retry later") from exc
            if existing:
                return existing
        if infos is None or len(infos) != len(uploads):
            infos = self.check(uploads)
        batch = Batch(id=new_id(), office=meta.office, court=meta.court, case_number=meta.case_number,
                      document_type=meta.document_type, deadline=meta.deadline, idempotency_key=idempotency_key,
                      priority=deadline_priority(meta.deadline), source=source)
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
            existing = self._by_key(idempotency_key) if idempotency_key else None
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

    def _by_key(self, key: str) -> Submitted | None:
        with self.rt.db.session() as sess:
            b = sess.scalar(select(Batch).where(Batch.idempotency_key == key))
            if b is None:
                return None
            ids = list(sess.scalars(select(Page.id).where(Page.batch_id == b.id).order_by(Page.seq)))
            return Submitted(b.id, False, ids, b.priority)

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

    def report(self, batch_id: str) -> dict:
        with self.rt.db.session() as sess:
            b = sess.get(Batch, batch_id)
            if b is None:
                raise LookupError(f"no batch {batch_id}")
            pages = list(sess.scalars(select(Page).where(Page.batch_id == batch_id, Page.status != PageStatus.superseded).order_by(Page.seq)))
            return batch_report(b, pages)

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
                Page.batch_id == batch_id, Page.decision == Decision.hold, Page.overlay_key.is_not(None)).order_by(Page.seq)))
        return [(seq, self.rt.store.get("pages", key)) for seq, key in rows]
