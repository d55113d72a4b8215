"""Runs queued jobs: a handler registry, one-shot :func:`run_once`, and a thread.

A handler is ``fn(state, job) -> dict | None``; its return value becomes the
job's ``result``. Raise :class:`PermanentJobError` for a failure that retrying
cannot fix (the job goes straight to the dead-letter list); any other exception
is retried with back-off (see :mod:`sentinelle.jobs.queue`).

Job kinds and periodic tasks are registered by the modules that own them, collected
at start-up from :data:`sentinelle.plugins.DEFAULT_PLUGINS`; this package imports
nothing above it.

Every instance of the service runs one worker thread (:func:`start_worker`).
Claiming is exclusive across instances, so adding instances adds throughput and
never runs a job twice. While a handler runs, a heartbeat thread extends the
job's lease so that only a *crashed* instance's jobs get reclaimed.

Logs carry the job id, kind and the exception class only: payloads and error
messages may hold user data and stay in the database (``last_error``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import SentinelleError
from . import queue

log = logging.getLogger("sentinelle.jobs")

Handler = Callable[[Any, queue.Job], "dict | None"]
DEFAULT_LEASE_S = 60.0


class PermanentJobError(SentinelleError):
    """Raised by a handler when retrying is pointless (bad payload, gone target)."""

    code = "job_failed_permanently"


@dataclass
class _Periodic:
    fn: Callable[[Any], None]
    interval_s: float
    last: float = 0.0


_handlers: dict[str, Handler] = {}
_periodic: dict[str, _Periodic] = {}
_registry_lock = threading.Lock()


def register_handler(kind: str, fn: Handler) -> None:
    """Make this process able to run jobs of ``kind`` (re-registering replaces)."""
    if not isinstance(kind, str) or not 1 <= len(kind) <= queue.MAX_KIND:
        raise ValueError("job kind must be 1-64 characters")
    with _registry_lock:
        _handlers[kind] = fn


def handlers() -> dict[str, Handler]:
    with _registry_lock:
        return dict(_handlers)


def register_periodic(name: str, fn: Callable[[Any], None], interval_s: float) -> None:
    """Run ``fn(state)`` from the worker thread about every ``interval_s`` seconds
    (housekeeping such as pruning old counters). Not exclusive across instances:
    keep such tasks idempotent."""
    with _registry_lock:
        _periodic[name] = _Periodic(fn, float(interval_s))


def _worker_id(state: Any) -> str:
    return f"{state.instance_id}/{threading.current_thread().name}"[:200]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SentinelleError):
        return f"{exc.code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


class _Heartbeat:
    """Extends a job's lease every ``lease_s / 3`` seconds until stopped."""

    def __init__(self, engine: Any, job_id: int, worker_id: str, lease_s: float) -> None:
        self._stop = threading.Event()
        self._args = (engine, job_id, worker_id, lease_s)
        self._thread = threading.Thread(
            target=self._run, name=f"job-heartbeat-{job_id}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        engine, job_id, worker_id, lease_s = self._args
        while not self._stop.wait(max(0.05, lease_s / 3)):
            try:
                if not queue.extend_lease(engine, job_id, worker_id, lease_s):
                    return
            except Exception as e:  # noqa: BLE001 - transient DB trouble; keep trying
                log.warning("job %s: lease extension failed (%s)", job_id, type(e).__name__)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run_once(
    state: Any,
    kinds: Collection[str] | None = None,
    *,
    lease_s: float = DEFAULT_LEASE_S,
    now: datetime | None = None,
) -> bool:
    """Claim and run one job; True if a job was run (successfully or not).

    ``kinds`` defaults to every kind with a registered handler. ``now`` lets
    tests simulate the passage of time (back-off, lease expiry).
    """
    table = handlers()
    wanted = [k for k in (table if kinds is None else kinds) if k in table]
    if not wanted:
        return False
    engine = state.engine
    wid = _worker_id(state)
    job = queue.claim(engine, wid, wanted, lease_s, now=now)
    if job is None:
        return False
    fn = table[job.kind]
    beat = _Heartbeat(engine, job.id, wid, lease_s)
    try:
        result = fn(state, job)
    except PermanentJobError as e:
        beat.stop()
        log.warning("job %s (%s) failed permanently: %s", job.id, job.kind, e.code)
        queue.fail(engine, job.id, _describe(e), retry=False, worker_id=wid)
        return True
    except Exception as e:  # noqa: BLE001 - a handler failure must not kill the worker
        beat.stop()
        status = queue.fail(engine, job.id, _describe(e), worker_id=wid)
        level = logging.WARNING if status == "dead" else logging.INFO
        log.log(
            level,
            "job %s (%s) attempt %d/%d failed (%s) -> %s",
            job.id,
            job.kind,
            job.attempts,
            job.max_attempts,
            type(e).__name__,
            status,
        )
        return True
    beat.stop()
    if not isinstance(result, dict | None):
        result = {"value": str(result)}
    if not queue.complete(engine, job.id, result, worker_id=wid):
        log.warning("job %s (%s): lease lost before completion", job.id, job.kind)
    return True


def run_periodic(state: Any, *, force: bool = False) -> None:
    """Run the registered housekeeping tasks that are due."""
    with _registry_lock:
        tasks = list(_periodic.items())
    now = time.monotonic()
    for name, task in tasks:
        if force or now - task.last >= task.interval_s:
            task.last = now
            try:
                task.fn(state)
            except Exception as e:  # noqa: BLE001
                log.warning("periodic task %s failed (%s)", name, type(e).__name__)


def run_until_idle(state: Any, kinds: Collection[str] | None = None, max_jobs: int = 10_000) -> int:
    """Run jobs until none is runnable (or ``max_jobs``); returns how many ran."""
    n = 0
    while n < max_jobs and run_once(state, kinds):
        n += 1
    return n


def start_worker(state: Any, poll_s: float = 0.5, threads: int = 2) -> Callable[[], None]:
    """Start ``threads`` worker threads for ``state``; returns a function that stops them.

    Each thread runs due jobs back to back, sleeps ``poll_s`` when the queue is
    empty, and survives database outages (it logs and retries after a pause).
    Two threads by default, so one long bank import does not hold up webhook
    deliveries. The first thread also runs the periodic housekeeping tasks.
    """
    stop = threading.Event()

    def loop(housekeeping: bool) -> None:
        backoff = poll_s
        while not stop.is_set():
            try:
                ran = run_once(state)
                if housekeeping:
                    run_periodic(state)
                backoff = poll_s
            except Exception as e:  # noqa: BLE001 - e.g. database unreachable
                log.warning("job worker: %s; retrying", type(e).__name__)
                ran = False
                backoff = min(30.0, backoff * 2)
            if not ran:
                stop.wait(backoff)

    pool = [
        threading.Thread(target=loop, args=(i == 0,), name=f"sentinelle-jobs-{i}", daemon=True)
        for i in range(max(1, threads))
    ]
    for t in pool:
        t.start()

    def stopper(timeout: float = 10.0) -> None:
        stop.set()
        for t in pool:
            t.join(timeout=timeout)

    return stopper
