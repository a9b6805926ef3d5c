"""Home, login and logout, and the admin's accounts page.

    GET  /                  the signed-in role's home (or the first-try page, or the login page)
    GET  /login, POST /login   password login: argon2 check, rate limit per user name and per address (429)
    POST /logout
    GET  /admin/accounts    users and API tokens; create, disable, revoke (admin)
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from api.auth import SESSION_COOKIE, Principal, WebConfig, optional_principal, require_web, safe_next
from api.deps import web_config
from api.web import render
from pipeline.accounts import AccountError
from pipeline.metadata import InvalidMetadata

router = APIRouter(include_in_schema=False)

HOME = {"station": "/station", "qa": "/qa", "clerk": "/court", "admin": "/admin/accounts"}


@router.get("/")
def home(request: Request, p: Principal | None = Depends(optional_principal)):
    if p is None:
        return RedirectResponse("/login", status_code=303)
    if p.via == "open":
        return render(request, "first_try.html", principal=p)
    return RedirectResponse(HOME[p.role], status_code=303)


def _login_page(request: Request, cfg: WebConfig, status_code: int = 200, error: str | None = None,
                username: str = "", next_url: str = "/"):
    insecure = cfg.cookie_secure and request.url.scheme != "https" and \
        request.headers.get("x-forwarded-proto", "") != "https"
    return render(request, "login.html", status_code=status_code, error=error, username=username,
                  next_url=safe_next(next_url), insecure=insecure)


@router.get("/login")
def login_form(request: Request, next: str = "/", cfg: WebConfig = Depends(web_config)):
    return _login_page(request, cfg, next_url=next)


@router.post("/login")
async def login(request: Request, cfg: WebConfig = Depends(web_config)):
    form = await request.form(max_files=0, max_fields=10)
    username = str(form.get("username") or "").strip()[:64]
    password = str(form.get("password") or "")[:1024]
    next_url = safe_next(str(form.get("next") or "/"))
    client = request.client.host if request.client else "unknown"
    keys = [f"user:{username.lower()}", f"ip:{client}"]
    acc = cfg.accounts
    if await run_in_threadpool(acc.login_blocked, keys, cfg.login_max_failures, cfg.login_window_s):
        minutes = max(1, round(cfg.login_window_s / 60))
        return _login_page(request, cfg, 429, username=username, next_url=next_url, error=(
            f"Too many failed sign-ins. Wait {minutes} minutes and try again, or ask your administrator.",
            f"تلاش‌های ناموفق بیش از حد بوده است. {minutes} دقیقه صبر کنید و دوباره بکوشید، یا از مدیر سامانه بپرسید."))
    ident = await run_in_threadpool(acc.verify_password, username, password)
    if ident is None:
        await run_in_threadpool(acc.login_failed, keys, cfg.login_window_s)
        return _login_page(request, cfg, 400, username=username, next_url=next_url, error=(
            "The user name or the password is wrong.", "نام کاربری یا گذرواژه نادرست است."))
    await run_in_threadpool(acc.login_succeeded, keys)
    sid = await run_in_threadpool(acc.create_session, ident.name, cfg.session_hours)
    target = next_url if next_url != "/" else HOME.get(ident.role, "/")
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(SESSION_COOKIE, sid, max_age=int(cfg.session_hours * 3600), httponly=True, samesite="lax",
                    secure=cfg.cookie_secure, path="/")
    return resp


@router.post("/logout")
async def logout(request: Request, cfg: WebConfig = Depends(web_config)):
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        await run_in_threadpool(cfg.accounts.end_session, sid)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=cfg.cookie_secure)
    return resp


# --- the admin's page ---------------------------------------------------------------------------------------------

def _admin_page(request: Request, cfg: WebConfig, status_code: int = 200, **ctx):
    acc = cfg.accounts
    return render(request, "admin/accounts.html", status_code=status_code, users=acc.users(), tokens=acc.tokens(),
                  offices=acc.offices(), courts=acc.courts(), **ctx)


@router.get("/admin/accounts")
def accounts_page(request: Request, p: Principal = Depends(require_web("admin")),
                  cfg: WebConfig = Depends(web_config)):
    return _admin_page(request, cfg)


def _err(exc: Exception) -> tuple[str, str]:
    en = exc.message if hasattr(exc, "message") else str(exc)
    return en, getattr(exc, "message_fa", None) or en


@router.post("/admin/accounts/users")
async def create_user(request: Request, p: Principal = Depends(require_web("admin")),
                      cfg: WebConfig = Depends(web_config)):
    f = await request.form(max_files=0, max_fields=10)
    try:
        await run_in_threadpool(cfg.accounts.create_user, str(f.get("username") or ""), str(f.get("password") or ""),
                                str(f.get("role") or ""), str(f.get("office") or "") or None,
                                str(f.get("court") or "") or None, f"admin:{p.name}")
    except (AccountError, InvalidMetadata) as exc:
        return _admin_page(request, cfg, 400, error=_err(exc))
    return RedirectResponse("/admin/accounts", status_code=303)


@router.post("/admin/accounts/users/{username}/active")
async def set_user_active(username: str, request: Request, p: Principal = Depends(require_web("admin")),
                          cfg: WebConfig = Depends(web_config)):
    f = await request.form(max_files=0, max_fields=5)
    active = f.get("active") == "1"
    if not active and username == p.name:
        return _admin_page(request, cfg, 400, error=("You cannot disable your own account.",
                                                     "نمی‌توانید حساب خودتان را غیرفعال کنید."))
    try:
        await run_in_threadpool(cfg.accounts.set_active, username, active, f"admin:{p.name}")
    except AccountError as exc:
        raise HTTPException(404) from exc
    return RedirectResponse("/admin/accounts", status_code=303)


@router.post("/admin/accounts/tokens")
async def create_token(request: Request, p: Principal = Depends(require_web("admin")),
                       cfg: WebConfig = Depends(web_config)):
    f = await request.form(max_files=0, max_fields=10)
    try:
        tid, token = await run_in_threadpool(cfg.accounts.create_token, str(f.get("role") or ""),
                                             str(f.get("office") or "") or None, str(f.get("court") or "") or None,
                                             str(f.get("label") or ""), f"admin:{p.name}")
    except (AccountError, InvalidMetadata) as exc:
        return _admin_page(request, cfg, 400, error=_err(exc))
    return _admin_page(request, cfg, new_token=token, new_token_id=tid)  # shown once, never again


@router.post("/admin/accounts/tokens/{token_id}/revoke")
async def revoke_token(token_id: str, request: Request, p: Principal = Depends(require_web("admin")),
                       cfg: WebConfig = Depends(web_config)):
    try:
        await run_in_threadpool(cfg.accounts.revoke_token, token_id, f"admin:{p.name}")
    except AccountError as exc:
        raise HTTPException(404) from exc
    return RedirectResponse("/admin/accounts", status_code=303)
