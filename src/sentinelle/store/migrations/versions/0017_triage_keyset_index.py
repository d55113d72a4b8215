"""Triage: index the case's rows by id (keyset reads at 100,000+ files).

Revision ID: 0017
Revises: 0016

Mirrored by :mod:`sentinelle.triage.tables`. Triage reads a case's media, groups and
files in keyset chunks (``case_id = ? AND id > ? ORDER BY id LIMIT n``). With only
``(case_id, md5)`` / ``(case_id, media_id)`` / ``(case_id, rank)`` to choose from,
SQLite read every row of the case and sorted them once per chunk (quadratic in the
case size); ``(case_id, id)`` makes each chunk a range read.
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_triage_media_case_id", "triage_media"),
    ("ix_triage_files_case_id", "triage_files"),
    ("ix_triage_groups_case_id", "triage_groups"),
)


def upgrade() -> None:
    for name, table in INDEXES:
        op.create_index(name, table, ["case_id", "id"])


def downgrade() -> None:
    for name, table in INDEXES:
        op.drop_index(name, table_name=table)
