"""The bulk path of large fetches: stage pages, then materialise with sorted inserts.

Applying a page record by record costs a few random B-tree inserts per hash (the
``exchange_records`` key and hash indexes, the bank's unique key): once a
million-entry bank outgrows the page cache every one of them reads and rewrites
a page. A large fetch therefore goes in two steps:

1. :func:`stage_page` -- in ONE write transaction: the page's validated rows are
   appended to ``exchange_staged`` (append-only, no secondary index: sequential
   writes) and the checkpoint moves, fenced on the lease exactly like
   :meth:`ExchangeStore.apply_page`. A malformed page raises before anything is
   written, so nothing of it is staged and the checkpoint does not move.
2. :func:`materialise` -- in ONE write transaction: every staged row of the
   exchange is applied set-wise (``INSERT ... SELECT ... ORDER BY signal_type,
   hash``: each index is filled in key order, touching each of its pages once),
   the counters move, and the staged rows are deleted. The result is the one
   page-by-page application would give: the **last record of a key in stream
   order wins** (earlier ones of the same key are superseded; pairs they alone
   held are removed and tombstoned, as when the pages are applied one after the
   other), deletions remove the key's rows, pairs no record holds any longer
   leave the bank with an ``exchange:<name>`` tombstone, operator tombstones
   block re-adds (counted ``skipped_tombstoned``), this exchange's own
   tombstones are revived.

``kill -9`` between the two leaves staged rows behind a moved checkpoint: the
next fetch (any instance holding the lease) materialises them before it fetches
anything, so nothing is lost; materialising twice is impossible (the rows are
deleted in the transaction that applies them). :func:`~.runner.run_fetch`
materialises before it returns, so entries are in the bank when a fetch ends.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import sqlalchemy as sa

from ..store.models import utcnow
from .api import FetchPage
from .store import ExchangeInfo, ExchangeStore, LeaseLost, PageResult, record_signals
from .tables import exchange_staged, exchanges

S, X = exchange_staged, exchanges

TEMP_TABLES = ("_xm_keys", "_xm_cand", "_xm_gone", "_xm_fin", "_xm_notes")
#: SQLite page cache while materialising (KiB; the sorter's buffer is as large):
#: sorted inserts need little cache, and it bounds the peak RSS
MATERIALISE_CACHE_KIB = 48 * 1024


def staged_count(store: ExchangeStore, info: ExchangeInfo) -> int:
    """Staged rows of ``info`` waiting to be materialised."""
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(S).where(S.c.exchange_id == info.id)
            ).scalar_one()
        )


def _stage_rows(records: list[Any], res: PageResult, xid: int, base: int) -> list[tuple[Any, ...]]:
    """``exchange_staged`` rows of ``records`` in order, ids from ``base + 1``: one per
    valid signal (first of each signal type per record), or one NULL-signal row
    for a record with none (a deletion or an emptied record)."""
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    i = base
    for rec in records:
        key = rec.key[:255]
        first = i + 1
        if not rec.deleted:
            tj, signals = record_signals(rec, res)
            owner, category = rec.owner, rec.category
            for st, h in signals:
                i += 1
                append((i, xid, first, key, st, h, owner, category, tj[0], tj[1]))
        if i < first:  # nothing bankable: the record still replaces its key
            i += 1
            append((i, xid, first, key, None, None, None, None, None, None))
    return rows


def stage_page(
    store: ExchangeStore, info: ExchangeInfo, page: FetchPage, owner: str, lease_s: float
) -> PageResult:
    """Append one page to the staging table and move the checkpoint, in one transaction."""
    res = PageResult(records_seen=len(page.records), malformed=page.malformed_records)
    now = utcnow()
    pg = store.engine.dialect.name == "postgresql"
    with store.banks._write() as conn:  # noqa: SLF001 - the bank write transaction
        store._tune(conn)  # noqa: SLF001
        base = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(S.c.id), 0))).scalar_one())
        lists = [page.records, *(page.chunks or ())]
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        marks = ", ".join(["%s" if pg else "?"] * 10)
        try:
            for n, records in enumerate(lists):
                if n:
                    res.records_seen += len(records)
                rows = _stage_rows(records, res, info.id, base)
                if rows:
                    base = rows[-1][0]
                    cur.executemany(
                        "INSERT INTO exchange_staged (id, exchange_id, rec, record_key, "
                        "signal_type, hash, owner, category, tags, note) "
                        f"VALUES ({marks})",
                        rows,
                    )
        finally:
            cur.close()
        store._move_checkpoint(conn, info, page, owner, lease_s, now, res)  # noqa: SLF001
    info.checkpoint = page.checkpoint
    info.checkpoint_version += 1
    return res


def _sql(conn: sa.Connection, sql: str, **params: Any) -> Any:
    return conn.execute(sa.text(sql), params)


def materialise(store: ExchangeStore, info: ExchangeInfo, owner: str | None = None) -> PageResult:
    """Apply every staged row of ``info`` in one transaction (module notes). ``owner``:
    fence on the fetch lease (:class:`LeaseLost` if another fetcher holds it)."""
    res = PageResult()
    pg = store.engine.dialect.name == "postgresql"
    now = utcnow()
    stamp: Any = now.astimezone(UTC).replace(tzinfo=None)
    if not pg:
        stamp = stamp.strftime("%Y-%m-%d %H:%M:%S.%f")
    with store.banks._write() as conn:  # noqa: SLF001 - the bank write transaction
        store._tune(conn)  # noqa: SLF001
        x = info.id
        if not conn.execute(sa.select(S.c.id).where(S.c.exchange_id == x).limit(1)).first():
            return res
        if not pg:
            old_cache = int(_sql(conn, "PRAGMA cache_size").scalar_one())
            _sql(conn, f"PRAGMA cache_size = {-MATERIALISE_CACHE_KIB}")
        try:
            _materialise(conn, info, pg, stamp, res)
        finally:
            if not pg:
                _sql(conn, f"PRAGMA cache_size = {old_cache}")
        fence = [X.c.id == x]
        if owner is not None:
            fence.append(X.c.fetch_owner == owner)
        done = conn.execute(
            X.update()
            .where(*fence)
            .values(
                entries_added=X.c.entries_added + res.entries_added,
                entries_deleted=X.c.entries_deleted + res.entries_deleted,
                skipped_tombstoned=X.c.skipped_tombstoned + res.skipped_tombstoned,
            )
        )
        if done.rowcount != 1:
            raise LeaseLost(f"exchange {info.name}: another fetcher took over; nothing applied")
        if conn.execute(sa.select(S.c.id).where(S.c.exchange_id != x).limit(1)).first():
            conn.execute(S.delete().where(S.c.exchange_id == x))
        else:
            _sql(conn, "DELETE FROM exchange_staged")  # SQLite: the truncate fast path
        if not pg:
            for t in TEMP_TABLES:
                _sql(conn, f"DROP TABLE IF EXISTS temp.{t}")
    return res


def _materialise(
    conn: sa.Connection, info: ExchangeInfo, pg: bool, stamp: Any, res: PageResult
) -> None:
    x, b = info.id, info.bank_id
    mine = f"exchange:{info.name}"
    source = f"{info.type}:{info.name}"
    temp = "CREATE TEMP TABLE" if pg else "CREATE TEMP TABLE IF NOT EXISTS"
    tail = " ON COMMIT DROP" if pg else ""
    for t in TEMP_TABLES:
        if not pg:
            _sql(conn, f"DROP TABLE IF EXISTS temp.{t}")
    _sql(conn, f"{temp} _xm_keys (record_key varchar(255) PRIMARY KEY){tail}")
    _sql(
        conn,
        f"{temp} _xm_cand (signal_type varchar(16), hash varchar(64), old integer, "
        f"PRIMARY KEY (signal_type, hash)){tail}",
    )
    keys = _sql(
        conn,
        "INSERT INTO _xm_keys (record_key) SELECT DISTINCT record_key FROM exchange_staged "
        "WHERE exchange_id = :x ORDER BY record_key",
        x=x,
    ).rowcount
    records = int(
        _sql(
            conn, "SELECT COUNT(*) FROM exchange_staged WHERE exchange_id = :x AND id = rec", x=x
        ).scalar_one()
    )
    # pairs held by the current rows of the staged keys (they are replaced)
    old = _sql(
        conn,
        "INSERT INTO _xm_cand (signal_type, hash, old) SELECT r.signal_type, r.hash, 1 "
        "FROM _xm_keys k JOIN exchange_records r "
        "ON r.exchange_id = :x AND r.record_key = k.record_key WHERE 1 = 1 "
        "ON CONFLICT DO NOTHING",
        x=x,
    ).rowcount
    if records == keys:  # no key staged twice: every staged row is final
        final = (
            "(SELECT id, record_key, signal_type, hash, owner, category, tags, note "
            f"FROM exchange_staged WHERE exchange_id = {int(x)} AND signal_type IS NOT NULL)"
        )
    else:  # last record of each key wins; the superseded ones' pairs are candidates
        _sql(
            conn,
            f"{temp} _xm_fin (id bigint, record_key varchar(255), signal_type varchar(16), "
            f"hash varchar(64), owner text, category text, tags text, note text){tail}",
        )
        win = (
            "(SELECT s.*, MAX(s.rec) OVER (PARTITION BY s.record_key) AS last_rec "
            "FROM exchange_staged s WHERE s.exchange_id = :x) w"
        )
        _sql(
            conn,
            "INSERT INTO _xm_fin SELECT w.id, w.record_key, w.signal_type, w.hash, w.owner, "
            f"w.category, w.tags, w.note FROM {win} "
            "WHERE w.rec = w.last_rec AND w.signal_type IS NOT NULL",
            x=x,
        )
        _sql(
            conn,
            "INSERT INTO _xm_cand (signal_type, hash, old) SELECT w.signal_type, w.hash, 0 "
            f"FROM {win} WHERE w.rec < w.last_rec AND w.signal_type IS NOT NULL "
            "ON CONFLICT DO NOTHING",
            x=x,
        )
        final = "_xm_fin"
    cand = old or int(_sql(conn, "SELECT COUNT(*) FROM _xm_cand").scalar_one())
    if old:
        _sql(
            conn,
            "DELETE FROM exchange_records WHERE exchange_id = :x "
            "AND record_key IN (SELECT record_key FROM _xm_keys)",
            x=x,
        )
    rb = int(_sql(conn, "SELECT COALESCE(MAX(id), 0) FROM exchange_records").scalar_one())
    _sql(
        conn,
        "INSERT INTO exchange_records (exchange_id, record_key, signal_type, hash, owner, "
        f"category, tags, updated_at) SELECT {int(x)}, f.record_key, f.signal_type, f.hash, "
        f"f.owner, f.category, f.tags, :at FROM {final} f ORDER BY f.signal_type, f.hash, f.id",
        at=stamp,
    )
    if cand:
        _sql(
            conn,
            f"{temp} _xm_gone (signal_type varchar(16), hash varchar(64), "
            f"PRIMARY KEY (signal_type, hash)){tail}",
        )
        _remove_gone(conn, x, b, mine, stamp, res)
    # the bank note of each tags value (a function of it: see _stage_rows)
    _sql(conn, f"{temp} _xm_notes (tags text PRIMARY KEY, note text){tail}")
    _sql(
        conn,
        "INSERT INTO _xm_notes SELECT COALESCE(tags, ''), MIN(note) FROM exchange_staged "
        "WHERE exchange_id = :x AND signal_type IS NOT NULL GROUP BY COALESCE(tags, '')",
        x=x,
    )
    # pairs new to the staged keys, from the rows just written (in (type, hash, stream)
    # order: the first row holding a pair is its entry, later ones conflict)
    new = f"r.exchange_id = {int(x)} AND r.id > {rb}" + (
        " AND NOT EXISTS (SELECT 1 FROM _xm_cand c WHERE c.old = 1 "
        "AND c.signal_type = r.signal_type AND c.hash = r.hash)"
        if old
        else ""
    )
    tomb = ""
    if _sql(conn, "SELECT 1 FROM tombstones WHERE bank_id = :b LIMIT 1", b=b).first():
        held = (
            "EXISTS (SELECT 1 FROM exchange_records r WHERE r.signal_type = t.signal_type "
            f"AND r.hash = t.hash AND {new})"
        )
        res.skipped_tombstoned += int(
            _sql(
                conn,
                "SELECT COUNT(*) FROM tombstones t WHERE t.bank_id = :b AND t.reason <> :m "
                f"AND {held}",
                b=b,
                m=mine,
            ).scalar_one()
        )
        _sql(
            conn,
            "DELETE FROM tombstones WHERE id IN (SELECT t.id FROM tombstones t "
            f"WHERE t.bank_id = :b AND t.reason = :m AND {held})",
            b=b,
            m=mine,
        )
        tomb = (
            " AND NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.bank_id = :b "
            "AND t.signal_type = r.signal_type AND t.hash = r.hash)"
        )
    before = int(_sql(conn, "SELECT COALESCE(MAX(id), 0) FROM bank_entries").scalar_one())
    pad = ", series, victim_identified, offender_identified, is_distributed"
    _sql(
        conn,
        "INSERT INTO bank_entries (bank_id, signal_type, hash, variant, media_ref, source_org, "
        f"external_id, category, added_at, enabled, disabled_until, note{pad}) "
        "SELECT :b, r.signal_type, r.hash, 'plain', "
        "CASE WHEN r.signal_type = 'vpdq' THEN r.record_key ELSE NULL END, "
        "CASE WHEN r.owner IS NULL OR r.owner = '' THEN :src ELSE :src || '/' || r.owner END, "
        "r.record_key, r.category, :at, :on, NULL, "
        "(SELECT n.note FROM _xm_notes n WHERE n.tags = COALESCE(r.tags, '')), "
        f"NULL, NULL, NULL, NULL FROM exchange_records r WHERE {new}{tomb} ORDER BY r.id "
        "ON CONFLICT (bank_id, signal_type, hash, variant) DO NOTHING",
        b=b,
        src=source,
        at=stamp,
        on=True,
    )
    res.entries_added += int(
        _sql(
            conn,
            "INSERT INTO change_log (bank_id, entry_id, op, at) SELECT bank_id, id, 'add', :at "
            "FROM bank_entries WHERE id > :before AND bank_id = :b ORDER BY id",
            at=stamp,
            before=before,
            b=b,
        ).rowcount
    )


def _remove_gone(
    conn: sa.Connection, x: int, b: int, mine: str, stamp: Any, res: PageResult
) -> None:
    """Candidate pairs no record of the exchange holds any longer leave the bank, with
    a tombstone (as :meth:`ExchangeStore._remove_pairs`)."""
    _sql(
        conn,
        "INSERT INTO _xm_gone SELECT c.signal_type, c.hash FROM _xm_cand c WHERE NOT EXISTS "
        "(SELECT 1 FROM exchange_records r WHERE r.exchange_id = :x "
        "AND r.signal_type = c.signal_type AND r.hash = c.hash) ORDER BY 1, 2",
        x=x,
    )
    res.entries_deleted += int(
        _sql(
            conn,
            "INSERT INTO change_log (bank_id, entry_id, op, at) "
            "SELECT e.bank_id, e.id, 'delete', :at FROM _xm_gone g JOIN bank_entries e "
            "ON e.bank_id = :b AND e.signal_type = g.signal_type AND e.hash = g.hash "
            "WHERE 1 = 1 ORDER BY e.id",
            at=stamp,
            b=b,
        ).rowcount
    )
    _sql(
        conn,
        "DELETE FROM bank_entries WHERE bank_id = :b "
        "AND (signal_type, hash) IN (SELECT signal_type, hash FROM _xm_gone)",
        b=b,
    )
    _sql(
        conn,
        "INSERT INTO tombstones (bank_id, signal_type, hash, deleted_at, reason) "
        "SELECT :b, g.signal_type, g.hash, :at, :m FROM _xm_gone g WHERE 1 = 1 "
        "ON CONFLICT (bank_id, signal_type, hash) DO NOTHING",
        b=b,
        at=stamp,
        m=mine,
    )
