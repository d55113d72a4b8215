"""SQLAlchemy Core description of the evidence tables (created by migration 0006).

The Alembic migration is the source of truth; keep these in sync with it.
``case_id`` is a plain integer (no foreign key): evidence follows its holds,
not the life of the review tables.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ..store.models import UTCDateTime

metadata = MetaData()
BigId = BigInteger().with_variant(Integer(), "sqlite")

evidence_keys = Table(
    "evidence_keys",
    metadata,
    Column("case_id", BigInteger, primary_key=True, autoincrement=False),
    Column("wrapped_key", LargeBinary, nullable=True),  # NULL once crypto-shredded
    Column("master_key_id", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("destroyed_at", UTCDateTime, nullable=True),
)

evidence_blobs = Table(
    "evidence_blobs",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("case_id", BigInteger, nullable=False, index=True),
    Column("media_type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("nonce", LargeBinary, nullable=True),
    Column("ciphertext", LargeBinary, nullable=True),
    Column("filename_ct", LargeBinary, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("destroyed_at", UTCDateTime, nullable=True),
    sqlite_autoincrement=True,
)

preservation_holds = Table(
    "preservation_holds",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("case_id", BigInteger, nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # "retention" | "legal"
    Column("jurisdiction", String(16), nullable=True),
    Column("report_id", BigInteger, nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),  # NULL: until released
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("reason", Text, nullable=True),
    Column("released_at", UTCDateTime, nullable=True),
    Column("released_by", String(200), nullable=True),
    Column("release_reason", Text, nullable=True),
    UniqueConstraint(
        "kind", "case_id", "report_id", "jurisdiction", name="uq_preservation_holds_report"
    ),
    sqlite_autoincrement=True,
)

deletion_log = Table(
    "deletion_log",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("case_id", BigInteger, nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # "scheduled" | "request" | "forced"
    Column("reason", Text, nullable=False),
    Column("proof", Text, nullable=False),  # canonical JSON
    Column("proof_sha256", String(64), nullable=False),
    sqlite_autoincrement=True,
)
