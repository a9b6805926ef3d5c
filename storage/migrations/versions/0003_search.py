"""full-text search of forwarded filings: search_pages + search_batches, FTS5 (SQLite) or tsvector/GIN (PostgreSQL)

Revision ID: 0003
Revises: 0002a
Create Date: 2026-12-01 15:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002a"
branch_labels = None
depends_on = None

# SQLite: an external-content FTS5 table over search_pages.body, kept in step by triggers.
# unicode61 (remove_diacritics 2) splits on anything that is not a letter or digit; the body is
# already in search form (ocr.search_form), so the tokenizer only sees plain words.
SQLITE_DDL = [
    "CREATE VIRTUAL TABLE search_fts USING fts5(body, court_token, content='search_pages', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER search_pages_ai AFTER INSERT ON search_pages BEGIN "
    "INSERT INTO search_fts(rowid, body, court_token) VALUES (new.id, new.body, new.court_token); END",
    "CREATE TRIGGER search_pages_ad AFTER DELETE ON search_pages BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, body, court_token) VALUES ('delete', old.id, old.body, old.court_token); END",
    "CREATE TRIGGER search_pages_au AFTER UPDATE ON search_pages BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, body, court_token) VALUES ('delete', old.id, old.body, old.court_token); "
    "INSERT INTO search_fts(rowid, body, court_token) VALUES (new.id, new.body, new.court_token); END",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS search_pages_au",
    "DROP TRIGGER IF EXISTS search_pages_ad",
    "DROP TRIGGER IF EXISTS search_pages_ai",
    "DROP TABLE IF EXISTS search_fts",
]
# PostgreSQL: a stored tsvector ('simple' configuration: no stemming, no stop words) with a GIN index.
# Both carry the court's token (storage.search.court_token), so the index itself narrows a search
# to one court.
POSTGRES_DDL = [
    "ALTER TABLE search_pages ADD COLUMN tsv tsvector GENERATED ALWAYS AS "
    "(to_tsvector('simple', body) || to_tsvector('simple', court_token)) STORED",
    "CREATE INDEX ix_search_pages_tsv ON search_pages USING gin (tsv)",
]


def upgrade() -> None:
    op.create_table(
        "search_pages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("page_id", sa.String(length=32), nullable=False),
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("court", sa.String(length=100), nullable=False),
        sa.Column("court_token", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("page_id"),
    )
    op.create_index("ix_search_pages_batch_id", "search_pages", ["batch_id"])
    op.create_index("ix_search_pages_court", "search_pages", ["court"])
    op.create_table(
        "search_batches",
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("court", sa.String(length=100), nullable=False),
        sa.Column("case_key", sa.String(length=40), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    op.create_index("ix_search_batches_court_case", "search_batches", ["court", "case_key"])
    dialect = op.get_bind().dialect.name
    for stmt in {"sqlite": SQLITE_DDL, "postgresql": POSTGRES_DDL}.get(dialect, []):
        op.execute(stmt)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for stmt in SQLITE_DROP:
            op.execute(stmt)
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_search_pages_tsv")
        op.execute("ALTER TABLE search_pages DROP COLUMN IF EXISTS tsv")
    op.drop_index("ix_search_batches_court_case", table_name="search_batches")
    op.drop_table("search_batches")
    op.drop_index("ix_search_pages_court", table_name="search_pages")
    op.drop_index("ix_search_pages_batch_id", table_name="search_pages")
    op.drop_table("search_pages")
