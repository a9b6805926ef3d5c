"""pages.pdf_image: the page image pre-encoded for the searchable PDF

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 02:25:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pages") as batch:
        batch.add_column(sa.Column("pdf_image", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pages") as batch:
        batch.drop_column("pdf_image")
