"""Forced password change for console accounts.

Revision ID: 0009
Revises: 0008

``users.must_change_password`` is true while an account still has a password that
somebody else chose: a temporary one issued by an administrator (console users page,
``sentinelle user create/passwd --temporary``). While it is set, the console lets the
user reach only the change-password page and log out. Changing one's own password
clears it. Mirrored by :data:`sentinelle.review.tables.users`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    # batch mode: SQLite rebuilds the table where it cannot drop a column in place
    with op.batch_alter_table("users") as batch:
        batch.drop_column("must_change_password")
