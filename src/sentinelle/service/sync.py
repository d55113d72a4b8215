"""Index sync: keep the in-memory matcher current with the bank store.

A daemon thread calls :meth:`Matcher.refresh` every ``sync_interval_s`` (1 s by
default). ``refresh`` follows the store's change log from the last sequence
number it applied, so each round costs one small indexed query and applies only
what changed -- no rebuild. Every instance sharing a database follows the same
log, so a bank change made through any instance (or the CLI) reaches all of them
within about one interval; ``/v1/ready`` turns 503 if the last successful
refresh is older than ``ready_max_lag_s`` (database unreachable).

Failures (database down) are counted and retried on the next tick; they never
kill the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .logging import log_event
from .state import ServiceState

log = logging.getLogger("sentinelle.sync")


def sync_once(state: ServiceState) -> int:
    """One refresh; records the outcome in ``state.sync``. Returns changes applied."""
    try:
        n = state.matcher.refresh()
    except Exception as e:  # noqa: BLE001 - keep syncing whatever happens
        state.sync.failures += 1
        state.sync.last_error = f"{type(e).__name__}"
        log_event(
            log,
            "index sync failed",
            logging.WARNING,
            error=type(e).__name__,
            instance=state.instance_id,
        )
        return 0
    state.sync.last_ok = time.monotonic()
    state.sync.last_error = None
    state.sync.applied += n
    if n:
        log_event(log, "index synced", logging.DEBUG, changes=n, version=state.matcher.version)
    return n


def start_sync(state: ServiceState, interval_s: float | None = None) -> Callable[[], None]:
    """Start the sync thread; returns a function that stops it (and waits)."""
    period = interval_s if interval_s is not None else state.settings.sync_interval_s
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(period):
            sync_once(state)

    t = threading.Thread(target=loop, name="sentinelle-index-sync", daemon=True)
    t.start()

    def stopper() -> None:
        stop.set()
        t.join(timeout=max(5.0, 2 * period))

    return stopper
