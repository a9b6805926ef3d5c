"""Liveness and readiness of a Khana server.

    GET /healthz   liveness: the database and the object store answer, and (embedded mode) the in-process
                   worker can process pages (its thread runs and it has a working process pool). 503 otherwise:
                   a supervisor should restart the server.
    GET /readyz    readiness: everything /healthz checks, plus the work can flow: the broker answers, every
                   queue (quality, ocr, assemble) has a live Celery worker, and how many pages wait for a
                   worker and for how long. 503 when not ready (no worker for a queue, broker down, ...).

`batch_waiting` is what a station's batch status shows under ``waiting``: its pages waiting for a worker,
the oldest wait, and whether any worker is there to take them.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from pipeline import progress

router = APIRouter(tags=["service"])


def _state(request: Request) -> dict:
    return request.app.state.khana


def _monitor(state: dict):
    """The cached Celery worker monitor of the distributed mode (None in embedded mode)."""
    if "worker_monitor" not in state:
        disp = getattr(state.get("service"), "dispatcher", None)
        monitor = None
        from workers.dispatch import CeleryDispatcher

        if isinstance(disp, CeleryDispatcher):
            from workers.health import WorkerMonitor

            monitor = WorkerMonitor(disp.app)
        state["worker_monitor"] = monitor
    return state["worker_monitor"]


def _storage_checks(rt) -> dict:
    checks = {}
    try:
        with rt.db.session() as s:
            s.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        rt.store.ensure_buckets()
        checks["object_store"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["object_store"] = f"error: {exc.__class__.__name__}"
    return checks


@router.get("/healthz")
def healthz(request: Request):
    state = _state(request)
    checks = _storage_checks(state["rt"])
    ok = all(v == "ok" for v in checks.values())
    worker = state.get("worker")
    if worker is not None:
        h = worker.health()
        checks["embedded_worker"] = "ok" if h["alive"] else f"error: {h.get('error', 'stopped')}"
        ok = ok and h["alive"]
    return JSONResponse({"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503)


@router.get("/readyz")
def readyz(request: Request):
    state = _state(request)
    rt = state["rt"]
    body: dict = _storage_checks(rt)
    ready = all(v == "ok" for v in body.values())
    try:
        body["waiting"] = progress.waiting(rt.db)
    except Exception as exc:  # noqa: BLE001
        body["waiting"] = f"error: {exc.__class__.__name__}"
    worker = state.get("worker")
    monitor = _monitor(state)
    if worker is not None:
        body["mode"] = "embedded"
        body["embedded_worker"] = worker.health()
        ready = ready and body["embedded_worker"]["alive"]
    elif monitor is not None:
        body["mode"] = "celery"
        st = monitor.status(fresh=True)
        body["broker"] = st["broker"]
        body["workers"] = st["queues"]
        missing = [q for q, names in st["queues"].items() if not names]
        if missing:
            body["no_worker_for"] = missing
        ready = ready and st["broker"] == "ok" and not missing
    else:
        body["mode"] = "none"  # no worker at all (an API started without one): pages are not processed here
        ready = False
    body["status"] = "ready" if ready else "not ready"
    return JSONResponse(body, status_code=200 if ready else 503)


def install_outage_handler(app) -> None:
    """The database (or another service) unreachable while answering any request: 503 + Retry-After, one line.

    Authentication reads the database first, so an upload that arrives while it is down ends here: nothing
    was accepted, the station retries.
    """
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    from core.errors import Unavailable

    async def outage(request: Request, exc: Exception):
        msg = exc.one_line() if isinstance(exc, Unavailable) else (
            "پایگاه داده در دسترس نیست؛ چیزی پذیرفته نشد، کمی بعد دوباره تلاش کنید / the database is unavailable; "
            "nothing was accepted, retry later")
        return JSONResponse({"detail": msg}, status_code=503, headers={"Retry-After": "30"})

    for exc_type in (OperationalError, InterfaceError, DisconnectionError, Unavailable):
        app.add_exception_handler(exc_type, outage)


def batch_waiting(request: Request, batch_id: str) -> dict:
    """A batch's pages waiting for a worker: {"pages", "oldest_s", "in_progress", "worker_available"}."""
    state = _state(request)
    w = progress.waiting(state["rt"].db, batch_id)
    worker = state.get("worker")
    monitor = _monitor(state)
    if worker is not None:
        w["worker_available"] = bool(worker.health()["alive"])
    elif monitor is not None:
        st = monitor.status()
        w["worker_available"] = st["broker"] == "ok" and all(st["queues"].values())
    else:
        w["worker_available"] = False
    return w
