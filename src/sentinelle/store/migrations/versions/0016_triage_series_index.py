"""Triage: index the groups of a series (issue 12 at 100,000 files).

Revision ID: 0016
Revises: 0015

Mirrored by :mod:`sentinelle.triage.tables`. ``series_groups`` (reports, VICS export,
console) asks for one series' groups; without ``(case_id, series_id)`` it scanned the
case's groups once per series.
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_triage_groups_series", "triage_groups", ["case_id", "series_id"])


def downgrade() -> None:
    op.drop_index("ix_triage_groups_series", table_name="triage_groups")
