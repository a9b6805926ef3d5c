"""Alembic migrations: from the first schema on, for SQLite (embedded) and PostgreSQL (production)."""
from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from storage.database import Database, current_revision, head_revision
from storage.models import Base

REPO = Path(__file__).resolve().parent.parent


def _schema_diff(engine) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        from storage.search import include_object

        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
        return compare_metadata(ctx, Base.metadata)


def test_head_is_a_single_linear_history():
    from alembic.script import ScriptDirectory

    from storage.database import _alembic_config

    script = ScriptDirectory.from_config(_alembic_config())
    assert len(script.get_heads()) == 1
    revs = list(script.walk_revisions())
    assert revs[-1].down_revision is None  # the first schema is a migration too


def test_fast_head_check_agrees_with_alembic():
    from storage.database import head_from_files

    assert head_from_files() == head_revision()


def test_sqlite_upgrade_from_empty_matches_models(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'k.db'}")
    db.migrate()
    assert current_revision(db.engine) == head_revision()
    assert {"batches", "pages", "original_files", "deliveries", "audit_events"} <= set(inspect(db.engine).get_table_names())
    assert _schema_diff(db.engine) == []
    db.migrate()  # a second call is a no-op
    db.dispose()


def test_legacy_create_all_database_is_adopted(tmp_path):
    from alembic import command
    from sqlalchemy import text

    from storage.database import _alembic_config

    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    eng = create_engine(url)
    # what Khana's create_all made before migrations existed: the first schema, no alembic_version
    with eng.begin() as conn:
        command.upgrade(_alembic_config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
    eng.dispose()
    db = Database(url)
    db.migrate()
    assert current_revision(db.engine) == head_revision()
    db.dispose()


def test_downgrade_to_base_and_up_again(tmp_path):
    from alembic import command

    from storage.database import _alembic_config

    db = Database(f"sqlite:///{tmp_path / 'k.db'}")
    db.migrate()
    with db.engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "base")
    assert "pages" not in inspect(db.engine).get_table_names()
    db.migrate()
    assert current_revision(db.engine) == head_revision()
    db.dispose()


def _migrate_in_process(url: str) -> None:
    Database(url).migrate()


def test_concurrent_migrate_from_several_processes_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_migrate_in_process, args=(url,)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    db = Database(url)
    assert current_revision(db.engine) == head_revision()
    db.dispose()


@pytest.mark.services
def test_postgres_upgrade_from_empty_database(postgres_server_url):
    from fixtures_services import drop_postgres_db, make_postgres_db

    url = make_postgres_db(postgres_server_url, prefix="khana_mig")
    try:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_migrate_in_process, args=(url,)) for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0, 0]
        db = Database(url)
        assert current_revision(db.engine) == head_revision()
        assert _schema_diff(db.engine) == []
        db.dispose()
    finally:
        drop_postgres_db(url)


def test_khana_db_upgrade_command(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHANA_")}
    env["KHANA_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    r = subprocess.run([sys.executable, "-m", "khana.cli", "db-upgrade"], capture_output=True, text=True, env=env,
                       cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"database revision: {head_revision()}" in r.stdout
