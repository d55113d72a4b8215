"""Audit API key *use* without slowing the request path.

Writing an audit entry on every request would put a database write (and the
audit chain's head-row lock) on the hot path of ``/v1/scan``. Instead each
caller is summarised: the first use after start-up is recorded at once, then at
most one entry per caller per window (an hour by default) per process, carrying
what happened since the previous entry::

    actor  "key:<id>"                     action "key.use"
    details {"count": 812, "routes": {"/v1/scan": 800, "/v1/match/hashes": 12},
             "first_seen": "...Z", "last_seen": "...Z"}

Allow-listed HMA callers are summarised the same way as actor
``key:allowlist:<ip>`` (the project's audit actor for them, see
:func:`sentinelle.service.api.curation.actor_of`). Failed authentications with
an unknown or revoked key become ``auth.key_rejected`` entries (actor
``system``, target ``ip:<address>``), summarised per source address; their
details hold only the key ids parsed from the ``snt_<id>_`` prefix -- never
the secret, a hash of it, request bodies or media.

The request thread only updates an in-memory counter under a lock; entries
that are due go to a bounded queue drained by one daemon writer thread. When
the queue is full the entry is dropped and counted (:attr:`KeyUseAuditor.dropped`)
rather than blocking the request. The writer also emits summaries whose window
ran out while the caller went quiet, and :meth:`KeyUseAuditor.stop` (registered
in the app's ``stoppers``) writes every pending summary before shutdown.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger("sentinelle.service.key_audit")

#: Default summary window: at most one ``key.use`` entry per caller per hour.
WINDOW_S = 3600.0
#: Entries waiting for the writer; beyond this they are dropped and counted.
QUEUE_SIZE = 1024
#: Distinct callers tracked at once; further rejected sources share one summary.
MAX_TRACKED = 10_000
#: Distinct rejected key ids kept in one ``auth.key_rejected`` summary.
MAX_KEY_IDS = 20
_KEY_ID_RE = re.compile(r"^snt_([0-9]{1,18})_")
_OVERFLOW = "ip:other"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def key_id_prefix(token: str) -> int | None:
    """The id of a ``snt_<id>_...`` token, or None: the only key material ever audited."""
    m = _KEY_ID_RE.match(token or "")
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class AuditItem:
    """One entry for :func:`sentinelle.audit.record_event`."""

    actor: str
    action: str
    target: str | None
    details: dict[str, Any]


@dataclass
class _Window:
    """What one caller did since its last audit entry."""

    actor: str
    action: str
    target: str | None
    count: int = 0
    routes: Counter[str] = field(default_factory=Counter)
    key_ids: set[int] = field(default_factory=set)
    unparsed: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    last_emit: float | None = None  # None: nothing written yet in this process run

    def add(self, now: float, route: str, key_id: int | None, rejected: bool) -> None:
        if self.count == 0:
            self.first_seen = now
        self.count += 1
        self.last_seen = now
        self.routes[route] += 1
        if rejected:
            if key_id is None:
                self.unparsed += 1
            elif len(self.key_ids) < MAX_KEY_IDS:
                self.key_ids.add(key_id)

    def due(self, now: float, window_s: float) -> bool:
        return self.count > 0 and (self.last_emit is None or now - self.last_emit >= window_s)

    def take(self, now: float) -> AuditItem:
        """The summary since the last entry; resets the counters."""
        details: dict[str, Any] = {
            "count": self.count,
            "routes": dict(sorted(self.routes.items())),
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
        }
        if self.action == "auth.key_rejected":
            details["key_ids"] = sorted(self.key_ids)
            details["unparsed"] = self.unparsed
        item = AuditItem(self.actor, self.action, self.target, details)
        self.count, self.unparsed = 0, 0
        self.routes.clear()
        self.key_ids.clear()
        self.last_emit = now
        return item


_STOP = object()


class KeyUseAuditor:
    """Rate-limited, asynchronous audit of API key use and rejected keys.

    ``note_use``/``note_rejected`` are called on the request path and never
    touch the database. The writer thread starts on the first entry and is
    stopped (after writing every pending summary) by :meth:`stop`; a later
    entry starts a fresh run, whose first use per caller is written at once.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        window_s: float = WINDOW_S,
        queue_size: int = QUEUE_SIZE,
        tick_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        record: Callable[..., int] | None = None,
    ) -> None:
        if record is None:
            from ..audit import record_event as record
        self.engine = engine
        self.window_s = float(window_s)
        self.tick_s = float(tick_s)
        self.clock = clock
        self._record = record
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, queue_size))
        self._windows: dict[tuple[str, str], _Window] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.dropped = 0  # entries lost to a full queue
        self.written = 0
        self.failed = 0  # entries the database refused

    # -------------------------------------------------------------- request path
    def note_use(self, actor: str, route: str) -> None:
        """One authenticated request by ``actor`` (``key:<id>`` or ``key:allowlist:<ip>``)."""
        self._note("key.use", actor, actor, None, route, None, rejected=False)

    def note_rejected(self, source_ip: str, route: str, token: str) -> None:
        """One request with an unknown or revoked key from ``source_ip``.

        Only the id prefix of ``token`` is kept; the token itself is not stored.
        """
        target = f"ip:{source_ip}"
        self._note("auth.key_rejected", target, "system", target, route, key_id_prefix(token), True)

    def _note(
        self,
        action: str,
        who: str,
        actor: str,
        target: str | None,
        route: str,
        key_id: int | None,
        rejected: bool,
    ) -> None:
        now = self.clock()
        with self._lock:
            key = (action, who)
            w = self._windows.get(key)
            if w is None:
                if rejected and len(self._windows) >= MAX_TRACKED:
                    key, target = (action, _OVERFLOW), _OVERFLOW
                    w = self._windows.get(key)
                if w is None:
                    w = self._windows[key] = _Window(actor, action, target)
            w.add(now, route, key_id, rejected)
            item = w.take(now) if w.due(now, self.window_s) else None
            if item is not None:
                self._ensure_started()
        if item is not None:
            self._put(item)

    def _put(self, item: object) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.dropped += 1
                n = self.dropped
            if n == 1 or n % 1000 == 0:
                log.warning("key audit queue full", extra={"fields": {"dropped": n}})

    # -------------------------------------------------------------- writer
    def _ensure_started(self) -> None:
        """Start the writer thread if it is not running (caller holds the lock)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="sentinelle-key-audit", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.tick_s)
            except queue.Empty:
                self._sweep()
                continue
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
            elif isinstance(item, AuditItem):
                self._write(item)

    def _write(self, item: AuditItem) -> None:
        try:
            self._record(
                self.engine,
                actor=item.actor,
                action=item.action,
                target=item.target,
                details=item.details,
            )
        except Exception as e:  # noqa: BLE001 - the writer must outlive a database outage
            self.failed += 1
            log.warning(
                "key audit write failed",
                extra={"fields": {"action": item.action, "error": type(e).__name__}},
            )
        else:
            self.written += 1

    def _take_due(self, *, everything: bool) -> list[AuditItem]:
        """Summaries whose window ran out (or all pending ones); forget idle callers."""
        now = self.clock()
        out: list[AuditItem] = []
        with self._lock:
            for key, w in list(self._windows.items()):
                if w.count and (everything or w.due(now, self.window_s)):
                    out.append(w.take(now))
                elif not w.count and w.last_emit is not None and now - w.last_emit >= self.window_s:
                    del self._windows[key]  # idle for a window: same as never seen
        return out

    def _sweep(self) -> None:
        for item in self._take_due(everything=False):
            self._write(item)

    # -------------------------------------------------------------- control
    def flush(self, timeout: float = 5.0) -> bool:
        """Write the due summaries and wait until everything queued is written."""
        for item in self._take_due(everything=False):
            self._put(item)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                return self._queue.empty()
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Write every pending summary, then end the writer (the app's shutdown)."""
        pending = self._take_due(everything=True)
        with self._lock:
            thread = self._thread
            self._windows.clear()  # a later run starts fresh: first use written at once
            if pending and (thread is None or not thread.is_alive()):
                self._ensure_started()
                thread = self._thread
        deadline = time.monotonic() + timeout
        for item in pending:
            try:
                self._queue.put(item, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                with self._lock:
                    self.dropped += 1
        if thread is None or not thread.is_alive():
            return
        try:
            self._queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            return
        thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            if self._thread is thread and not thread.is_alive():
                self._thread = None

    def stats(self) -> dict[str, int]:
        """Counters for diagnostics: written, failed, dropped, queued."""
        return {
            "written": self.written,
            "failed": self.failed,
            "dropped": self.dropped,
            "queued": self._queue.qsize(),
        }


def actor_for(source: str, key_id: int, name: str) -> str:
    """The audit actor of an authenticated caller (``ApiKeyInfo.actor`` uses this)."""
    return f"key:{key_id}" if source == "key" else f"key:{name}"


def route_template(scope: dict[str, Any]) -> str:
    """The matched route's path template (``/v1/banks/{name}``), never the raw path."""
    return getattr(scope.get("route"), "path", None) or "unmatched"
