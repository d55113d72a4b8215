"""Flood guard: pause a bank entry that suddenly matches far too often.

A false-positive hash in a bank (say, of a meme or a blank frame) can match a
large share of a platform's uploads within minutes. The flood guard counts
matches per entry in a window **shared by all instances** and, when an entry
goes over its bank's limit, pauses it and raises an alert:

* **Counting.** ``flood_counters`` holds one row per (entry, window length,
  window start). Instances add their counts with an atomic upsert
  (``INSERT ... ON CONFLICT DO UPDATE SET count = count + n RETURNING count``,
  the same statement on SQLite and PostgreSQL). The rate is a *sliding-window
  estimate*: ``current + previous * (1 - elapsed / window)``, so a burst that
  straddles two fixed windows is still caught.
* **Batching.** :class:`FloodGuard` buffers counts in memory and writes them at
  most every ``flush_interval_s`` (default 0.25 s): a busy instance makes a few
  small writes per second instead of one per matching request. The job worker
  flushes leftovers every second.
* **Tripping once.** The instance whose update sets the window row's
  ``tripped`` flag (a conditional ``UPDATE ... WHERE tripped = false``) is the
  only one that pauses the entry and writes the alert.
* **Pausing.** ``BankStore.disable_entry(id, until=now + pause)`` writes the
  change log, so every instance's index drops the entry within its sync period.
  A ``flood_resume`` job scheduled at ``until`` re-enables it (through the change
  log again) unless an operator changed the entry meanwhile. Entries an
  operator disabled are never touched.
* **Alerts.** A row in ``alerts`` (kind ``flood_guard``) and a WARNING log line
  with the bank name, entry id and count -- never media or hashes of uploads.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    select,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from ..errors import SentinelleError
from ..jobs import queue, worker
from ..store.models import UTCDateTime, utcnow
from .config import FloodSettings

log = logging.getLogger("sentinelle.flood")

DEFAULT_FLUSH_INTERVAL_S = 0.25
RESUME_JOB = "flood_resume"

metadata = MetaData()
flood_counters_table = Table(
    "flood_counters",
    metadata,
    Column("entry_id", BigInteger, primary_key=True),
    Column("window_s", Integer, primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
    Column("tripped", Boolean, nullable=False),
)
alerts_table = Table(
    "alerts",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("bank", String(200)),
    Column("entry_id", BigInteger),
    Column("count", Integer),
    Column("window_s", Integer),
    Column("detail", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("acknowledged", Boolean, nullable=False),
)
FC = flood_counters_table
AL = alerts_table


@dataclass(frozen=True)
class Alert:
    id: int
    kind: str
    bank: str | None
    entry_id: int | None
    count: int | None
    window_s: int | None
    detail: str
    created_at: datetime
    acknowledged: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "bank": self.bank,
            "entry_id": self.entry_id,
            "count": self.count,
            "window_s": self.window_s,
            "detail": self.detail,
            "created_at": self.created_at.isoformat(),
            "acknowledged": self.acknowledged,
        }


@dataclass
class FloodResult:
    """What one flush did: entries paused by THIS instance and their alerts."""

    paused_entries: list[int] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)


def _insert(engine: Engine):  # type: ignore[no-untyped-def]
    return (pg_dialect if engine.dialect.name == "postgresql" else sqlite_dialect).insert


def estimate(current: int, previous: int, elapsed_s: float, window_s: int) -> float:
    """Sliding-window count: all of the current window plus the part of the
    previous one that still lies within ``window_s`` seconds of now."""
    frac = min(1.0, max(0.0, elapsed_s / window_s))
    return current + previous * (1.0 - frac)


def _add_counts(
    engine: Engine,
    counts: Mapping[int, tuple[str, int]],
    settings: Mapping[str, FloodSettings],
    now_s: float,
) -> list[tuple[int, str, int, FloodSettings]]:
    """Add ``counts`` (entry -> (bank, n)) to the shared counters in one
    transaction; returns the entries THIS call tripped: (entry, bank, count, settings)."""
    ins = _insert(engine)
    tripped: list[tuple[int, str, int, FloodSettings]] = []
    conn = engine.connect()
    if engine.dialect.name == "sqlite":
        conn.execution_options(sqlite_begin="IMMEDIATE")
    with conn, conn.begin():
        for entry_id in sorted(counts):  # fixed order: no deadlocks between instances
            bank, n = counts[entry_id]
            fs = settings.get(bank)
            if fs is None or not fs.enabled or n <= 0:
                continue
            w = int(fs.window_s)
            start = int(math.floor(now_s / w) * w)
            stmt = ins(FC).values(
                entry_id=entry_id, window_s=w, window_start=start, count=n, tripped=False
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["entry_id", "window_s", "window_start"],
                set_={"count": FC.c.count + n},
            ).returning(FC.c.count, FC.c.tripped)
            cur, already = conn.execute(stmt).one()
            if already:
                continue
            prev = conn.execute(
                select(FC.c.count).where(
                    FC.c.entry_id == entry_id, FC.c.window_s == w, FC.c.window_start == start - w
                )
            ).scalar()
            est = estimate(int(cur), int(prev or 0), now_s - start, w)
            if est <= fs.max_matches:
                continue
            won = conn.execute(
                update(FC)
                .where(
                    FC.c.entry_id == entry_id,
                    FC.c.window_s == w,
                    FC.c.window_start == start,
                    FC.c.tripped.is_(False),
                )
                .values(tripped=True)
            ).rowcount
            if won == 1:
                tripped.append((entry_id, bank, int(math.ceil(est)), fs))
    return tripped


def raise_alert(
    engine: Engine,
    kind: str,
    *,
    bank: str | None = None,
    entry_id: int | None = None,
    count: int | None = None,
    window_s: int | None = None,
    detail: str = "",
) -> Alert:
    """Write an alert row (and return it)."""
    now = utcnow()
    row = {
        "kind": kind[:32],
        "bank": None if bank is None else bank[:200],
        "entry_id": entry_id,
        "count": count,
        "window_s": window_s,
        "detail": detail[:2000],
        "created_at": now,
        "acknowledged": False,
    }
    with engine.begin() as conn:
        aid = conn.execute(AL.insert().returning(AL.c.id), row).scalar_one()
    return Alert(id=int(aid), **row)  # type: ignore[arg-type]


def _pause(store: Any, entry_id: int, bank: str, count: int, fs: FloodSettings) -> dict | None:
    """Pause one tripped entry; returns the alert as a dict (None if left alone)."""
    engine = store.engine
    entry = store.get_entry(entry_id)
    if entry is None or not entry.enabled:
        return None  # deleted, or disabled by an operator: not ours to touch
    until = (utcnow() + timedelta(seconds=fs.pause_s)).replace(microsecond=0)
    store.disable_entry(entry_id, until=until)
    queue.enqueue(
        engine,
        RESUME_JOB,
        {"entry_id": entry_id, "until": until.isoformat()},
        run_at=until,
        dedupe_key=f"{RESUME_JOB}:{entry_id}:{int(until.timestamp())}",
    )
    detail = (
        f"entry {entry_id} of bank {bank!r} matched about {count} times in "
        f"{fs.window_s} s (limit {fs.max_matches}); paused until {until.isoformat()}"
    )
    alert = raise_alert(
        engine,
        "flood_guard",
        bank=bank,
        entry_id=entry_id,
        count=count,
        window_s=fs.window_s,
        detail=detail,
    )
    log.warning(
        "flood guard: paused entry %d of bank %r (%d matches in %d s, limit %d) for %d s",
        entry_id,
        bank,
        count,
        fs.window_s,
        fs.max_matches,
        fs.pause_s,
    )
    return alert.to_dict()


class FloodGuard:
    """Per-process accumulator in front of the shared counters (thread-safe)."""

    def __init__(self, store: Any, flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S) -> None:
        self.store = store
        self.flush_interval_s = flush_interval_s
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict[int, list[Any]] = {}  # entry -> [bank, n, settings]
        self._last_flush = time.monotonic()

    def record(
        self, counts: Mapping[int, tuple[str, int]], settings: Mapping[str, FloodSettings]
    ) -> FloodResult:
        """Add match counts; flush if due (without waiting on another flusher)."""
        with self._lock:
            for entry_id, (bank, n) in counts.items():
                fs = settings.get(bank)
                if fs is None or not fs.enabled:
                    continue
                slot = self._pending.setdefault(entry_id, [bank, 0, fs])
                slot[1] += n
                slot[2] = fs
            due = bool(self._pending) and (
                time.monotonic() - self._last_flush >= self.flush_interval_s
            )
        if due and self._flush_lock.acquire(blocking=False):
            try:
                return self._flush_locked()
            finally:
                self._flush_lock.release()
        return FloodResult()

    def flush(self) -> FloodResult:
        """Write buffered counts now and pause entries over their limit."""
        with self._flush_lock:
            return self._flush_locked()

    def _flush_locked(self) -> FloodResult:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        if not pending:
            return FloodResult()
        counts = {e: (v[0], v[1]) for e, v in pending.items()}
        settings = {v[0]: v[2] for v in pending.values()}
        try:
            tripped = _add_counts(self.store.engine, counts, settings, time.time())
        except Exception:
            with self._lock:  # keep the counts for the next flush
                for e, (bank, n, fs) in pending.items():
                    slot = self._pending.setdefault(e, [bank, 0, fs])
                    slot[1] += n
            raise
        result = FloodResult()
        for entry_id, bank, count, fs in tripped:
            alert = _pause(self.store, entry_id, bank, count, fs)
            if alert is not None:
                result.paused_entries.append(entry_id)
                result.alerts.append(alert)
        return result


_guards: weakref.WeakKeyDictionary[Engine, FloodGuard] = weakref.WeakKeyDictionary()
_guards_lock = threading.Lock()


def guard_for(store: Any, flush_interval_s: float | None = None) -> FloodGuard:
    """The process-wide :class:`FloodGuard` of ``store``'s database."""
    with _guards_lock:
        g = _guards.get(store.engine)
        if g is None:
            g = _guards[store.engine] = FloodGuard(
                store, DEFAULT_FLUSH_INTERVAL_S if flush_interval_s is None else flush_interval_s
            )
        elif flush_interval_s is not None:
            g.flush_interval_s = flush_interval_s
        return g


# ------------------------------------------------------------------ alerts
def list_alerts(
    engine: Engine, *, acknowledged: bool | None = None, kind: str | None = None, limit: int = 100
) -> list[Alert]:
    """Alerts, newest first."""
    q = select(AL)
    if acknowledged is not None:
        q = q.where(AL.c.acknowledged.is_(bool(acknowledged)))
    if kind is not None:
        q = q.where(AL.c.kind == kind)
    q = q.order_by(AL.c.id.desc()).limit(max(1, min(int(limit), 10_000)))
    with engine.connect() as conn:
        return [
            Alert(
                id=int(r.id),
                kind=r.kind,
                bank=r.bank,
                entry_id=r.entry_id,
                count=r.count,
                window_s=r.window_s,
                detail=r.detail,
                created_at=r.created_at,
                acknowledged=bool(r.acknowledged),
            )
            for r in conn.execute(q)
        ]


def acknowledge_alert(engine: Engine, alert_id: int) -> None:
    with engine.begin() as conn:
        n = conn.execute(update(AL).where(AL.c.id == alert_id).values(acknowledged=True)).rowcount
    if n != 1:
        raise SentinelleError(f"no alert {alert_id}", code="unknown_alert")


def prune_counters(engine: Engine, now_s: float | None = None) -> int:
    """Delete counter rows too old to matter (older than two windows)."""
    now_s = time.time() if now_s is None else now_s
    with engine.begin() as conn:
        return conn.execute(
            delete(FC).where(FC.c.window_start + 2 * FC.c.window_s < int(now_s))
        ).rowcount


# --------------------------------------------------------------- resume job
def _resume(state: Any, job: queue.Job) -> dict:
    """Job ``flood_resume``: lift a flood-guard pause when it ends (via the
    change log, so every instance re-adds the entry), unless the entry was
    changed by someone else in the meantime."""
    try:
        entry_id = int(job.payload["entry_id"])
        until = datetime.fromisoformat(str(job.payload["until"])).astimezone(UTC)
    except (KeyError, TypeError, ValueError):
        raise worker.PermanentJobError("bad flood_resume payload") from None
    entry = state.store.get_entry(entry_id)
    if entry is None or not entry.enabled or entry.disabled_until is None:
        return {"resumed": False}
    if abs((entry.disabled_until - until).total_seconds()) > 1:
        return {"resumed": False}  # paused again or edited since: leave it
    state.store.update_entry(entry_id, disabled_until=None)
    return {"resumed": True}


def register() -> None:
    """Register the ``flood_resume`` job and the counter housekeeping (see
    :mod:`sentinelle.plugins`)."""
    worker.register_handler(RESUME_JOB, _resume)
    worker.register_periodic("flood_prune", lambda state: prune_counters(state.engine), 60.0)
    # Counts buffered by requests that were not followed by another request in time.
    worker.register_periodic("flood_flush", lambda state: guard_for(state.store).flush(), 1.0)
