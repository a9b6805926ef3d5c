"""Pages waiting for a worker: what the readiness check and a station's batch status report.

A page is *waiting* when it is still open (pending or corrected) and nobody holds a live lease on it:
it sits in a queue, or its worker died and its lease ran out. A page with a live lease is being worked on.
Its wait is counted from its last change (`updated_at`: its upload, its previous stage, or its re-drive).
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, or_, select

from core.status import OPEN_PAGE_STATUSES
from storage.models import Page


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)  # SQLite hands naive UTC back


def waiting(db, batch_id: str | None = None, now: datetime | None = None) -> dict:
    """{"pages": waiting pages, "oldest_s": seconds the oldest has waited or None, "in_progress": leased pages}."""
    now = now or datetime.now(timezone.utc)
    free = or_(Page.lease_until.is_(None), Page.lease_until < now)
    where = [Page.status.in_(OPEN_PAGE_STATUSES)]
    if batch_id is not None:
        where.append(Page.batch_id == batch_id)
    with db.session() as s:
        n, oldest = s.execute(select(func.count(), func.min(Page.updated_at)).where(*where, free)).one()
        busy = s.scalar(select(func.count()).select_from(Page).where(*where, ~free))
    oldest = _utc(oldest)
    return {"pages": int(n), "oldest_s": round((now - oldest).total_seconds(), 1) if n and oldest else None,
            "in_progress": int(busy)}
