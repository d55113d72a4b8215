"""SQLAlchemy Core tables of CyberTipline reporting (migration ``0007_cybertip`` is the truth).

* ``reports`` -- one row per report: its state (see :mod:`.lifecycle`), the exact
  ``<report>`` XML that is (or was) sent, NCMEC's ``reportId`` once opened, and the
  expiry clock (``opened_at``, ``last_change_at``, ``expires_at``).
* ``report_files`` -- the files of a report: their description (``FileInput`` as
  JSON), the SHA-256 of the bytes as received, where the encrypted bytes live
  (``blob_id`` in the evidence store), NCMEC's ``fileId`` after upload and the
  upload / fileinfo progress. File bytes are never stored here.
* ``report_requests`` -- a journal of every API call: written *before* the call
  (``status = 'sending'``) and completed after it, so a crash mid-submit leaves a
  trace and the report is never submitted twice blindly.
* ``receipts`` -- the ``reportDoneResponse`` of a finished report (the legal receipt).

Timestamps are timezone-aware UTC; :class:`UTCDateTime` also makes SQLite (which
stores no offset) hand back aware datetimes.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """``DateTime(timezone=True)`` that always stores and returns aware UTC datetimes."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


metadata = sa.MetaData()

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("case_id", sa.BigInteger(), nullable=True, index=True),
    sa.Column("supersedes_id", sa.BigInteger(), nullable=True),
    sa.Column("environment", sa.String(16), nullable=False),
    sa.Column("state", sa.String(24), nullable=False),
    sa.Column("report_xml", sa.Text(), nullable=False),
    sa.Column("ncmec_report_id", sa.BigInteger(), nullable=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("validated_at", UTCDateTime(), nullable=True),
    sa.Column("submit_started_at", UTCDateTime(), nullable=True),
    sa.Column("opened_at", UTCDateTime(), nullable=True),
    sa.Column("last_change_at", UTCDateTime(), nullable=True),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("retracted_at", UTCDateTime(), nullable=True),
    sa.Column("retract_reason", sa.String(200), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.UniqueConstraint("environment", "ncmec_report_id", name="uq_reports_env_ncmec_id"),
    sqlite_autoincrement=True,
)
sa.Index("ix_reports_state_expires", reports.c.state, reports.c.expires_at)

report_files = sa.Table(
    "report_files",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("report_id", BigId, sa.ForeignKey("reports.id", ondelete="CASCADE"), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("info_json", sa.Text(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=True),
    sa.Column("media_type", sa.String(100), nullable=True),
    sa.Column("blob_id", sa.BigInteger(), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("ncmec_file_id", sa.String(200), nullable=True),
    sa.Column("upload_md5", sa.String(64), nullable=True),
    sa.Column("uploaded_at", UTCDateTime(), nullable=True),
    sa.Column("described_at", UTCDateTime(), nullable=True),
    sa.UniqueConstraint("report_id", "position", name="uq_report_files_position"),
    sqlite_autoincrement=True,
)

report_requests = sa.Table(
    "report_requests",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("report_id", BigId, sa.ForeignKey("reports.id", ondelete="CASCADE"), nullable=False),
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
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sqlite_autoincrement=True,
)
sa.Index("ix_report_requests_report", report_requests.c.report_id, report_requests.c.id)

receipts = sa.Table(
    "receipts",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("report_id", BigId, sa.ForeignKey("reports.id", ondelete="CASCADE"), nullable=False),
    sa.Column("environment", sa.String(16), nullable=False),
    sa.Column("ncmec_report_id", sa.BigInteger(), nullable=False),
    sa.Column("file_ids", sa.Text(), nullable=False),
    sa.Column("response_xml", sa.Text(), nullable=True),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("report_id", name="uq_receipts_report"),
    sqlite_autoincrement=True,
)
