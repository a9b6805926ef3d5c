"""Database engine and sessions: SQLite (embedded default) or PostgreSQL (production)."""
from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from storage.models import Base


def make_engine(url: str, *, durable: bool = True) -> Engine:
    """`durable=False` (SQLite only): commits are not fsync'd, for a scratch workspace removed after the run."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # durability + concurrent readers/writers
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=OFF")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def create_schema(engine: Engine) -> None:
    Base.metadata.create_all(engine)


MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATE_LOCK = 0x6B68616E61  # "khana": pg_advisory_lock key for migrations
INITIAL_REVISION = "0001"


def _alembic_config(connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.set_main_option("sqlalchemy.url", connection.engine.url.render_as_string(hide_password=False).replace("%", "%%"))
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


_REV = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*['\"]?([\w]+|None)['\"]?", re.M)


def head_from_files() -> str | None:
    """The head revision read from the migration files without importing Alembic (start-up fast path)."""
    revs, downs = set(), set()
    for f in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict((k, v) for k, v in _REV.findall(f.read_text(encoding="utf-8")))
        if "revision" in found:
            revs.add(found["revision"])
            if found.get("down_revision") not in (None, "None"):
                downs.add(found["down_revision"])
    heads = revs - downs
    return heads.pop() if len(heads) == 1 else None


def _stored_revision(engine: Engine) -> str | None:
    from sqlalchemy import text

    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # noqa: BLE001 - no table yet
            return None


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _upgrade(connection) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import inspect as sa_inspect

    cfg = _alembic_config(connection)
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None and sa_inspect(connection).has_table("batches"):
        command.stamp(cfg, INITIAL_REVISION)  # made by create_all before migrations existed
    command.upgrade(cfg, "head")


@contextmanager
def _sqlite_lock(url: str) -> Iterator[None]:
    path = url.split("///", 1)[-1]
    if not path or path == ":memory:":
        yield
        return
    import fcntl

    lock_path = Path(path).with_name(Path(path).name + ".migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def migrate(engine: Engine) -> None:
    """``alembic upgrade head`` on `engine`, serialised across processes."""
    head = head_from_files()
    try:
        if head is not None and _stored_revision(engine) == head:
            return  # up to date: one query, no Alembic import
    except Exception:  # noqa: BLE001 - e.g. the database is locked; let the locked path decide
        pass
    url = str(engine.url)
    if engine.dialect.name == "sqlite":
        with _sqlite_lock(url):
            with engine.begin() as conn:
                _upgrade(conn)
    elif engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATE_LOCK})
            conn.commit()
            try:
                with conn.begin():
                    _upgrade(conn)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATE_LOCK})
                conn.commit()
    else:
        with engine.begin() as conn:
            _upgrade(conn)


class Database:
    def __init__(self, url: str, *, durable: bool = True):
        self.url = url
        self.engine = make_engine(url, durable=durable)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (``alembic upgrade head``).

        Fast when there is nothing to do (one query), and safe to call from
        several processes at once: SQLite is guarded by a file lock next to the
        database, PostgreSQL by an advisory lock. A database made by an older
        Khana with ``create_all`` (tables but no ``alembic_version``) is stamped
        with the first revision, then upgraded.
        """
        migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        s = self._factory()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        self.engine.dispose()
