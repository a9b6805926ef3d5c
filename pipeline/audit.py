"""The audit log: who did what to which batch or page, and when."""
from __future__ import annotations

from sqlalchemy.orm import Session

from storage.models import AuditEvent


def record(session: Session, actor: str, action: str, *, batch_id: str | None = None, page_id: str | None = None, **detail) -> None:
    session.add(AuditEvent(actor=actor, action=action, batch_id=batch_id, page_id=page_id, detail=detail))
