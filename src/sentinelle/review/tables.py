"""SQLAlchemy Core tables of the review console (migration ``0005``).

The Alembic migration ``0005_review.py`` is the source of truth; these ``Table``
objects mirror it so the service layer can build queries. Keep both in sync.

=====================  ==============================================================
table                  holds
=====================  ==============================================================
``users``              console accounts: argon2 hash, role, TOTP secret, lockout state,
                       forced password change (column added by migration ``0009``)
``user_settings``      per-user protection settings (blur, grayscale, mute, caps), language
``user_sessions``      login sessions; only the SHA-256 of the token is stored
``review_config``      console-wide settings (key -> JSON value), e.g. second review
``cases``              one open case per platform account (``open_key`` is unique)
``case_items``         signals attached to a case (hash match, guard block, ...)
``decisions``          confirm / reject per item, with optional second-review state
``case_passes``        a case handed to a colleague (no penalty, just a record)
``exposure_counters``  per-user, per-UTC-day items viewed and media reveals
``fp_stats``           per bank entry: how often reviewers rejected / confirmed it
=====================  ==============================================================

All timestamps are timezone-aware UTC (``DateTime(timezone=True)``); SQLite
hands them back naive, so readers pass them through :func:`aware`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from ..store.models import utcnow as utcnow  # re-exported: the review modules' clock

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
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
    # migration 0009: set while the password is a temporary one chosen by an admin
    sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("locked_until", TS, nullable=True),
    sa.Column("last_login_at", TS, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sqlite_autoincrement=True,
)

user_settings = sa.Table(
    "user_settings",
    metadata,
    sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("blur_level", sa.Integer(), nullable=False, server_default="24"),
    sa.Column("grayscale", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("mute_audio", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("daily_cap", sa.Integer(), nullable=True),
    sa.Column("break_after_minutes", sa.Integer(), nullable=True),
    sa.Column("break_after_items", sa.Integer(), nullable=True),
    sa.Column("updated_at", TS, nullable=False),
    # migration 0013: the console language chosen (None: never chosen)
    sa.Column("locale", sa.String(16), nullable=True),
)

user_sessions = sa.Table(
    "user_sessions",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("last_seen_at", TS, nullable=False),
    sa.Column("revoked_at", TS, nullable=True),
    sqlite_autoincrement=True,
)

review_config = sa.Table(
    "review_config",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=True),
)

cases = sa.Table(
    "cases",
    metadata,
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

case_items = sa.Table(
    "case_items",
    metadata,
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

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("case_id", BigId, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    sa.Column("item_id", BigId, sa.ForeignKey("case_items.id", ondelete="CASCADE"), nullable=False),
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

case_passes = sa.Table(
    "case_passes",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("case_id", BigId, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    sa.Column("from_user_id", BigId, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("to_user_id", BigId, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("reason", sa.Text(), nullable=False, server_default=""),
    sa.Column("created_at", TS, nullable=False),
    sqlite_autoincrement=True,
)

exposure_counters = sa.Table(
    "exposure_counters",
    metadata,
    sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),  # UTC date, YYYY-MM-DD
    sa.Column("items_viewed", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("reveals", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("since_break_items", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("since_break_started_at", TS, nullable=True),
    sa.Column("last_break_at", TS, nullable=True),
    sa.Column("updated_at", TS, nullable=False),
)

fp_stats = sa.Table(
    "fp_stats",
    metadata,
    sa.Column("bank", sa.String(200), primary_key=True),
    sa.Column("entry_id", sa.BigInteger(), primary_key=True),
    sa.Column("rejections", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("confirmations", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_rejected_at", TS, nullable=True),
    sa.Column("updated_at", TS, nullable=False),
)


def aware(dt: datetime | None) -> datetime | None:
    """``dt`` as timezone-aware UTC (SQLite returns naive datetimes)."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
