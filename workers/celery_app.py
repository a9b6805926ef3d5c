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

Configuration comes from the environment (pydantic-settings, prefix ``KHANA_``):
`khana.settings.Settings` (``KHANA_BROKER_URL``, ``KHANA_RESULT_BACKEND``, ...) and
`WorkerSettings` below.
"""
from __future__ import annotations

from functools import lru_cache

from celery import Celery
from kombu import Exchange, Queue
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from khana.settings import Settings, get_settings

QUEUES = ("quality", "ocr", "assemble")
PRIORITY_STEPS = list(range(10))  # one Redis list per priority 0..9
DEFAULT_PRIORITY = 5


class WorkerSettings(BaseSettings):
    """Settings of the distributed mode (environment variables, prefix ``KHANA_``)."""

    model_config = SettingsConfigDict(env_prefix="KHANA_", env_file=None, extra="ignore")

    visibility_timeout_s: int = Field(1800, description="a message unacknowledged this long (its worker died) is redelivered")
    broker_key_prefix: str = Field("", description="prefix of every Redis key Celery uses (several deployments on one Redis)")
    task_max_retries: int = Field(20, description="retries of a step after a transient error (store, database, broker)")
    retry_backoff_max_s: int = Field(60, description="cap of the exponential retry back-off")
    ocr_task_time_limit_s: int = Field(600, description="hard time limit of one OCR task (the pool process is replaced)")
    sweep_interval_s: float = Field(30.0, description="how often the sweeper looks for stuck pages and batches")
    stuck_after_s: float = Field(900.0, description="a page untouched this long in pending/corrected is re-driven")
    sweep_max_redrives: int = Field(5, description="re-drives of one page before the sweeper gives up and reports it")


@lru_cache(maxsize=1)
def get_worker_settings() -> WorkerSettings:
    return WorkerSettings()


def broker_transport_options(ws: WorkerSettings) -> dict:
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


def make_celery(settings: Settings | None = None, ws: WorkerSettings | None = None) -> Celery:
    settings = settings or get_settings()
    ws = ws or get_worker_settings()
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
        worker_hijack_root_logger=False,
        timezone="UTC",
        enable_utc=True,
    )
    return app


app = make_celery()
celery = app  # ``celery -A workers.celery_app worker`` finds either name
