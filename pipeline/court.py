"""The court clerk's domain: the inbox of filings forwarded to a court, search within the court,
and retrieval of a filing's documents, every retrieval recorded in the audit log.

A clerk sees only filings forwarded to their own court; anything else is `NotFound`
(the API answers 404, never the document).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline import audit
from storage.database import Database
from storage.models import Batch, Delivery, Page
from ocr.search_text import case_key, case_query_key, highlight, index_text, query_terms
from storage.search import search_index

if TYPE_CHECKING:
    from pipeline.runtime import Runtime


class NotFound(LookupError):
    """No such filing for this court (or not forwarded yet)."""


@dataclass
class Filing:
    batch: str
    court: str
    case_number: str | None
    office: str
    document_type: str
    pages: int
    deadline: date | None
    forwarded_at: datetime

    def as_dict(self) -> dict:
        d = asdict(self)
        d["deadline"] = self.deadline.isoformat() if self.deadline else None
        d["forwarded_at"] = self.forwarded_at.isoformat()
        return d


@dataclass
class Snippet:
    page: int
    html: str  # HTML-escaped context with the hit words in <mark>


@dataclass
class FoundFiling(Filing):
    score: float = 0.0
    case_match: bool = False
    snippets: list[Snippet] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = super().as_dict()
        d["snippets"] = [asdict(s) for s in self.snippets]
        return d


def _filings_query(court: str | None):
    """Forwarded filings of `court`; None means every court (the first-try mode on one machine only)."""
    n_pages = (select(func.count()).select_from(Page)
               .where(Page.batch_id == Batch.id, Page.status != "superseded").correlate(Batch).scalar_subquery())
    q = (select(Batch, Delivery.delivered_at, n_pages)
         .join(Delivery, Delivery.batch_id == Batch.id)
         .where(Batch.status == "forwarded"))
    if court is not None:
        q = q.where(Delivery.court == court, Batch.court == court)
    return q


def _filing(b: Batch, delivered_at: datetime, n: int | None) -> Filing:
    return Filing(b.id, b.court, b.case_number, b.office, b.document_type, int(n or 0), b.deadline, delivered_at)


# --- indexing ----------------------------------------------------------------------
def index_filing(s: Session, batch: Batch, pages: list[Page]) -> int:
    """Put a forwarded filing's pages into the full-text index (same transaction as the delivery)."""
    active = [p for p in pages if p.status != "superseded"]
    return search_index(s).index_batch(s, batch.id, batch.court, case_key(batch.case_number),
                                       [(p.id, p.seq, index_text(p.text or "")) for p in active])


def reindex(db: Database, *, only_missing: bool = False) -> tuple[int, int]:
    """Backfill: (re)index every forwarded filing. Returns (filings, pages) indexed."""
    from storage.models import SearchBatch

    filings = pages = 0
    with db.session() as s:
        ids = list(s.scalars(select(Batch.id).join(Delivery, Delivery.batch_id == Batch.id)
                             .where(Batch.status == "forwarded").order_by(Delivery.delivered_at)))
        if only_missing:
            have = set(s.scalars(select(SearchBatch.batch_id)))
            ids = [i for i in ids if i not in have]
    for batch_id in ids:
        with db.session() as s:
            b = s.get(Batch, batch_id)
            ps = list(s.scalars(select(Page).where(Page.batch_id == batch_id, Page.status != "superseded")
                                .order_by(Page.seq)))
            pages += index_filing(s, b, ps)
            filings += 1
    return filings, pages


# --- the inbox ---------------------------------------------------------------------------
def inbox(db: Database, court: str | None, *, order: str = "newest", limit: int = 100, offset: int = 0) -> list[Filing]:
    """Filings forwarded to `court`. order="newest": newest first; order="urgent": the nearest
    deadline first (filings without a deadline after those with one), then newest first."""
    q = _filings_query(court)
    if order == "urgent":
        q = q.order_by(Batch.deadline.is_(None), Batch.deadline, Delivery.delivered_at.desc(), Batch.id)
    else:
        q = q.order_by(Delivery.delivered_at.desc(), Batch.id)
    with db.session() as s:
        return [_filing(b, at, n) for b, at, n in s.execute(q.limit(limit).offset(offset)).all()]


def count(db: Database, court: str | None) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(_filings_query(court).subquery())) or 0


def search(db: Database, court: str | None, query: str, *, limit: int = 50, actor: str | None = None) -> list[FoundFiling]:
    """Filings of `court` matching a case number or Persian words, best first, with highlighted snippets."""
    terms = query_terms(query)
    with db.session() as s:
        hits = search_index(s).search(s, court, terms, case_query_key(query), limit=limit)
        if not hits:
            found: list[FoundFiling] = []
        else:
            rows = {b.id: (b, at, n) for b, at, n in
                    s.execute(_filings_query(court).where(Batch.id.in_([h.batch_id for h in hits]))).all()}
            page_ids = [pid for h in hits for pid in h.page_ids[:2]]
            texts = dict(s.execute(select(Page.id, Page.text).where(Page.id.in_(page_ids))).all()) if page_ids else {}
            found = []
            for h in hits:
                if h.batch_id not in rows:
                    continue  # indexed but no longer forwarded to this court
                f = _filing(*rows[h.batch_id])
                snippets = [Snippet(seq, highlight(texts.get(pid, ""), terms))
                            for seq, pid in list(zip(h.pages, h.page_ids))[:2]]
                found.append(FoundFiling(**vars(f), score=h.score, case_match=h.case_match, snippets=snippets))
        if actor:
            audit.record(s, actor, "court_search", court=court, query=query[:200], results=len(found))
    return found


# --- one filing ------------------------------------------------------------------------------
@dataclass
class FilingPage:
    seq: int
    text: str
    has_image: bool


def filing(db: Database, court: str | None, batch_id: str, *, actor: str | None = None) -> tuple[Filing, list[FilingPage]]:
    """One filing of `court` with its pages' text; viewing it is audited when `actor` is given."""
    with db.session() as s:
        row = s.execute(_filings_query(court).where(Batch.id == batch_id)).first()
        if row is None:
            raise NotFound(batch_id)
        pages = [FilingPage(p.seq, p.text or "", bool(p.corrected_key)) for p in s.scalars(
            select(Page).where(Page.batch_id == batch_id, Page.status != "superseded").order_by(Page.seq))]
        if actor:
            audit.record(s, actor, "court_filing_viewed", batch_id=batch_id, court=court)
        return _filing(*row), pages


@dataclass
class Document:
    data: bytes
    media_type: str
    filename: str


def open_document(rt: Runtime, court: str | None, batch_id: str, actor: str, *, page: int | None = None,
                  disposition: str = "inline") -> Document:
    """The filing's searchable PDF (page None) or one page's image, after recording the retrieval.

    The audit event is committed before any byte is read: no retrieval goes unrecorded.
    """
    with rt.db.session() as s:
        row = s.execute(_filings_query(court).where(Batch.id == batch_id)).first()
        if row is None:
            raise NotFound(batch_id)
        b = row[0]
        if page is None:
            if not b.pdf_key:
                raise NotFound(batch_id)
            bucket, key, sha = "documents", b.pdf_key, b.pdf_sha256
            media, name = "application/pdf", f"{_file_stem(b)}.pdf"
            audit.record(s, actor, "court_pdf_retrieved", batch_id=b.id, court=court, disposition=disposition)
        else:
            p = s.scalar(select(Page).where(Page.batch_id == batch_id, Page.status != "superseded", Page.seq == page))
            if p is None or not p.corrected_key:
                raise NotFound(f"{batch_id}/{page}")
            bucket, key, sha = "pages", p.corrected_key, p.corrected_sha256
            media, name = "image/png", f"{_file_stem(b)}-page{page}.png"
            audit.record(s, actor, "court_page_retrieved", batch_id=b.id, page_id=p.id, court=court, page=page)
    return Document(rt.store.get(bucket, key, sha), media, name)


def _file_stem(b: Batch) -> str:
    return f"khana-{case_key(b.case_number) or b.id}"
