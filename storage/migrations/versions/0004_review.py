"""QA review: overrides (who, when, the reasons held for), rescan requests, rejected filings

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pages") as batch:
        batch.add_column(sa.Column("reviewed_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("held_reasons", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("rescan_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("rescan_requested_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("rescan_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("rejected_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("rejected_reason", sa.Text(), nullable=True))
    # the review queue: held pages of held batches
    op.create_index("ix_pages_decision_status", "pages", ["decision", "status"])


def downgrade() -> None:
    op.drop_index("ix_pages_decision_status", table_name="pages")
    with op.batch_alter_table("batches") as batch:
        for name in ("rejected_reason", "rejected_by", "rejected_at"):
            batch.drop_column(name)
    with op.batch_alter_table("pages") as batch:
        for name in ("rescan_reason", "rescan_requested_by", "rescan_requested_at", "held_reasons", "reviewed_at",
                     "reviewed_by"):
            batch.drop_column(name)
