"""The console language each user chose.

Revision ID: 0013
Revises: 0011

``user_settings.locale`` holds the language of the review console chosen on the
settings page (``en`` or ``fr``, see :mod:`sentinelle.console.i18n`); NULL means
never chosen: the console then speaks the browser's last choice, else English.
Mirrored by :data:`sentinelle.review.tables.user_settings`. (No revision 0012:
that number was reserved for a table that was not needed.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("user_settings", sa.Column("locale", sa.String(16), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite rebuilds the table where it cannot drop a column in place
    with op.batch_alter_table("user_settings") as batch:
        batch.drop_column("locale")
