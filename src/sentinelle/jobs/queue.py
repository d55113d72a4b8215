"""A durable job queue in the bank database, safe with several instances.

Life of a job::

    enqueue -> pending --claim--> running --complete--> done
                  ^                  |
                  |   fail (retry)   |   fail after max_attempts, or retry=False
                  +------------------+-----------------------------------------> dead
                                                                  replay -> pending

* **Exclusive claiming.** :func:`claim` picks the oldest runnable job and marks
  it ``running`` with a lease (``locked_by``, ``locked_until``) in ONE
  transaction. PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` (concurrent
  claimers skip each other's rows instead of waiting); SQLite: ``BEGIN
  IMMEDIATE`` takes the database write lock before the select, so claimers are
  serialized. Either way two workers (threads or processes, on one machine or
  many) never hold the same job.
* **Crash recovery.** A ``running`` job whose lease has expired (its instance
  crashed or hung) is claimable again; the crashed run counts as an attempt.
  Long handlers keep their lease alive with :func:`extend_lease`.
* **Retries.** :func:`fail` reschedules with exponential back-off and jitter
  (``base * 2**(attempt-1)``, capped, times a random factor in [0.5, 1]). After
  ``max_attempts`` the job is ``dead``: the dead-letter list is
  ``list_jobs(engine, status="dead")``; :func:`replay` puts it back in the queue.
* **Idempotent enqueue.** With ``dedupe_key`` a second enqueue of the same key
  returns the existing job's id.
* **Fencing.** :func:`complete` / :func:`fail` given ``worker_id`` only act if
  that worker still holds the job (a worker whose lease expired and whose job
  was reclaimed cannot overwrite the new run's outcome).

Payloads and results are JSON objects stored as text. Keep them small and free
of media: a bulk import stores the path of a private temporary file instead.
"""

from __future__ import annotations

import json
import random
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from ..errors import SentinelleError
from ..store.models import UTCDateTime, utcnow

STATUSES = ("pending", "running", "done", "dead")
BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 3600.0
MAX_KIND = 64
MAX_ERROR = 2000
MAX_PAYLOAD_BYTES = 1_000_000

metadata = MetaData()
#: The ``jobs`` table (created by migration 0003).
jobs_table = Table(
    "jobs",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("run_at", UTCDateTime, nullable=False),
    Column("locked_by", String(200)),
    Column("locked_until", UTCDateTime),
    Column("last_error", Text),
    Column("result", Text),
    Column("dedupe_key", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
J = jobs_table


class JobError(SentinelleError):
    """Bad job request: unknown job, invalid payload, replay of a live job..."""

    code = "job_error"


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    status: str
    attempts: int
    max_attempts: int
    run_at: datetime
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    dedupe_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (datetimes as ISO 8601 UTC)."""

        def iso(dt: datetime | None) -> str | None:
            return None if dt is None else dt.isoformat()

        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "run_at": iso(self.run_at),
            "locked_by": self.locked_by,
            "locked_until": iso(self.locked_until),
            "last_error": self.last_error,
            "result": self.result,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


def _loads(s: str | None) -> Any:
    if s is None:
        return None
    try:
        return json.loads(s)
    except ValueError:
        return {"_unparseable": True}


def _row_to_job(r: Any) -> Job:
    return Job(
        id=int(r.id),
        kind=r.kind,
        payload=_loads(r.payload) or {},
        status=r.status,
        attempts=int(r.attempts),
        max_attempts=int(r.max_attempts),
        run_at=r.run_at,
        locked_by=r.locked_by,
        locked_until=r.locked_until,
        last_error=r.last_error,
        result=_loads(r.result),
        created_at=r.created_at,
        updated_at=r.updated_at,
        dedupe_key=r.dedupe_key,
    )


def _write_conn(engine: Engine) -> Connection:
    """A connection whose transactions take SQLite's write lock up front."""
    conn = engine.connect()
    if engine.dialect.name == "sqlite":
        conn.execution_options(sqlite_begin="IMMEDIATE")
    return conn


def _insert(engine: Engine):  # type: ignore[no-untyped-def]
    return (pg_dialect if engine.dialect.name == "postgresql" else sqlite_dialect).insert


def backoff_delay(
    attempt: int, base_s: float = BACKOFF_BASE_S, cap_s: float = BACKOFF_CAP_S
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): exponential,
    capped at ``cap_s``, with jitter in [50%, 100%] so that a burst of failures
    (a receiver that was down) does not retry in lock-step."""
    exp = base_s * (2.0 ** min(max(attempt - 1, 0), 60))
    return min(cap_s, exp) * random.uniform(0.5, 1.0)


# ------------------------------------------------------------------ enqueue
def enqueue(
    engine: Engine,
    kind: str,
    payload: dict,
    *,
    run_at: datetime | None = None,
    max_attempts: int = 8,
    dedupe_key: str | None = None,
) -> int:
    """Add a job; returns its id (the existing job's id if ``dedupe_key`` is taken)."""
    if not isinstance(kind, str) or not 1 <= len(kind) <= MAX_KIND:
        raise JobError(f"job kind must be 1-{MAX_KIND} characters", code="bad_job")
    if not isinstance(payload, dict):
        raise JobError("job payload must be a JSON object", code="bad_job")
    try:
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise JobError(f"job payload is not JSON-serialisable: {e}", code="bad_job") from None
    if len(body) > MAX_PAYLOAD_BYTES:
        raise JobError("job payload too large (store a file path instead)", code="bad_job")
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise JobError("max_attempts must be a positive integer", code="bad_job")
    if dedupe_key is not None and not 1 <= len(dedupe_key) <= 200:
        raise JobError("dedupe_key must be 1-200 characters", code="bad_job")
    now = utcnow()
    row = {
        "kind": kind,
        "payload": body,
        "status": "pending",
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_at": run_at or now,
        "dedupe_key": dedupe_key,
        "created_at": now,
        "updated_at": now,
    }
    with engine.begin() as conn:
        if dedupe_key is None:
            return int(conn.execute(J.insert().returning(J.c.id), row).scalar_one())
        stmt = (
            _insert(engine)(J).values(**row).on_conflict_do_nothing(index_elements=["dedupe_key"])
        )
        new_id = conn.execute(stmt.returning(J.c.id)).scalar()
        if new_id is not None:
            return int(new_id)
        return int(conn.execute(select(J.c.id).where(J.c.dedupe_key == dedupe_key)).scalar_one())


# -------------------------------------------------------------------- claim
def claim(
    engine: Engine,
    worker_id: str,
    kinds: Collection[str] | None = None,
    lease_s: float = 60,
    *,
    now: datetime | None = None,
) -> Job | None:
    """Atomically take the next runnable job (oldest ``run_at`` first) or None.

    Runnable: ``pending`` with ``run_at <= now``, or ``running`` with an expired
    lease. A reclaimed job that has used up its attempts goes to ``dead``
    instead. ``kinds`` restricts to job kinds this worker can handle (an empty
    collection claims nothing). ``now`` exists for tests (simulated time).
    """
    if kinds is not None:
        kinds = list(kinds)
        if not kinds:
            return None
    now = now or utcnow()
    runnable = ((J.c.status == "pending") & (J.c.run_at <= now)) | (
        (J.c.status == "running") & (J.c.locked_until < now)
    )
    q = select(J).where(runnable)
    if kinds is not None:
        q = q.where(J.c.kind.in_(kinds))
    q = q.order_by(J.c.run_at, J.c.id).limit(1)
    if engine.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    with _write_conn(engine) as conn:
        while True:
            with conn.begin():
                row = conn.execute(q).first()
                if row is None:
                    return None
                if row.status == "running" and row.attempts >= row.max_attempts:
                    conn.execute(
                        update(J)
                        .where(J.c.id == row.id)
                        .values(
                            status="dead",
                            locked_by=None,
                            locked_until=None,
                            last_error="lease expired (worker lost) after the last attempt",
                            updated_at=now,
                        )
                    )
                    continue  # commit and look for another job
                until = now + timedelta(seconds=lease_s)
                conn.execute(
                    update(J)
                    .where(J.c.id == row.id)
                    .values(
                        status="running",
                        locked_by=worker_id[:200],
                        locked_until=until,
                        attempts=J.c.attempts + 1,
                        updated_at=now,
                    )
                )
                job = _row_to_job(row)
                return replace(
                    job,
                    status="running",
                    locked_by=worker_id[:200],
                    locked_until=until,
                    attempts=job.attempts + 1,
                    updated_at=now,
                )


def extend_lease(engine: Engine, job_id: int, worker_id: str, lease_s: float = 60) -> bool:
    """Push a running job's lease ``lease_s`` from now; False if no longer held."""
    now = utcnow()
    with _write_conn(engine) as conn, conn.begin():
        res = conn.execute(
            update(J)
            .where(J.c.id == job_id, J.c.status == "running", J.c.locked_by == worker_id[:200])
            .values(locked_until=now + timedelta(seconds=lease_s), updated_at=now)
        )
        return res.rowcount == 1


# ---------------------------------------------------------------- outcomes
def _held(job_id: int, worker_id: str | None):  # type: ignore[no-untyped-def]
    cond = (J.c.id == job_id) & (J.c.status == "running")
    if worker_id is not None:
        cond = cond & (J.c.locked_by == worker_id[:200])
    return cond


def complete(
    engine: Engine, job_id: int, result: dict | None = None, *, worker_id: str | None = None
) -> bool:
    """Mark a running job ``done`` with an optional JSON ``result``.

    Returns False (nothing changed) if the job is not running, or not held by
    ``worker_id`` when given.
    """
    try:
        body = None if result is None else json.dumps(result, allow_nan=False, default=str)
    except (TypeError, ValueError):
        body = json.dumps({"_unserialisable_result": True})
    now = utcnow()
    with _write_conn(engine) as conn, conn.begin():
        res = conn.execute(
            update(J)
            .where(_held(job_id, worker_id))
            .values(
                status="done",
                result=body,
                locked_by=None,
                locked_until=None,
                last_error=None,
                updated_at=now,
            )
        )
        return res.rowcount == 1


def fail(
    engine: Engine,
    job_id: int,
    error: str,
    *,
    retry: bool = True,
    worker_id: str | None = None,
    base_s: float = BACKOFF_BASE_S,
    cap_s: float = BACKOFF_CAP_S,
) -> str | None:
    """Record a failed attempt of a running job.

    With ``retry`` and attempts left, the job goes back to ``pending`` after a
    back-off (:func:`backoff_delay`); otherwise it is ``dead``. Returns the new
    status, or None if the job was not running (or not held by ``worker_id``).
    """
    error = str(error)[:MAX_ERROR]
    now = utcnow()
    with _write_conn(engine) as conn, conn.begin():
        row = conn.execute(select(J.c.attempts, J.c.max_attempts).where(_held(job_id, worker_id)))
        r = row.first()
        if r is None:
            return None
        if retry and r.attempts < r.max_attempts:
            status = "pending"
            run_at = now + timedelta(seconds=backoff_delay(r.attempts, base_s, cap_s))
        else:
            status, run_at = "dead", now
        conn.execute(
            update(J)
            .where(_held(job_id, worker_id))
            .values(
                status=status,
                run_at=run_at,
                last_error=error,
                locked_by=None,
                locked_until=None,
                updated_at=now,
            )
        )
        return status


# ------------------------------------------------------------ inspection
def get_job(engine: Engine, job_id: int) -> Job | None:
    with engine.connect() as conn:
        r = conn.execute(select(J).where(J.c.id == job_id)).first()
    return None if r is None else _row_to_job(r)


def list_jobs(
    engine: Engine, status: str | None = None, kind: str | None = None, limit: int = 100
) -> list[Job]:
    """Jobs, newest first, optionally filtered by ``status`` and ``kind``."""
    if status is not None and status not in STATUSES:
        raise JobError(f"unknown job status {status!r} (expected one of {', '.join(STATUSES)})")
    q = select(J)
    if status is not None:
        q = q.where(J.c.status == status)
    if kind is not None:
        q = q.where(J.c.kind == kind)
    q = q.order_by(J.c.id.desc()).limit(max(1, min(int(limit), 10_000)))
    with engine.connect() as conn:
        return [_row_to_job(r) for r in conn.execute(q)]


def replay(engine: Engine, job_id: int, *, max_attempts: int | None = None) -> None:
    """Put a ``dead`` (or ``done``) job back in the queue with a fresh attempt budget.

    Raises :class:`JobError` (``unknown_job`` / ``job_not_replayable``) for an
    unknown job or one that is still pending or running.
    """
    now = utcnow()
    with _write_conn(engine) as conn, conn.begin():
        r = conn.execute(select(J.c.status, J.c.max_attempts).where(J.c.id == job_id)).first()
        if r is None:
            raise JobError(f"no job {job_id}", code="unknown_job")
        if r.status not in ("dead", "done"):
            raise JobError(
                f"job {job_id} is {r.status}; only dead or done jobs can be replayed",
                code="job_not_replayable",
            )
        conn.execute(
            update(J)
            .where(J.c.id == job_id)
            .values(
                status="pending",
                attempts=0,
                max_attempts=max_attempts or r.max_attempts,
                run_at=now,
                locked_by=None,
                locked_until=None,
                updated_at=now,
            )
        )


def counts(engine: Engine) -> dict[str, int]:
    """Number of jobs per status (all statuses present, zero if none)."""
    from sqlalchemy import func

    out = dict.fromkeys(STATUSES, 0)
    with engine.connect() as conn:
        for status, n in conn.execute(select(J.c.status, func.count()).group_by(J.c.status)):
            out[status] = int(n)
    return out
