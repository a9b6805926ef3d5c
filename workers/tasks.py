"""Celery tasks: thin wrappers over the pipeline's idempotent steps.

``khana.quality(page_id, priority)``  -> `pipeline.stages.run_quality`, then publishes OCR
``khana.ocr(page_id, priority)``      -> `pipeline.stages.run_ocr` (decides the page)
``khana.finalise(batch_id, priority)`` -> `pipeline.finalise.finalise_or_park`

These are the same steps the embedded worker runs in-process; nothing here decides
anything. Each pool process builds its own `Runtime` (database engine, object store)
after the fork. Transient errors (object store, database or broker briefly down) are
retried with exponential back-off; whatever is still stuck after that, the sweeper
re-drives later. A re-delivered task is harmless: a decided page is never decided again.

A stage finds its page "busy" when another process holds the page's lease: a message re-delivered at once
after its pool process was killed finds the dead process's lease still live. It is retried once the lease
can have run out (`KHANA_PAGE_LEASE_S`), so the page is taken up again within about a lease, with or
without a sweeper.
"""
from __future__ import annotations

import logging
import os

from celery.signals import worker_process_init, worker_process_shutdown

from khana.settings import get_settings
from workers.celery_app import (DEFAULT_PRIORITY, TASK_FINALISE, TASK_OCR, TASK_QUALITY, TASK_SWEEP, app,
                                clamp_priority, publish)

log = logging.getLogger("khana.workers")

_rt = None
_rt_pid: int | None = None


def runtime():
    """This process's Runtime (built after fork; rebuilt if the process forked again)."""
    global _rt, _rt_pid
    if _rt is None or _rt_pid != os.getpid():
        from khana.bootstrap import build_runtime

        os.environ["OMP_THREAD_LIMIT"] = "1"
        _rt = build_runtime(migrate=False)
        _rt_pid = os.getpid()
    return _rt


@worker_process_init.connect
def _init_process(**_kw) -> None:
    global _rt
    _rt = None  # never reuse the parent's engine/connections after fork
    os.environ["OMP_THREAD_LIMIT"] = "1"
    try:  # one pool process = one core: no OpenCV thread pool competing with the other processes
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # noqa: BLE001
        pass
    try:
        runtime()
    except Exception:  # noqa: BLE001 - the database may be down right now; tasks retry
        log.warning("runtime not ready at process start; will retry in tasks", exc_info=True)


@worker_process_shutdown.connect
def _close_process(**_kw) -> None:
    if _rt is not None:
        try:
            _rt.close()
        except Exception:  # noqa: BLE001
            pass


def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth retrying: the store, the database or the broker is briefly unreachable.

    A missing object or a digest mismatch (`ObjectNotFound`, `DigestMismatch`) is not among them:
    retrying cannot help, the task fails and the page is left for the sweeper's report.
    """
    from kombu.exceptions import OperationalError as KombuOperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    from storage.objects import StoreUnavailable

    return (StoreUnavailable, OperationalError, InterfaceError, DisconnectionError, KombuOperationalError,
            RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)


def _retry_or_raise(task, exc: BaseException):
    if not isinstance(exc, transient_errors()):
        raise exc
    settings = get_settings()
    n = task.request.retries
    countdown = min(settings.retry_backoff_max_s, 2 ** n)
    from sqlalchemy.exc import DBAPIError

    if _rt is not None and isinstance(exc, DBAPIError):
        try:
            _rt.db.engine.dispose()  # drop pooled connections to a restarted database
        except Exception:  # noqa: BLE001
            pass
    log.warning("%s(%s): transient error, retry %d in %ss: %s", task.name, task.request.args, n + 1, countdown, exc)
    raise task.retry(exc=exc, countdown=countdown, max_retries=settings.task_max_retries)


def _publish_finalise_of(page_id: str, priority: int) -> None:
    from storage.models import Page

    with runtime().db.session() as s:
        page = s.get(Page, page_id)
        batch_id = page.batch_id if page else None
    if batch_id:
        publish(app, TASK_FINALISE, batch_id, priority)


def _actor(task) -> str:
    return f"worker:{task.request.hostname or 'celery'}"


def _retry_when_lease_runs_out(task):
    """The page is leased by another process (maybe a dead one): look again when its lease can have run out."""
    countdown = max(1.0, runtime().config.lease_s)
    log.info("%s(%s): page leased by another process; looking again in %.0f s", task.name, task.request.args, countdown)
    raise task.retry(countdown=countdown, max_retries=None)


@app.task(bind=True, name=TASK_QUALITY, acks_late=True, reject_on_worker_lost=True, max_retries=None,
          time_limit=get_settings().ocr_task_time_limit_s)
def quality_task(self, page_id: str, priority: int = DEFAULT_PRIORITY) -> str:
    from celery.exceptions import Retry

    from pipeline.stages import run_quality

    priority = clamp_priority(priority)
    try:
        nxt = run_quality(runtime(), page_id, actor=_actor(self))
        if nxt == "busy":
            _retry_when_lease_runs_out(self)
        if nxt == "ocr":
            publish(app, TASK_OCR, page_id, priority)
        elif nxt == "finalise":
            _publish_finalise_of(page_id, priority)
    except Retry:
        raise
    except Exception as exc:  # noqa: BLE001
        _retry_or_raise(self, exc)
    return nxt


@app.task(bind=True, name=TASK_OCR, acks_late=True, reject_on_worker_lost=True, max_retries=None,
          time_limit=get_settings().ocr_task_time_limit_s)
def ocr_task(self, page_id: str, priority: int = DEFAULT_PRIORITY) -> str:
    from celery.exceptions import Retry

    from pipeline.stages import run_ocr

    priority = clamp_priority(priority)
    try:
        nxt = run_ocr(runtime(), page_id, actor=_actor(self))
        if nxt == "busy":
            _retry_when_lease_runs_out(self)
        if nxt == "finalise":
            _publish_finalise_of(page_id, priority)
    except Retry:
        raise
    except Exception as exc:  # noqa: BLE001
        _retry_or_raise(self, exc)
    return nxt


@app.task(bind=True, name=TASK_FINALISE, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def finalise_task(self, batch_id: str, priority: int = DEFAULT_PRIORITY) -> str:
    from pipeline.finalise import finalise_or_park

    try:
        return finalise_or_park(runtime(), batch_id, actor=_actor(self))
    except Exception as exc:  # noqa: BLE001
        _retry_or_raise(self, exc)


@app.task(bind=True, name=TASK_SWEEP, acks_late=True, max_retries=None)
def sweep_task(self) -> dict:
    from workers.dispatch import CeleryDispatcher
    from workers.sweeper import sweep

    try:
        return sweep(runtime(), CeleryDispatcher(), **get_settings().sweep_options()).as_dict()
    except Exception as exc:  # noqa: BLE001
        _retry_or_raise(self, exc)
