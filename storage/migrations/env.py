"""Alembic environment of Khana's metadata database.

The URL comes from the settings (KHANA_DATABASE_URL; default the embedded
SQLite file), never from alembic.ini. `storage.database.Database.migrate()`
passes its own open connection in ``config.attributes["connection"]``.
"""
from __future__ import annotations

from alembic import context

from storage.models import Base
from storage.search import include_object

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from khana.settings import Settings

    return Settings().resolved_database_url()


def _configure(connection=None, url=None) -> None:
    is_sqlite = (url or str(connection.engine.url if connection is not None else "")).startswith("sqlite")
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        render_as_batch=is_sqlite,  # SQLite cannot ALTER most things: copy-and-move tables
        compare_type=True,
        include_object=include_object,  # the full-text tables and columns are made by hand (0003)
        literal_binds=connection is None,
        dialect_opts={"paramstyle": "named"} if connection is None else {},
    )


def run_migrations_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    from storage.database import make_engine

    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
