"""Court clerks: the inbox of forwarded filings, search, and retrieval (API and web pages).

    GET /api/v1/court/filings?q=...&order=newest|urgent&limit=&offset=
                                                   the clerk's court's forwarded filings: newest first (or the
                                                   nearest deadline first with order=urgent); with q, those
                                                   matching a case number or Persian words, best first, with
                                                   highlighted snippets
    GET /api/v1/court/filings/{batch}              one filing: metadata and every page's OCR text
    GET /api/v1/court/filings/{batch}/pdf          the searchable PDF, shown in the browser's viewer
                                                   (?download=1: as a download)
    GET /api/v1/court/filings/{batch}/pages/{n}.png    page n's corrected image

    GET /court                                     inbox page (most urgent deadline first, then newest)
    GET /court/search?q=...                        search page
    GET /court/filings/{batch}                     a filing: open / download the PDF, page images, text

Only clerks (`require("clerk")` / `require_web("clerk")`), and only their own court's forwarded
filings: anything else is 404, never the document. Every retrieval (search, filing view, PDF,
page image) is written to the audit log before a byte is sent.
"""
from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.auth import Principal, require, require_web
from api.deps import runtime
from api.web import render
from pipeline import court as court_mod
from pipeline.runtime import Runtime

router = APIRouter()
NOT_FOUND = "no such filing / چنین پرونده‌ای نیست"
PAGE_SIZE = 50


class _NoCourt(Exception):
    pass


def _court(p: Principal) -> str | None:
    """The court whose filings `p` sees; None = every court (first-try mode on this machine only)."""
    if p.unrestricted:
        return None
    if not p.court:
        raise _NoCourt()
    return p.court


def _actor(p: Principal) -> str:
    return p.name if p.name.startswith(f"{p.role}:") else f"{p.role}:{p.name}"


def _links(batch: str) -> dict:
    base = f"/api/v1/court/filings/{batch}"
    return {"url": base, "pdf": f"{base}/pdf", "download": f"{base}/pdf?download=1", "page": f"/court/filings/{batch}"}


# --- API ----------------------------------------------------------------------------------------
@router.get("/api/v1/court/filings", tags=["court"], summary="The court's forwarded filings; with q, search them")
def filings(q: str | None = Query(None, max_length=200, description="case number or Persian words"),
            order: str = Query("newest", pattern="^(newest|urgent)$"), limit: int = Query(PAGE_SIZE, ge=1, le=200),
            offset: int = Query(0, ge=0), p: Principal = Depends(require("clerk")), rt: Runtime = Depends(runtime)):
    try:
        court = _court(p)
    except _NoCourt:
        return []
    if q and q.strip():
        found = court_mod.search(rt.db, court, q, limit=limit, actor=_actor(p))
    else:
        found = court_mod.inbox(rt.db, court, order=order, limit=limit, offset=offset)
    return [{**f.as_dict(), **_links(f.batch)} for f in found]


@router.get("/api/v1/court/filings/{batch_id}", tags=["court"], summary="One forwarded filing with its pages' text")
def filing(batch_id: str, p: Principal = Depends(require("clerk")), rt: Runtime = Depends(runtime)):
    f, pages = _filing(rt, p, batch_id)
    return {**f.as_dict(), **_links(f.batch),
            "page_list": [{"page": pg.seq, "text": pg.text,
                           "image": f"/api/v1/court/filings/{f.batch}/pages/{pg.seq}.png" if pg.has_image else None}
                          for pg in pages]}


def _filing(rt: Runtime, p: Principal, batch_id: str):
    try:
        return court_mod.filing(rt.db, _court(p), batch_id, actor=_actor(p))
    except (court_mod.NotFound, _NoCourt):
        raise HTTPException(404, NOT_FOUND) from None


def _document(rt: Runtime, p: Principal, batch_id: str, page: int | None, download: bool) -> Response:
    disposition = "attachment" if download else "inline"
    try:
        doc = court_mod.open_document(rt, _court(p), batch_id, _actor(p), page=page, disposition=disposition)
    except (court_mod.NotFound, _NoCourt):
        raise HTTPException(404, NOT_FOUND) from None
    return Response(doc.data, media_type=doc.media_type, headers={
        "Content-Disposition": f"{disposition}; filename=\"{doc.filename}\"; filename*=UTF-8''{quote(doc.filename)}",
        "Cache-Control": "private, no-store"})


@router.get("/api/v1/court/filings/{batch_id}/pdf", tags=["court"], summary="The filing's searchable PDF")
async def filing_pdf(batch_id: str, download: bool = False, p: Principal = Depends(require("clerk")),
                     rt: Runtime = Depends(runtime)):
    return await run_in_threadpool(_document, rt, p, batch_id, None, download)


@router.get("/api/v1/court/filings/{batch_id}/pages/{seq}.png", tags=["court"], summary="A page's corrected image")
async def filing_page(batch_id: str, seq: int, download: bool = False, p: Principal = Depends(require("clerk")),
                      rt: Runtime = Depends(runtime)):
    return await run_in_threadpool(_document, rt, p, batch_id, seq, download)


# --- pages ----------------------------------------------------------------------------------------
def _deadline_class(f) -> str:
    from datetime import date

    if f.deadline is None:
        return ""
    days = (f.deadline - date.today()).days
    return "overdue" if days < 0 else "urgent" if days <= 3 else ""


@router.get("/court", include_in_schema=False)
def inbox_page(request: Request, page: int = Query(1, ge=1), p: Principal = Depends(require_web("clerk")),
               rt: Runtime = Depends(runtime)):
    try:
        court = _court(p)
    except _NoCourt:
        raise HTTPException(404) from None
    items = court_mod.inbox(rt.db, court, order="urgent", limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    total = court_mod.count(rt.db, court)
    return render(request, "court/inbox.html", principal=p, filings=items, total=total, page=page,
                  pages=max(1, -(-total // PAGE_SIZE)), deadline_class=_deadline_class)


@router.get("/court/search", include_in_schema=False)
def search_page(request: Request, q: str = Query("", max_length=200), p: Principal = Depends(require_web("clerk")),
                rt: Runtime = Depends(runtime)):
    try:
        court = _court(p)
    except _NoCourt:
        raise HTTPException(404) from None
    found = court_mod.search(rt.db, court, q, limit=PAGE_SIZE, actor=_actor(p)) if q.strip() else None
    return render(request, "court/search.html", principal=p, q=q, found=found, limit=PAGE_SIZE,
                  deadline_class=_deadline_class)


@router.get("/court/filings/{batch_id}", include_in_schema=False)
def filing_page_html(batch_id: str, request: Request, q: str = Query("", max_length=200),
                     p: Principal = Depends(require_web("clerk")), rt: Runtime = Depends(runtime)):
    from ocr.search_text import highlight, query_terms

    f, pages = _filing(rt, p, batch_id)
    terms = query_terms(q) if q else []
    marked = {pg.seq: highlight(pg.text, terms, context=10_000) for pg in pages} if terms else {}
    return render(request, "court/filing.html", principal=p, f=f, pages=pages, q=q, marked=marked,
                  doc_links=_links(f.batch), deadline_class=_deadline_class)
