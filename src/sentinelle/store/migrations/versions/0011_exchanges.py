"""Live hash exchanges and Sentinelle-to-Sentinelle sharing (issue 11).

Revision ID: 0011
Revises: 0010

Mirrored by :mod:`sentinelle.exchanges.tables` (see that module for what each
table holds). Credentials are never stored: ``exchanges.credential_ref`` names an
environment variable or a file.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=False), nullable=nullable)


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "exchanges",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("credential_ref", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=True),
        _count("checkpoint_version"),
        _ts("progress_at"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("fetch_owner", sa.String(200), nullable=True),
        _ts("fetch_lease_until"),
        _ts("last_fetch_started_at"),
        _ts("last_fetch_ok_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("last_error_at"),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
        _count("records_seen"),
        _count("entries_added"),
        _count("entries_deleted"),
        _count("unknown_types"),
        _count("skipped_tombstoned"),
        _count("malformed"),
        _ts("created_at", nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "exchange_records",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("exchange_id", sa.BigInteger(), nullable=False),
        sa.Column("record_key", sa.String(255), nullable=False),
        sa.Column("signal_type", sa.String(16), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), nullable=True),
        _ts("updated_at", nullable=False),
        sa.UniqueConstraint("exchange_id", "record_key", "signal_type", name="uq_exchange_record"),
    )
    op.create_index(
        "ix_exchange_records_hash", "exchange_records", ["exchange_id", "signal_type", "hash"]
    )
    op.create_table(
        "exchange_quarantine",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("exchange_id", sa.BigInteger(), nullable=False),
        _ts("at", nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=True),
        sa.Column("body_sha256", sa.String(64), nullable=True),
        sa.Column("checkpoint", sa.Text(), nullable=True),
    )
    op.create_index("ix_exchange_quarantine_exchange_id", "exchange_quarantine", ["exchange_id"])
    op.create_table(
        "peer_feeds",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("bank_id", sa.Integer(), nullable=False, unique=True),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("expiry_days", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _ts("created_at", nullable=False),
    )
    op.create_table(
        "peer_feed_items",
        sa.Column("seq", BigId, primary_key=True),
        sa.Column("feed_id", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("signal_type", sa.String(16), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("op", sa.String(8), nullable=False),
        _ts("expires_at"),
        _ts("at", nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_peer_feed_items_feed", "peer_feed_items", ["feed_id", "seq"])
    op.create_index(
        "ix_peer_feed_items_hash", "peer_feed_items", ["feed_id", "signal_type", "hash"]
    )
    op.create_table(
        "peer_subscribers",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _ts("created_at", nullable=False),
    )
    op.create_table(
        "peer_opinions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("feed_id", sa.BigInteger(), nullable=False),
        sa.Column("subscriber_id", sa.BigInteger(), nullable=False),
        sa.Column("signal_type", sa.String(16), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("opinion", sa.String(16), nullable=False),
        _ts("at", nullable=False),
        sa.UniqueConstraint(
            "feed_id", "subscriber_id", "signal_type", "hash", name="uq_peer_opinion"
        ),
    )


def downgrade() -> None:
    for name in (
        "peer_opinions",
        "peer_subscribers",
        "peer_feed_items",
        "peer_feeds",
        "exchange_quarantine",
        "exchange_records",
        "exchanges",
    ):
        op.drop_table(name)
