"""Metadata schema (SQLAlchemy 2.0): batches, their original files, pages, deliveries, audit log."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

from sqlalchemy import JSON, Date, DateTime, Enum, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.status import BatchStatus, Decision, PageStatus


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


def _status(enum: type, length: int):
    """A status column: stored as its string (VARCHAR, no database enum type), read back as the enum."""
    return Enum(enum, native_enum=False, create_constraint=False, length=length,
                values_callable=lambda e: [m.value for m in e], validate_strings=True)


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, list: JSON}


class Batch(Base):
    """One filing: the pages of a petition and its attachments, for one court and case."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # SHA-256 over the metadata and the files' digests: the same key with another filing is refused (409)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    office: Mapped[str] = mapped_column(String(100), default="")
    court: Mapped[str] = mapped_column(String(100), default="")
    case_number: Mapped[str | None] = mapped_column(String(40))
    document_type: Mapped[str] = mapped_column(String(60), default="")
    deadline: Mapped[date | None] = mapped_column(Date)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    source: Mapped[str] = mapped_column(String(20), default="api")
    # received -> processing -> held | passed -> forwarded ; rejected by QA ; failed for unrecoverable errors
    status: Mapped[BatchStatus] = mapped_column(_status(BatchStatus, 20), default=BatchStatus.received, index=True)
    pdf_key: Mapped[str | None] = mapped_column(String(300))
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    report_key: Mapped[str | None] = mapped_column(String(300))
    # QA rejected the filing (status "rejected"): never forwarded; the station sees why
    rejected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rejected_by: Mapped[str | None] = mapped_column(String(100))
    rejected_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    files: Mapped[list[OriginalFile]] = relationship(back_populates="batch", order_by="OriginalFile.position")
    pages: Mapped[list[Page]] = relationship(back_populates="batch", order_by="Page.seq")


class OriginalFile(Base):
    """A file as the station uploaded it, stored unchanged in the `originals` bucket."""

    __tablename__ = "original_files"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(10))  # png, jpeg, tiff, pdf
    object_key: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    page_count: Mapped[int] = mapped_column(Integer)
    # a rescan's file: the station's Idempotency-Key and a fingerprint of (page, file digest)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    fingerprint: Mapped[str | None] = mapped_column(String(64))

    batch: Mapped[Batch] = relationship(back_populates="files")


class Page(Base):
    """One page of a batch. A rescan supersedes a held page with a new row."""

    __tablename__ = "pages"
    __table_args__ = (Index("ix_pages_status_lease", "status", "lease_until"),
                      Index("ix_pages_decision_status", "decision", "status"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("original_files.id"))
    file_page: Mapped[int] = mapped_column(Integer)  # 1-based page within its file
    seq: Mapped[int] = mapped_column(Integer)  # 1-based position within the batch
    # pending -> corrected (quality stage done) -> decided ; superseded when rescanned
    status: Mapped[PageStatus] = mapped_column(_status(PageStatus, 20), default=PageStatus.pending)
    decision: Mapped[Decision | None] = mapped_column(_status(Decision, 10))
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    report: Mapped[dict | None] = mapped_column(JSON)
    measures: Mapped[dict | None] = mapped_column(JSON)
    legibility: Mapped[float | None] = mapped_column(Float)
    ocr_confidence: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text, default="")
    search_text: Mapped[str] = mapped_column(Text, default="")
    corrected_key: Mapped[str | None] = mapped_column(String(300))
    corrected_sha256: Mapped[str | None] = mapped_column(String(64))
    words_key: Mapped[str | None] = mapped_column(String(300))
    # the page image encoded for the searchable PDF by the OCR step: {key, sha256, filter, width, height}
    pdf_image: Mapped[dict | None] = mapped_column(JSON)
    overlay_key: Mapped[str | None] = mapped_column(String(300))
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    override_reason: Mapped[str | None] = mapped_column(Text)
    # QA review: who overrode the page and when, the reasons it was held for (kept after an override)
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    held_reasons: Mapped[list | None] = mapped_column(JSON)
    # QA asked the station to rescan this page, and why (cleared by the rescan, which supersedes the page)
    rescan_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rescan_requested_by: Mapped[str | None] = mapped_column(String(100))
    rescan_reason: Mapped[str | None] = mapped_column(Text)
    superseded_by: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    batch: Mapped[Batch] = relationship(back_populates="pages")
    file: Mapped[OriginalFile] = relationship()


class Delivery(Base):
    """A batch forwarded to its court: the manifest lists every object with its SHA-256."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("batch_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"))
    court: Mapped[str] = mapped_column(String(100), index=True)
    manifest_key: Mapped[str] = mapped_column(String(300))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    delivered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    batch_id: Mapped[str | None] = mapped_column(String(32), index=True)
    page_id: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


# --- accounts: offices, courts, users, API tokens, web sessions (migration 0002a) ------------------------------


class Office(Base):
    """An e-judicial service office (a station belongs to one)."""

    __tablename__ = "offices"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Court(Base):
    """A court (a clerk belongs to one; filings are forwarded to one)."""

    __tablename__ = "courts"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    """A person who logs in to the web pages with a password (argon2 hash)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10))  # station | clerk | qa | admin
    office: Mapped[str | None] = mapped_column(String(64))
    court: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    """A bearer token for programs (station uploaders, scripts): only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(10))
    office: Mapped[str | None] = mapped_column(String(64))
    court: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A logged-in browser: the cookie holds a random id, the database its SHA-256."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LoginFailure(Base):
    """A failed login, per username and per client address (the login rate limit across processes)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
class SearchPage(Base):
    """The full-text index's row for one page of a forwarded filing (see storage/search.py).

    `body` is the page's OCR text in search form split into plain words; the
    database's own full-text machinery indexes it (SQLite: the FTS5 table
    `search_fts` kept in step by triggers; PostgreSQL: a generated `tsvector`
    column with a GIN index). Both are created by migration 0003.
    """

    __tablename__ = "search_pages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    page_id: Mapped[str] = mapped_column(String(32), unique=True)
    batch_id: Mapped[str] = mapped_column(String(32), index=True)
    court: Mapped[str] = mapped_column(String(100), index=True)
    court_token: Mapped[str] = mapped_column(String(40))  # storage.search.court_token(court)
    seq: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text, default="")


class SearchBatch(Base):
    """A forwarded filing in the search index: its court and normalised case number (Latin digits only)."""

    __tablename__ = "search_batches"
    __table_args__ = (Index("ix_search_batches_court_case", "court", "case_key"),)

    batch_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    court: Mapped[str] = mapped_column(String(100))
    case_key: Mapped[str] = mapped_column(String(40), default="")
    indexed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
