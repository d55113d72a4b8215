"""Atomic, idempotent bulk imports of hash files and exports to any format."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from sqlalchemy import (
    Connection,
    bindparam,
    func,
    select,
    text,
)

from ..errors import BankImportError, InvalidHashError, LineError
from ..formats import get_format
from ..formats._io import DEFAULT_INPUT_LIMITS, InputLimits
from ..formats.entry import (
    EntryIn,
    normalize_entry,
)
from ..store.models import UTCDateTime, utcnow
from ._base import (
    _ENTRY_COLS,
    SQLITE_IMPORT_CACHE_KIB,
    E,
    StoreBase,
    T,
    _naive_utc,
    _sqlite_time,
)
from .records import (
    ImportReport,
)


class BankImports(StoreBase):
    """Imports and exports of :class:`~sentinelle.banks.BankStore`."""

    # ----------------------------------------------------------------- imports
    def add_entries(
        self, name: str, entries: Iterable[EntryIn], *, actor: str = "system"
    ) -> ImportReport:
        """Validate all ``entries``, then add them in one transaction.

        Raises :class:`BankImportError` (nothing written) if any entry is bad;
        line numbers are ``entry.line`` or the 1-based position in ``entries``.
        Audited as ``bank.import`` (counts only) in the same transaction.
        """
        return self._add_entries(name, entries, actor=actor, source="entries")

    def _add_entries(
        self, name: str, entries: Iterable[EntryIn], *, actor: str, source: str
    ) -> ImportReport:
        """:meth:`add_entries`; ``source`` (``"entries"`` or a format name) goes in
        the audit details."""
        valid: dict[tuple[str, str, str], EntryIn] = {}
        bad: list[LineError] = []
        total = 0
        for i, e in enumerate(entries, start=1):
            total += 1
            line = e.line if e.line is not None else i
            try:
                n = normalize_entry(e)
            except InvalidHashError as err:
                bad.append(LineError(line, err.message))
                continue
            except (ValueError, TypeError, AttributeError) as err:
                bad.append(LineError(line, str(err)))
                continue
            valid.setdefault(n.key, n)
        if bad:
            raise BankImportError(f"import rejected: {len(bad)} bad entries, nothing imported", bad)
        report = ImportReport(total=total, duplicates=total - len(valid))
        now = utcnow()
        with self._write() as conn:
            bid = self._bank_id(conn, name)
            tomb = {
                (st, h)
                for st, h in conn.execute(
                    select(T.c.signal_type, T.c.hash).where(T.c.bank_id == bid)
                )
            }
            rows: list[tuple[Any, ...]] = []
            for e in valid.values():
                if (e.signal_type, e.hash) in tomb:
                    report.skipped_tombstoned += 1
                    continue
                rows.append(
                    (
                        bid,
                        e.signal_type,
                        e.hash,
                        e.variant,
                        e.media_ref,
                        e.source_org,
                        e.external_id,
                        e.category,
                        e.added_at or now,
                        e.enabled,
                        e.disabled_until,
                        e.note,
                        e.series,
                        e.victim_identified,
                        e.offender_identified,
                        e.is_distributed,
                    )
                )
            # key order makes unique-index inserts nearly sequential (~2x faster
            # than random order on SQLite); new ids follow that order
            rows.sort(key=itemgetter(1, 2, 3))
            report.added = self._bulk_insert(conn, bid, rows, now)
            report.duplicates += len(rows) - report.added
            self._audit(
                conn,
                actor,
                "bank.import",
                f"bank:{name}",
                {"bank": name, "bank_id": bid, "source": source, **report.to_dict()},
            )
        return report

    def _bulk_insert(
        self, conn: Connection, bank_id: int, rows: list[tuple[Any, ...]], now: datetime
    ) -> int:
        """Insert ``rows`` (in ``_ENTRY_COLS`` order) skipping existing keys; log an
        ``add`` change per inserted row; return how many were inserted.

        Runs at driver level (SQLite ``executemany``, PostgreSQL ``COPY`` into a
        temporary table, then one ``INSERT ... SELECT ... ON CONFLICT DO
        NOTHING``): 10-20x faster than ORM or Core row-by-row processing. We hold
        the write lock, so every entry id above the previous maximum is ours.
        """
        if not rows:
            return 0
        before = conn.execute(select(func.coalesce(func.max(E.c.id), 0))).scalar_one()
        cols = ", ".join(_ENTRY_COLS)
        raw = conn.connection.driver_connection
        if self._dialect == "postgresql":
            to_naive = _naive_utc
            with raw.cursor() as cur:  # type: ignore[union-attr]
                cur.execute(
                    "CREATE TEMP TABLE _entry_import (ord bigint, bank_id integer, "
                    "signal_type varchar(16), hash varchar(64), variant varchar(64), "
                    "media_ref text, source_org text, external_id text, category text, "
                    "added_at timestamp, enabled boolean, disabled_until timestamp, note text, "
                    "series text, victim_identified boolean, offender_identified boolean, "
                    "is_distributed boolean) "
                    "ON COMMIT DROP"
                )
                with cur.copy(f"COPY _entry_import (ord, {cols}) FROM STDIN") as cp:
                    for i, r in enumerate(rows):
                        cp.write_row((i, *r[:8], to_naive(r[8]), r[9], to_naive(r[10]), *r[11:]))
                cur.execute(
                    f"INSERT INTO bank_entries ({cols}) SELECT {cols} FROM _entry_import "
                    "ORDER BY ord ON CONFLICT (bank_id, signal_type, hash, variant) DO NOTHING"
                )
                cur.execute("DROP TABLE _entry_import")
        else:
            now_text = _sqlite_time(now)

            def to_text(dt: datetime | None) -> str | None:
                return now_text if dt is now else _sqlite_time(dt)

            marks = ", ".join("?" * len(_ENTRY_COLS))
            cur = raw.cursor()  # type: ignore[union-attr]
            try:
                # a big page cache keeps random unique-index inserts in memory
                # (the default 2 MB spills pages to the WAL constantly)
                old_cache = cur.execute("PRAGMA cache_size").fetchone()[0]
                cur.execute(f"PRAGMA cache_size = {-SQLITE_IMPORT_CACHE_KIB}")
                cur.executemany(
                    f"INSERT INTO bank_entries ({cols}) VALUES ({marks}) "
                    "ON CONFLICT (bank_id, signal_type, hash, variant) DO NOTHING",
                    (
                        (*r[:8], to_text(r[8]), 1 if r[9] else 0, to_text(r[10]), *r[11:])
                        for r in rows
                    ),
                )
                cur.execute(f"PRAGMA cache_size = {int(old_cache)}")
            finally:
                cur.close()
        res = conn.execute(
            text(
                "INSERT INTO change_log (bank_id, entry_id, op, at) "
                "SELECT bank_id, id, 'add', :at FROM bank_entries "
                "WHERE id > :before AND bank_id = :bid ORDER BY id"
            ).bindparams(bindparam("at", type_=UTCDateTime())),
            {"at": now, "before": before, "bid": bank_id},
        )
        return int(res.rowcount)

    def import_file(
        self,
        name: str,
        path_or_stream: str | Path | IO[Any],
        format: str,
        limits: InputLimits = DEFAULT_INPUT_LIMITS,
        *,
        actor: str = "system",
    ) -> ImportReport:
        """Parse a whole file in ``format`` (see :data:`sentinelle.formats.FORMATS`),
        then :meth:`add_entries`. Nothing is written unless every line is valid."""
        fmt = get_format(format)
        self.get_bank(name)  # fail fast on an unknown bank
        kwargs: dict[str, Any] = {"limits": limits}
        stats = None
        if hasattr(fmt, "ParseStats"):  # vics, icse: count hashes they do not store
            stats = fmt.ParseStats()
            kwargs["stats"] = stats
        if isinstance(path_or_stream, str | Path):
            try:
                with open(path_or_stream, "rb") as f:
                    entries = fmt.parse(f, **kwargs)
            except OSError as e:
                raise BankImportError(f"cannot read {path_or_stream}: {e.strerror}") from None
        else:
            entries = fmt.parse(path_or_stream, **kwargs)
        report = self._add_entries(name, entries, actor=actor, source=format)
        if stats is not None:
            report.ignored = stats.ignored_hashes
        return report

    def export(
        self, name: str, format: str, out_stream: IO[Any], signal_type: str | None = None
    ) -> int:
        """Write the bank's entries (all, including disabled) in ``format``;
        returns how many the format could represent and wrote."""
        fmt = get_format(format)
        self.get_bank(name)
        return int(
            fmt.write((e.to_entry_in() for e in self.iter_entries(name, signal_type)), out_stream)
        )
