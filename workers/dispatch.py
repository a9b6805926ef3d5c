"""`CeleryDispatcher`: the `pipeline.service.Dispatcher` of the distributed mode.

`KhanaService.submit_batch` calls ``dispatch`` after the batch and its originals are
durably recorded. Publishing is best effort by design: if Redis is briefly down the
batch is still accepted (it is safe in the database and the object store) and the
sweeper enqueues its pages once their ``updated_at`` is older than the stuck timeout.
"""
from __future__ import annotations

import logging

log = logging.getLogger("khana.workers")

_PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}


class CeleryDispatcher:
    def __init__(self, app=None):
        from workers.celery_app import app as default_app

        self.app = app or default_app

    def _publish(self, task_name: str, arg: str, priority: int) -> bool:
        from workers.tasks import _priority

        p = _priority(priority)
        try:
            self.app.send_task(task_name, (arg, p), priority=p, retry=True, retry_policy=_PUBLISH_RETRY)
            return True
        except Exception as exc:  # noqa: BLE001 - the sweeper re-drives what could not be published
            log.warning("could not enqueue %s(%s): %s; the sweeper will re-drive it", task_name, arg, exc)
            return False

    def dispatch(self, batch_id: str, page_ids: list[str], priority: int) -> None:
        for n, pid in enumerate(page_ids):
            if not self._publish("khana.quality", pid, priority):
                # the broker is down: do not make the station wait for every page in turn
                log.warning("batch %s: %d page(s) left for the sweeper", batch_id, len(page_ids) - n)
                return

    def redrive(self, page_id: str, status: str, priority: int) -> bool:
        """Enqueue a stuck page at the stage it is waiting for."""
        return self._publish("khana.ocr" if status == "corrected" else "khana.quality", page_id, priority)

    def finalise(self, batch_id: str, priority: int) -> bool:
        return self._publish("khana.finalise", batch_id, priority)
