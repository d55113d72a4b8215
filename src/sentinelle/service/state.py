"""The per-process state of a running service: settings, database, banks, matcher.

One :class:`ServiceState` is built by :func:`build_state` when the app starts and
stored on ``app.state.sentinelle``; routes get it with
:func:`sentinelle.service.deps.get_state`. Everything in it is thread-safe:
request handlers run in a thread pool, the index sync and the job worker in
their own threads.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy

from ..banks import BankStore
from ..index.matcher import Matcher
from ..store.db import open_engine
from .settings import Settings


def make_instance_id() -> str:
    """``host:pid:random`` -- unique per process, readable in job locks and logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class SyncStatus:
    """What the index sync thread last did (read by /v1/ready and /metrics)."""

    last_ok: float | None = None  # time.monotonic() of the last successful refresh
    last_error: str | None = None
    applied: int = 0  # changes applied since start
    failures: int = 0

    def lag_s(self) -> float | None:
        """Seconds since the index was last known to be current (None: never)."""
        return None if self.last_ok is None else max(0.0, time.monotonic() - self.last_ok)


@dataclass
class ServiceState:
    settings: Settings
    engine: sqlalchemy.Engine
    store: BankStore
    matcher: Matcher
    instance_id: str = field(default_factory=make_instance_id)
    sync: SyncStatus = field(default_factory=SyncStatus)
    started_at: float = field(default_factory=time.time)
    # Filled by the app: API-key verifier, rate limiter, metrics (see app.py).
    keys: Any = None
    limiter: Any = None
    metrics: Any = None
    key_audit: Any = None  # KeyUseAuditor (service/key_audit.py): rate-limited key.use audit
    # Stop functions of background threads (index sync, job worker), run at shutdown.
    stoppers: list[Callable[[], None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        """Stop background threads (newest first) and release the database."""
        while self.stoppers:
            stop = self.stoppers.pop()
            with contextlib.suppress(Exception):  # shutdown must go on
                stop()
        self.engine.dispose()


def build_state(settings: Settings) -> ServiceState:
    """Open (and migrate) the database, load the matcher's indexes."""
    engine = open_engine(settings.database_url)
    store = BankStore(engine)
    matcher = Matcher(store)
    state = ServiceState(settings=settings, engine=engine, store=store, matcher=matcher)
    state.sync.last_ok = time.monotonic()  # freshly loaded
    return state
