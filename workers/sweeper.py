"""The sweeper: re-drives work that a crash, an outage or a lost message left behind.

Every ``KHANA_SWEEP_INTERVAL_S`` seconds (``khana sweeper``, one per deployment;
several are harmless):

* a page in ``pending`` or ``corrected`` whose lease ran out (`pipeline.lease`: the
  process working on it died, or its stage failed) is re-driven at the stage it waits
  for, at once. A page whose lease is live is never touched: it is being worked on, and
  its process renews the lease however long the page takes. A page whose stage already
  started ``KHANA_PAGE_MAX_ATTEMPTS`` times is parked instead (held for QA,
  `processing_error`, audited `page_parked`): never retried forever.
* a page waiting in a queue (no lease) whose ``updated_at`` is older than
  ``KHANA_STUCK_AFTER_S`` (its message was lost: Redis lost its queues) is enqueued
  again. After ``KHANA_SWEEP_MAX_REDRIVES`` such re-drives the page is reported (audit
  ``page_stuck``) and left for an operator.
* a batch still ``received``/``processing`` whose pages are all decided (its
  finalise task was lost) is finalised again.
* when the broker restarted (Redis keeps nothing on disk: its queues are gone), every
  page waiting in a queue is enqueued again at once, without waiting for the stuck limit
  (`run_forever`'s `broker_epoch`: Redis's run id changes at every start).

Each re-drive is claimed with a conditional UPDATE first, so two sweepers never
re-drive the same page in the same round. Re-driving is always safe: the steps are
idempotent and a page is decided once.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from sqlalchemy import and_, exists, func, or_, select, update

from core.status import OPEN_BATCH_STATUSES, OPEN_PAGE_STATUSES, PageStatus
from pipeline import audit
from pipeline.service import Dispatcher
from storage.models import AuditEvent, Batch, Page

log = logging.getLogger("khana.sweeper")

OPEN_PAGE = OPEN_PAGE_STATUSES
OPEN_BATCH = OPEN_BATCH_STATUSES


@dataclass
class SweepResult:
    redriven: list[str] = field(default_factory=list)
    finalised: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    parked: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


STUCK_AFTER_S = 900.0  # defaults of KHANA_STUCK_AFTER_S and KHANA_SWEEP_MAX_REDRIVES
MAX_REDRIVES = 5


def sweep(rt, dispatcher: Dispatcher, *, stuck_after_s: float = STUCK_AFTER_S, max_redrives: int = MAX_REDRIVES,
          now: datetime | None = None, limit: int = 500, break_leases: bool = False) -> SweepResult:
    """One round: re-drive pages whose lease ran out or whose message was lost, park pages that failed too
    often, finalise complete batches, report pages that stay stuck.

    `break_leases`: treat every lease as run out (the embedded server at start: no process of an earlier run
    is alive to hold one).
    """
    from pipeline.stages import park

    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(seconds=stuck_after_s)
    result = SweepResult()
    max_attempts = rt.config.max_attempts

    lease_over = Page.lease_until.is_not(None) if break_leases else Page.lease_until < now
    queued_long = and_(Page.lease_until.is_(None), Page.updated_at < cutoff)
    with rt.db.session() as s:
        rows = list(s.execute(
            select(Page.id, Page.status, Page.batch_id, Batch.priority, Page.attempts, Page.lease_until.is_not(None))
            .join(Batch, Batch.id == Page.batch_id)
            .where(Page.status.in_(OPEN_PAGE), or_(lease_over, queued_long))
            .order_by(Batch.priority, Page.updated_at)
            .limit(limit)))
    for page_id, status, batch_id, priority, attempts, leased in rows:
        with rt.db.session() as s:
            claimed = s.execute(
                update(Page).where(Page.id == page_id, Page.status == status, lease_over if leased else queued_long)
                .values(updated_at=now, lease_until=None)).rowcount == 1
            if not claimed:
                continue  # it moved on, its process renewed the lease, or another sweeper took it
            if not leased:
                redrives = s.scalar(select(func.count()).select_from(AuditEvent).where(
                    AuditEvent.page_id == page_id, AuditEvent.action == "page_redriven"))
                if redrives >= max_redrives:
                    already = s.scalar(select(func.count()).select_from(AuditEvent).where(
                        AuditEvent.page_id == page_id, AuditEvent.action == "page_stuck"))
                    if not already:
                        audit.record(s, "sweeper", "page_stuck", batch_id=batch_id, page_id=page_id, status=status,
                                     redrives=redrives)
                        log.error("page %s of batch %s is stuck in %s after %d re-drives", page_id, batch_id, status,
                                  redrives)
                    result.stuck.append(page_id)
                    continue
            if not (leased and attempts >= max_attempts):  # (that one is parked below, outside this transaction)
                audit.record(s, "sweeper", "page_redriven", batch_id=batch_id, page_id=page_id, status=status,
                             cause="lease_expired" if leased else "queued_too_long", attempts=attempts)
        if leased and attempts >= max_attempts:
            nxt = park(rt, page_id, PageStatus(status), "sweeper",
                       detail=f"stopped {attempts} times without finishing (worker lost or failed)")
            log.error("page %s of batch %s: %d attempts ended without a result; parked for QA", page_id, batch_id,
                      attempts)
            result.parked.append(page_id)
            if nxt == "finalise":
                dispatcher.finalise(batch_id, priority)
            continue
        dispatcher.redrive(page_id, status, priority)
        result.redriven.append(page_id)

    # batches complete but not finalised (their finalise task was lost)
    grace = now - timedelta(seconds=min(stuck_after_s, 60.0))
    open_page = exists().where(Page.batch_id == Batch.id, Page.status.in_(OPEN_PAGE))
    any_page = exists().where(Page.batch_id == Batch.id, Page.status != PageStatus.superseded)
    recent = exists().where(and_(Page.batch_id == Batch.id, Page.updated_at >= grace))
    with rt.db.session() as s:
        batches = list(s.execute(select(Batch.id, Batch.priority).where(
            Batch.status.in_(OPEN_BATCH), any_page, ~open_page, ~recent).limit(limit)))
    for batch_id, priority in batches:
        dispatcher.finalise(batch_id, priority)
        result.finalised.append(batch_id)
    if result.redriven or result.finalised or result.stuck or result.parked:
        log.info("sweep: re-drove %d page(s), finalised %d batch(es), parked %d, %d stuck",
                 len(result.redriven), len(result.finalised), len(result.parked), len(result.stuck))
    return result


class BrokerWatch:
    """Tells when the broker restarted since it was last asked (its epoch, e.g. Redis's run id, changed)."""

    def __init__(self, epoch: Callable[[], str | None]):
        self.epoch = epoch
        self.seen: str | None = None

    def restarted(self) -> bool:
        try:
            now = self.epoch()
        except Exception:  # noqa: BLE001 - the broker is down right now: ask again next round
            return False
        if now is None:
            return False
        changed = self.seen is not None and now != self.seen
        self.seen = now
        return changed


def run_forever(rt, dispatcher: Dispatcher, *, interval_s: float = 30.0, stop=None, heartbeat: str | None = None,
                broker_epoch: Callable[[], str | None] | None = None, **kw) -> None:
    """The ``khana sweeper`` loop: sweep, sleep, repeat; database outages are waited out.

    `heartbeat`: a file touched after every successful sweep (a container health check
    compares its modification time with the clock). `broker_epoch`: returns the broker's
    identity of this run (Redis's run id); when it changes the queues were lost, and every
    queued page is enqueued again in that round.
    """
    watch = BrokerWatch(broker_epoch) if broker_epoch else None
    while not (stop and stop()):
        try:
            round_kw = kw
            if watch is not None and watch.restarted():
                log.warning("the broker restarted: its queues are gone; enqueueing every waiting page again")
                round_kw = {**kw, "stuck_after_s": 0.0}
            sweep(rt, dispatcher, **round_kw)
            if heartbeat:
                Path(heartbeat).touch()
        except Exception:  # noqa: BLE001 - database/broker down: try again next round
            log.warning("sweep failed; retrying in %.0fs", interval_s, exc_info=True)
        deadline = time.monotonic() + interval_s
        while time.monotonic() < deadline and not (stop and stop()):
            time.sleep(min(0.5, interval_s))
