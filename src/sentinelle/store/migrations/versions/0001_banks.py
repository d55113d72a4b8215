"""Initial bank schema: banks, thresholds, entries, tombstones, change log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def Key(n: int) -> sa.types.TypeEngine:  # noqa: N802 - reads like a type
    """Short ASCII key text; byte-wise "C" collation on PostgreSQL (hex hashes
    need no locale rules, and C comparisons make index inserts much faster)."""
    return sa.String(n).with_variant(sa.String(n, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "banks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("name", name="uq_banks_name"),
        sqlite_autoincrement=True,  # ids are never reused (see models.py)
    )
    op.create_table(
        "bank_thresholds",
        sa.Column(
            "bank_id",
            sa.Integer(),
            sa.ForeignKey("banks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("signal_type", Key(16), primary_key=True),
        sa.Column("max_distance", sa.Integer(), nullable=False),
    )
    op.create_table(
        "bank_entries",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "bank_id",
            sa.Integer(),
            sa.ForeignKey("banks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("signal_type", Key(16), nullable=False),
        sa.Column("hash", Key(64), nullable=False),
        sa.Column("variant", Key(64), nullable=False, server_default="plain"),
        sa.Column("media_ref", sa.Text(), nullable=True),
        sa.Column("source_org", sa.Text(), nullable=True),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("disabled_until", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.UniqueConstraint("bank_id", "signal_type", "hash", "variant", name="uq_entry"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_entries_media_ref", "bank_entries", ["media_ref"])
    op.create_table(
        "tombstones",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "bank_id",
            sa.Integer(),
            sa.ForeignKey("banks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("signal_type", Key(16), nullable=False),
        sa.Column("hash", Key(64), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.UniqueConstraint("bank_id", "signal_type", "hash", name="uq_tombstone"),
    )
    op.create_table(
        "change_log",
        sa.Column("seq", BigId, primary_key=True),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("change_log")
    op.drop_table("tombstones")
    op.drop_index("ix_entries_media_ref", table_name="bank_entries")
    op.drop_table("bank_entries")
    op.drop_table("bank_thresholds")
    op.drop_table("banks")
