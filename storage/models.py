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

    batch: Mapped[Batch] = relationship(back_populates="files")


class Page(Base):
    """One page of a batch. A rescan supersedes a held page with a new row."""

    __tablename__ = "pages"
    __table_args__ = (Index("ix_pages_status_lease", "status", "lease_until"),)

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
