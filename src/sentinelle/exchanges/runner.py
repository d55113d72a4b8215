"""Run fetches: one at a time per exchange across instances, page by page, never wedged.

:func:`run_fetch` takes the exchange's fetch **lease** (a conditional UPDATE on
its row, so it works the same on SQLite and PostgreSQL and across instances),
builds the client with credentials read just now, and applies page after page
with :meth:`ExchangeStore.apply_page` (page + checkpoint in one transaction,
fenced on the lease). Memory stays flat: one page is held at a time.

Failure handling, chosen against HMA's history (#2004, #2005, #1744):

* **429 / 5xx / network**: the transport backs off and retries; if the remote
  stays down the fetch ends with a ``TransientError`` on the status and the
  next scheduled fetch resumes from the checkpoint.
* **Malformed page** (bad XML/JSON, truncated body, wrong content type,
  oversized page, bad signature): the page is quarantined (error, excerpt,
  digest), re-requested up to ``page_retries`` times with back-off, and if it
  stays bad the fetch stops with a clear error on the status. The checkpoint
  never moves past a page that was not applied and nothing of it is written:
  silently skipping ahead would lose data, so that needs an operator
  (``sentinelle exchange reset``, audited).
* **Malformed record** inside a good page: skipped and counted (``malformed``),
  the rest of the page applies.
* **Unknown signal type**: counted (``unknown_types``) and skipped.

The job worker runs :func:`schedule_due` periodically: it queues one
``exchange_fetch`` job per due exchange (deduplicated per interval slot), and
whichever worker claims it runs the fetch; the lease makes a second instance's
attempt a no-op.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from ..banks import BankStore
from ..store.models import utcnow
from . import bulk, credentials
from .api import ExchangeAPI, ExchangeError, FetchPage, MalformedPage
from .registry import get_type
from .store import ExchangeInfo, ExchangeStore, LeaseLost, PageResult
from .transport import HttpTransport

log = logging.getLogger("sentinelle.exchanges")

FETCH_JOB = "exchange_fetch"
SCHEDULE_TASK = "exchanges.schedule"
SCHEDULE_EVERY_S = 15.0
DEFAULT_LEASE_S = 300.0
DEFAULT_MAX_SECONDS = 240.0


#: Consecutive pages applied in one transaction (see :func:`grouped`). 1: every page
#: commits alone (the finest kill -9 granularity; grouping 8 pages measured no faster
#: on the 1M-entry benchmark, whose cost is index inserts, not commits).
PAGES_PER_COMMIT = 1
#: Pages of a fetch applied one by one before the rest is staged (:mod:`.bulk`): small
#: fetches never touch the staging table; a backfill goes through it.
BULK_AFTER_PAGES = 8
#: Staged records materialised mid-fetch once this many wait (bounds one
#: materialising transaction; the rest are materialised when the fetch ends).
STAGE_MAX_RECORDS = 1_000_000
#: Pages fetched and parsed ahead of the one being applied (bounded: memory stays flat).
PREFETCH_PAGES = 2


def prefetched(pages: Iterator[FetchPage], depth: int = PREFETCH_PAGES) -> Iterator[FetchPage]:
    """``pages``, produced by a background thread up to ``depth`` pages ahead.

    The next page's HTTP request and XML/JSON parse (lxml and the socket release
    the GIL) overlap the database write of the current one, which releases the
    GIL inside SQLite. Order is kept; an exception of the producer is raised here
    at the position it happened, after the pages before it. Abandoning the
    iterator stops the producer after its current page. Nothing about the
    database changes: pages are still applied one transaction each, in order.
    """
    if depth <= 0:
        yield from pages
        return
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not put(("page", page)):
                    return
            put(("end", None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put(("error", e))
        finally:
            close = getattr(pages, "close", None)
            if close is not None and stop.is_set():
                with contextlib.suppress(Exception):  # best effort on abandon
                    close()

    t = threading.Thread(target=produce, name="exchange-prefetch", daemon=True)
    t.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "page":
                yield item
            elif kind == "error":
                raise item
            else:
                return
    finally:
        stop.set()
        t.join(timeout=5.0)


def grouped(
    pages: Iterator[FetchPage], n: int = 1, max_wait_s: float = 1.0
) -> Iterator[list[FetchPage]]:
    """Consecutive pages in groups of up to ``n``, each applied as ONE transaction with
    the checkpoint of its last page (so kill -9 still leaves all of a group or none).

    Fewer, larger transactions write each touched index page to the WAL once per
    group instead of once per page. A group is closed early when ``max_wait_s``
    passed since it was opened (a slow remote does not delay what it already
    sent), before a snapshot page (applied alone), and when the source fails: the
    good pages before a malformed one are applied, then the error is raised.
    """
    batch: list[FetchPage] = []
    opened = 0.0
    try:
        for page in pages:
            if page.replace_all:
                if batch:
                    yield batch
                    batch = []
                yield [page]
                continue
            if not batch:
                opened = time.monotonic()
            batch.append(page)
            if len(batch) >= n or time.monotonic() - opened >= max_wait_s:
                yield batch
                batch = []
    except Exception:  # not GeneratorExit: a closed generator must not yield again
        if batch:
            pending, batch = batch, []
            yield pending
        raise
    if batch:
        yield batch


def merge_pages(batch: list[FetchPage]) -> FetchPage:
    """One page standing for consecutive pages: their records in order, the last
    checkpoint and progress, the malformed counts summed."""
    if len(batch) == 1:
        return batch[0]
    records = [r for p in batch for r in p.records]
    last = batch[-1]
    return FetchPage(
        records,
        last.checkpoint,
        progress_at=last.progress_at,
        malformed_records=sum(p.malformed_records for p in batch),
    )


def fetcher_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:200]


def build_api(info: ExchangeInfo, http: Any, env: Mapping[str, str] | None = None) -> ExchangeAPI:
    """The client for ``info`` with its credentials read now (never stored)."""
    cls = get_type(info.type)
    secret = credentials.read_secret(info.credential_ref, dict(env) if env is not None else None)
    creds = cls.parse_credentials(secret) if secret is not None else None
    return cls(cls.config_cls.from_dict(info.config), creds, http)


@dataclass
class FetchOutcome:
    exchange: str
    ran: bool = True
    pages: int = 0
    up_to_date: bool = False
    error: str | None = None
    error_code: str | None = None
    counts: PageResult = field(default_factory=PageResult)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "ran": self.ran,
            "pages": self.pages,
            "up_to_date": self.up_to_date,
            "error": self.error,
            "error_code": self.error_code,
            "counts": self.counts.to_dict(),
            "seconds": round(self.seconds, 3),
        }


def run_fetch(
    engine_or_store: Engine | BankStore | ExchangeStore,
    name: str,
    *,
    owner: str | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    max_pages: int | None = None,
    max_seconds: float | None = None,
    page_retries: int = 2,
    http: HttpTransport | None = None,
    env: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_page: Callable[[PageResult], None] | None = None,
    prefetch: int = PREFETCH_PAGES,
    pages_per_commit: int = PAGES_PER_COMMIT,
    bulk_after_pages: int | None = BULK_AFTER_PAGES,
    stage_max_records: int = STAGE_MAX_RECORDS,
) -> FetchOutcome:
    """Fetch ``name`` from its checkpoint until up to date (or a limit); see the module notes."""
    store = (
        engine_or_store
        if isinstance(engine_or_store, ExchangeStore)
        else ExchangeStore(engine_or_store)
    )
    owner = owner or fetcher_id()
    out = FetchOutcome(exchange=name)
    started = time.monotonic()
    current = store.get(name)
    if not current.enabled:
        out.ran, out.error, out.error_code = False, "exchange is disabled", "disabled"
        return out
    info = store.acquire_lease(name, owner, lease_s)
    if info is None:
        out.ran = False
        out.error, out.error_code = "another fetch of this exchange is running", "fetch_running"
        return out
    own_http = http is None
    transport = http or HttpTransport()
    failures = 0
    pending = bulk.staged_count(store, info) > 0  # a killed fetch's staged rows
    staged = 0
    try:
        if pending:  # finish them first, before anything newer is read
            out.counts.add(bulk.materialise(store, info, owner))
            pending = False
        api = build_api(info, transport, env)
        if info.checkpoint is None and info.progress_at is not None:
            # checkpoint lost (unreadable) but we know how far the data went: resume
            # near there rather than re-reading everything, where the API allows it
            info.checkpoint = api.checkpoint_from_progress(info.progress_at.timestamp())
        while True:
            try:
                stopped = False
                pages: Iterator[FetchPage] = api.fetch(info.checkpoint)
                if max_pages is not None:  # never fetch a page we would not apply
                    pages = itertools.islice(pages, max(0, max_pages - out.pages))
                for batch in grouped(prefetched(pages, prefetch), pages_per_commit):
                    page = merge_pages(batch)
                    if (
                        page.replace_all
                        or bulk_after_pages is None
                        or (out.pages < bulk_after_pages)
                    ):
                        if pending:  # a snapshot sees the staged records applied
                            out.counts.add(bulk.materialise(store, info, owner))
                            pending, staged = False, 0
                        result = store.apply_page(info, page, owner, lease_s)
                    else:
                        result = bulk.stage_page(store, info, page, owner, lease_s)
                        pending = True
                        staged += result.records_seen
                        if staged >= stage_max_records:
                            out.counts.add(bulk.materialise(store, info, owner))
                            pending, staged = False, 0
                    out.counts.add(result)
                    out.pages += len(batch)
                    failures = 0
                    if on_page is not None:
                        on_page(result)
                    if (max_pages is not None and out.pages >= max_pages) or (
                        max_seconds is not None and time.monotonic() - started >= max_seconds
                    ):
                        stopped = True
                        break
                out.up_to_date = not stopped
                break
            except MalformedPage as e:
                store.quarantine(info, e.code, e.message, e.body, info.checkpoint)
                failures += 1
                log.warning(
                    "exchange %s: malformed page (%s), attempt %d/%d",
                    name,
                    e.code,
                    failures,
                    page_retries + 1,
                )
                if failures > page_retries:
                    raise
                sleep(min(30.0, 0.5 * 2**failures))
    except LeaseLost as e:
        out.error, out.error_code = e.message, e.code
        out.seconds = time.monotonic() - started
        return out  # the new holder owns the status now
    except ExchangeError as e:
        out.error, out.error_code = e.message, e.code
    except Exception as e:  # noqa: BLE001 - never crash the worker; the status says why
        out.error, out.error_code = f"{type(e).__name__}: {e}", "internal_error"
        log.exception("exchange %s: fetch failed", name)
    finally:
        if own_http:
            transport.close()
    if pending:  # entries are in the bank when the fetch returns, whatever stopped it
        try:
            out.counts.add(bulk.materialise(store, info, owner))
        except LeaseLost as e:
            out.error, out.error_code = e.message, e.code
            out.seconds = time.monotonic() - started
            return out
        except Exception as e:  # noqa: BLE001 - the staged rows wait for the next fetch
            log.exception("exchange %s: materialising staged records failed", name)
            if out.error is None:
                out.error, out.error_code = f"{type(e).__name__}: {e}", "internal_error"
    store.finish(info, owner, error=out.error, up_to_date=out.up_to_date)
    out.seconds = time.monotonic() - started
    return out


# ------------------------------------------------------------ job worker
def schedule_due(state: Any) -> list[int]:
    """Queue an ``exchange_fetch`` job for every enabled exchange that is due."""
    from ..jobs import queue

    store = ExchangeStore(state.engine)
    now = utcnow()
    ids = []
    for info in store.list():
        if not info.enabled:
            continue
        if info.fetch_owner and info.fetch_lease_until and info.fetch_lease_until > now:
            continue
        last = info.last_fetch_started_at
        if last is not None and now - last < timedelta(seconds=info.interval_s):
            continue
        slot = int(now.timestamp() // max(1, info.interval_s))
        ids.append(
            queue.enqueue(
                state.engine,
                FETCH_JOB,
                {"exchange": info.name},
                max_attempts=1,
                dedupe_key=f"{FETCH_JOB}:{info.id}:{slot}",
            )
        )
    return ids


def _handle_fetch(state: Any, job: Any) -> dict[str, Any]:
    name = job.payload.get("exchange")
    if not isinstance(name, str):
        from ..jobs.worker import PermanentJobError

        raise PermanentJobError("bad exchange_fetch payload")
    return run_fetch(state.engine, name, max_seconds=DEFAULT_MAX_SECONDS).to_dict()


def register() -> None:
    """Plugin entry point (:mod:`sentinelle.plugins`): the fetch and feedback job
    handlers, the review-decision hook and the scheduler tick ``exchanges.schedule``."""
    from ..jobs import worker
    from . import feedback

    worker.register_handler(FETCH_JOB, _handle_fetch)
    feedback.register_handler()
    worker.register_periodic(SCHEDULE_TASK, schedule_due, SCHEDULE_EVERY_S)
