"""The bank store's tables, helpers and transactions, shared by its parts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from ..audit import record_event
from ..errors import BankError
from ..store.db import open_engine
from ..store.models import Bank, BankEntry, BankThreshold, ChangeLog, Tombstone

#: Key for ``pg_advisory_xact_lock`` serializing bank writes ("SNTLWRIT").
PG_WRITE_LOCK = 0x534E544C57524954
LOAD_BLOCK_ROWS = 250_000  # rows decoded at a time by load_signal
SQLITE_IMPORT_CACHE_KIB = 512 * 1024  # page cache during bulk imports (allocated lazily)
OPS = ("add", "update", "delete", "disable", "enable")
UPDATABLE_FIELDS = (
    "media_ref",
    "source_org",
    "external_id",
    "category",
    "note",
    "enabled",
    "disabled_until",
    "series",
    "victim_identified",
    "offender_identified",
    "is_distributed",
)

_ENTRY_COLS = (
    "bank_id",
    "signal_type",
    "hash",
    "variant",
    "media_ref",
    "source_org",
    "external_id",
    "category",
    "added_at",
    "enabled",
    "disabled_until",
    "note",
    "series",
    "victim_identified",
    "offender_identified",
    "is_distributed",
)


def _naive_utc(dt: datetime | None) -> datetime | None:
    return None if dt is None else dt.astimezone(UTC).replace(tzinfo=None)


def _sqlite_time(dt: datetime | None) -> str | None:
    """The text form SQLAlchemy's SQLite DATETIME stores (sortable, naive UTC)."""
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


E = BankEntry.__table__
B = Bank.__table__
T = Tombstone.__table__
TH = BankThreshold.__table__
CL = ChangeLog.__table__


class StoreBase:
    """Engine and transactions; every part of :class:`~sentinelle.banks.BankStore` builds on it."""

    def __init__(self, engine_or_url: Engine | str | None = None) -> None:
        if isinstance(engine_or_url, Engine):
            self.engine = engine_or_url
        else:
            self.engine = open_engine(engine_or_url)
        self._dialect = self.engine.dialect.name

    # ------------------------------------------------------------ transactions
    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A serialized write transaction (committed on success)."""
        with self.engine.connect() as conn:
            if self._dialect == "sqlite":
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                if self._dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_WRITE_LOCK})
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def _log(
        self, conn: Connection, bank_id: int, entry_id: int | None, op: str, at: datetime
    ) -> None:
        conn.execute(insert(CL), [{"bank_id": bank_id, "entry_id": entry_id, "op": op, "at": at}])

    @staticmethod
    def _audit(
        conn: Connection, actor: str, action: str, target: str, details: dict[str, Any]
    ) -> None:
        """One audit row in the write transaction ``conn`` (see the module notes)."""
        record_event(conn, actor=actor, action=action, target=target, details=details)

    def _setting_changed(
        self, conn: Connection, actor: str, bank: str, setting: str, old: Any, new: Any
    ) -> None:
        """Audit ``config.change`` of one bank setting (nothing when unchanged)."""
        if old != new:
            self._audit(
                conn,
                actor,
                "config.change",
                f"bank:{bank}",
                {"bank": bank, "setting": setting, "old": old, "new": new},
            )

    def _bank_id(self, conn: Connection, name: str) -> int:
        bid = conn.execute(select(B.c.id).where(B.c.name == name)).scalar()
        if bid is None:
            raise BankError(f"no bank named {name!r}", code="unknown_bank")
        return int(bid)

    def _insert(self):  # type: ignore[no-untyped-def]
        return (pg_dialect if self._dialect == "postgresql" else sqlite_dialect).insert
