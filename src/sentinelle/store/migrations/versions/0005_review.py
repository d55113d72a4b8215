"""Review console: users, sessions, cases, items, decisions, exposure, FP stats.

Revision ID: 0005
Revises: 0004

Mirrored by :mod:`sentinelle.review.tables` (keep both in sync); see that module
for what each table holds. ``cases.open_key`` equals ``account_id`` while a case
is not closed and is NULL afterwards, so its unique constraint allows exactly one
open case per platform account on every database. ``case_items.media_blob_id``
points to the evidence store of revision 0006 without a foreign key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("grants", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("totp_secret", sa.String(64), nullable=True),
        sa.Column("totp_enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("last_login_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "user_settings",
        sa.Column(
            "user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("blur_level", sa.Integer(), nullable=False, server_default="24"),
        sa.Column("grayscale", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("mute_audio", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("daily_cap", sa.Integer(), nullable=True),
        sa.Column("break_after_minutes", sa.Integer(), nullable=True),
        sa.Column("break_after_items", sa.Integer(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "user_sessions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "review_config",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=True),
    )
    op.create_table(
        "cases",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("account_id", sa.String(256), nullable=False),
        # = account_id while the case is not closed, NULL once closed: the unique
        # constraint then allows one open case per account (NULLs never collide).
        sa.Column("open_key", sa.String(256), nullable=True, unique=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("assigned_to", BigId, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_signal_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Index("ix_cases_status_priority", "status", "priority"),
        sa.Index("ix_cases_account_id", "account_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "case_items",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("case_id", BigId, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("bank", sa.String(200), nullable=True),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("media_sha256", sa.String(64), nullable=True),
        # evidence_blobs lives in a later migration (0006): no FK, by the contract.
        sa.Column("media_blob_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Index("ix_case_items_case_id", "case_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "decisions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("case_id", BigId, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "item_id", BigId, sa.ForeignKey("case_items.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("reviewer_id", BigId, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("approver_id", BigId, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("approver_notes", sa.Text(), nullable=True),
        sa.Column("approved_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Index("ix_decisions_item_id", "item_id"),
        sa.Index("ix_decisions_state", "state"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "case_passes",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("case_id", BigId, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("from_user_id", BigId, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("to_user_id", BigId, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "exposure_counters",
        sa.Column(
            "user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("day", sa.String(10), primary_key=True),  # UTC date, YYYY-MM-DD
        sa.Column("items_viewed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("reveals", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("since_break_items", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("since_break_started_at", TS, nullable=True),
        sa.Column("last_break_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "fp_stats",
        sa.Column("bank", sa.String(200), primary_key=True),
        sa.Column("entry_id", sa.BigInteger(), primary_key=True),
        sa.Column("rejections", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("confirmations", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_rejected_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fp_stats")
    op.drop_table("exposure_counters")
    op.drop_table("case_passes")
    op.drop_table("decisions")
    op.drop_table("case_items")
    op.drop_table("cases")
    op.drop_table("review_config")
    op.drop_table("user_sessions")
    op.drop_table("user_settings")
    op.drop_table("users")
