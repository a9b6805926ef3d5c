"""``khana admin``: offices, courts, users and API tokens in the database.

    khana admin token create --role station --office O [--label L]   prints the new token alone on stdout
    khana admin token create --role clerk --court C | --role qa | --role admin
    khana admin token list [--all] [--json]
    khana admin token revoke TOKEN_ID
    khana admin user create NAME --role R [--office O | --court C] [--password-stdin]
    khana admin user list [--json]
    khana admin user disable NAME | enable NAME | password NAME [--password-stdin]
    khana admin office add CODE [--name N] | office list
    khana admin court add CODE [--name N] | court list
"""
from __future__ import annotations

import getpass
import json
import sys
from typing import Optional

import typer

admin = typer.Typer(no_args_is_help=True, help="Accounts: users (web sign-in), API tokens, offices and courts.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens for programs (station uploaders, scripts).")
user_app = typer.Typer(no_args_is_help=True, help="People who sign in to the web pages with a password.")
office_app = typer.Typer(no_args_is_help=True, help="E-judicial service offices.")
court_app = typer.Typer(no_args_is_help=True, help="Courts.")
admin.add_typer(token_app, name="token")
admin.add_typer(user_app, name="user")
admin.add_typer(office_app, name="office")
admin.add_typer(court_app, name="court")

ROLE_HELP = "station (needs --office), clerk (needs --court), qa or admin"


def _accounts():
    from khana.settings import get_settings
    from pipeline.accounts import Accounts
    from storage.database import Database

    db = Database(get_settings().resolved_database_url())
    db.migrate()
    return Accounts(db)


def _fail(exc: Exception) -> None:
    line = exc.one_line() if hasattr(exc, "one_line") else str(exc)
    sys.stderr.write(f"khana: error: {line}\n")
    raise typer.Exit(2)


def _run(fn, *args, **kw):
    from core.errors import KhanaError

    try:
        return fn(*args, **kw)
    except KhanaError as exc:
        _fail(exc)


def _fmt(d) -> str:
    return d.strftime("%Y-%m-%d %H:%M") if d else "-"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        sys.stderr.write("khana: error: the two passwords differ\n")
        raise typer.Exit(2)
    return first


@token_app.command("create")
def token_create(
    role: str = typer.Option(..., "--role", help=ROLE_HELP),
    office: Optional[str] = typer.Option(None, "--office", help="office code (station tokens)"),
    court: Optional[str] = typer.Option(None, "--court", help="court code (clerk tokens)"),
    label: str = typer.Option("", "--label", help="what the token is for, e.g. 'scanner 2'"),
) -> None:
    """Create an API token and print it alone on stdout (it is shown only once; only its hash is kept)."""
    _tid, token = _run(_accounts().create_token, role, office, court, label, "cli")
    sys.stdout.write(token + "\n")


@token_app.command("list")
def token_list(all_: bool = typer.Option(False, "--all", help="include revoked tokens"),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """List tokens (never the tokens themselves: their ids, roles and bindings)."""
    rows = _accounts().tokens(include_revoked=all_)
    if as_json:
        for r in rows:
            sys.stdout.write(json.dumps({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}) + "\n")
        return
    for r in rows:
        bind = r["office"] or r["court"] or "-"
        state = f"revoked {_fmt(r['revoked_at'])}" if r["revoked_at"] else f"last used {_fmt(r['last_used_at'])}"
        typer.echo(f"{r['id']}  {r['role']:<7} {bind:<20} {r['label'] or '-':<20} created {_fmt(r['created_at'])}  {state}")


@token_app.command("revoke")
def token_revoke(token_id: str = typer.Argument(..., help="the id shown by `khana admin token list`")) -> None:
    """Revoke a token: it stops working at once."""
    _run(_accounts().revoke_token, token_id, "cli")
    typer.echo(f"revoked {token_id}", err=True)


@user_app.command("create")
def user_create(
    username: str = typer.Argument(...),
    role: str = typer.Option(..., "--role", help=ROLE_HELP),
    office: Optional[str] = typer.Option(None, "--office"),
    court: Optional[str] = typer.Option(None, "--court"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin (scripts)"),
) -> None:
    """Create a user who signs in with a password (10 characters or more; stored as an argon2 hash)."""
    password = _read_password(password_stdin)
    _run(_accounts().create_user, username, password, role, office, court, "cli")
    typer.echo(f"created user {username} ({role})", err=True)


@user_app.command("list")
def user_list(as_json: bool = typer.Option(False, "--json")) -> None:
    rows = _accounts().users()
    for r in rows:
        if as_json:
            sys.stdout.write(json.dumps({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}) + "\n")
        else:
            typer.echo(f"{r['username']:<20} {r['role']:<7} {r['office'] or r['court'] or '-':<20} "
                       f"{'active' if r['active'] else 'disabled'}  created {_fmt(r['created_at'])}")


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable a user: signed out everywhere, cannot sign in."""
    _run(_accounts().set_active, username, False, "cli")
    typer.echo(f"disabled {username}", err=True)


@user_app.command("enable")
def user_enable(username: str) -> None:
    _run(_accounts().set_active, username, True, "cli")
    typer.echo(f"enabled {username}", err=True)


@user_app.command("password")
def user_password(username: str, password_stdin: bool = typer.Option(False, "--password-stdin")) -> None:
    """Set a new password (signs the user out everywhere)."""
    _run(_accounts().set_password, username, _read_password(password_stdin), "cli")
    typer.echo(f"password changed for {username}", err=True)


@office_app.command("add")
def office_add(code: str, name: str = typer.Option("", "--name")) -> None:
    typer.echo(_run(_accounts().add_office, code, name))


@office_app.command("list")
def office_list() -> None:
    for o in _accounts().offices():
        typer.echo(f"{o['code']}\t{o['name']}")


@court_app.command("add")
def court_add(code: str, name: str = typer.Option("", "--name")) -> None:
    typer.echo(_run(_accounts().add_court, code, name))


@court_app.command("list")
def court_list() -> None:
    for c in _accounts().courts():
        typer.echo(f"{c['code']}\t{c['name']}")


def register(app: typer.Typer) -> None:
    app.add_typer(admin, name="admin")
