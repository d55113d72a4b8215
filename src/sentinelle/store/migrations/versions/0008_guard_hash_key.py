"""Per-installation key of the guard's prompt HMACs.

Revision ID: 0008
Revises: 0007

``guard_hash_key`` holds at most one row (``id = 1``): 32 random bytes (hex) generated
the first time the attempt log needs them, unless the operator supplies the key in
``SENTINELLE_GUARD_HASH_KEY``. ``guard_attempts.prompt_sha256`` and the ``guard_block``
case summaries keep their name but hold ``HMAC-SHA256(key, prompt)``: a plain SHA-256 of
a term-level prompt could be recovered by hashing combinations of lexicon words. Mirrored
by :data:`sentinelle.guard.tables.guard_hash_key`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guard_hash_key",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("secret", sa.String(64), nullable=False),  # 32 bytes, hex
        sa.Column("created_at", sa.DateTime(), nullable=False),  # naive UTC, as 0004
        sa.CheckConstraint("id = 1", name="ck_guard_hash_key_single_row"),
    )


def downgrade() -> None:
    op.drop_table("guard_hash_key")
