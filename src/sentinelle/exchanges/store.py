"""`ExchangeStore`: configure exchanges and apply fetched pages to their banks.

The one write path is :meth:`ExchangeStore.apply_page`. In ONE bank write
transaction (the same serialized transaction :class:`~sentinelle.banks.BankStore`
uses, so the change log stays ordered) it:

1. replaces the ``exchange_records`` rows of every record key on the page;
2. adds the new ``(signal_type, hash)`` pairs to the exchange's bank (skipping
   hashes an operator tombstoned; reviving hashes this exchange itself deleted
   earlier and now re-shares);
3. deletes from the bank every pair no live record of the exchange still holds,
   leaving a tombstone ``exchange:<name>`` so a later file import cannot bring it
   back;
4. moves the checkpoint, **fenced**: only if the caller still holds the fetch
   lease and the checkpoint version is the one it started from.

So a ``kill -9`` at any instant leaves either the page and its checkpoint, or
neither: the next fetch resumes at the last applied page and re-applying a page
is idempotent (records replace, inserts skip duplicates).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from ..audit import record_event
from ..banks import BankStore
from ..banks._base import _ENTRY_COLS
from ..errors import BankError, InvalidHashError
from ..formats.entry import normalize_signal_hash
from ..signals.signal_types import find_signal_type
from ..store.models import Bank, BankEntry, ChangeLog, Tombstone, utcnow
from . import credentials
from .api import ExchangeError, FetchPage, StoredRecord
from .registry import get_type
from .tables import exchange_quarantine, exchange_records, exchanges

B, E, T, CL = Bank.__table__, BankEntry.__table__, Tombstone.__table__, ChangeLog.__table__
X, R, Q = exchanges, exchange_records, exchange_quarantine

STATES = ("idle", "fetching", "up_to_date", "degraded", "error", "disabled")
MAX_EXCERPT = 512
IN_CHUNK = 500  # keys per IN (...) query
SWEEP_CHUNK = 5000  # stale rows read at a time when a snapshot is swept
DEFAULT_INTERVAL_S = 600
#: SQLite page cache of a connection that applies pages (KiB; part of the peak RSS)
SQLITE_PAGE_CACHE_KIB = 96 * 1024
#: WAL pages between automatic checkpoints on that connection (default 1000 = 4 MB)
SQLITE_WAL_CHECKPOINT_PAGES = 8192
#: signal type -> its validator, and tags -> (JSON, note) (hot-loop caches)
_VALIDATORS: dict[str, Any] = {}
_TAG_TEXT: dict[tuple[str, ...], tuple[str, str]] = {}


def record_signals(
    rec: Any, res: PageResult
) -> tuple[tuple[str | None, str | None], list[tuple[str, str]]]:
    """A record's ``(tags JSON, tags note)`` and its valid ``(type, hash)`` pairs, the
    first of each signal type; unknown types and bad hashes are counted on ``res``.
    Cached validators and tag texts: this runs once per record of every fetch (page by
    page and staged)."""
    tags = rec.tags
    tj = _TAG_TEXT.get(tags) if tags else (None, None)
    if tj is None:
        tj = (json.dumps(list(tags)), f"tags: {', '.join(tags)}")
        if len(_TAG_TEXT) < 1000:
            _TAG_TEXT[tags] = tj
    out: list[tuple[str, str]] = []
    seen: set[str] | None = None
    for s in rec.signals:
        st = s.signal_type
        if st is None:
            res.unknown_types += 1
            continue
        check = _VALIDATORS.get(st)
        try:
            if check is None:
                st, h = normalize_signal_hash(st, s.value)
                if len(_VALIDATORS) < 100:
                    _VALIDATORS[st] = find_signal_type(st).validate  # type: ignore[union-attr]
            else:
                h = check(s.value)
        except InvalidHashError:
            res.malformed += 1
            continue
        if seen is None:
            seen = {st}
        elif st in seen:
            continue
        else:
            seen.add(st)
        out.append((st, h))
    return tj, out


#: bank_entries columns after ``note`` (VICS fields...): left NULL for exchange rows
_PAD = (None,) * (len(_ENTRY_COLS) - 12)
MIN_INTERVAL_S = 10


class LeaseLost(ExchangeError):
    """Another fetcher took over (our lease expired) or moved the checkpoint."""

    code = "fetch_lease_lost"


@dataclass
class ExchangeInfo:
    id: int
    name: str
    type: str
    bank_id: int
    bank: str
    config: dict[str, Any]
    credential_ref: dict[str, str] | None
    enabled: bool
    interval_s: int
    checkpoint: dict[str, Any] | None
    checkpoint_version: int
    progress_at: datetime | None
    state: str
    fetch_owner: str | None
    fetch_lease_until: datetime | None
    last_fetch_started_at: datetime | None
    last_fetch_ok_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    counts: dict[str, int] = field(default_factory=dict)

    def lag_s(self, now: datetime | None = None) -> float | None:
        """Seconds between now and the time the fetched data is current to."""
        if self.progress_at is None:
            return None
        return max(0.0, ((now or utcnow()) - self.progress_at).total_seconds())

    def to_dict(self) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return None if d is None else d.isoformat()

        lag = self.lag_s()
        return {
            "name": self.name,
            "type": self.type,
            "bank": self.bank,
            "enabled": self.enabled,
            "interval_s": self.interval_s,
            "config": self.config,
            "credentials": credentials.describe(self.credential_ref),
            "state": self.state,
            "progress_at": iso(self.progress_at),
            "lag_s": None if lag is None else round(lag, 1),
            "last_fetch_started_at": iso(self.last_fetch_started_at),
            "last_fetch_ok_at": iso(self.last_fetch_ok_at),
            "last_error": self.last_error,
            "last_error_at": iso(self.last_error_at),
            "consecutive_failures": self.consecutive_failures,
            "fetching": self.fetch_owner is not None,
            "counts": dict(self.counts),
        }


COUNTERS = (
    "records_seen",
    "entries_added",
    "entries_deleted",
    "unknown_types",
    "skipped_tombstoned",
    "malformed",
)


@dataclass
class PageResult:
    records_seen: int = 0
    entries_added: int = 0
    entries_deleted: int = 0
    unknown_types: int = 0
    skipped_tombstoned: int = 0
    malformed: int = 0

    def add(self, other: PageResult) -> None:
        for c in COUNTERS:
            setattr(self, c, getattr(self, c) + getattr(other, c))

    def to_dict(self) -> dict[str, int]:
        return {c: getattr(self, c) for c in COUNTERS}


def _info(r: Any) -> ExchangeInfo:
    return ExchangeInfo(
        id=int(r.id),
        name=r.name,
        type=r.type,
        bank_id=int(r.bank_id),
        bank=r.bank,
        config=json.loads(r.config),
        credential_ref=credentials.load_ref(r.credential_ref),
        enabled=bool(r.enabled),
        interval_s=int(r.interval_s),
        checkpoint=_load_checkpoint(r.checkpoint),
        checkpoint_version=int(r.checkpoint_version),
        progress_at=r.progress_at,
        state=r.state,
        fetch_owner=r.fetch_owner,
        fetch_lease_until=r.fetch_lease_until,
        last_fetch_started_at=r.last_fetch_started_at,
        last_fetch_ok_at=r.last_fetch_ok_at,
        last_error=r.last_error,
        last_error_at=r.last_error_at,
        consecutive_failures=int(r.consecutive_failures),
        counts={c: int(getattr(r, c)) for c in COUNTERS},
    )


def _load_checkpoint(text: str | None) -> dict[str, Any] | None:
    """The stored checkpoint; None when absent or unreadable (the runner then resumes
    from ``progress_at`` where the API allows it, instead of from scratch)."""
    if not text:
        return None
    try:
        cp = json.loads(text)
    except ValueError:
        return None
    return cp if isinstance(cp, dict) else None


def _excerpt(body: bytes) -> str | None:
    """The start of a bad body as printable text (control bytes and NULs escaped)."""
    if not body:
        return None
    text = body[:MAX_EXCERPT].decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() or c in "\n\t" else f"\\x{ord(c):02x}" for c in text)


def _by_type(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """``{signal_type: sorted hashes}`` (queries go one signal type at a time)."""
    out: dict[str, list[str]] = {}
    for st, h in sorted(pairs):
        out.setdefault(st, []).append(h)
    return out


def _chunks(items: list[Any], n: int = IN_CHUNK) -> Iterable[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class ExchangeStore:
    """Exchange configuration, status and page application for one database."""

    def __init__(self, engine_or_store: Engine | BankStore) -> None:
        self.banks = (
            engine_or_store
            if isinstance(engine_or_store, BankStore)
            else BankStore(engine_or_store)
        )
        self.engine = self.banks.engine

    # ---------------------------------------------------------------- config
    def add(
        self,
        name: str,
        type_name: str,
        *,
        config: dict[str, Any] | None = None,
        credential_ref: dict[str, str] | None = None,
        bank: str | None = None,
        interval_s: int = DEFAULT_INTERVAL_S,
        actor: str = "system",
    ) -> ExchangeInfo:
        """Configure an exchange feeding bank ``bank`` (default: a new bank named ``name``)."""
        if not isinstance(name, str) or not 1 <= len(name) <= 64 or not name.isprintable():
            raise ExchangeError("exchange name must be 1-64 printable characters", "bad_name")
        api_cls = get_type(type_name)
        cfg = api_cls.config_cls.from_dict(dict(config or {})).to_dict()
        if not MIN_INTERVAL_S <= int(interval_s) <= 86400 * 7:
            raise ExchangeError(f"interval must be {MIN_INTERVAL_S} s to 7 days", "bad_config")
        bank_name = bank or name
        with self.engine.connect() as conn:
            if conn.execute(sa.select(X.c.id).where(X.c.name == name)).first():
                raise ExchangeError(f"exchange {name!r} already exists", "exchange_exists")
            bid = conn.execute(sa.select(B.c.id).where(B.c.name == bank_name)).scalar()
            if (
                bid is not None
                and conn.execute(sa.select(X.c.name).where(X.c.bank_id == bid)).first()
            ):
                raise ExchangeError(
                    f"bank {bank_name!r} already belongs to another exchange", "bank_taken"
                )
        if bid is None:
            self.banks.create_bank(bank_name, f"fed by exchange {name} ({type_name})", actor=actor)
        elif bank is None:
            raise BankError(
                f"bank {bank_name!r} already exists; pass --bank {bank_name} to feed it",
                "bank_exists",
            )
        bid = self.banks.get_bank(bank_name).id
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                X.insert(),
                {
                    "name": name,
                    "type": type_name,
                    "bank_id": bid,
                    "config": json.dumps(cfg, sort_keys=True),
                    "credential_ref": credentials.dump_ref(credential_ref),
                    "enabled": True,
                    "interval_s": int(interval_s),
                    "checkpoint": None,
                    "checkpoint_version": 0,
                    "state": "idle",
                    "consecutive_failures": 0,
                    "created_at": now,
                    **{c: 0 for c in COUNTERS},
                },
            )
            record_event(
                conn,
                actor=actor,
                action="exchange.add",
                target=f"exchange:{name}",
                details={
                    "type": type_name,
                    "bank": bank_name,
                    "credentials": credentials.describe(credential_ref),
                },
            )
        return self.get(name)

    def _select(self) -> sa.Select:
        return sa.select(X, B.c.name.label("bank")).join(B, B.c.id == X.c.bank_id)

    def get(self, name: str) -> ExchangeInfo:
        with self.engine.connect() as conn:
            r = conn.execute(self._select().where(X.c.name == name)).first()
        if r is None:
            raise ExchangeError(f"no exchange named {name!r}", "unknown_exchange")
        return _info(r)

    def list(self) -> list[ExchangeInfo]:
        with self.engine.connect() as conn:
            return [_info(r) for r in conn.execute(self._select().order_by(X.c.name))]

    def for_bank(self, bank_id: int) -> ExchangeInfo | None:
        with self.engine.connect() as conn:
            r = conn.execute(self._select().where(X.c.bank_id == bank_id)).first()
        return None if r is None else _info(r)

    def set_enabled(self, name: str, enabled: bool, *, actor: str = "system") -> ExchangeInfo:
        info = self.get(name)
        with self.engine.begin() as conn:
            conn.execute(
                X.update()
                .where(X.c.id == info.id)
                .values(enabled=enabled, state="idle" if enabled else "disabled")
            )
            record_event(
                conn,
                actor=actor,
                action="exchange.enable" if enabled else "exchange.disable",
                target=f"exchange:{name}",
                details={},
            )
        return self.get(name)

    def request_fetch(self, name: str, *, actor: str = "system") -> int:
        """Queue a fetch job now; audited ``exchange.fetch_requested``. Returns the job id."""
        from ..jobs import queue
        from .runner import FETCH_JOB

        info = self.get(name)
        if not info.enabled:
            raise ExchangeError(f"exchange {name!r} is disabled", "exchange_disabled")
        job = queue.enqueue(self.engine, FETCH_JOB, {"exchange": info.name}, max_attempts=1)
        with self.engine.begin() as conn:
            record_event(
                conn,
                actor=actor,
                action="exchange.fetch_requested",
                target=f"exchange:{name}",
                details={"job_id": job},
            )
        return job

    def reset_checkpoint(self, name: str, *, actor: str = "system") -> None:
        """Forget the checkpoint: the next fetch starts from the beginning (audited)."""
        info = self.get(name)
        with self.engine.begin() as conn:
            conn.execute(
                X.update()
                .where(X.c.id == info.id)
                .values(
                    checkpoint=None,
                    progress_at=None,
                    checkpoint_version=X.c.checkpoint_version + 1,
                )
            )
            record_event(
                conn, actor=actor, action="exchange.reset", target=f"exchange:{name}", details={}
            )

    def record_submission(
        self, name: str, bank: str, *, sent: int, offered: int, actor: str = "system"
    ) -> None:
        """Audit ``exchange.submit``: our own hashes of ``bank`` sent to exchange ``name``."""
        self.get(name)
        with self.engine.begin() as conn:
            record_event(
                conn,
                actor=actor,
                action="exchange.submit",
                target=f"exchange:{name}",
                details={"bank": bank, "sent": sent, "offered": offered},
            )

    # ------------------------------------------------------------------ lease
    def acquire_lease(self, name: str, owner: str, lease_s: float) -> ExchangeInfo | None:
        """Take the fetch lease (None if another live fetcher holds it)."""
        info = self.get(name)
        now = utcnow()
        with self.engine.begin() as conn:
            res = conn.execute(
                X.update()
                .where(
                    X.c.id == info.id,
                    sa.or_(
                        X.c.fetch_owner.is_(None),
                        X.c.fetch_lease_until < now,
                        X.c.fetch_owner == owner,
                    ),
                )
                .values(
                    fetch_owner=owner,
                    fetch_lease_until=now + timedelta(seconds=lease_s),
                    last_fetch_started_at=now,
                    state="fetching",
                )
            )
        return self.get(name) if res.rowcount == 1 else None

    def finish(
        self, info: ExchangeInfo, owner: str, *, error: str | None, up_to_date: bool
    ) -> None:
        """Release the lease and record the outcome on the exchange's status."""
        now = utcnow()
        values: dict[str, Any] = {"fetch_owner": None, "fetch_lease_until": None}
        if error is None:
            values.update(
                state="up_to_date" if up_to_date else "idle",
                last_fetch_ok_at=now,
                consecutive_failures=0,
                last_error=None,
            )
        else:
            values.update(
                state="degraded",
                last_error=error[:2000],
                last_error_at=now,
                consecutive_failures=X.c.consecutive_failures + 1,
            )
        with self.engine.begin() as conn:
            conn.execute(
                X.update().where(X.c.id == info.id, X.c.fetch_owner == owner).values(**values)
            )

    def quarantine(
        self,
        info: ExchangeInfo,
        kind: str,
        error: str,
        body: bytes,
        checkpoint: dict[str, Any] | None,
    ) -> None:
        """Keep a short excerpt and digest of a page that could not be used."""
        import hashlib

        with self.engine.begin() as conn:
            conn.execute(
                Q.insert(),
                {
                    "exchange_id": info.id,
                    "at": utcnow(),
                    "kind": kind[:32],
                    "error": error[:2000],
                    "excerpt": _excerpt(body),
                    "body_sha256": hashlib.sha256(body).hexdigest() if body else None,
                    "checkpoint": None if checkpoint is None else json.dumps(checkpoint),
                },
            )
            conn.execute(X.update().where(X.c.id == info.id).values(malformed=X.c.malformed + 1))

    def quarantined(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        info = self.get(name)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(Q).where(Q.c.exchange_id == info.id).order_by(Q.c.id.desc()).limit(limit)
            ).all()
        return [
            {"at": r.at.isoformat(), "kind": r.kind, "error": r.error, "sha256": r.body_sha256}
            for r in rows
        ]

    # ------------------------------------------------------------ apply page
    def apply_page(
        self, info: ExchangeInfo, page: FetchPage, owner: str, lease_s: float
    ) -> PageResult:
        """Apply one page and move the checkpoint, atomically and fenced (module notes)."""
        res = PageResult(records_seen=len(page.records), malformed=page.malformed_records)
        now = utcnow()
        with self.banks._write() as conn:  # noqa: SLF001 - the bank write transaction
            self._tune(conn)
            if page.replace_all:
                self._apply_snapshot(conn, info, page, now, res)
            else:
                self._apply_records(conn, info, page.records, now, res)
                for chunk in page.chunks or ():
                    res.records_seen += len(chunk)
                    self._apply_records(conn, info, chunk, now, res)
            self._move_checkpoint(conn, info, page, owner, lease_s, now, res)
        info.checkpoint = page.checkpoint
        info.checkpoint_version += 1
        return res

    def _apply_records(
        self,
        conn: sa.Connection,
        info: ExchangeInfo,
        records: list[Any],
        now: datetime,
        res: PageResult,
    ) -> None:
        """Replace the rows of every key in ``records`` and update the bank to match."""
        rows, new_pairs, transient = self._page_rows(records, res)
        keys = [k[:255] for k in {r.key: None for r in records}]
        old_pairs = self._delete_records(conn, info, keys)
        old_pairs.update(transient)
        if rows:
            self._insert_records(conn, info, rows, now)
        self._apply_pairs(conn, info, old_pairs, new_pairs, now, res)

    def _apply_snapshot(
        self,
        conn: sa.Connection,
        info: ExchangeInfo,
        page: FetchPage,
        now: datetime,
        res: PageResult,
    ) -> None:
        """The page (and its chunks) is the exchange's whole list, in one transaction:
        mark (every record on it is rewritten with ``updated_at = now``), then sweep
        (rows older than ``now`` are gone: deleted, their pairs removed and
        tombstoned unless another record still holds them). Memory stays bounded by
        one chunk: the sweep reads stale rows a chunk at a time."""
        self._apply_records(conn, info, page.records, now, res)
        for chunk in page.chunks or ():
            res.records_seen += len(chunk)
            self._apply_records(conn, info, chunk, now, res)
        stale = sa.and_(R.c.exchange_id == info.id, R.c.updated_at < now)
        last = 0  # one pass in id order (no index on updated_at: never rescan)
        while True:
            rows = conn.execute(
                sa.select(R.c.id, R.c.signal_type, R.c.hash)
                .where(stale, R.c.id > last)
                .order_by(R.c.id)
                .limit(SWEEP_CHUNK)
            ).all()
            if not rows:
                break
            last = int(rows[-1].id)
            for ids in _chunks([int(r.id) for r in rows]):
                conn.execute(R.delete().where(R.c.id.in_(sa.bindparam("ids", ids, expanding=True))))
            res.entries_deleted += self._remove_pairs(
                conn, info, {(r.signal_type, r.hash) for r in rows}, now
            )

    def _page_rows(
        self, records: list[Any], res: PageResult
    ) -> tuple[list[tuple[Any, ...]], dict[tuple[str, str], tuple[Any, ...]], set[tuple[str, str]]]:
        """The page's record rows ``(key, type, hash, owner, category, tags, note)`` and
        its new ``(type, hash)`` pairs (first row holding each), validated, in Python,
        and the pairs of records replaced by a later record of the same key on the
        page (removed and tombstoned like any pair that goes, exactly as if the
        records had been applied one after the other). Plain tuples and cached
        validators: this loop runs a million times in a large fetch."""
        final: dict[str, Any] = {}
        superseded: list[Any] = []
        for rec in records:
            prev = final.get(rec.key)
            if prev is not None and not prev.deleted:
                superseded.append(prev)
            final[rec.key] = rec
        rows: list[tuple[Any, ...]] = []
        new_pairs: dict[tuple[str, str], tuple[Any, ...]] = {}
        for key, rec in final.items():
            if rec.deleted:
                continue
            tj, signals = record_signals(rec, res)
            key = key[:255]
            for st, h in signals:
                row = (key, st, h, rec.owner, rec.category, tj[0], tj[1])
                rows.append(row)
                if (st, h) not in new_pairs:
                    new_pairs[(st, h)] = row
        transient: set[tuple[str, str]] = set()
        for rec in superseded:  # rare: a key twice on a page (or in a group of pages)
            for s in rec.signals:
                if s.signal_type is not None:
                    try:
                        transient.add(normalize_signal_hash(s.signal_type, s.value))
                    except InvalidHashError:
                        continue
        return rows, new_pairs, transient

    def _tune(self, conn: sa.Connection) -> None:
        """Pragmas for a bank write on SQLite (per connection, set once): a page
        cache that holds a page's index leaves between pages, and a WAL
        checkpoint every ~32 MB instead of every 4 MB (each checkpoint writes back
        and syncs every page touched since the last one; hot index pages are
        written once instead of many times). Durability is unchanged: WAL with
        ``synchronous=NORMAL`` (set by :func:`~sentinelle.store.db.open_engine`)."""
        if self.engine.dialect.name != "sqlite":
            return
        pool_info = conn.connection.info  # lives as long as the DBAPI connection
        if pool_info.get("sentinelle_exchange_tuned"):
            return
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if int(cur.execute("PRAGMA cache_size").fetchone()[0]) > -SQLITE_PAGE_CACHE_KIB:
                cur.execute(f"PRAGMA cache_size = {-SQLITE_PAGE_CACHE_KIB}")
            cur.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_CHECKPOINT_PAGES}")
        finally:
            cur.close()
        pool_info["sentinelle_exchange_tuned"] = True

    def _delete_records(
        self, conn: sa.Connection, info: ExchangeInfo, keys: list[str]
    ) -> set[tuple[str, str]]:
        """Delete the rows of ``keys``; return the pairs they held (one statement per chunk)."""
        old: set[tuple[str, str]] = set()
        for chunk in _chunks(keys):
            stmt = (
                R.delete()
                .where(
                    R.c.exchange_id == info.id,
                    R.c.record_key.in_(sa.bindparam("keys", chunk, expanding=True)),
                )
                .returning(R.c.signal_type, R.c.hash)
            )
            old.update((st, h) for st, h in conn.execute(stmt))
        return old

    def _apply_pairs(
        self,
        conn: sa.Connection,
        info: ExchangeInfo,
        old_pairs: set[tuple[str, str]],
        new_pairs: dict[tuple[str, str], tuple[Any, ...]],
        now: datetime,
        res: PageResult,
    ) -> None:
        if old_pairs:
            gone = old_pairs - new_pairs.keys()
            if gone:
                res.entries_deleted += self._remove_pairs(conn, info, gone, now)
            added = {p: r for p, r in new_pairs.items() if p not in old_pairs}
        else:
            added = new_pairs
        if added:
            n, blocked = self._add_pairs(conn, info, added, now)
            res.entries_added += n
            res.skipped_tombstoned += blocked

    def _move_checkpoint(
        self,
        conn: sa.Connection,
        info: ExchangeInfo,
        page: FetchPage,
        owner: str,
        lease_s: float,
        now: datetime,
        res: PageResult,
    ) -> None:
        """The fenced checkpoint update, in the page's transaction."""
        values: dict[str, Any] = {
            "checkpoint": json.dumps(page.checkpoint, sort_keys=True),
            "checkpoint_version": X.c.checkpoint_version + 1,
            "fetch_lease_until": now + timedelta(seconds=lease_s),
            **{c: getattr(X.c, c) + getattr(res, c) for c in COUNTERS},
        }
        if page.progress_at is not None:
            values["progress_at"] = datetime.fromtimestamp(page.progress_at, tz=now.tzinfo)
        done = conn.execute(
            X.update()
            .where(
                X.c.id == info.id,
                X.c.fetch_owner == owner,
                X.c.checkpoint_version == info.checkpoint_version,
            )
            .values(**values)
        )
        if done.rowcount != 1:
            raise LeaseLost(f"exchange {info.name}: another fetcher took over; page not applied")

    def _insert_records(
        self, conn: sa.Connection, info: ExchangeInfo, rows: list[tuple[Any, ...]], now: datetime
    ) -> None:
        """Driver-level executemany in key order (Core's per-row processing costs more
        than the insert itself on a million-record fetch)."""
        pg = self.engine.dialect.name == "postgresql"
        stamp: Any = now.astimezone(UTC).replace(tzinfo=None)
        if not pg:
            stamp = stamp.strftime("%Y-%m-%d %H:%M:%S.%f")
        cols = "exchange_id, record_key, signal_type, hash, owner, category, tags, updated_at"
        marks = ", ".join(["%s" if pg else "?"] * 8)
        xid = info.id
        rows.sort()
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.executemany(
                f"INSERT INTO exchange_records ({cols}) VALUES ({marks})",
                [(xid, *r[:6], stamp) for r in rows],
            )
        finally:
            cur.close()

    def _remove_pairs(
        self, conn: sa.Connection, info: ExchangeInfo, pairs: set[tuple[str, str]], now: datetime
    ) -> int:
        """Delete + tombstone each pair no remaining record of the exchange holds: set-wise,
        one signal type and a chunk of hashes per statement (both indexes are
        ``(..., signal_type, hash)``)."""
        removed = 0
        reason = f"exchange:{info.name}"
        for st, all_hashes in _by_type(pairs).items():
            for hashes in _chunks(all_hashes):
                held = set(
                    conn.execute(
                        sa.select(R.c.hash).where(
                            R.c.exchange_id == info.id,
                            R.c.signal_type == st,
                            R.c.hash.in_(sa.bindparam("h", hashes, expanding=True)),
                        )
                    ).scalars()
                )
                todo = [h for h in hashes if h not in held]
                if not todo:
                    continue
                ids = [
                    int(i)
                    for i in conn.execute(
                        E.delete()
                        .where(
                            E.c.bank_id == info.bank_id,
                            E.c.signal_type == st,
                            E.c.hash.in_(sa.bindparam("h", todo, expanding=True)),
                        )
                        .returning(E.c.id)
                    ).scalars()
                ]
                conn.execute(
                    self.banks._insert()(T)  # noqa: SLF001 - dialect-specific upsert
                    .values(
                        [
                            {
                                "bank_id": info.bank_id,
                                "signal_type": st,
                                "hash": h,
                                "deleted_at": now,
                                "reason": reason,
                            }
                            for h in todo
                        ]
                    )
                    .on_conflict_do_nothing(index_elements=["bank_id", "signal_type", "hash"])
                )
                if ids:
                    conn.execute(
                        CL.insert(),
                        [
                            {"bank_id": info.bank_id, "entry_id": i, "op": "delete", "at": now}
                            for i in sorted(ids)
                        ],
                    )
                removed += len(ids)
        return removed

    def _add_pairs(
        self,
        conn: sa.Connection,
        info: ExchangeInfo,
        pairs: dict[tuple[str, str], tuple[Any, ...]],
        now: datetime,
    ) -> tuple[int, int]:
        """Insert new pairs (rows from :meth:`_page_rows`); returns (added, skipped
        because an operator tombstoned them). Tombstones are looked up only when the
        bank has any, a signal type and a chunk of hashes per statement."""
        mine = f"exchange:{info.name}"
        blocked: set[tuple[str, str]] = set()
        any_tomb = conn.execute(
            sa.select(T.c.id).where(T.c.bank_id == info.bank_id).limit(1)
        ).first()
        if any_tomb:
            revive: list[tuple[str, str]] = []
            for st, all_hashes in _by_type(pairs).items():
                for hashes in _chunks(all_hashes):
                    for h, reason in conn.execute(
                        sa.select(T.c.hash, T.c.reason).where(
                            T.c.bank_id == info.bank_id,
                            T.c.signal_type == st,
                            T.c.hash.in_(sa.bindparam("h", hashes, expanding=True)),
                        )
                    ):
                        if reason == mine:
                            revive.append((st, h))
                        else:
                            blocked.add((st, h))
            for st, hashes in _by_type(set(revive)).items():
                for chunk in _chunks(hashes):
                    conn.execute(
                        T.delete().where(
                            T.c.bank_id == info.bank_id,
                            T.c.signal_type == st,
                            T.c.hash.in_(sa.bindparam("h", chunk, expanding=True)),
                        )
                    )
        source = f"{info.type}:{info.name}"
        bid = info.bank_id
        rows = []
        for (st, h), r in sorted(pairs.items()):
            if blocked and (st, h) in blocked:
                continue
            owner = r[3]
            rows.append(
                (
                    bid,
                    st,
                    h,
                    "plain",
                    r[0] if st == "vpdq" else None,
                    f"{source}/{owner}" if owner else source,
                    r[0],
                    r[4],
                    now,
                    True,
                    None,
                    r[6],
                    *_PAD,
                )
            )
        added = self.banks._bulk_insert(conn, bid, rows, now)  # noqa: SLF001
        return added, len(blocked)

    # -------------------------------------------------------------- lookups
    def records_for_entry(self, entry_id: int) -> tuple[ExchangeInfo, list[StoredRecord]] | None:
        """The exchange and live records behind bank entry ``entry_id`` (for feedback)."""
        with self.engine.connect() as conn:
            e = conn.execute(
                sa.select(E.c.bank_id, E.c.signal_type, E.c.hash).where(E.c.id == entry_id)
            ).first()
        if e is None:
            return None
        info = self.for_bank(int(e.bank_id))
        if info is None:
            return None
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(R).where(
                    R.c.exchange_id == info.id, R.c.signal_type == e.signal_type, R.c.hash == e.hash
                )
            ).all()
        return info, [
            StoredRecord(
                key=r.record_key,
                signal_type=r.signal_type,
                hash=r.hash,
                owner=r.owner,
                category=r.category,
                tags=tuple(json.loads(r.tags)) if r.tags else (),
            )
            for r in rows
        ]

    def record_count(self, name: str) -> int:
        info = self.get(name)
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(R).where(R.c.exchange_id == info.id)
                ).scalar_one()
            )
