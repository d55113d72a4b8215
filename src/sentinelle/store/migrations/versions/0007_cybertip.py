"""CyberTipline reports, requests and receipts.

Revision ID: 0007
Revises: 0006

Tables (mirrored by ``sentinelle.reports.tables``):

* ``reports`` -- a report's state machine row: draft XML, NCMEC ``reportId``,
  expiry clock (``opened_at``, ``last_change_at``, ``expires_at``).
* ``report_files`` -- per-file description, SHA-256 of the bytes as received,
  evidence blob id, NCMEC ``fileId`` and upload / fileinfo progress (no bytes).
* ``report_requests`` -- journal of every API call, written before and completed
  after the call (never-submit-twice bookkeeping).
* ``receipts`` -- the ``reportDoneResponse`` of each finished report.

``case_id`` carries no foreign key: a report outlives the retention of its case.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("supersedes_id", sa.BigInteger(), nullable=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("report_xml", sa.Text(), nullable=False),
        sa.Column("ncmec_report_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at", False),
        _ts("updated_at", False),
        _ts("validated_at"),
        _ts("submit_started_at"),
        _ts("opened_at"),
        _ts("last_change_at"),
        _ts("expires_at"),
        _ts("finished_at"),
        _ts("retracted_at"),
        sa.Column("retract_reason", sa.String(200), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.UniqueConstraint("environment", "ncmec_report_id", name="uq_reports_env_ncmec_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_reports_case_id", "reports", ["case_id"])
    op.create_index("ix_reports_state_expires", "reports", ["state", "expires_at"])
    op.create_table(
        "report_files",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "report_id", BigId, sa.ForeignKey("reports.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("info_json", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("media_type", sa.String(100), nullable=True),
        sa.Column("blob_id", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("ncmec_file_id", sa.String(200), nullable=True),
        sa.Column("upload_md5", sa.String(64), nullable=True),
        _ts("uploaded_at"),
        _ts("described_at"),
        sa.UniqueConstraint("report_id", "position", name="uq_report_files_position"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "report_requests",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "report_id", BigId, sa.ForeignKey("reports.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("report_file_id", sa.BigInteger(), nullable=True),
        sa.Column("endpoint", sa.String(16), nullable=False),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("response_description", sa.Text(), nullable=True),
        sa.Column("ncmec_report_id", sa.BigInteger(), nullable=True),
        sa.Column("ncmec_file_id", sa.String(200), nullable=True),
        sa.Column("server_request_id", sa.String(200), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        _ts("started_at", False),
        _ts("completed_at"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_report_requests_report", "report_requests", ["report_id", "id"])
    op.create_table(
        "receipts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "report_id", BigId, sa.ForeignKey("reports.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("ncmec_report_id", sa.BigInteger(), nullable=False),
        sa.Column("file_ids", sa.Text(), nullable=False),
        sa.Column("response_xml", sa.Text(), nullable=True),
        _ts("received_at", False),
        sa.UniqueConstraint("report_id", name="uq_receipts_report"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("receipts")
    op.drop_index("ix_report_requests_report", table_name="report_requests")
    op.drop_table("report_requests")
    op.drop_table("report_files")
    op.drop_index("ix_reports_state_expires", table_name="reports")
    op.drop_index("ix_reports_case_id", table_name="reports")
    op.drop_table("reports")
