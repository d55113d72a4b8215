"""Bulk loading of active entries as numpy columns for the match indexes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    Connection,
    select,
)

from ..errors import BankError
from ..formats.entry import (
    to_utc,
)
from ..signals.hashcodec import pdq_hexes_to_array
from ..signals.signal_types import (
    get_signal_type,
)
from ..store.models import utcnow
from ._base import (
    LOAD_BLOCK_ROWS,
    TH,
    B,
    StoreBase,
    _naive_utc,
    _sqlite_time,
)
from .records import (
    LoadedSignal,
    check_signal,
)


class BankLoading(StoreBase):
    """Index loading of :class:`~sentinelle.banks.BankStore`."""

    # ------------------------------------------------------------ bulk load
    def _fetch_active(
        self, conn: Connection, signal_type: str, bank_ids: list[int], now: datetime
    ) -> tuple[list[int], list[int], list[str], list[str], list[str | None]]:
        """``(ids, bank_ids, hashes, variants, media_refs)`` of active entries.

        Uses the raw driver cursor (no per-row SQLAlchemy processing).

        SQLite: the table is scanned in rowid order (``NOT INDEXED``): a
        sequential scan beats an index search plus a sort by id several times
        over when most rows match.
        """
        in_list = ", ".join(str(int(b)) for b in bank_ids)  # ints from the DB
        raw = conn.connection.driver_connection
        if self._dialect == "postgresql":
            sql = (
                "SELECT id, bank_id, hash, variant, media_ref FROM bank_entries "
                "WHERE signal_type = %s "
                f"AND bank_id IN ({in_list}) AND enabled "
                "AND (disabled_until IS NULL OR disabled_until <= %s) ORDER BY id"
            )
            params: tuple[Any, ...] = (signal_type, _naive_utc(now))
        else:
            sql = (
                "SELECT id, bank_id, hash, variant, media_ref FROM bank_entries NOT INDEXED "
                "WHERE signal_type = ? "
                f"AND bank_id IN ({in_list}) AND enabled "
                "AND (disabled_until IS NULL OR disabled_until <= ?) ORDER BY id"
            )
            params = (signal_type, _sqlite_time(now))
        cur = raw.cursor()  # type: ignore[union-attr]
        ids: list[int] = []
        bids: list[int] = []
        hexes: list[str] = []
        variants: list[str] = []
        refs: list[str | None] = []
        try:
            cur.execute(sql, params)
            while True:
                part = cur.fetchmany(500_000)
                if not part:
                    break
                a, b, c, d, e = zip(*part, strict=True)
                ids.extend(a)
                bids.extend(b)
                hexes.extend(c)
                variants.extend(d)
                refs.extend(e)
        finally:
            cur.close()
        return ids, bids, hexes, variants, refs

    def _fetch_packed(
        self, conn: Connection, signal_type: str, bank_ids: list[int], now: datetime
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | list[str], list[str], list[str | None]] | None:
        """Fast path of :meth:`_fetch_active`: the database packs each row into
        one fixed-width text ``<id:19 digits><bank_id:10 digits><hash>``, so the
        driver builds one string per row and numpy decodes the columns at once.
        Variants / media refs are fetched by a second query for the (usually
        few) rows where they are not ``plain`` / NULL. Returns None if the rows
        are not fixed-width (hand-edited data), to fall back to the plain path.
        """
        in_list = ", ".join(str(int(b)) for b in bank_ids)  # ints from the DB
        raw = conn.connection.driver_connection
        if self._dialect == "postgresql":
            packed = "lpad(id::text, 19, '0') || lpad(bank_id::text, 10, '0') || hash"
            where = (
                f"WHERE signal_type = %s AND bank_id IN ({in_list}) AND enabled "
                "AND (disabled_until IS NULL OR disabled_until <= %s)"
            )
            params: tuple[Any, ...] = (signal_type, _naive_utc(now))
            table = "bank_entries"
        else:
            packed = "printf('%019d%010d', id, bank_id) || hash"
            where = (
                f"WHERE signal_type = ? AND bank_id IN ({in_list}) AND enabled "
                "AND (disabled_until IS NULL OR disabled_until <= ?)"
            )
            params = (signal_type, _sqlite_time(now))
            table = "bank_entries NOT INDEXED"
        st = get_signal_type(signal_type)
        width = 29 + st.hex_length
        pdq_like = st.index != "exact"  # served by a PDQIndex: loaded as bit arrays
        p19 = 10 ** np.arange(18, -1, -1, dtype=np.int64)
        p10 = 10 ** np.arange(9, -1, -1, dtype=np.int64)
        id_parts: list[np.ndarray] = []
        bid_parts: list[np.ndarray] = []
        hash_parts: list[np.ndarray] = []
        hex_list: list[str] = []
        cur = raw.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(f"SELECT {packed} FROM {table} {where} ORDER BY id", params)
            while True:  # decode in blocks: bounded peak memory for 10M+ rows
                texts = [r[0] for r in cur.fetchmany(LOAD_BLOCK_ROWS)]
                if not texts:
                    break
                k = len(texts)
                blob = "".join(texts)
                if len(blob) != k * width or not blob.isascii():
                    return None
                arr = np.frombuffer(blob.encode("ascii"), dtype=np.uint8).reshape(k, width)
                digits = arr[:, :29].astype(np.int64) - 48
                if digits.min() < 0 or digits.max() > 9:
                    return None
                id_parts.append(digits[:, :19] @ p19)
                bid_parts.append((digits[:, 19:] @ p10).astype(np.int32))
                if pdq_like:
                    try:
                        raw_bytes = bytes.fromhex(arr[:, 29:].tobytes().decode("ascii"))
                    except ValueError:
                        return None
                    hash_parts.append(np.frombuffer(raw_bytes, dtype=np.uint8).reshape(k, 32))
                else:
                    hex_list.extend(t[29:] for t in texts)
            cur.execute(
                f"SELECT id, variant, media_ref FROM {table} {where} "
                "AND (variant <> 'plain' OR media_ref IS NOT NULL)",
                params,
            )
            extras = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
        finally:
            cur.close()
        ids = np.concatenate(id_parts) if id_parts else np.zeros(0, np.int64)
        bids = np.concatenate(bid_parts) if bid_parts else np.zeros(0, np.int32)
        n = len(ids)
        hashes: np.ndarray | list[str] = hex_list
        if pdq_like:
            hashes = np.concatenate(hash_parts) if hash_parts else np.zeros((0, 32), np.uint8)
        if extras:
            id_list = ids.tolist()
            got = [extras.get(i, ("plain", None)) for i in id_list]
            variants = [g[0] for g in got]
            refs = [g[1] for g in got]
        else:
            variants = ["plain"] * n
            refs = [None] * n
        return ids, bids, hashes, variants, refs

    def load_signal(
        self, signal_type: str, banks: list[str] | None = None, now: datetime | None = None
    ) -> LoadedSignal:
        """Active entries of ``signal_type`` in enabled banks (optionally only
        ``banks``), as numpy columns for building match indexes."""
        check_signal(signal_type)
        now = to_utc(now) or utcnow()
        with self._read() as conn:
            bq = select(B.c.id, B.c.name).where(B.c.enabled.is_(True))
            if banks is not None:
                bq = bq.where(B.c.name.in_(list(banks)))
            bank_rows = conn.execute(bq).all()
            if banks is not None:
                missing = set(banks) - {r.name for r in bank_rows}
                known = {
                    n for (n,) in conn.execute(select(B.c.name).where(B.c.name.in_(list(missing))))
                }
                if missing - known:
                    raise BankError(
                        f"no bank named {sorted(missing - known)[0]!r}", code="unknown_bank"
                    )
            bank_names = {int(r.id): r.name for r in bank_rows}
            ths = {bid: get_signal_type(signal_type).default_threshold for bid in bank_names}
            for bid, d in conn.execute(
                select(TH.c.bank_id, TH.c.max_distance).where(TH.c.signal_type == signal_type)
            ):
                if bid in ths:
                    ths[bid] = d
            cols: tuple[Any, ...] | None = ([], [], [], [], [])
            if bank_names:
                cols = self._fetch_packed(conn, signal_type, list(bank_names), now)
                if cols is None:
                    cols = self._fetch_active(conn, signal_type, list(bank_names), now)
        assert cols is not None
        ids, bids, hexes, variants, refs = cols
        hashes: np.ndarray | list[str] = hexes
        if get_signal_type(signal_type).index != "exact" and not isinstance(hexes, np.ndarray):
            hashes = pdq_hexes_to_array(hexes)
        return LoadedSignal(
            signal_type=signal_type,
            entry_ids=np.asarray(ids, dtype=np.int64),
            bank_ids=np.asarray(bids, dtype=np.int32),
            hashes=hashes,
            bank_names=bank_names,
            thresholds=ths,
            variants=variants,
            media_refs=refs,
        )
