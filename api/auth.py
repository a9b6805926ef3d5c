"""Who is calling: bearer tokens, web sessions, the first-try mode; role checks; CSRF; security headers.

Use in a route::

    @router.get("/api/v1/review")
    def review(p: Principal = Depends(require("qa", "admin"))): ...

    @router.get("/qa")
    def qa_page(request: Request, p: Principal = Depends(require_web("qa"))): ...

- `require(*roles)`: no or bad credentials -> 401; a principal whose role is not listed -> 404 (never reveal that
  a thing exists). `admin` is not implied: list it where it belongs.
- `require_web(*roles)`: the same for HTML pages; without a session -> 303 to ``/login?next=...``; wrong role -> 404.
- Credentials: ``Authorization: Bearer <token>`` (database tokens, or KHANA_API_TOKENS for a first start: those are
  station tokens of the named office) or the ``khana_session`` cookie of a web login.
- First-try mode (``via == "open"``): the server listens on loopback, no account and no KHANA_API_TOKENS exist, and
  the request comes from loopback. Then any station, qa or clerk route is reachable without credentials (never an
  admin route); the principal's ``office`` and ``court`` are None, meaning *everything on this machine*. Pages show a
  banner. Code that filters by ``principal.office`` / ``principal.court`` must treat None as "no restriction" only
  when ``principal.via == "open"`` (`Principal.unrestricted`).
- CSRF: `CsrfMiddleware` checks every unsafe request (POST, PUT, PATCH, DELETE) that does not carry a bearer token:
  a cross-site ``Origin`` is refused, and a request carrying the session cookie (or any unsafe request outside
  ``/api/``) needs the ``khana_csrf`` cookie's value in the ``X-CSRF-Token`` header, a ``csrf_token`` form field
  (url-encoded forms) or a ``csrf_token`` query parameter (multipart forms without script). Templates put it in every
  form with ``{{ csrf_input() }}``; htmx sends the header (base.html sets ``hx-headers``).
"""
from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.accounts import Accounts

SESSION_COOKIE = "khana_session"
CSRF_COOKIE = "khana_csrf"
LANG_COOKIE = "khana_lang"
ROLES = ("station", "clerk", "qa", "admin")


@dataclass(frozen=True)
class Principal:
    role: str
    office: str | None
    court: str | None
    name: str
    via: str  # "token" | "session" | "open"

    @property
    def unrestricted(self) -> bool:
        """First-try mode: sees every office's and every court's filings on this machine."""
        return self.via == "open"

    def sees_office(self, office: str | None) -> bool:
        return self.unrestricted or (self.office is not None and self.office == office)

    def sees_court(self, court: str | None) -> bool:
        return self.unrestricted or (self.court is not None and self.court == court)


@dataclass
class WebConfig:
    """What the web layer needs, handed down by `create_app` (no environment reads below it)."""

    accounts: Accounts
    allow_open: bool = False  # the server listens on loopback: the first-try mode may apply
    env_tokens: dict[str, str] = field(default_factory=dict)  # KHANA_API_TOKENS: token -> office
    cookie_secure: bool = True
    session_hours: float = 12.0
    login_max_failures: int = 5
    login_window_s: float = 300.0


class LoginRequired(Exception):
    """Raised by `require_web` without a session: answered with a redirect to the login page."""

    def __init__(self, next_url: str):
        self.next_url = next_url


def _config(request: Request) -> WebConfig:
    return request.app.state.web


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def open_mode(request: Request) -> bool:
    """True when the first-try mode applies to this request (see the module's docstring)."""
    cfg = _config(request)
    if not cfg.allow_open or cfg.env_tokens:
        return False
    if not is_loopback(request.client.host if request.client else None):
        return False
    return not cfg.accounts.has_accounts()


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth is None:
        return None
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def identify(request: Request, roles: tuple[str, ...] = ()) -> Principal | None:
    """The caller, or None. A bad bearer token raises 401 (it is never silently ignored)."""
    if hasattr(request.state, "principal") and request.state.principal is not None:
        return request.state.principal
    cfg = _config(request)
    token = _bearer(request)
    p: Principal | None = None
    if token is not None:
        office = next((o for t, o in cfg.env_tokens.items() if hmac.compare_digest(t, token)), None) if token else None
        if office is not None:
            p = Principal("station", office, None, f"station:{office}", "token")
        else:
            ident = cfg.accounts.verify_token(token) if token else None
            if ident is None:
                raise HTTPException(401, "the token is not valid (revoked, mistyped or unknown) / توکن معتبر نیست",
                                    headers={"WWW-Authenticate": "Bearer"})
            p = Principal(ident.role, ident.office, ident.court, ident.name, "token")
    else:
        sid = request.cookies.get(SESSION_COOKIE)
        ident = cfg.accounts.session_identity(sid) if sid else None
        if ident is not None:
            p = Principal(ident.role, ident.office, ident.court, ident.name, "session")
        elif open_mode(request):
            role = next((r for r in roles if r != "admin"), "station") if roles else "station"
            p = Principal(role, None, None, "first-try", "open")
    request.state.principal = p
    return p


def require(*roles: str):
    """A dependency for API routes: the caller's Principal; 401 without credentials, 404 for another role."""
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise ValueError(f"unknown roles {bad}")

    def dependency(request: Request) -> Principal:
        p = identify(request, roles)
        if p is None:
            raise HTTPException(401, "sign in or send a token (Authorization: Bearer <token>) / "
                                     "وارد شوید یا توکن بفرستید", headers={"WWW-Authenticate": "Bearer"})
        if p.role not in roles:
            raise HTTPException(404, "not found / یافت نشد")
        return p

    return dependency


def require_web(*roles: str):
    """A dependency for HTML pages: the Principal; 303 to the login page without a session, 404 for another role."""
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise ValueError(f"unknown roles {bad}")

    def dependency(request: Request) -> Principal:
        try:
            p = identify(request, roles)
        except HTTPException:
            p = None
        if p is None:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(path)
        if p.role not in roles:
            raise HTTPException(404, "not found / یافت نشد")
        return p

    return dependency


def optional_principal(request: Request) -> Principal | None:
    """For pages anyone may see (login, home): the caller if known, else None."""
    try:
        return identify(request)
    except HTTPException:
        return None


def login_url(next_url: str) -> str:
    return "/login?next=" + quote(next_url, safe="/")


def safe_next(next_url: str | None) -> str:
    """Only local paths: never redirect a login to another site."""
    if not next_url or not next_url.startswith("/") or next_url.startswith("//") or "\\" in next_url:
        return "/"
    return next_url


# --- CSRF and security headers (pure ASGI: they never buffer an upload's body) -----------------------------------

_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
# Swagger UI (/docs) loads its script from a CDN and starts it with an inline script
_CSP_DOCS = ("default-src 'self' https://cdn.jsdelivr.net; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
             "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
             "frame-ancestors 'none'")


def _cookies(scope: Scope) -> dict[str, str]:
    jar: dict[str, str] = {}
    for k, v in scope.get("headers", []):
        if k == b"cookie":
            c = SimpleCookie()
            try:
                c.load(v.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is ignored
                continue
            jar.update({name: m.value for name, m in c.items()})
    return jar


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k == name:
            return v.decode("latin-1")
    return None


class CsrfMiddleware:
    """Double-submit CSRF token (cookie + header/field), an Origin check, and the security headers of every answer."""

    def __init__(self, app: ASGIApp, cookie_secure: bool = True, max_form_bytes: int = 1024 * 1024):
        self.app = app
        self.cookie_secure = cookie_secure
        self.max_form_bytes = max_form_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies = _cookies(scope)
        token = cookies.get(CSRF_COOKIE)
        new_token = None
        if not token or len(token) > 100:
            token = new_token = secrets.token_urlsafe(24)
        scope.setdefault("state", {})["csrf_token"] = token
        path = scope.get("path", "")

        if scope["method"] in _UNSAFE:
            refusal = None
            auth = _header(scope, b"authorization") or ""
            if not auth.lower().startswith("bearer "):
                origin = _header(scope, b"origin")
                host = _header(scope, b"host") or ""
                if origin and origin != "null" and origin.split("://", 1)[-1] != host:
                    refusal = "cross-site request refused / درخواست از سایت دیگر پذیرفته نمی‌شود"
                elif SESSION_COOKIE in cookies or not path.startswith("/api/"):
                    sent, receive = await self._sent_token(scope, receive)
                    if new_token is not None or not sent or not hmac.compare_digest(sent, token):
                        refusal = ("the form has expired or lacks its security token: reload the page and try again / "
                                   "فرم منقضی شده یا نشانهٔ امنیتی ندارد: صفحه را دوباره بارگذاری کنید و دوباره بفرستید")
            if refusal is not None:
                await self._refuse(scope, receive, send, refusal, new_token)
                return

        docs = path in ("/docs", "/redoc") or path.startswith("/docs/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"content-security-policy", (_CSP_DOCS if docs else _CSP).encode()),
                ]
                headers += [(k, v) for k, v in extra if k not in have]
                if new_token is not None:
                    headers.append((b"set-cookie", self._cookie(new_token).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _cookie(self, token: str) -> str:
        return (f"{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
                + ("; Secure" if self.cookie_secure else ""))

    async def _sent_token(self, scope: Scope, receive: Receive) -> tuple[str | None, Receive]:
        sent = _header(scope, b"x-csrf-token")
        if sent:
            return sent, receive
        q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if q.get("csrf_token"):
            return q["csrf_token"][0], receive
        ctype = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return None, receive
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_form_bytes:
                return None, receive
        fields = parse_qs(body.decode("utf-8", "replace"))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return (fields.get("csrf_token") or [None])[0], replay

    async def _refuse(self, scope, receive, send, message: str, new_token: str | None) -> None:
        from starlette.responses import HTMLResponse, JSONResponse

        if scope.get("path", "").startswith("/api/"):
            resp = JSONResponse({"detail": message}, status_code=403)
        else:
            en, _, fa = message.partition(" / ")
            resp = HTMLResponse(f'<!doctype html><html lang="fa" dir="rtl"><meta charset="utf-8"><title>403</title>'
                                f'<link rel="stylesheet" href="/static/khana.css"><main class="card narrow">'
                                f'<h1>۴۰۳</h1><p>{fa}</p><p dir="ltr" lang="en">{en}</p>'
                                f'<p><a href="/">خانه / Home</a></p></main></html>', status_code=403)
        resp.headers["content-security-policy"] = _CSP
        resp.headers["x-frame-options"] = "DENY"
        resp.headers["x-content-type-options"] = "nosniff"
        if new_token is not None:
            resp.headers.append("set-cookie", self._cookie(new_token))
        await resp(scope, receive, send)
