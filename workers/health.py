"""What the readiness check asks the distributed mode: is the broker reachable, and who consumes each queue.

`celery_readiness(app)` connects to the broker (a short timeout) and asks every live Celery worker which
queues it consumes (``inspect().active_queues()``, a broadcast answered within `timeout`). A queue no
live worker consumes means its pages wait: `/readyz` answers 503 and a station's batch status says its
filing is waiting for a worker.

`WorkerMonitor` caches the answer for a few seconds, so a station polling its batch does not broadcast
to every worker on each request.
"""
from __future__ import annotations

import threading
import time

from workers.celery_app import QUEUES


def celery_readiness(app, timeout: float = 1.0) -> dict:
    """{"broker": "ok" | "error: ...", "queues": {queue: [worker names]}}."""
    out: dict = {"broker": "ok", "queues": {q: [] for q in QUEUES}}
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=timeout)
            replies = app.control.inspect(timeout=timeout, connection=conn).active_queues() or {}
    except Exception as exc:  # noqa: BLE001 - the broker is down or unreachable
        out["broker"] = f"error: {type(exc).__name__}: {exc}"[:300]
        return out
    for worker, queues in replies.items():
        for q in queues or []:
            name = q.get("name") if isinstance(q, dict) else None
            if name in out["queues"]:
                out["queues"][name].append(worker)
    for names in out["queues"].values():
        names.sort()
    return out


class WorkerMonitor:
    """`celery_readiness` of one Celery app, asked at most once every `ttl_s` seconds."""

    def __init__(self, app, ttl_s: float = 5.0, timeout: float = 1.0):
        self.app, self.ttl_s, self.timeout = app, ttl_s, timeout
        self._lock = threading.Lock()
        self._at = 0.0
        self._last: dict | None = None

    def status(self, fresh: bool = False) -> dict:
        with self._lock:
            if fresh or self._last is None or time.monotonic() - self._at > self.ttl_s:
                self._last = celery_readiness(self.app, self.timeout)
                self._at = time.monotonic()
            return self._last
