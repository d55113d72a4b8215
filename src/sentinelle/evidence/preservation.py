"""Preservation holds: what keeps a case's evidence from being destroyed.

Two kinds of hold:

* **retention** -- started by the CyberTipline *finish* receipt
  (:func:`start_hold`, called by the reports package), for the period the law of
  the jurisdiction requires (:mod:`sentinelle.evidence.retention`: US 1 year,
  Canada 21 days, UK 1 year, configurable). It can be extended
  (:func:`extend_hold`, e.g. on a law-enforcement request) but never shortened.
* **legal** -- no end date; lasts until released (:func:`release_hold`) with a reason.

A hold is *active* at time ``t`` when it is not released and has no expiry or
expires after ``t``. Destruction is refused while any hold is active
(:func:`sentinelle.evidence.store.destroy_case`), unless an administrator forces
it with a reason. Every change is written to the audit trail in the same
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..audit import record_event
from ..audit.chain import write_transaction
from .errors import EvidenceError
from .retention import normalize_jurisdiction, retention_days
from .tables import preservation_holds as holds

MAX_REASON = 2000


@dataclass(frozen=True)
class Hold:
    id: int
    case_id: int
    kind: str
    jurisdiction: str | None
    report_id: int | None
    started_at: datetime
    expires_at: datetime | None
    created_by: str
    reason: str | None
    released_at: datetime | None
    released_by: str | None
    release_reason: str | None

    def active(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        if self.released_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        return {
            "id": self.id,
            "case_id": self.case_id,
            "kind": self.kind,
            "jurisdiction": self.jurisdiction,
            "report_id": self.report_id,
            "started_at": iso(self.started_at),
            "expires_at": iso(self.expires_at),
            "created_by": self.created_by,
            "reason": self.reason,
            "released_at": iso(self.released_at),
            "released_by": self.released_by,
            "release_reason": self.release_reason,
            "active": self.active(now),
        }


def _hold(r: Any) -> Hold:
    return Hold(
        id=int(r.id),
        case_id=int(r.case_id),
        kind=r.kind,
        jurisdiction=r.jurisdiction,
        report_id=None if r.report_id is None else int(r.report_id),
        started_at=r.started_at,
        expires_at=r.expires_at,
        created_by=r.created_by,
        reason=r.reason,
        released_at=r.released_at,
        released_by=r.released_by,
        release_reason=r.release_reason,
    )


def _aware(t: datetime | None) -> datetime:
    if t is None:
        return datetime.now(UTC)
    if not isinstance(t, datetime):
        raise EvidenceError("times must be datetimes", code="bad_hold")
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _case_id(case_id: Any) -> int:
    if isinstance(case_id, bool) or not isinstance(case_id, int) or case_id <= 0:
        raise EvidenceError(f"bad case id {case_id!r}", code="bad_evidence")
    return case_id


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise EvidenceError(f"a reason (1-{MAX_REASON} characters) is required", code="bad_hold")
    return reason.strip()


def _active_clause(now: datetime) -> Any:
    return and_(
        holds.c.released_at.is_(None),
        or_(holds.c.expires_at.is_(None), holds.c.expires_at > now),
    )


def active_holds(conn: Connection, case_id: int, now: datetime | None = None) -> list[Hold]:
    """Holds of ``case_id`` active at ``now`` (default: the current time)."""
    now = _aware(now)
    q = select(holds).where(holds.c.case_id == case_id, _active_clause(now)).order_by(holds.c.id)
    return [_hold(r) for r in conn.execute(q)]


def get_hold(engine: Any, hold_id: int) -> Hold:
    with engine.connect() as conn:
        r = conn.execute(select(holds).where(holds.c.id == hold_id)).first()
    if r is None:
        raise EvidenceError(f"no hold with id {hold_id}", code="unknown_hold")
    return _hold(r)


def list_holds(
    engine: Any,
    *,
    case_id: int | None = None,
    active_only: bool = False,
    now: datetime | None = None,
) -> list[Hold]:
    q = select(holds).order_by(holds.c.id)
    if case_id is not None:
        q = q.where(holds.c.case_id == case_id)
    if active_only:
        q = q.where(_active_clause(_aware(now)))
    with engine.connect() as conn:
        return [_hold(r) for r in conn.execute(q)]


def start_hold(
    conn_or_engine: Any,
    *,
    case_id: int,
    report_id: int,
    jurisdiction: str,
    started_at: datetime | None = None,
    actor: str = "system",
) -> int:
    """Start the retention hold for a finished CyberTipline report; returns its id.

    Called at the finish receipt. The hold lasts ``retention_days(jurisdiction)``
    from ``started_at`` (the receipt time). Idempotent: calling again for the same
    case, report and jurisdiction returns the existing hold unchanged.
    """
    case_id = _case_id(case_id)
    if isinstance(report_id, bool) or not isinstance(report_id, int):
        raise EvidenceError(f"bad report id {report_id!r}", code="bad_hold")
    code = normalize_jurisdiction(jurisdiction)
    days = retention_days(code)
    start = _aware(started_at)
    key = (
        holds.c.kind == "retention",
        holds.c.case_id == case_id,
        holds.c.report_id == report_id,
        holds.c.jurisdiction == code,
    )
    with write_transaction(conn_or_engine) as conn:
        existing = conn.execute(select(holds.c.id).where(*key)).scalar()
        if existing is not None:
            return int(existing)
        try:
            with conn.begin_nested():
                hid = conn.execute(
                    insert(holds).returning(holds.c.id),
                    {
                        "case_id": case_id,
                        "kind": "retention",
                        "jurisdiction": code,
                        "report_id": report_id,
                        "started_at": start,
                        "expires_at": start + timedelta(days=days),
                        "created_at": datetime.now(UTC),
                        "created_by": actor,
                        "reason": f"CyberTipline report {report_id} finished; {code} {days} days",
                    },
                ).scalar_one()
        except IntegrityError:  # a concurrent call won the race
            return int(conn.execute(select(holds.c.id).where(*key)).scalar_one())
        record_event(
            conn,
            actor=actor,
            action="hold.start",
            target=f"case:{case_id}",
            details={
                "hold_id": int(hid),
                "report_id": report_id,
                "jurisdiction": code,
                "days": days,
            },
        )
        return int(hid)


def place_legal_hold(conn_or_engine: Any, *, case_id: int, actor: str, reason: str) -> int:
    """A hold without end date, until :func:`release_hold`; returns its id."""
    case_id = _case_id(case_id)
    why = _reason(reason)
    now = datetime.now(UTC)
    with write_transaction(conn_or_engine) as conn:
        hid = conn.execute(
            insert(holds).returning(holds.c.id),
            {
                "case_id": case_id,
                "kind": "legal",
                "started_at": now,
                "expires_at": None,
                "created_at": now,
                "created_by": actor,
                "reason": why,
            },
        ).scalar_one()
        record_event(
            conn,
            actor=actor,
            action="hold.legal",
            target=f"case:{case_id}",
            details={"hold_id": int(hid), "reason": why},
        )
        return int(hid)


def _locked(conn: Connection, hold_id: int) -> Hold:
    r = conn.execute(select(holds).where(holds.c.id == hold_id).with_for_update()).first()
    if r is None:
        raise EvidenceError(f"no hold with id {hold_id}", code="unknown_hold")
    return _hold(r)


def release_hold(conn_or_engine: Any, hold_id: int, *, actor: str, reason: str) -> Hold:
    """Release a hold (legal or retention) with a reason; the evidence then falls
    under the remaining holds, or under scheduled deletion if none is left."""
    why = _reason(reason)
    now = datetime.now(UTC)
    with write_transaction(conn_or_engine) as conn:
        h = _locked(conn, hold_id)
        if h.released_at is not None:
            raise EvidenceError(f"hold {hold_id} is already released", code="bad_hold")
        conn.execute(
            update(holds)
            .where(holds.c.id == hold_id)
            .values(released_at=now, released_by=actor, release_reason=why)
        )
        record_event(
            conn,
            actor=actor,
            action="hold.release",
            target=f"case:{h.case_id}",
            details={"hold_id": hold_id, "kind": h.kind, "reason": why},
        )
        return _locked(conn, hold_id)


def extend_hold(
    conn_or_engine: Any,
    hold_id: int,
    *,
    actor: str,
    reason: str,
    days: int | None = None,
    until: datetime | None = None,
) -> Hold:
    """Push a retention hold's end back by ``days`` or to ``until`` (never earlier)."""
    why = _reason(reason)
    if (days is None) == (until is None):
        raise EvidenceError("give either days or until", code="bad_hold")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days <= 0):
        raise EvidenceError("days must be a positive integer", code="bad_hold")
    with write_transaction(conn_or_engine) as conn:
        h = _locked(conn, hold_id)
        if h.released_at is not None:
            raise EvidenceError(f"hold {hold_id} is released", code="bad_hold")
        if h.expires_at is None:
            raise EvidenceError(f"hold {hold_id} has no end date to extend", code="bad_hold")
        new_end = h.expires_at + timedelta(days=days) if days is not None else _aware(until)
        if new_end <= h.expires_at:
            raise EvidenceError(
                f"hold {hold_id} ends {h.expires_at.isoformat()}: an extension cannot shorten it",
                code="bad_hold",
            )
        conn.execute(update(holds).where(holds.c.id == hold_id).values(expires_at=new_end))
        record_event(
            conn,
            actor=actor,
            action="hold.extend",
            target=f"case:{h.case_id}",
            details={
                "hold_id": hold_id,
                "from": h.expires_at.isoformat(),
                "to": new_end.isoformat(),
                "reason": why,
            },
        )
        return _locked(conn, hold_id)
