"""Investigator triage cases (issue 12) and VICS/ICSE victim fields on bank entries.

Revision ID: 0014
Revises: 0013

Mirrored by :mod:`sentinelle.triage.tables` (see that module for what each table
holds). ``bank_entries`` gains the VICS/ICSE fields ``series``, ``victim_identified``,
``offender_identified`` and ``is_distributed`` (NULL: unknown), so known material
splits into identified and unidentified victims.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=False), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "triage_cases",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "triage_media",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("md5", sa.String(32), nullable=True),
        sa.Column("sha1", sa.String(40), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(16), nullable=True),
        sa.Column("format", sa.String(16), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("pdq", sa.String(64), nullable=True),
        sa.Column("pdq_quality", sa.Integer(), nullable=True),
        sa.Column("vpdq", sa.Text(), nullable=True),
        sa.Column("meta", sa.Text(), nullable=True),
        sa.Column("provenance_verdict", sa.String(32), nullable=True),
        sa.Column("provenance_confidence", sa.Float(), nullable=True),
        sa.Column("provenance", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("group_id", sa.BigInteger(), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.UniqueConstraint("case_id", "sha256", name="uq_triage_media_sha256"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_triage_media_group", "triage_media", ["case_id", "group_id"])
    op.create_index("ix_triage_media_md5", "triage_media", ["case_id", "md5"])
    op.create_table(
        "triage_files",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("path_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("member_path", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("media_id", sa.BigInteger(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        _ts("hashed_at"),
        sa.UniqueConstraint("case_id", "path_key", name="uq_triage_files_path"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_triage_files_media", "triage_files", ["case_id", "media_id"])
    op.create_table(
        "triage_groups",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("media_type", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("bank_category", sa.String(64), nullable=True),
        sa.Column("matches", sa.Text(), nullable=True),
        sa.Column("series_id", sa.BigInteger(), nullable=True),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("provenance_verdict", sa.String(32), nullable=True),
        sa.Column("n_media", sa.Integer(), nullable=False),
        sa.Column("n_files", sa.Integer(), nullable=False),
        sa.Column("representative_media_id", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("case_id", "key", name="uq_triage_groups_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_triage_groups_rank", "triage_groups", ["case_id", "rank"])
    op.create_table(
        "triage_series",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("imported", sa.Boolean(), nullable=False),
        sa.Column("n_groups", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("cues", sa.Text(), nullable=False),
        sa.UniqueConstraint("case_id", "key", name="uq_triage_series_key"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "triage_links",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("series_id", sa.BigInteger(), nullable=True),
        sa.Column("group_a", sa.BigInteger(), nullable=False),
        sa.Column("group_b", sa.BigInteger(), nullable=False),
        sa.Column("cue", sa.String(32), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_triage_links_series", "triage_links", ["case_id", "series_id"])
    op.create_table(
        "triage_reviews",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("bank", sa.String(200), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        _ts("at"),
        sa.Column("note", sa.Text(), nullable=True),
        sa.UniqueConstraint("case_id", "group_id", name="uq_triage_reviews_group"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("bank_entries") as b:
        b.add_column(sa.Column("series", sa.Text(), nullable=True))
        b.add_column(sa.Column("victim_identified", sa.Boolean(), nullable=True))
        b.add_column(sa.Column("offender_identified", sa.Boolean(), nullable=True))
        b.add_column(sa.Column("is_distributed", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bank_entries") as b:
        b.drop_column("is_distributed")
        b.drop_column("offender_identified")
        b.drop_column("victim_identified")
        b.drop_column("series")
    op.drop_table("triage_reviews")
    op.drop_index("ix_triage_links_series", table_name="triage_links")
    op.drop_table("triage_links")
    op.drop_table("triage_series")
    op.drop_index("ix_triage_groups_rank", table_name="triage_groups")
    op.drop_table("triage_groups")
    op.drop_index("ix_triage_files_media", table_name="triage_files")
    op.drop_table("triage_files")
    op.drop_index("ix_triage_media_md5", table_name="triage_media")
    op.drop_index("ix_triage_media_group", table_name="triage_media")
    op.drop_table("triage_media")
    op.drop_table("triage_cases")
