"""Durable jobs, per-bank actions, flood-guard counters and alerts.

Revision ID: 0003
Revises: 0002

Tables:

* ``jobs`` -- the durable job queue (imports, webhook deliveries...). A job is
  ``pending`` until a worker claims it (``running`` with a lease in
  ``locked_until``), then ``done``, or ``dead`` after ``max_attempts`` failures
  (the dead-letter table is simply ``status = 'dead'``). ``dedupe_key`` makes
  enqueueing idempotent.
* ``bank_actions`` -- per-bank action settings: webhook URLs and secret,
  quarantine flag, flood-guard overrides.
* ``action_globals`` -- one row (id 1) with the global flood-guard defaults.
* ``flood_counters`` -- match counts per (entry, window length, window start),
  incremented atomically by every instance; ``tripped`` marks the window whose
  count paused the entry (so only one instance raises the alert).
* ``alerts`` -- operator alerts (kind ``flood_guard``...), acknowledged or not.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="8"),
        sa.Column("run_at", sa.DateTime(), nullable=False),
        sa.Column("locked_by", sa.String(200), nullable=True),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("dedupe_key", name="uq_jobs_dedupe_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_jobs_status_run_at", "jobs", ["status", "run_at"])
    op.create_index("ix_jobs_status_locked_until", "jobs", ["status", "locked_until"])
    op.create_table(
        "bank_actions",
        sa.Column(
            "bank_id",
            sa.Integer(),
            sa.ForeignKey("banks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("webhook_urls", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("webhook_secret", sa.Text(), nullable=True),
        sa.Column("quarantine", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("flood_max", sa.Integer(), nullable=True),
        sa.Column("flood_window_s", sa.Integer(), nullable=True),
        sa.Column("flood_pause_s", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "action_globals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("flood_max", sa.Integer(), nullable=False),
        sa.Column("flood_window_s", sa.Integer(), nullable=False),
        sa.Column("flood_pause_s", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "flood_counters",
        sa.Column("entry_id", sa.BigInteger(), primary_key=True),
        sa.Column("window_s", sa.Integer(), primary_key=True),
        sa.Column("window_start", sa.BigInteger(), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("tripped", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_flood_counters_window_start", "flood_counters", ["window_start"])
    op.create_table(
        "alerts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("bank", sa.String(200), nullable=True),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("window_s", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("acknowledged", sa.Boolean(), nullable=False, server_default=sa.false()),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_created_at", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_flood_counters_window_start", table_name="flood_counters")
    op.drop_table("flood_counters")
    op.drop_table("action_globals")
    op.drop_table("bank_actions")
    op.drop_index("ix_jobs_status_locked_until", table_name="jobs")
    op.drop_index("ix_jobs_status_run_at", table_name="jobs")
    op.drop_table("jobs")
