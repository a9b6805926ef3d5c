"""The station: its API (upload, status, PDF, problem images, thumbnails, rescans) and its web pages.

    POST /api/v1/batches                               upload a filing (multipart), 202 once stored durably
    GET  /api/v1/batches/{id}                          status and page reports: which pages to rescan and why
    GET  /api/v1/batches/{id}/pdf                      the searchable PDF (passing pages)
    GET  /api/v1/batches/{id}/pages/{n}/problems.png   held page n with its problems marked
    GET  /api/v1/batches/{id}/pages/{n}/thumbnail.jpg  a small picture of page n after correction
    POST /api/v1/batches/{id}/pages/{n}/rescan         replace held page n with a new scan (multipart `file`)

    GET  /station                                      upload page (drag and drop, form, deadline)
    GET  /station/filings                              the office's filings
    GET  /station/batches/{id}                         a filing: every page's verdict, live; rescan buttons

Page numbers `n` are the batch's page sequence (1-based across the filing's files). A station sees only its
office's batches; QA may read problem images and thumbnails of every office; anyone else gets 404.
"""
from __future__ import annotations

import logging
import traceback

import cv2
import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from api.auth import Principal, require, require_web
from api.deps import service
from api.uploads import declared_length, read_multipart
from api.web import render
from core.errors import BadInput as KhanaBadInput
from core.errors import Unavailable
from pipeline.metadata import InvalidMetadata, validate_meta
from pipeline.service import (BadInput, BatchMeta, IdempotencyConflict, KhanaService, NotRescannable, Submitted,
                              Upload)
from storage.objects import ObjectStoreError

log = logging.getLogger("khana.api")
router = APIRouter()

FINAL = ("held", "passed", "forwarded", "failed", "rejected")


def _messages(codes: list[str]) -> list[dict]:
    from quality import reason_message

    return [{"code": c, "fa": reason_message(c, "fa"), "en": reason_message(c, "en")} for c in codes]


def _bilingual(exc: Exception) -> str:
    fa = getattr(exc, "message_fa", None)
    en = exc.message if isinstance(exc, KhanaBadInput) else str(exc)
    return f"{en} / {fa}" if fa else f"{en} / فایل یا درخواست پذیرفته نشد: {en}"


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
        "deadline": report.get("deadline"),
        "rejection": report.get("rejection"),  # QA refused the filing, and why (pipeline.review.reject)
        "rescan_requests": report.get("rescan_requests", []),  # QA asks for these pages again, and why
        "pages_total": report["pages_total"],
        "pages_decided": decided,
        "rescan": [{"file": p["file"], "page": p["page"], "seq": p.get("seq"), "reasons": _messages(p["reasons"])}
                   for p in held],
        "pages": pages,
    }


def _visible_meta(svc: KhanaService, batch_id: str, p: Principal) -> dict:
    """The batch's metadata if `p` may see it; 404 otherwise (never reveal that it exists)."""
    try:
        meta = svc.batch_meta(batch_id)
    except LookupError:
        raise HTTPException(404, "no such batch / چنین دسته‌ای نیست") from None
    if p.role == "station" and not p.sees_office(meta["office"]):
        raise HTTPException(404, "no such batch / چنین دسته‌ای نیست")
    return meta


def _report(svc: KhanaService, batch_id: str, p: Principal) -> dict:
    _visible_meta(svc, batch_id, p)
    return svc.report(batch_id, with_seq=True)


# --- uploads ---------------------------------------------------------------------------------------------------

async def _handover(fn, uploads: list[Upload], *args, **kw):
    """Run a service call on uploads in the thread pool, then drop their bytes at once.

    A refusal's traceback keeps the frames that saw the bytes alive until the cyclic garbage collector runs;
    refused 190 MiB uploads piled up in memory that way. Their frames' locals are cleared here.
    """
    try:
        return await run_in_threadpool(fn, *args, **kw)
    except BaseException as exc:
        seen: set[int] = set()
        e: BaseException | None = exc
        while e is not None and id(e) not in seen:
            seen.add(id(e))
            if e.__traceback__ is not None:
                traceback.clear_frames(e.__traceback__)
            e = e.__cause__ or e.__context__
        raise
    finally:
        for up in uploads:
            up.data = b""


async def _accept_upload(request: Request, p: Principal, svc: KhanaService) -> Submitted:
    """The whole upload path shared by the API and the station page (auth is already done from the headers)."""
    s = svc.rt.config
    limit = s.max_upload_bytes
    declared = declared_length(request, limit)  # 413 at once, before reading a byte
    async with request.app.state.khana["upload_budget"].reserve(2 * declared):
        form = await read_multipart(request, limit, max_files=s.max_pages_per_batch)
        try:
            meta = validate_meta(office=p.office if p.via != "open" else (form.get("office") or "local"),
                                 court=form.get("court"), case_number=form.get("case_number"),
                                 document_type=form.get("document_type"), deadline=form.get("deadline"))
        except InvalidMetadata as exc:
            raise HTTPException(422, exc.one_line(persian=False) + " / " + (exc.message_fa or "")) from exc
        uploads = [Upload(name, data) for field, name, data in form.files if field in ("files", "file")]
        del form
        if not uploads:
            raise HTTPException(400, "a batch needs at least one file (field `files`) / دسته دست‌کم یک فایل لازم دارد")
        bmeta = BatchMeta(office=meta.office, court=meta.court, case_number=meta.case_number,
                          document_type=meta.document_type, deadline=meta.deadline)
        key = request.headers.get("idempotency-key")
        if key is not None and not (0 < len(key) <= 150):
            raise HTTPException(400, "Idempotency-Key must be 1-150 characters / کلید تکرار باید ۱ تا ۱۵۰ نویسه باشد")
        try:
            return await _handover(svc.submit_batch, uploads, uploads, bmeta,
                                           idempotency_key=f"{meta.office}:{key}" if key else None,
                                           actor=f"{p.role}:{p.name}", source="api" if p.via == "token" else "web")
        except IdempotencyConflict as exc:
            raise HTTPException(409, f"{exc} / {exc.message_fa}") from exc
        except (BadInput, KhanaBadInput) as exc:
            raise HTTPException(400, _bilingual(exc)) from exc
        except ObjectStoreError as exc:
            log.warning("upload refused, object store unavailable: %s", exc)
            raise HTTPException(503, "storage is unavailable; the batch was NOT accepted, retry later / "
                                     "انباره در دسترس نیست؛ دسته پذیرفته نشد، بعداً دوباره بفرستید",
                                headers={"Retry-After": "30"}) from exc
        except Unavailable as exc:  # the database: nothing accepted
            log.warning("upload refused: %s", exc)
            raise HTTPException(503, exc.one_line(), headers={"Retry-After": "30"}) from exc



@router.post("/api/v1/batches", status_code=202, tags=["station"],
             summary="Upload a filing (multipart: files, court, case_number, document_type, deadline)",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["files", "court"],
                 "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                                "court": {"type": "string"}, "case_number": {"type": "string"},
                                "document_type": {"type": "string"},
                                "deadline": {"type": "string", "description": "2026-12-01 or ۱۴۰۵/۰۹/۱۰"}}}}}}})
async def upload_batch(request: Request, p: Principal = Depends(require("station")),
                       svc: KhanaService = Depends(service)):
    sub = await _accept_upload(request, p, svc)
    return JSONResponse({"batch": sub.batch_id, "created": sub.created, "pages": len(sub.page_ids),
                         "priority": sub.priority, "status_url": f"/api/v1/batches/{sub.batch_id}"},
                        status_code=202)


async def _accept_rescan(request: Request, p: Principal, svc: KhanaService, batch_id: str, seq: int) -> Submitted:
    _visible_meta(svc, batch_id, p)
    limit = svc.rt.config.max_upload_bytes
    declared = declared_length(request, limit)
    async with request.app.state.khana["upload_budget"].reserve(2 * declared):
        form = await read_multipart(request, limit, max_files=1)
        files = [(name, data) for field, name, data in form.files if field in ("file", "files")]
        if len(files) != 1:
            raise HTTPException(400, "send exactly one file (field `file`) / دقیقاً یک فایل بفرستید")
        key = request.headers.get("idempotency-key")
        try:
            upload = Upload(*files[0])
            del files, form
            return await _handover(svc.rescan_page, [upload], batch_id, seq, upload,
                                           idempotency_key=f"rescan:{batch_id}:{key}" if key else None,
                                           actor=f"{p.role}:{p.name}")
        except LookupError:
            raise HTTPException(404, "no such page / چنین صفحه‌ای نیست") from None
        except NotRescannable as exc:
            raise HTTPException(409, f"{exc} / فقط صفحهٔ نگه‌داشته‌شده را می‌توان دوباره اسکن کرد") from exc
        except IdempotencyConflict as exc:
            raise HTTPException(409, f"{exc} / {exc.message_fa}") from exc
        except (BadInput, KhanaBadInput) as exc:
            raise HTTPException(400, _bilingual(exc)) from exc
        except ObjectStoreError as exc:
            raise HTTPException(503, "storage is unavailable; the rescan was NOT accepted, retry later / "
                                     "انباره در دسترس نیست؛ اسکن دوباره پذیرفته نشد", headers={"Retry-After": "30"}) from exc



@router.post("/api/v1/batches/{batch_id}/pages/{seq}/rescan", status_code=202, tags=["station"],
             summary="Replace a held page with a new scan (multipart: file)",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["file"],
                 "properties": {"file": {"type": "string", "format": "binary"}}}}}}})
async def rescan(batch_id: str, seq: int, request: Request, p: Principal = Depends(require("station")),
                 svc: KhanaService = Depends(service)):
    sub = await _accept_rescan(request, p, svc, batch_id, seq)
    return JSONResponse({"batch": batch_id, "page": seq, "created": sub.created, "page_id": sub.page_ids[0] if sub.page_ids else None,
                         "status_url": f"/api/v1/batches/{batch_id}"}, status_code=202)


# --- reading -----------------------------------------------------------------------------------------------------

@router.get("/api/v1/batches/{batch_id}", tags=["station"], summary="A filing's status and page reports")
def batch_status(batch_id: str, request: Request, p: Principal = Depends(require("station")),
                 svc: KhanaService = Depends(service)):
    from api import health

    return {**_status_body(_report(svc, batch_id, p)), "waiting": health.batch_waiting(request, batch_id)}


@router.get("/api/v1/batches/{batch_id}/pdf", tags=["station"], summary="The searchable PDF (passing pages)")
def batch_pdf(batch_id: str, p: Principal = Depends(require("station")), svc: KhanaService = Depends(service)):
    _visible_meta(svc, batch_id, p)
    pdf = svc.searchable_pdf(batch_id)
    if pdf is None:
        raise HTTPException(404, "no searchable PDF yet (no page has passed, or processing is not finished) / "
                                 "هنوز PDF آماده نیست")
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{batch_id}.pdf"', "Cache-Control": "no-store"})


@router.get("/api/v1/batches/{batch_id}/pages/{seq}/problems.png", tags=["station"],
            summary="A held page with its problems marked")
def problems(batch_id: str, seq: int, p: Principal = Depends(require("station", "qa")),
             svc: KhanaService = Depends(service)):
    _visible_meta(svc, batch_id, p)
    png = svc.problem_image(batch_id, seq)
    if png is None:
        raise HTTPException(404, "this page is not held (or not decided yet) / این صفحه نگه داشته نشده است")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, no-cache"})


def _thumbnail(png: bytes, width: int) -> bytes:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    h, w = img.shape[:2]
    if w > width:
        img = cv2.resize(img, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes()


@router.get("/api/v1/batches/{batch_id}/pages/{seq}/thumbnail.jpg", tags=["station"],
            summary="A small picture of a page after correction")
async def thumbnail(batch_id: str, seq: int, w: int = 320, p: Principal = Depends(require("station", "qa")),
                    svc: KhanaService = Depends(service)):
    await run_in_threadpool(_visible_meta, svc, batch_id, p)
    got = await run_in_threadpool(svc.page_image, batch_id, seq)
    if got is None:
        raise HTTPException(404, "no picture of this page yet / هنوز تصویری از این صفحه نیست")
    jpg = await run_in_threadpool(_thumbnail, got[1], max(64, min(w, 1200)))
    return Response(jpg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=600"})


# --- pages -------------------------------------------------------------------------------------------------------

@router.get("/station", include_in_schema=False)
def station_home(request: Request, p: Principal = Depends(require_web("station")),
                 svc: KhanaService = Depends(service)):
    recent = svc.batches_of(None if p.unrestricted else p.office, limit=8)
    return render(request, "station/upload.html", recent=recent, office=p.office or "local",
                  max_mib=svc.rt.config.max_upload_bytes // (1024 * 1024))


@router.post("/station/upload", include_in_schema=False)
async def station_upload(request: Request, p: Principal = Depends(require_web("station")),
                         svc: KhanaService = Depends(service)):
    scripted = request.headers.get("x-requested-with") == "khana"
    try:
        sub = await _accept_upload(request, p, svc)
    except HTTPException as exc:
        if scripted:
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return render(request, "station/upload.html", status_code=exc.status_code, error=exc.detail,
                      recent=svc.batches_of(None if p.unrestricted else p.office, limit=8), office=p.office or "local",
                      max_mib=svc.rt.config.max_upload_bytes // (1024 * 1024))
    url = f"/station/batches/{sub.batch_id}"
    if scripted:
        return JSONResponse({"redirect": url, "batch": sub.batch_id, "created": sub.created})
    return RedirectResponse(url, status_code=303)


@router.get("/station/filings", include_in_schema=False)
def station_filings(request: Request, p: Principal = Depends(require_web("station")),
                    svc: KhanaService = Depends(service)):
    return render(request, "station/filings.html", batches=svc.batches_of(None if p.unrestricted else p.office, 200))


def _batch_context(svc: KhanaService, batch_id: str, p: Principal) -> dict:
    meta = _visible_meta(svc, batch_id, p)
    pages = svc.pages_overview(batch_id)
    return {"b": meta, "pages": pages, "final": meta["status"] in FINAL,
            "held": [x for x in pages if x["decision"] == "hold"],
            "decided": sum(1 for x in pages if x["decision"])}


@router.get("/station/batches/{batch_id}", include_in_schema=False)
def station_batch(batch_id: str, request: Request, p: Principal = Depends(require_web("station")),
                  svc: KhanaService = Depends(service)):
    return render(request, "station/batch.html", **_batch_context(svc, batch_id, p))


@router.get("/station/batches/{batch_id}/pages", include_in_schema=False)
def station_batch_pages(batch_id: str, request: Request, p: Principal = Depends(require_web("station")),
                        svc: KhanaService = Depends(service)):
    """The live part of the batch page (htmx polls it every 2 s until the filing is decided)."""
    return render(request, "station/_pages.html", **_batch_context(svc, batch_id, p))


@router.post("/station/batches/{batch_id}/pages/{seq}/rescan", include_in_schema=False)
async def station_rescan(batch_id: str, seq: int, request: Request, p: Principal = Depends(require_web("station")),
                         svc: KhanaService = Depends(service)):
    scripted = request.headers.get("x-requested-with") == "khana"
    url = f"/station/batches/{batch_id}"
    try:
        await _accept_rescan(request, p, svc, batch_id, seq)
    except HTTPException as exc:
        if exc.status_code == 404:
            raise
        if scripted:
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return render(request, "station/batch.html", status_code=exc.status_code, error=exc.detail,
                      **_batch_context(svc, batch_id, p))
    if scripted:
        return JSONResponse({"redirect": url})
    return RedirectResponse(url, status_code=303)
