"""Guard attempt log and account escalation.

Revision ID: 0004
Revises: 0003

Tables (declared for queries in :mod:`sentinelle.guard.tables`; keep both in sync):

* ``guard_attempts`` -- every blocked prompt or image: account id (caller-supplied,
  nullable), source (``prompt``/``image``), decision, SHA-256 of the prompt and of the
  image, categories (JSON), policy id, the prompt text only when the operator enabled
  ``SENTINELLE_GUARD_LOG_PROMPTS``, time.
* ``guard_accounts`` -- per-account running total and ``flagged_until``; its row is
  the lock that serialises counting for one account.
* ``guard_flags`` -- an account crossed the escalation threshold (once per window);
  ``case_id`` points at the review case when one was opened (no foreign key: the
  cases table comes in a later migration).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "guard_attempts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("account_id", sa.String(200), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("prompt_sha256", sa.String(64), nullable=True),
        sa.Column("media_sha256", sa.String(64), nullable=True),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("policy_id", sa.String(100), nullable=True),
        sa.Column("prompt_text", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_guard_attempts_account_created", "guard_attempts", ["account_id", "created_at"]
    )
    op.create_index("ix_guard_attempts_created", "guard_attempts", ["created_at"])
    op.create_table(
        "guard_accounts",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("blocks_total", sa.Integer(), nullable=False),
        sa.Column("last_block_at", sa.DateTime(), nullable=False),
        sa.Column("flagged_until", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "guard_flags",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("blocks", sa.Integer(), nullable=False),
        sa.Column("window_s", sa.Integer(), nullable=False),
        sa.Column("first_block_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("signal", sa.String(16), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_guard_flags_account_created", "guard_flags", ["account_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_guard_flags_account_created", table_name="guard_flags")
    op.drop_table("guard_flags")
    op.drop_table("guard_accounts")
    op.drop_index("ix_guard_attempts_created", table_name="guard_attempts")
    op.drop_index("ix_guard_attempts_account_created", table_name="guard_attempts")
    op.drop_table("guard_attempts")
