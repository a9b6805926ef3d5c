"""The web shell: templates, the fa/en switch, Persian digits and Solar Hijri dates, the 404/login handlers.

In a template (every page extends ``base.html``)::

    {{ tr("Upload", "بارگذاری") }}       the text in the page's language (bilingual pairs inline)
    {{ csrf_input() }}                  inside every POST form
    {{ fa_digits(n) }}                  Persian digits when the page is Persian
    {{ jdate(d) }} / {{ jdate(dt, time=True) }}   ۱۴۰۵/۰۹/۱۰ (Solar Hijri) in fa, 2026-12-01 in en
    {{ reason_text(code) }}             a reason code's message in the page's language
    {{ ident(x) }}                      an identifier (office/court code, case number) kept left to right
    {{ reasons_sentence(codes) }}       several reasons as one sentence in the page's language

`render(request, "x.html", **ctx)` fills ``lang``, ``dir``, ``principal``, ``csrf_token``, ``open_mode`` and the helpers.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import LANG_COOKIE, LoginRequired, login_url, open_mode

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def nav_current(links: list[tuple[str, str]], path: str) -> str | None:
    """The one navigation link of the page at `path`: the longest link that is the path or a folder of it
    (on /qa/stats that is "Statistics", not also "Review queue"). The station's home is matched exactly."""
    hits = [href for href, _ in links if path == href or (href != "/station" and path.startswith(href.rstrip("/") + "/"))]
    return max(hits, key=len, default=None)


templates.env.globals["nav_current"] = nav_current
STATIC_DIR = HERE / "static"

# the navigation of each role: (path, English, Persian); one line per link
NAV: dict[str, list[tuple[str, str, str]]] = {
    "station": [("/station", "Upload", "بارگذاری"), ("/station/filings", "Filings", "پرونده‌ها")],
    "qa": [("/qa", "Review queue", "صف بازبینی"), ("/qa/stats", "Statistics", "آمار")],
    "clerk": [("/court", "Inbox", "صندوق ورودی"), ("/court/search", "Search", "جست‌وجو")],
    "admin": [("/admin/accounts", "Accounts", "حساب‌ها")],
}
ROLE_NAMES = {"station": ("Station", "ایستگاه"), "qa": ("Quality review", "کنترل کیفیت"),
              "clerk": ("Court clerk", "دفتر دادگاه"), "admin": ("Administrator", "مدیر سامانه")}
STATUS_NAMES = {"received": ("Received", "دریافت شد"), "processing": ("Processing", "در حال پردازش"),
                "held": ("Held: rescan needed", "نگه‌داشته: اسکن دوباره لازم"), "passed": ("Passed", "پذیرفته"),
                "forwarded": ("Forwarded to the court", "ارسال‌شده به دادگاه"), "failed": ("Failed", "ناموفق"),
                "rejected": ("Rejected", "ردشده")}

_FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
DISPLAY_TZ = ZoneInfo("Asia/Tehran")  # dates and times on the pages are Iran's


def page_lang(request: Request) -> str:
    q = request.query_params.get("lang")
    if q in ("fa", "en"):
        return q
    return "en" if request.cookies.get(LANG_COOKIE) == "en" else "fa"


def to_fa_digits(x) -> str:
    return str(x).translate(_FA)


def _local(d):
    if isinstance(d, str):
        try:
            d = datetime.fromisoformat(d) if "T" in d or " " in d else date.fromisoformat(d)
        except ValueError:
            return d
    if isinstance(d, datetime):
        if d.tzinfo is None:
            d = d.replace(tzinfo=timezone.utc)
        d = d.astimezone(DISPLAY_TZ)
    return d


def format_date(d, lang: str, time: bool = False) -> str:
    if d is None or d == "":
        return ""
    d = _local(d)
    if isinstance(d, str):
        return d
    hm = f" {d:%H:%M}" if time and isinstance(d, datetime) else ""
    if lang == "fa":
        import jdatetime

        j = jdatetime.date.fromgregorian(date=d.date() if isinstance(d, datetime) else d)
        return to_fa_digits(f"{j.year:04d}/{j.month:02d}/{j.day:02d}{hm}")
    day = d.date() if isinstance(d, datetime) else d
    return f"{day.isoformat()}{hm}"


def helpers(request: Request, lang: str) -> dict:
    from quality import reason_message

    csrf = getattr(request.state, "csrf_token", None) or request.scope.get("state", {}).get("csrf_token", "")

    def tr(en: str, fa: str) -> str:
        return fa if lang == "fa" else en

    def csrf_input() -> Markup:
        return Markup(f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">')

    def fa_digits(x) -> str:
        return to_fa_digits(x) if lang == "fa" else str(x)

    def jdate(d, time: bool = False) -> str:
        return format_date(d, lang, time)

    def ident(x) -> Markup:
        """An office/court code or another identifier: kept left to right; Persian digits only when it has no
        Latin letters (tehran-civil-12 stays as it is, 11-2301 becomes ۱۱-۲۳۰۱)."""
        if x is None or x == "":
            return Markup("—")
        text = str(x)
        if lang == "fa" and not any("a" <= c.lower() <= "z" for c in text):
            text = to_fa_digits(text)
        return Markup(f'<bdi dir="ltr">{escape(text)}</bdi>')

    def reasons_sentence(codes) -> str:
        """Several reasons as one sentence: "blurred; faded." / «تار است؛ کم‌رنگ است.»"""
        parts = [reason_text(c).strip().rstrip(".") for c in codes]
        return ("؛ " if lang == "fa" else "; ").join(parts) + ("." if parts else "")

    def reason_text(code: str) -> str:
        try:
            return reason_message(code, lang)
        except (KeyError, ValueError):
            return code

    def nav(principal) -> list[tuple[str, str]]:
        if principal is None:
            return []
        roles = ["station", "qa", "clerk"] if principal.via == "open" else [principal.role]
        return [(path, tr(en, fa)) for r in roles for path, en, fa in NAV.get(r, [])]

    def role_name(role: str) -> str:
        en, fa = ROLE_NAMES.get(role, (role, role))
        return tr(en, fa)

    def status_name(status: str) -> str:
        en, fa = STATUS_NAMES.get(status, (status, status))
        return tr(en, fa)

    return {"ident": ident, "reasons_sentence": reasons_sentence, "nav": nav, "role_name": role_name, "status_name": status_name, "tr": tr, "csrf_input": csrf_input, "fa_digits": fa_digits, "jdate": jdate, "reason_text": reason_text,
            "csrf_token": csrf}


def render(request: Request, name: str, status_code: int = 200, **ctx):
    """A page from api/templates with the shell's context (language, direction, principal, CSRF, helpers)."""
    lang = page_lang(request)
    principal = ctx.pop("principal", None) or getattr(request.state, "principal", None)
    try:
        first_try = open_mode(request) if principal is None or principal.via == "open" else False
    except Exception:  # noqa: BLE001 - no app state (error pages very early): no banner
        first_try = False
    context = {"lang": lang, "dir": "rtl" if lang == "fa" else "ltr", "principal": principal,
               "open_mode": first_try, "path": request.url.path,
               "path_qs": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
               "switch_url": _switch_url(request, "en" if lang == "fa" else "fa"),
               **helpers(request, lang), **ctx}
    resp = templates.TemplateResponse(request, name, context, status_code=status_code)
    if request.query_params.get("lang") in ("fa", "en"):
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="lax",
                        secure=request.app.state.web.cookie_secure)
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _switch_url(request: Request, to: str) -> str:
    u = request.url.include_query_params(lang=to)
    return u.path + "?" + u.query


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and request.url.path not in ("/healthz", "/openapi.json")


def install_handlers(app) -> None:
    """The login redirect and the HTML error pages (API paths keep JSON errors)."""

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired):
        return RedirectResponse(login_url(exc.next_url), status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if wants_html(request) and exc.status_code in (400, 404, 405, 409, 413, 422, 429, 503):
            return render(request, "error.html", status_code=exc.status_code, status=exc.status_code,
                          detail=exc.detail if exc.status_code != 404 else None)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


__all__ = ["templates", "render", "helpers", "page_lang", "format_date", "to_fa_digits", "install_handlers",
           "HTTPException", "STATIC_DIR"]
