"""Database tables for hash banks (SQLAlchemy 2 typed declarative).

The schema itself is created and evolved **only** by the Alembic migrations in
``sentinelle/store/migrations`` (see :func:`sentinelle.store.db.open_engine`);
these classes describe it for queries. Keep the two in sync: a model change
needs a new migration.

Tables:

* ``banks`` -- a named hash bank, enabled or not.
* ``bank_thresholds`` -- per-bank, per-signal max match distance (PDQ/vPDQ
  Hamming bits; 0 for exact hashes). Missing rows mean the defaults in
  of the signal types (``SignalType.default_threshold``,
  :mod:`sentinelle.signals.signal_types`).
* ``bank_entries`` -- one hash of one signal type; ``variant`` distinguishes the
  plain hash from augmented enrollment views (e.g. ``crop10``) of the same media
  (shared ``media_ref``). Unique on (bank, signal, hash, variant).
* ``tombstones`` -- hashes deleted from a bank; imports skip them so a re-import
  does not resurrect deleted entries.
* ``change_log`` -- append-only, one row per entry write (and per bank-level
  change, with ``entry_id`` NULL), written in the same transaction. Its
  monotonically increasing ``seq`` lets the matcher update its indexes
  incrementally (:meth:`BankStore.changes_since`).

All timestamps are stored as naive UTC and returned as aware UTC datetimes.
Ids of banks, entries and changes are never reused (SQLite ``AUTOINCREMENT``;
PostgreSQL sequences): reports and the change log may cite them safely.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def Key(n: int) -> String:  # noqa: N802 - reads like a type
    """Short ASCII key text; "C" collation on PostgreSQL (see migration 0001)."""
    return String(n).with_variant(String(n, collation="C"), "postgresql")  # type: ignore[return-value]


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC (SQLite has no time zones)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Bank(Base):
    __tablename__ = "banks"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BankThreshold(Base):
    __tablename__ = "bank_thresholds"

    bank_id: Mapped[int] = mapped_column(
        ForeignKey("banks.id", ondelete="CASCADE"), primary_key=True
    )
    signal_type: Mapped[str] = mapped_column(Key(16), primary_key=True)
    max_distance: Mapped[int] = mapped_column(Integer)


class BankEntry(Base):
    __tablename__ = "bank_entries"
    __table_args__ = (
        UniqueConstraint("bank_id", "signal_type", "hash", "variant", name="uq_entry"),
        Index("ix_entries_media_ref", "media_ref"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"))
    signal_type: Mapped[str] = mapped_column(Key(16))
    hash: Mapped[str] = mapped_column(Key(64))
    variant: Mapped[str] = mapped_column(Key(64), default="plain")
    media_ref: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_org: Mapped[str | None] = mapped_column(Text, nullable=True)
    external_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    category: Mapped[str | None] = mapped_column(Text, nullable=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # VICS / INTERPOL ICSE victim-identification facts (migration 0014); NULL = not stated
    series: Mapped[str | None] = mapped_column(Text, nullable=True)
    victim_identified: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    offender_identified: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    is_distributed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class Tombstone(Base):
    __tablename__ = "tombstones"
    __table_args__ = (UniqueConstraint("bank_id", "signal_type", "hash", name="uq_tombstone"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"))
    signal_type: Mapped[str] = mapped_column(Key(16))
    hash: Mapped[str] = mapped_column(Key(64))
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")


class ChangeLog(Base):
    """``op``: add / update / delete / disable / enable. ``entry_id`` NULL means a
    bank-level change (bank deleted, enabled/disabled, threshold changed): reload
    that bank. No foreign keys, so the log outlives what it describes."""

    __tablename__ = "change_log"
    __table_args__ = {"sqlite_autoincrement": True}

    seq: Mapped[int] = mapped_column(BigId, primary_key=True)
    bank_id: Mapped[int] = mapped_column(Integer)
    entry_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    op: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
