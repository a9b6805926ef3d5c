"""Accounts: offices, courts, users (argon2 passwords), API tokens (SHA-256), web sessions, the login rate limit.

Roles: ``station`` (bound to one office), ``clerk`` (bound to one court), ``qa``, ``admin``.
An API token is ``secrets.token_urlsafe(32)``: shown once, stored as its SHA-256, revocable.
A web session id is random too; the cookie holds it, the database its SHA-256 and an expiry.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select

from core.errors import BadInput
from pipeline import audit
from pipeline.metadata import validate_code
from storage.database import Database
from storage.models import ApiToken, Court, LoginFailure, Office, User, WebSession, utcnow


class Role(StrEnum):
    station = "station"
    clerk = "clerk"
    qa = "qa"
    admin = "admin"


@dataclass(frozen=True)
class Identity:
    """Who a token or a session belongs to."""

    role: str
    office: str | None
    court: str | None
    name: str


class AccountError(BadInput):
    """An account operation Khana refuses (bad role binding, unknown user, weak password)."""


_hasher = PasswordHasher()
# a hash of a random password: verifying against it costs as much as a real check (no user-name oracle by timing)
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def sha256_hex(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def _aware(d: datetime | None) -> datetime | None:
    return d.replace(tzinfo=timezone.utc) if d is not None and d.tzinfo is None else d


def check_binding(role: str, office: str | None, court: str | None) -> tuple[str, str | None, str | None]:
    """A station needs an office, a clerk a court; qa and admin neither."""
    try:
        r = Role(role)
    except ValueError:
        raise AccountError(f"unknown role {role!r}: choose station, clerk, qa or admin",
                           fa=f"نقش ناشناخته {role!r}: station، clerk، qa یا admin") from None
    if r is Role.station:
        if not office:
            raise AccountError("a station account needs --office", fa="حساب ایستگاه به کد دفتر (--office) نیاز دارد")
        return r.value, validate_code(office, "office"), None
    if r is Role.clerk:
        if not court:
            raise AccountError("a clerk account needs --court", fa="حساب کارمند دادگاه به کد دادگاه (--court) نیاز دارد")
        return r.value, None, validate_code(court, "court")
    if office or court:
        raise AccountError(f"a {r.value} account is not bound to an office or a court",
                           fa="این نقش به دفتر یا دادگاه وابسته نیست")
    return r.value, None, None


class Accounts:
    def __init__(self, db: Database):
        self.db = db

    # --- offices and courts ----------------------------------------------------
    def add_office(self, code: str, name: str = "") -> str:
        return self._add_place(Office, "office", code, name)

    def add_court(self, code: str, name: str = "") -> str:
        return self._add_place(Court, "court", code, name)

    def _add_place(self, model, kind: str, code: str, name: str) -> str:
        """Register an office or a court (or rename it when a name is given); returns its validated code."""
        code = validate_code(code, kind)
        with self.db.session() as s:
            row = s.get(model, code)
            if row is None:
                s.add(model(code=code, name=name))
            elif name:
                row.name = name
        return code

    def offices(self) -> list[dict]:
        with self.db.session() as s:
            return [{"code": o.code, "name": o.name} for o in s.scalars(select(Office).order_by(Office.code))]

    def courts(self) -> list[dict]:
        with self.db.session() as s:
            return [{"code": c.code, "name": c.name} for c in s.scalars(select(Court).order_by(Court.code))]

    def _register_binding(self, office: str | None, court: str | None) -> None:
        if office:
            self.add_office(office)
        if court:
            self.add_court(court)

    # --- API tokens --------------------------------------------------------------
    def create_token(self, role: str, office: str | None = None, court: str | None = None, label: str = "",
                     actor: str = "admin") -> tuple[str, str]:
        """(token id, the token itself): the token is shown once and stored only as its SHA-256."""
        role, office, court = check_binding(role, office, court)
        self._register_binding(office, court)
        token = secrets.token_urlsafe(32)
        with self.db.session() as s:
            t = ApiToken(token_hash=sha256_hex(token), role=role, office=office, court=court, label=label[:200])
            s.add(t)
            s.flush()
            audit.record(s, actor, "token_created", token_id=t.id, role=role, office=office, court=court)
            return t.id, token

    def tokens(self, include_revoked: bool = False) -> list[dict]:
        with self.db.session() as s:
            q = select(ApiToken).order_by(ApiToken.created_at)
            if not include_revoked:
                q = q.where(ApiToken.revoked_at.is_(None))
            return [{"id": t.id, "role": t.role, "office": t.office, "court": t.court, "label": t.label,
                     "created_at": _aware(t.created_at), "revoked_at": _aware(t.revoked_at),
                     "last_used_at": _aware(t.last_used_at)} for t in s.scalars(q)]

    def revoke_token(self, token_id: str, actor: str = "admin") -> None:
        with self.db.session() as s:
            t = s.get(ApiToken, token_id)
            if t is None:
                raise AccountError(f"no token {token_id}", fa=f"توکن {token_id} وجود ندارد")
            if t.revoked_at is None:
                t.revoked_at = utcnow()
                audit.record(s, actor, "token_revoked", token_id=t.id)

    def verify_token(self, token: str) -> Identity | None:
        if not token or len(token) > 200:
            return None
        with self.db.session() as s:
            t = s.scalar(select(ApiToken).where(ApiToken.token_hash == sha256_hex(token)))
            if t is None or t.revoked_at is not None:
                return None
            now = utcnow()
            if t.last_used_at is None or now - _aware(t.last_used_at) > timedelta(minutes=5):
                t.last_used_at = now  # coarse: one write per token per five minutes
            return Identity(t.role, t.office, t.court, f"token:{t.label or t.id[:8]}")

    # --- users -------------------------------------------------------------------
    def create_user(self, username: str, password: str, role: str, office: str | None = None,
                    court: str | None = None, actor: str = "admin") -> str:
        username = (username or "").strip()
        if not username or len(username) > 64 or any(c.isspace() for c in username):
            raise AccountError("a user name is 1-64 characters without spaces",
                               fa="نام کاربری ۱ تا ۶۴ نویسه و بدون فاصله است")
        _check_password(password)
        role, office, court = check_binding(role, office, court)
        self._register_binding(office, court)
        with self.db.session() as s:
            if s.scalar(select(User).where(User.username == username)):
                raise AccountError(f"user {username!r} exists", fa=f"کاربر {username!r} از پیش وجود دارد")
            u = User(username=username, password_hash=_hasher.hash(password), role=role, office=office, court=court)
            s.add(u)
            s.flush()
            audit.record(s, actor, "user_created", user=username, role=role, office=office, court=court)
            return u.id

    def users(self) -> list[dict]:
        with self.db.session() as s:
            return [{"id": u.id, "username": u.username, "role": u.role, "office": u.office, "court": u.court,
                     "active": u.active, "created_at": _aware(u.created_at)}
                    for u in s.scalars(select(User).order_by(User.username))]

    def set_active(self, username: str, active: bool, actor: str = "admin") -> None:
        with self.db.session() as s:
            u = s.scalar(select(User).where(User.username == username))
            if u is None:
                raise AccountError(f"no user {username!r}", fa=f"کاربر {username!r} وجود ندارد")
            u.active = active
            if not active:
                s.execute(delete(WebSession).where(WebSession.user_id == u.id))  # logged out everywhere
            audit.record(s, actor, "user_enabled" if active else "user_disabled", user=username)

    def set_password(self, username: str, password: str, actor: str = "admin") -> None:
        _check_password(password)
        with self.db.session() as s:
            u = s.scalar(select(User).where(User.username == username))
            if u is None:
                raise AccountError(f"no user {username!r}", fa=f"کاربر {username!r} وجود ندارد")
            u.password_hash = _hasher.hash(password)
            s.execute(delete(WebSession).where(WebSession.user_id == u.id))
            audit.record(s, actor, "password_changed", user=username)

    def verify_password(self, username: str, password: str) -> Identity | None:
        with self.db.session() as s:
            u = s.scalar(select(User).where(User.username == (username or "").strip()))
            if u is None or not u.active:
                _verify(_DUMMY_HASH, password or "")
                return None
            if not _verify(u.password_hash, password or ""):
                return None
            if _hasher.check_needs_rehash(u.password_hash):
                u.password_hash = _hasher.hash(password)
            return Identity(u.role, u.office, u.court, u.username)

    def has_accounts(self) -> bool:
        """Any active user or unrevoked token: then nothing is open without credentials."""
        with self.db.session() as s:
            return bool(s.scalar(select(func.count()).select_from(User).where(User.active.is_(True)))
                        or s.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_(None))))

    # --- web sessions ------------------------------------------------------------
    def create_session(self, username: str, hours: float = 12.0) -> str:
        sid = secrets.token_urlsafe(32)
        with self.db.session() as s:
            u = s.scalar(select(User).where(User.username == username))
            if u is None:
                raise AccountError(f"no user {username!r}")
            now = utcnow()
            s.execute(delete(WebSession).where(WebSession.expires_at < now))  # housekeeping
            s.add(WebSession(id_hash=sha256_hex(sid), user_id=u.id, expires_at=now + timedelta(hours=hours)))
            audit.record(s, username, "login")
        return sid

    def session_identity(self, sid: str) -> Identity | None:
        if not sid or len(sid) > 200:
            return None
        with self.db.session() as s:
            row = s.get(WebSession, sha256_hex(sid))
            if row is None or _aware(row.expires_at) < utcnow():
                return None
            u = s.get(User, row.user_id)
            if u is None or not u.active:
                return None
            return Identity(u.role, u.office, u.court, u.username)

    def end_session(self, sid: str) -> None:
        with self.db.session() as s:
            s.execute(delete(WebSession).where(WebSession.id_hash == sha256_hex(sid or "")))

    # --- login rate limit ----------------------------------------------------------
    def login_blocked(self, keys: list[str], limit: int, window_s: float) -> bool:
        since = utcnow() - timedelta(seconds=window_s)
        with self.db.session() as s:
            for k in keys:
                n = s.scalar(select(func.count()).select_from(LoginFailure).where(LoginFailure.key == k[:200],
                                                                                  LoginFailure.at >= since))
                if n >= limit:
                    return True
        return False

    def login_failed(self, keys: list[str], window_s: float) -> None:
        now = utcnow()
        with self.db.session() as s:
            s.execute(delete(LoginFailure).where(LoginFailure.at < now - timedelta(seconds=max(window_s, 3600))))
            for k in keys:
                s.add(LoginFailure(key=k[:200], at=now))

    def login_succeeded(self, keys: list[str]) -> None:
        with self.db.session() as s:
            s.execute(delete(LoginFailure).where(LoginFailure.key.in_([k[:200] for k in keys if k.startswith("user:")])))


def _verify(hash_: str, password: str) -> bool:
    try:
        return _hasher.verify(hash_, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _check_password(password: str) -> None:
    if len(password or "") < 10:
        raise AccountError("a password needs at least 10 characters", fa="گذرواژه باید دست‌کم ۱۰ نویسه باشد")
    if len(password) > 1024:
        raise AccountError("a password is at most 1024 characters", fa="گذرواژه حداکثر ۱۰۲۴ نویسه است")
