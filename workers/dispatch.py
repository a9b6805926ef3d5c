"""`CeleryDispatcher`: the `pipeline.service.Dispatcher` of the distributed mode.

`KhanaService.submit_batch` calls ``dispatch`` after the batch and its originals are
durably recorded. Publishing is best effort by design: if Redis is briefly down the
batch is still accepted (it is safe in the database and the object store) and the
sweeper enqueues its pages once their ``updated_at`` is older than the stuck timeout.
"""
from __future__ import annotations

import logging

from core.status import PageStatus
from workers.celery_app import TASK_FINALISE, TASK_OCR, TASK_QUALITY, publish

log = logging.getLogger("khana.workers")


class CeleryDispatcher:
    def __init__(self, app=None):
        from workers.celery_app import app as default_app

        self.app = app or default_app

    def dispatch(self, batch_id: str, page_ids: list[str], priority: int) -> None:
        for n, pid in enumerate(page_ids):
            if not publish(self.app, TASK_QUALITY, pid, priority):
                # the broker is down: do not make the station wait for every page in turn
                log.warning("batch %s: %d page(s) left for the sweeper", batch_id, len(page_ids) - n)
                return

    def redrive(self, page_id: str, status: str, priority: int) -> bool:
        """Enqueue a stuck page at the stage it is waiting for."""
        return publish(self.app, TASK_OCR if status == PageStatus.corrected else TASK_QUALITY, page_id, priority)

    def finalise(self, batch_id: str, priority: int) -> bool:
        return publish(self.app, TASK_FINALISE, batch_id, priority)
