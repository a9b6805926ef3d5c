"""Operations commands of the distributed mode: ``khana worker``, ``khana sweeper``, ``khana db-upgrade``,
``khana search-reindex``.

Registered on the main `khana` app by `register(app)` (see the end of khana/cli.py).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Optional

import typer

QUEUE_NAMES = ("quality", "ocr", "assemble")


def _prepare(migrate: bool) -> None:
    """Bring the schema to head and make sure the buckets exist (safe from many processes)."""
    from khana.bootstrap import build_runtime

    rt = build_runtime(migrate=migrate)
    rt.close()


def worker(
    queues: str = typer.Option("quality,ocr,assemble", "--queues", "-Q",
                               help="comma-separated queues to consume: quality, ocr, assemble"),
    concurrency: int = typer.Option(0, "--concurrency", "-c",
                                    help="pool processes (one Tesseract each); 0 = number of CPU cores"),
    loglevel: str = typer.Option("INFO", "--loglevel", "-l"),
    hostname: Optional[str] = typer.Option(None, "--hostname", "-n", help="worker name, e.g. ocr1@%h"),
    max_tasks_per_child: Optional[int] = typer.Option(None, "--max-tasks-per-child"),
    migrate: bool = typer.Option(True, "--migrate/--no-migrate", help="run database migrations first"),
) -> None:
    """Start a Celery worker (prefork pool) on the given queues. Needs KHANA_BROKER_URL.

    Same as ``celery -A workers.celery_app worker -Q QUEUES -c N``; run OCR workers
    apart from the light stages to scale them separately.
    """
    from khana.settings import get_settings

    if not get_settings().broker_url:
        typer.echo("khana worker: KHANA_BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0)", err=True)
        raise typer.Exit(2)
    names = [q.strip() for q in queues.split(",") if q.strip()]
    bad = [q for q in names if q not in QUEUE_NAMES]
    if bad or not names:
        typer.echo(f"khana worker: unknown queue(s) {', '.join(bad) or '(none)'}; choose from {', '.join(QUEUE_NAMES)}", err=True)
        raise typer.Exit(2)
    os.environ["OMP_THREAD_LIMIT"] = "1"  # parallelism is across pages, never inside Tesseract
    _prepare(migrate)
    from workers.celery_app import app

    argv = ["worker", "-Q", ",".join(names), "-c", str(concurrency or os.cpu_count() or 1), "--pool", "prefork",
            "--loglevel", loglevel, "--without-gossip", "--without-mingle"]
    if hostname:
        argv += ["-n", hostname]
    if max_tasks_per_child:
        argv += ["--max-tasks-per-child", str(max_tasks_per_child)]
    app.worker_main(argv)


def sweeper(
    interval: Optional[float] = typer.Option(None, help="seconds between sweeps (default KHANA_SWEEP_INTERVAL_S)"),
    stuck_after: Optional[float] = typer.Option(None, "--stuck-after",
                                                help="re-drive pages untouched this many seconds (default KHANA_STUCK_AFTER_S)"),
    once: bool = typer.Option(False, "--once", help="sweep once, print what was done as JSON, and exit"),
    migrate: bool = typer.Option(True, "--migrate/--no-migrate", help="run database migrations first"),
    heartbeat: Optional[str] = typer.Option(None, "--heartbeat", help="file touched after every sweep (for health checks)"),
) -> None:
    """Re-drive pages stuck in a stage past a timeout and finalise complete batches. Needs KHANA_BROKER_URL."""
    import json

    from khana.bootstrap import build_runtime
    from khana.settings import get_settings
    from workers.dispatch import CeleryDispatcher
    from workers.sweeper import run_forever, sweep

    settings = get_settings()
    if not settings.broker_url:
        typer.echo("khana sweeper: KHANA_BROKER_URL is not set", err=True)
        raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    rt = build_runtime(settings, migrate=migrate)
    kw = settings.sweep_options()
    if stuck_after is not None:
        kw["stuck_after_s"] = stuck_after
    interval = settings.sweep_interval_s if interval is None else interval
    if once:
        res = sweep(rt, CeleryDispatcher(), **kw)
        typer.echo(json.dumps(res.as_dict()))
        return
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(1))
    from workers.celery_app import broker_run_id

    run_forever(rt, CeleryDispatcher(), interval_s=interval, stop=lambda: bool(stopping), heartbeat=heartbeat,
                broker_epoch=lambda: broker_run_id(settings.broker_url), **kw)


def db_upgrade(
    show: bool = typer.Option(False, "--show", help="only print the current and the newest revision"),
) -> None:
    """Apply the database migrations (``alembic upgrade head``) to KHANA_DATABASE_URL."""
    from khana.settings import get_settings
    from storage.database import Database, current_revision, head_revision

    db = Database(get_settings().resolved_database_url())
    try:
        if not show:
            db.migrate()
        typer.echo(f"database revision: {current_revision(db.engine)} (newest: {head_revision()})")
    finally:
        db.dispose()


def search_reindex(
    missing: bool = typer.Option(False, "--missing", help="only the forwarded filings not in the index yet"),
) -> None:
    """(Re)build the full-text index of forwarded filings (backfill after an upgrade; safe to repeat)."""
    from khana.settings import get_settings
    from pipeline.court import reindex
    from storage.database import Database

    db = Database(get_settings().resolved_database_url())
    try:
        db.migrate()
        filings, pages = reindex(db, only_missing=missing)
        typer.echo(f"indexed {filings} filing(s), {pages} page(s)")
    finally:
        db.dispose()


def register(app: typer.Typer) -> None:
    app.command("search-reindex")(search_reindex)
    app.command("worker")(worker)
    app.command("sweeper")(sweeper)
    app.command("db-upgrade")(db_upgrade)
