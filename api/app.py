"""The Khana web service: the station API on top of the service layer.

    POST /api/v1/batches                      upload a batch (multipart), 202 with the batch id
    GET  /api/v1/batches/{id}                 status and page reports: which pages to rescan and why
    GET  /api/v1/batches/{id}/pdf             the searchable PDF (passing pages)
    GET  /api/v1/batches/{id}/pages/{n}/problems.png   the held page with its problems marked
    GET  /healthz, /readyz                    liveness and readiness (api/health.py)

A station authenticates with `Authorization: Bearer <token>`; the token names its
office (KHANA_API_TOKENS). An upload is answered only after every original is
durably stored and the batch recorded; the `Idempotency-Key` header makes retries
return the same batch.
"""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from datetime import date

from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from api import health
from khana.bootstrap import build_runtime
from khana.settings import Settings, get_settings
from pipeline.runtime import Runtime
from pipeline.service import BadInput, BatchMeta, Dispatcher, KhanaService, Upload
from core.errors import Unavailable
from storage.objects import StoreUnavailable

log = logging.getLogger("khana.api")


def _messages(codes: list[str]) -> list[dict]:
    from quality import reason_message

    return [{"code": c, "fa": reason_message(c, "fa"), "en": reason_message(c, "en")} for c in codes]


def create_app(rt: Runtime | None = None, dispatcher: Dispatcher | None = None, *, start_worker: bool = True,
               settings: Settings | None = None) -> FastAPI:
    """Build the app (the API's composition root: the settings are read here and nowhere below).

    Without a dispatcher: Celery when KHANA_BROKER_URL is set, else the embedded worker.
    """
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        cfg = settings or get_settings()
        runtime = rt or build_runtime(cfg)
        disp = dispatcher
        worker = None
        if disp is None:
            if cfg.broker_url:
                from workers.dispatch import CeleryDispatcher

                disp = CeleryDispatcher()
            elif start_worker:
                from workers.embedded import BackgroundWorker

                worker = BackgroundWorker(runtime, settings=cfg)
                worker.start()
                disp = worker
        state.update(rt=runtime, service=KhanaService(runtime, disp), worker=worker,
                     tokens=cfg.station_tokens())
        app.state.khana = state
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            if rt is None:
                runtime.close()

    app = FastAPI(title="Khana", version="0.1.0", lifespan=lifespan,
                  description="Legible, searchable scans for the courts: station uploads and batch status.")

    def service() -> KhanaService:
        return state["service"]

    def station(authorization: str | None = Header(None)) -> str | None:
        """The office the caller's token belongs to (None when auth is disabled)."""
        tokens = state["tokens"]
        if not tokens:
            return None
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or token not in tokens:
            raise HTTPException(401, "a valid station token is required (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})
        return tokens[token]

    def _own(batch_report: dict, office: str | None) -> None:
        if office is not None and batch_report.get("office") != office:
            raise HTTPException(404, "no such batch")

    def _status_body(report: dict) -> dict:
        pages = report["pages"]
        held = [p for p in pages if p.get("decision") == "hold"]
        decided = sum(1 for p in pages if p.get("decision") in ("pass", "hold"))
        return {
            "batch": report["batch"],
            "status": report["status"],
            "office": report["office"],
            "court": report["court"],
            "case_number": report["case_number"],
            "pages_total": report["pages_total"],
            "pages_decided": decided,
            "rescan": [{"file": p["file"], "page": p["page"], "reasons": _messages(p["reasons"])} for p in held],
            "pages": pages,
        }

    app.include_router(health.router)  # /healthz, /readyz

    @app.post("/api/v1/batches", status_code=202)
    async def upload_batch(
        request: Request,
        files: list[UploadFile] = File(..., description="the pages: PNG, JPEG, TIFF or PDF"),
        court: str = Form(...),
        case_number: str | None = Form(None),
        document_type: str = Form(""),
        deadline: date | None = Form(None),
        office: str = Form(""),
        idempotency_key: str | None = Header(None),
        token_office: str | None = Depends(station),
        svc: KhanaService = Depends(service),
    ):
        limit = svc.rt.config.max_upload_bytes
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit + 1024 * 1024:
            raise HTTPException(413, f"the batch is larger than {limit // (1024 * 1024)} MiB")
        uploads = []
        total = 0
        for f in files:
            data = await f.read()
            total += len(data)
            if total > limit:
                raise HTTPException(413, f"the batch is larger than {limit // (1024 * 1024)} MiB")
            uploads.append(Upload(f.filename or "upload", data))
        meta = BatchMeta(office=token_office or office, court=court, case_number=case_number or None,
                         document_type=document_type, deadline=deadline)
        key = f"{meta.office}:{idempotency_key}" if idempotency_key else None
        try:
            sub = await run_in_threadpool(svc.submit_batch, uploads, meta, idempotency_key=key,
                                          actor=f"station:{meta.office or 'anonymous'}")
        except BadInput as exc:
            raise HTTPException(400, exc.one_line()) from exc
        except StoreUnavailable as exc:
            log.warning("upload refused, object store unavailable: %s", exc)
            raise HTTPException(503, "storage is unavailable; the batch was NOT accepted, retry later",
                                headers={"Retry-After": "30"}) from exc
        except Unavailable as exc:  # the database: nothing accepted
            log.warning("upload refused: %s", exc)
            raise HTTPException(503, exc.one_line(), headers={"Retry-After": "30"}) from exc
        return {"batch": sub.batch_id, "created": sub.created, "pages": len(sub.page_ids), "priority": sub.priority,
                "status_url": f"/api/v1/batches/{sub.batch_id}"}

    def _report(svc: KhanaService, batch_id: str, office: str | None) -> dict:
        try:
            report = svc.report(batch_id)
        except LookupError:
            raise HTTPException(404, "no such batch") from None
        _own(report, office)
        return report

    @app.get("/api/v1/batches/{batch_id}")
    def batch_status(batch_id: str, request: Request, office: str | None = Depends(station),
                     svc: KhanaService = Depends(service)):
        return {**_status_body(_report(svc, batch_id, office)), "waiting": health.batch_waiting(request, batch_id)}

    @app.get("/api/v1/batches/{batch_id}/pdf")
    def batch_pdf(batch_id: str, office: str | None = Depends(station), svc: KhanaService = Depends(service)):
        _report(svc, batch_id, office)
        pdf = svc.searchable_pdf(batch_id)
        if pdf is None:
            raise HTTPException(404, "no searchable PDF yet (no page has passed, or processing is not finished)")
        return Response(pdf, media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{batch_id}.pdf"'})

    @app.get("/api/v1/batches/{batch_id}/pages/{seq}/problems.png")
    def problems(batch_id: str, seq: int, office: str | None = Depends(station), svc: KhanaService = Depends(service)):
        _report(svc, batch_id, office)
        for n, png in svc.problem_images(batch_id):
            if n == seq:
                return Response(png, media_type="image/png")
        raise HTTPException(404, "this page is not held (or not decided yet)")

    return app
