"""The sweeper: re-drives work that a crash, an outage or a lost message left behind.

Every ``KHANA_SWEEP_INTERVAL_S`` seconds (``khana sweeper``, one per deployment;
several are harmless):

* a page in ``pending`` or ``corrected`` whose ``updated_at`` is older than
  ``KHANA_STUCK_AFTER_S`` is enqueued again at the stage it waits for. The page's
  ``updated_at`` is bumped with a conditional UPDATE first, so two sweepers never
  re-drive the same page in the same round. After ``KHANA_SWEEP_MAX_REDRIVES``
  re-drives the page is reported (audit ``page_stuck``) and left for an operator.
* a batch still ``received``/``processing`` whose pages are all decided (its
  finalise task was lost) is finalised again.

Re-driving is always safe: the steps are idempotent and a page is decided once.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, exists, func, select, update

from pipeline import audit
from storage.models import AuditEvent, Batch, Page

log = logging.getLogger("khana.sweeper")

OPEN_PAGE = ("pending", "corrected")
OPEN_BATCH = ("received", "processing")


@dataclass
class SweepResult:
    redriven: list[str] = field(default_factory=list)
    finalised: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def sweep(rt, dispatcher, *, stuck_after_s: float | None = None, max_redrives: int | None = None,
          now: datetime | None = None, limit: int = 500) -> SweepResult:
    from workers.celery_app import get_worker_settings

    ws = get_worker_settings()
    stuck_after_s = ws.stuck_after_s if stuck_after_s is None else stuck_after_s
    max_redrives = ws.sweep_max_redrives if max_redrives is None else max_redrives
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(seconds=stuck_after_s)
    result = SweepResult()

    with rt.db.session() as s:
        rows = list(s.execute(
            select(Page.id, Page.status, Page.batch_id, Batch.priority)
            .join(Batch, Batch.id == Page.batch_id)
            .where(Page.status.in_(OPEN_PAGE), Page.updated_at < cutoff)
            .order_by(Batch.priority, Page.updated_at)
            .limit(limit)))
    for page_id, status, batch_id, priority in rows:
        with rt.db.session() as s:
            claimed = s.execute(
                update(Page).where(Page.id == page_id, Page.status == status, Page.updated_at < cutoff)
                .values(updated_at=now)).rowcount == 1
            if not claimed:
                continue  # it moved on, or another sweeper took it
            redrives = s.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.page_id == page_id, AuditEvent.action == "page_redriven"))
            if redrives >= max_redrives:
                already = s.scalar(select(func.count()).select_from(AuditEvent).where(
                    AuditEvent.page_id == page_id, AuditEvent.action == "page_stuck"))
                if not already:
                    audit.record(s, "sweeper", "page_stuck", batch_id=batch_id, page_id=page_id, status=status,
                                 redrives=redrives)
                    log.error("page %s of batch %s is stuck in %s after %d re-drives", page_id, batch_id, status, redrives)
                result.stuck.append(page_id)
                continue
            audit.record(s, "sweeper", "page_redriven", batch_id=batch_id, page_id=page_id, status=status)
        redrive = getattr(dispatcher, "redrive", None)
        if redrive is not None:
            redrive(page_id, status, priority)
        else:
            dispatcher.dispatch(batch_id, [page_id], priority)
        result.redriven.append(page_id)

    # batches complete but not finalised (their finalise task was lost)
    grace = now - timedelta(seconds=min(stuck_after_s, 60.0))
    open_page = exists().where(Page.batch_id == Batch.id, Page.status.in_(OPEN_PAGE))
    any_page = exists().where(Page.batch_id == Batch.id, Page.status != "superseded")
    recent = exists().where(and_(Page.batch_id == Batch.id, Page.updated_at >= grace))
    with rt.db.session() as s:
        batches = list(s.execute(select(Batch.id, Batch.priority).where(
            Batch.status.in_(OPEN_BATCH), any_page, ~open_page, ~recent).limit(limit)))
    for batch_id, priority in batches:
        fin = getattr(dispatcher, "finalise", None)
        if fin is not None:
            fin(batch_id, priority)
        else:
            from pipeline.finalise import finalise_batch

            finalise_batch(rt, batch_id, actor="sweeper")
        result.finalised.append(batch_id)
    if result.redriven or result.finalised or result.stuck:
        log.info("sweep: re-drove %d page(s), finalised %d batch(es), %d stuck",
                 len(result.redriven), len(result.finalised), len(result.stuck))
    return result


def run_forever(rt, dispatcher, *, interval_s: float | None = None, stop=None, heartbeat: str | None = None,
                **kw) -> None:
    """The ``khana sweeper`` loop: sweep, sleep, repeat; database outages are waited out.

    `heartbeat`: a file touched after every successful sweep (a container health check
    compares its modification time with the clock).
    """
    from pathlib import Path

    from workers.celery_app import get_worker_settings

    interval_s = get_worker_settings().sweep_interval_s if interval_s is None else interval_s
    while not (stop and stop()):
        try:
            sweep(rt, dispatcher, **kw)
            if heartbeat:
                Path(heartbeat).touch()
        except Exception:  # noqa: BLE001 - database/broker down: try again next round
            log.warning("sweep failed; retrying in %.0fs", interval_s, exc_info=True)
        deadline = time.monotonic() + interval_s
        while time.monotonic() < deadline and not (stop and stop()):
            time.sleep(min(0.5, interval_s))
