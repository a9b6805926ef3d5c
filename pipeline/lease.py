"""Per-page leases: who is working on a page right now, and for how long that claim holds.

A stage claims its page before it starts (`claim`): a conditional UPDATE sets ``lease_until`` to
now + ``lease_s`` and counts the attempt, and only succeeds when nobody holds a live lease. While the
stage runs, a heartbeat thread of the same process renews the lease every ``lease_renew_s`` (an OCR
call may take a minute: a healthy long page is never taken away from its process). When the stage
ends, the lease is released in the same UPDATE that records the result.

A process that dies in the middle of a page (power loss, SIGKILL, the out-of-memory killer) stops
renewing: its lease runs out after at most ``lease_s`` and the sweeper re-drives the page at its next
round (`workers.sweeper`), so lost work comes back within about ``lease_s + sweep interval`` instead
of a flat stuck limit. A page whose lease is live is never re-driven.

Each start counts one attempt (`Page.attempts`, reset when the stage completes). A stage that crashed
or failed ``max_attempts`` times is not run again: the page is parked for QA (`park`), held with the
reason `processing_error` (or `processing_timeout`) and the error, audited: never retried forever.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, update

from core.status import PageStatus
from storage.models import Page

log = logging.getLogger("khana.pipeline")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def claim(rt, page_id: str, status: PageStatus) -> int | None:
    """Lease page `page_id` in `status` for this process; its attempt number, or None when it is not free.

    None: the page moved on, or another process holds a live lease on it (it is being worked on).
    """
    now = utcnow()
    with rt.db.session() as s:
        res = s.execute(
            update(Page)
            .where(Page.id == page_id, Page.status == status, or_(Page.lease_until.is_(None), Page.lease_until < now))
            .values(lease_until=now + timedelta(seconds=rt.config.lease_s), attempts=Page.attempts + 1)
            .returning(Page.attempts))
        row = res.first()
    return None if row is None else int(row[0])


def renew(rt, page_id: str) -> bool:
    """Extend a held lease; False when the page no longer carries one (finished, or taken away)."""
    with rt.db.session() as s:
        res = s.execute(update(Page).where(Page.id == page_id, Page.lease_until.is_not(None))
                        .values(lease_until=utcnow() + timedelta(seconds=rt.config.lease_s)))
    return res.rowcount == 1


def release(rt, page_id: str, *, retry_soon: bool = False, forget_attempt: bool = False) -> None:
    """Give the lease up without a result.

    `retry_soon`: leave an expired lease behind, so the sweeper re-drives the page at its next round (the
    stage failed; it is tried again until `max_attempts`). `forget_attempt`: the attempt did not count (a
    store or database outage is nobody's fault, the step is retried by the worker).
    """
    values: dict = {"lease_until": utcnow() if retry_soon else None}
    if forget_attempt:
        values["attempts"] = Page.attempts - 1
    try:
        with rt.db.session() as s:
            s.execute(update(Page).where(Page.id == page_id, Page.lease_until.is_not(None)).values(**values))
    except Exception:  # noqa: BLE001 - the database is down: the lease simply runs out
        log.warning("page %s: could not release its lease; it runs out by itself", page_id, exc_info=True)


class Heartbeat:
    """Renews a page's lease every `lease_renew_s` from a thread of the working process.

    ``with Heartbeat(rt, page_id):`` around the work; a failed renewal (database briefly down) is logged
    and tried again at the next beat; the lease is long enough to miss two beats.
    """

    def __init__(self, rt, page_id: str):
        self.rt, self.page_id = rt, page_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"khana-lease-{page_id[:8]}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.rt.config.lease_renew_s):
            try:
                if not renew(self.rt, self.page_id):
                    return
            except Exception:  # noqa: BLE001
                log.warning("page %s: lease renewal failed; trying again", self.page_id, exc_info=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
