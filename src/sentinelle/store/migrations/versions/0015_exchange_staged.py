"""Staging table of the exchange bulk path (issue 11).

Revision ID: 0015
Revises: 0014

Mirrored by :mod:`sentinelle.exchanges.tables`. ``exchange_staged`` is append-only
and has no secondary index on purpose: a large fetch writes each page's records
here (in the page's transaction, with its checkpoint) and materialises them into
``exchange_records`` / ``bank_entries`` later with sorted set-wise inserts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "exchange_staged",
        sa.Column("id", BigId, primary_key=True, autoincrement=False),
        sa.Column("exchange_id", sa.BigInteger(), nullable=False),
        sa.Column("rec", sa.BigInteger(), nullable=False),
        sa.Column("record_key", sa.String(255), nullable=False),
        sa.Column("signal_type", sa.String(16), nullable=True),
        sa.Column("hash", sa.String(64), nullable=True),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("exchange_staged")
