"""Accounts: tokens shown once and stored hashed, argon2 passwords, sessions, the login rate limit, `khana admin`."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_khana
from sqlalchemy import select

from pipeline.accounts import AccountError, Accounts
from storage.models import ApiToken, User


@pytest.fixture
def acc(rt):
    return Accounts(rt.db)


def test_token_is_stored_hashed_verifies_and_revokes(acc, rt):
    assert not acc.has_accounts()
    tid, tok = acc.create_token("station", office="11-2301", label="scanner 2")
    assert len(tok) >= 40 and acc.has_accounts()
    with rt.db.session() as s:
        row = s.get(ApiToken, tid)
        assert row.token_hash == hashlib.sha256(tok.encode()).hexdigest() and tok not in row.token_hash
    ident = acc.verify_token(tok)
    assert (ident.role, ident.office, ident.court) == ("station", "11-2301", None)
    assert acc.verify_token(tok + "x") is None and acc.verify_token("") is None
    assert acc.offices() == [{"code": "11-2301", "name": ""}]  # the office is registered with its first account
    acc.revoke_token(tid)
    assert acc.verify_token(tok) is None and not acc.has_accounts()


def test_role_bindings_are_checked(acc):
    with pytest.raises(AccountError):
        acc.create_token("station")  # no office
    with pytest.raises(AccountError):
        acc.create_token("clerk", office="x")  # a clerk needs a court
    with pytest.raises(AccountError):
        acc.create_token("qa", court="c")
    with pytest.raises(AccountError):
        acc.create_token("root")
    with pytest.raises(Exception):
        acc.create_token("station", office="../../x")
    _tid, tok = acc.create_token("clerk", court="tehran-civil-12")
    assert acc.verify_token(tok).court == "tehran-civil-12"


def test_passwords_are_argon2_and_sessions_end(acc, rt):
    acc.create_user("sara", "correct horse battery", "station", office="11-2301")
    with rt.db.session() as s:
        assert s.scalar(select(User.password_hash)).startswith("$argon2id$")
    assert acc.verify_password("sara", "correct horse battery").office == "11-2301"
    assert acc.verify_password("sara", "wrong password!") is None
    assert acc.verify_password("nobody", "correct horse battery") is None
    with pytest.raises(AccountError):
        acc.create_user("sara", "another long one", "qa")  # taken
    with pytest.raises(AccountError):
        acc.create_user("ali", "short", "qa")
    sid = acc.create_session("sara")
    assert acc.session_identity(sid).name == "sara"
    acc.set_active("sara", False)  # disabled: signed out everywhere and cannot sign in
    assert acc.session_identity(sid) is None and acc.verify_password("sara", "correct horse battery") is None
    acc.set_active("sara", True)
    sid = acc.create_session("sara")
    acc.end_session(sid)
    assert acc.session_identity(sid) is None


def test_login_rate_limit_counts_failures_per_key(acc):
    keys = ["user:sara", "ip:10.0.0.5"]
    for _ in range(4):
        acc.login_failed(keys, 300)
    assert not acc.login_blocked(keys, 5, 300)
    acc.login_failed(keys, 300)
    assert acc.login_blocked(keys, 5, 300)
    assert acc.login_blocked(["user:other", "ip:10.0.0.5"], 5, 300)  # the address is blocked for every name
    assert not acc.login_blocked(["user:other", "ip:10.0.0.6"], 5, 300)
    acc.login_succeeded(keys)  # clears the user's count, not the address's
    assert acc.login_blocked(keys, 5, 300) and not acc.login_blocked(["user:sara"], 5, 300)


@pytest.mark.slow
def test_khana_admin_cli(khana_home):
    r = run_khana("admin", "token", "create", "--role", "station", "--office", "11-2301", "--label", "scanner")
    assert r.returncode == 0, r.stderr
    token = r.stdout
    assert token.endswith("\n") and len(token.strip().splitlines()) == 1 and " " not in token.strip()
    listed = run_khana("admin", "token", "list").stdout
    assert "station" in listed and "11-2301" in listed and token.strip() not in listed
    tid = listed.split()[0]
    for role, extra in (("clerk", ["--court", "tehran-civil-12"]), ("qa", []), ("admin", [])):
        r = run_khana("admin", "token", "create", "--role", role, *extra)
        assert r.returncode == 0 and len(r.stdout.strip()) >= 40, r.stderr
    bad = run_khana("admin", "token", "create", "--role", "station")
    assert bad.returncode == 2 and "--office" in bad.stderr and "Traceback" not in bad.stderr
    exe = Path(sys.executable).with_name("khana")
    r = subprocess.run([str(exe), "admin", "user", "create", "sara", "--role", "qa", "--password-stdin"],
                       input="a long enough password\n", capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "sara" in run_khana("admin", "user", "list").stdout
    assert run_khana("admin", "token", "revoke", tid).returncode == 0
    assert tid not in run_khana("admin", "token", "list").stdout and tid in run_khana("admin", "token", "list", "--all").stdout
