"""QA reviewers: the held-page queue, the three actions, office quality statistics; API and pages.

    GET  /api/v1/review                                   held pages, nearest deadline first (?office= &reason=)
    GET  /api/v1/review/{batch}/pages/{n}                 one page: measures, reasons, OCR text and confidence
    GET  /api/v1/review/{batch}/pages/{n}/corrected.png   the corrected page image
    GET  /api/v1/review/{batch}/pages/{n}/problems.png    the page with its problem regions marked
    POST /api/v1/review/{batch}/pages/{n}/override        {"reason": "..."}: the page counts as passing
    POST /api/v1/review/{batch}/pages/{n}/request-rescan  {"reason": "..."}: the station is asked to rescan it
    POST /api/v1/review/{batch}/reject                    {"reason": "..."}: the filing is refused, never forwarded
    GET  /api/v1/review/stats?period=1405-09              office quality figures of a Solar Hijri month (JSON)
    GET  /api/v1/review/stats.csv?period=1405-09          the same as CSV

    GET  /qa                       the queue (filters: office, reason)
    GET  /qa/{batch}/pages/{n}     one held page: images side by side, measures, OCR text, the action forms
    GET  /qa/stats                 the office chart, period picker, CSV link

Every action needs a written reason (an empty one is refused: 422) and is audited. Roles qa and admin; anyone
else gets 404.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, StringConstraints

from api.auth import Principal, require, require_web
from api.deps import runtime
from api.web import render
from core.errors import BadInput, KhanaError, MissingDependency, Unavailable
from pipeline import review
from pipeline.runtime import Runtime

log = logging.getLogger("khana.api.review")
router = APIRouter()

ROLES = ("qa", "admin")
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=review.MAX_REASON_CHARS)]

MONTHS = [("Farvardin", "فروردین"), ("Ordibehesht", "اردیبهشت"), ("Khordad", "خرداد"), ("Tir", "تیر"),
          ("Mordad", "مرداد"), ("Shahrivar", "شهریور"), ("Mehr", "مهر"), ("Aban", "آبان"), ("Azar", "آذر"),
          ("Dey", "دی"), ("Bahman", "بهمن"), ("Esfand", "اسفند")]


class ReasonBody(BaseModel):
    reason: Reason


def actor(p: Principal) -> str:
    return p.name if p.via != "open" else "first-try"


def _bilingual(exc: KhanaError) -> str:
    return exc.one_line()  # "Persian / English"


def _http(exc: Exception) -> HTTPException:
    if isinstance(exc, review.ReviewNotFound):
        return HTTPException(404, "not found / یافت نشد")
    if isinstance(exc, (review.NotAwaitingReview, review.CannotOverride)):
        return HTTPException(409, _bilingual(exc))
    if isinstance(exc, BadInput):
        return HTTPException(422, _bilingual(exc))
    if isinstance(exc, (MissingDependency, Unavailable)):  # e.g. no Tesseract on this server to read the page
        log.error("review action failed: %s", exc)
        return HTTPException(503, _bilingual(exc))
    raise exc


async def _call(fn, *args):
    try:
        return await run_in_threadpool(fn, *args)
    except (KhanaError, LookupError) as exc:
        raise _http(exc) from None


def _messages(codes: list[str]) -> list[dict]:
    from quality import reason_message

    return [{"code": c, "fa": reason_message(c, "fa"), "en": reason_message(c, "en")} for c in codes]


def _links(batch: str, page: int, corrected: bool, problems: bool) -> dict:
    base = f"/api/v1/review/{batch}/pages/{page}"
    return {"self": base, "page": f"/qa/{batch}/pages/{page}",
            "corrected": f"{base}/corrected.png" if corrected else None,
            "problems": f"{base}/problems.png" if problems else None,
            "override": f"{base}/override", "request_rescan": f"{base}/request-rescan",
            "reject": f"/api/v1/review/{batch}/reject"}


def _item(h: review.HeldPage) -> dict:
    d = h.as_dict()
    d["messages"] = _messages(h.reasons)
    d["links"] = _links(h.batch, h.page, h.has_corrected_image, h.has_problems_image)
    return d


# --- API ------------------------------------------------------------------------------------------------
@router.get("/api/v1/review")
async def list_held(rt: Runtime = Depends(runtime), p: Principal = Depends(require(*ROLES)),
                    office: str | None = None, reason: str | None = None,
                    rescan_requested: bool | None = None, limit: int = Query(500, ge=1, le=5000)) -> list[dict]:
    """Held pages of held filings, nearest deadline first (no deadline last), then oldest."""
    rows = await run_in_threadpool(review.held_pages, rt, office=office or None, reason=reason or None,
                                   rescan_requested=rescan_requested, limit=limit)
    return [_item(h) for h in rows]


@router.get("/api/v1/review/stats")
async def stats_json(rt: Runtime = Depends(runtime), p: Principal = Depends(require(*ROLES)),
                     period: str | None = None, office: str | None = None) -> dict:
    per = await _call(_period, period)
    rows = await run_in_threadpool(review.office_stats, rt, per, office or None)
    return {"period": str(per), "start": per.start().isoformat(), "end": per.end().isoformat(),
            "reasons": review.reasons_in(rows), "offices": [r.as_dict() for r in rows]}


@router.get("/api/v1/review/stats.csv")
async def stats_csv(rt: Runtime = Depends(runtime), p: Principal = Depends(require(*ROLES)),
                    period: str | None = None, office: str | None = None) -> Response:
    per = await _call(_period, period)
    rows = await run_in_threadpool(review.office_stats, rt, per, office or None)
    body = "\ufeff" + review.stats_csv(rows)  # the BOM makes spreadsheet programs read UTF-8 (Persian names)
    return Response(body.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="khana-office-quality-{per}.csv"'})


def _period(text: str | None) -> review.Period:
    return review.Period.parse(text) if text else review.Period.current()


@router.get("/api/v1/review/{batch}/pages/{n}")
async def page_json(batch: str, n: int, rt: Runtime = Depends(runtime), p: Principal = Depends(require(*ROLES))) -> dict:
    d = await _call(review.page_detail, rt, batch, n)
    d["messages"] = _messages(d["reasons"] or d["held_reasons"])
    d["links"] = _links(batch, n, d["has_corrected_image"], d["has_problems_image"])
    return d


@router.get("/api/v1/review/{batch}/pages/{n}/{kind}.png")
async def page_png(batch: str, n: int, kind: str, rt: Runtime = Depends(runtime),
                   p: Principal = Depends(require(*ROLES))) -> Response:
    data = await _call(review.page_image, rt, batch, n, kind)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


@router.post("/api/v1/review/{batch}/pages/{n}/override")
async def override_api(batch: str, n: int, body: ReasonBody, rt: Runtime = Depends(runtime),
                       p: Principal = Depends(require(*ROLES))) -> dict:
    res = await _call(review.override, rt, batch, n, body.reason, actor(p))
    return {**res.as_dict(), "page_state": await _call(review.page_detail, rt, batch, n)}


@router.post("/api/v1/review/{batch}/pages/{n}/request-rescan")
async def rescan_api(batch: str, n: int, body: ReasonBody, rt: Runtime = Depends(runtime),
                     p: Principal = Depends(require(*ROLES))) -> dict:
    return (await _call(review.request_rescan, rt, batch, n, body.reason, actor(p))).as_dict()


@router.post("/api/v1/review/{batch}/reject")
async def reject_api(batch: str, body: ReasonBody, rt: Runtime = Depends(runtime),
                     p: Principal = Depends(require(*ROLES))) -> dict:
    return (await _call(review.reject, rt, batch, body.reason, actor(p))).as_dict()


# --- pages ------------------------------------------------------------------------------------------------
_FA_DIGITS = str.maketrans("0123456789.", "۰۱۲۳۴۵۶۷۸۹٫")


def _page_helpers(request: Request) -> dict:
    """Number formatting for the QA pages: Persian digits and decimal separator in Persian."""
    from api.web import page_lang

    lang = page_lang(request)

    def num_text(v) -> str:
        return str(v).translate(_FA_DIGITS) if lang == "fa" else str(v)

    def num(v, places: int = 2) -> str:
        return "—" if v is None else num_text(f"{float(v):.{places}f}")

    def percent(share: float | None, places: int = 1) -> str:
        if share is None:
            return "—"
        text = f"{share * 100:.{places}f}".rstrip("0").rstrip(".")
        return num_text(text) + ("٪" if lang == "fa" else "%")

    def warning_text(w: str) -> str:
        if w in WARNINGS:
            en, fa = WARNINGS[w]
            return fa if lang == "fa" else en
        from quality import reason_message

        try:  # an image fault a good read overrode (the page passed): its reason, marked as read well
            msg = reason_message(w, lang).strip().rstrip(".")
        except (KeyError, ValueError):
            return w
        return f"خوب خوانده شد، هرچند: {msg}" if lang == "fa" else f"read well, although: {msg}"

    return {"num": num, "num_text": num_text, "percent": percent, "short_reason": lambda c: _short_reason(c, lang),
            "warning_text": warning_text, "today": datetime.now(review.IRAN).date()}


WARNINGS = {
    "qa_override": ("passed by a QA reviewer", "پذیرفته به تشخیص کارشناس کنترل کیفیت"),
    "case_number_mismatch": ("the case number in the text differs from the filing's",
                             "شمارهٔ پرونده در متن با شمارهٔ اعلام‌شده یکی نیست"),
    "photo_flattened": ("a photo of the sheet, flattened", "عکس برگه بود و صاف شد"),
    "handwritten": ("handwritten: judged by its image; the text layer has only the words OCR was sure of",
                    "دست‌نویس: با تصویرش سنجیده شد؛ لایهٔ متنی فقط واژه‌هایی را دارد که OCR از آن‌ها مطمئن بود"),
}


def month_name(per: review.Period, lang: str) -> str:
    en, fa = MONTHS[per.month - 1]
    return f"{fa} {per.year}".translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")) if lang == "fa" else f"{en} {per.year}"


@router.get("/qa")
async def queue_page(request: Request, rt: Runtime = Depends(runtime), p: Principal = Depends(require_web(*ROLES)),
                     office: str | None = None, reason: str | None = None, done: str | None = None,
                     batch: str | None = None, page: int | None = None, status: str | None = None,
                     case: str | None = None):
    rows = await run_in_threadpool(review.held_pages, rt, office=office or None, reason=reason or None, limit=500)
    filters = await run_in_threadpool(review.queue_filters, rt)
    return render(request, "qa/queue.html", principal=p, **_page_helpers(request), rows=rows, filters=filters, office=office or "",
                  reason=reason or "", done=done, done_batch=batch, done_page=page, done_status=status,
                  done_case=case or (batch or "")[:8])


@router.get("/qa/stats")
async def stats_page(request: Request, rt: Runtime = Depends(runtime), p: Principal = Depends(require_web(*ROLES)),
                     period: str | None = None):
    from api.web import page_lang

    lang = page_lang(request)
    error = None
    try:
        per = _period(period)
    except BadInput as exc:
        per, error = review.Period.current(), exc
    rows = await run_in_threadpool(review.office_stats, rt, per)
    periods = await run_in_threadpool(review.periods_with_data, rt)
    if per not in periods:
        periods = sorted([*periods, per], key=lambda x: (x.year, x.month), reverse=True)
    reasons = review.reasons_in(rows)
    from quality import reason_message

    chart = {
        "lang": lang,
        "dir": "rtl" if lang == "fa" else "ltr",
        "offices": [r.office_name or r.office for r in rows],
        "title": ("سهم صفحه‌های نگه‌داشته به تفکیک دلیل" if lang == "fa" else "Share of pages held, by reason"),
        "y_label": ("درصد صفحه‌های دریافتی" if lang == "fa" else "% of pages received"),
        "series": [{"code": c, "label": _short_reason(c, lang), "help": reason_message(c, lang),
                    "values": [round(r.share(c) * 100, 2) for r in rows]} for c in reasons],
        "pages": [r.pages_received for r in rows],
    }
    return render(request, "qa/stats.html", principal=p, **_page_helpers(request), period=per, periods=periods, rows=rows, chart=chart,
                  reasons=reasons, error=error, month_name=lambda x: month_name(x, lang),
                  csv_url="/api/v1/review/stats.csv?" + urlencode({"period": str(per)}),
                  duration=lambda m: _duration(m, lang))


# short labels for the chart legend (the full messages are sentences)
SHORT_REASONS = {
    "blank": ("Blank", "خالی"), "cut_off": ("Cut off", "بریده"), "blurred": ("Blurred", "تار"),
    "noisy": ("Noisy", "پرنویز"), "too_dark": ("Too dark", "تیره"), "faded": ("Faded", "کم‌رنگ"),
    "low_resolution": ("Low resolution", "وضوح کم"), "uneven_lighting": ("Uneven lighting", "نور ناهمگون"),
    "skew_unrecoverable": ("Skew", "کجی"), "low_ocr_confidence": ("OCR unsure", "خوانش نامطمئن"),
    "unreadable_file": ("Unreadable file", "فایل ناخوانا"), "ocr_timeout": ("OCR timeout", "پایان مهلت خوانش"),
    "processing_error": ("Processing error", "خطای پردازش"),
}


def _short_reason(code: str, lang: str) -> str:
    en, fa = SHORT_REASONS.get(code, (code.replace("_", " ").capitalize(), code))
    return fa if lang == "fa" else en


def _duration(minutes: float | None, lang: str) -> str:
    if minutes is None:
        return "—"
    total = int(round(minutes))
    d, rem = divmod(total, 24 * 60)
    h, m = divmod(rem, 60)
    units = (("روز", "d"), ("ساعت", "h"), ("دقیقه", "min"))
    parts = [(v, u) for v, u in zip((d, h, m), units) if v] or [(0, units[2])]
    if lang == "fa":
        return " و ".join(f"{v} {u[0]}" for v, u in parts).translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    return " ".join(f"{v} {u[1]}" for v, u in parts)


@router.get("/qa/{batch}/pages/{n}")
async def review_page(request: Request, batch: str, n: int, rt: Runtime = Depends(runtime),
                      p: Principal = Depends(require_web(*ROLES))):
    try:
        d = await run_in_threadpool(review.page_detail, rt, batch, n)
    except review.ReviewNotFound:
        raise HTTPException(404, "not found / یافت نشد") from None
    return render(request, "qa/page.html", principal=p, d=d, error=None, measures=_measure_rows(d), draft="",
                  draft_for=None, **_page_helpers(request))


def _measure_rows(d: dict) -> list[tuple[str, str, str]]:
    """(English, Persian, value) of the measures QA reads, in a fixed order."""
    m = d.get("measures") or {}
    rows = []

    def add(key, en, fa, fmt="{:.2f}"):
        v = m.get(key)
        if v is None:
            return
        try:
            rows.append((en, fa, fmt.format(v)))
        except (TypeError, ValueError):
            rows.append((en, fa, str(v)))

    if d.get("legibility") is not None:
        rows.append(("Legibility (0-1)", "خوانایی (۰ تا ۱)", f"{d['legibility']:.2f}"))
    if d.get("ocr_confidence") is not None:
        rows.append(("OCR confidence (0-100)", "اطمینان خوانش (۰ تا ۱۰۰)", f"{d['ocr_confidence']:.1f}"))
    add("sharpness", "Sharpness (0-1)", "وضوح لبه‌ها (۰ تا ۱)")
    add("blur_rel", "Blur relative to letter size", "تاری نسبت به اندازهٔ حروف")
    add("noise", "Noise", "نویز")
    add("contrast", "Contrast (0-1)", "کنتراست (۰ تا ۱)")
    add("darkness", "Darkness (0-1)", "تیرگی (۰ تا ۱)")
    add("uneven_lighting", "Uneven lighting (0-1)", "ناهمگونی نور (۰ تا ۱)")
    add("dpi", "Resolution (dpi)", "وضوح (نقطه در اینچ)", "{:.0f}")
    add("char_height_px", "Letter height (px)", "ارتفاع حروف (پیکسل)", "{:.0f}")
    add("text_coverage", "Ink coverage", "پوشش جوهر", "{:.3f}")
    add("text_lines", "Text lines", "سطرهای متن", "{:.0f}")
    add("cut_off_fraction", "Text touching an edge", "متن چسبیده به لبه", "{:.2f}")
    if d.get("skew_degrees") is not None:
        rows.append(("Skew corrected (°)", "کجی اصلاح‌شده (درجه)", f"{d['skew_degrees']:.1f}".replace("-0.0", "0.0")))
    if d.get("rotation"):
        rows.append(("Rotation applied (°)", "چرخش اعمال‌شده (درجه)", str(d["rotation"])))
    return rows


async def _page_action(request: Request, rt: Runtime, p: Principal, batch: str, n: int, action: str, fn,
                       reason: str | None, *args):
    try:
        res = await run_in_threadpool(fn, rt, batch, *args, reason or "", actor(p))
    except review.ReviewNotFound:
        raise HTTPException(404, "not found / یافت نشد") from None
    except KhanaError as exc:
        d = await run_in_threadpool(review.page_detail, rt, batch, n)
        code = 422 if isinstance(exc, BadInput) else 503 if isinstance(exc, (MissingDependency, Unavailable)) else 409
        return render(request, "qa/page.html", status_code=code, principal=p,
                      d=d, error=exc, measures=_measure_rows(d), draft=reason or "", draft_for=action,
                      **_page_helpers(request))
    q = {"done": res.action, "batch": batch, "status": res.batch_status}
    if res.page is not None:
        q["page"] = res.page
    case = await run_in_threadpool(review.case_number, rt, batch)
    if case:
        q["case"] = case
    return RedirectResponse("/qa?" + urlencode(q), status_code=303)


@router.post("/qa/{batch}/pages/{n}/override")
async def override_form(request: Request, batch: str, n: int, reason: str | None = Form(None),
                        rt: Runtime = Depends(runtime), p: Principal = Depends(require_web(*ROLES))):
    return await _page_action(request, rt, p, batch, n, "override", review.override, reason, n)


@router.post("/qa/{batch}/pages/{n}/request-rescan")
async def rescan_form(request: Request, batch: str, n: int, reason: str | None = Form(None),
                      rt: Runtime = Depends(runtime), p: Principal = Depends(require_web(*ROLES))):
    return await _page_action(request, rt, p, batch, n, "request_rescan", review.request_rescan, reason, n)


@router.post("/qa/{batch}/reject")
async def reject_form(request: Request, batch: str, reason: str | None = Form(None), page: int = Form(1),
                      rt: Runtime = Depends(runtime), p: Principal = Depends(require_web(*ROLES))):
    return await _page_action(request, rt, p, batch, page, "reject", review.reject, reason)
