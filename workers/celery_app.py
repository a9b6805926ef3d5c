"""The Celery app of Khana's distributed mode: one queue per stage, Redis priorities, crash safety.

Queues (a worker consumes the ones given with ``-Q``):

* ``quality``  decode, orientation + deskew, normalisation, measures, early gate (light, fast)
* ``ocr``      Persian OCR and the final page decision (heavy: scale these workers apart)
* ``assemble`` searchable PDF, report and delivery of a complete batch; the sweeper's re-drives

Delivery guarantees:

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only
  after its task finished; a pool process that dies (SIGKILL, OOM) gets its message
  re-queued at once, a whole worker that dies gets it back after the Redis
  ``visibility_timeout`` (``KHANA_VISIBILITY_TIMEOUT_S``), and the sweeper re-drives
  anything still stuck. The steps are idempotent and a page's decision is a
  conditional UPDATE, so a re-delivered task never decides a page twice.
* ``worker_prefetch_multiplier=1`` and ``worker_disable_prefetch``: a worker takes a
  new task only when a pool process is free, so a long OCR never sits on messages
  another worker could run, and priorities apply to every fetch.

Priorities: 0 = most urgent .. 9 (`pipeline.service.deadline_priority`). Kombu's Redis
transport keeps one list per priority step (``ocr``, ``ocr:1``, ... ``ocr:9``) and
BRPOPs them in ascending order, so 0 is served first (the reverse of AMQP).

Configuration comes from `khana.settings.Settings` (environment variables, prefix ``KHANA_``:
``KHANA_BROKER_URL``, ``KHANA_VISIBILITY_TIMEOUT_S``, ...), the one settings class of every entry point.

Every task message is published by `publish` (by task name, with the clamped priority): the API's
dispatcher, the tasks' hand-off to the next stage and the sweeper's re-drives all go through it.
"""
from __future__ import annotations

import logging

from celery import Celery
from kombu import Exchange, Queue

from khana.settings import Settings, get_settings

QUEUES = ("quality", "ocr", "assemble")
PRIORITY_STEPS = list(range(10))  # one Redis list per priority 0..9
DEFAULT_PRIORITY = 5


def broker_transport_options(ws: Settings) -> dict:
    opts = {
        "priority_steps": PRIORITY_STEPS,
        "sep": ":",
        "queue_order_strategy": "priority",
        "visibility_timeout": ws.visibility_timeout_s,
        # scan for abandoned (unacknowledged) messages every ~10 s, not every 100 s
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
        "health_check_interval": 10,
    }
    if ws.broker_key_prefix:
        opts["global_keyprefix"] = ws.broker_key_prefix
    return opts


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    ws = settings
    app = Celery("khana", broker=settings.broker_url or "redis://127.0.0.1:6379/0",
                 backend=settings.result_backend or None, include=["workers.tasks"])
    exchange = Exchange("khana", type="direct")
    app.conf.update(
        task_queues=[Queue(q, exchange, routing_key=q) for q in QUEUES],
        task_default_queue="quality",
        task_default_exchange="khana",
        task_default_routing_key="quality",
        task_routes={
            "khana.quality": {"queue": "quality", "routing_key": "quality"},
            "khana.ocr": {"queue": "ocr", "routing_key": "ocr"},
            "khana.finalise": {"queue": "assemble", "routing_key": "assemble"},
            "khana.sweep": {"queue": "assemble", "routing_key": "assemble"},
        },
        task_default_priority=DEFAULT_PRIORITY,
        task_queue_max_priority=9,
        task_inherit_parent_priority=True,
        broker_transport_options=broker_transport_options(ws),
        result_backend_transport_options={"global_keyprefix": ws.broker_key_prefix} if ws.broker_key_prefix else {},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_disable_prefetch=True,
        task_ignore_result=settings.result_backend is None,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_track_started=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for Redis to come back
        broker_channel_error_retry=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_max_tasks_per_child=200,  # bounds any slow leak in OCR libraries
        # a pool process replacing a killed one builds its runtime first (database engine, store, policy): on a
        # loaded machine that takes more than Celery's 4 s, and Celery would kill it again and again
        worker_proc_alive_timeout=60.0,
        worker_hijack_root_logger=False,
        timezone="UTC",
        enable_utc=True,
    )
    return app


log = logging.getLogger("khana.workers")


def _survive_close_after_connection_loss() -> None:
    """Kombu 5.7's Redis transport crashes a worker when Redis goes away at the wrong moment.

    Closing a channel after the connection was lost restores its unacknowledged messages through a new
    client built from the connection, which is already gone (``AttributeError: 'NoneType' object has no
    attribute 'hostname'``); Celery takes that for an unrecoverable error and the worker stops for good
    (seen in bench/soak/run.py when Redis restarted). The messages stay in Redis's unacked set, which the
    transport restores after the visibility timeout (and the page leases bring the pages back first), so the
    close goes on without them.
    """
    from kombu.transport import virtual

    original = virtual.QoS.restore_unacked_once
    if getattr(original, "_khana_guarded", False):
        return

    def restore_unacked_once(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        except AttributeError as exc:
            log.warning("broker connection lost while closing a channel; its unacknowledged messages stay in "
                        "the broker for redelivery (%s)", exc)
            return None

    restore_unacked_once._khana_guarded = True
    virtual.QoS.restore_unacked_once = restore_unacked_once


_survive_close_after_connection_loss()

_PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}

TASK_QUALITY, TASK_OCR, TASK_FINALISE, TASK_SWEEP = "khana.quality", "khana.ocr", "khana.finalise", "khana.sweep"


def broker_run_id(broker_url: str | None) -> str | None:
    """The Redis broker's run id (a new one at every start of the server); None for other brokers."""
    if not broker_url or not broker_url.startswith(("redis://", "rediss://", "unix://")):
        return None
    import redis

    client = redis.Redis.from_url(broker_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        return str(client.info("server")["run_id"])
    finally:
        client.close()


def clamp_priority(priority) -> int:
    """0 (most urgent) .. 9; anything else becomes the default."""
    try:
        return max(0, min(9, int(priority)))
    except (TypeError, ValueError):
        return DEFAULT_PRIORITY


def publish(celery_app: Celery, task_name: str, arg: str, priority) -> bool:
    """Enqueue one task message `task_name(arg, priority)`; False (logged) when the broker cannot be reached."""
    p = clamp_priority(priority)
    try:
        celery_app.send_task(task_name, (arg, p), priority=p, retry=True, retry_policy=_PUBLISH_RETRY)
        return True
    except Exception as exc:  # noqa: BLE001 - the sweeper re-drives what could not be published
        log.warning("could not enqueue %s(%s): %s; the sweeper will re-drive it", task_name, arg, exc)
        return False


app = make_celery()
celery = app  # ``celery -A workers.celery_app worker`` finds either name
