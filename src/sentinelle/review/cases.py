"""Case queues, assignment, passing a case on, and the case view.

::

    from sentinelle.review import cases

    cases.list_cases(engine, status="open")            # the queue, most urgent first
    cases.queue_counts(engine)                          # {"open": 3, "assigned": 1, ...}
    c = cases.next_case(engine, user)                   # take the next unassigned case
    view = cases.get_case(engine, c.id, user)           # everything about the account
    cases.pass_case(engine, c.id, user, reason="tired") # back to the queue, no penalty

Case ``status``:

* ``open`` -- has undecided items, nobody works on it;
* ``assigned`` -- a reviewer took it (``assigned_to``);
* ``awaiting_approval`` -- every item is decided, some wait for a second review;
* ``closed`` -- every item has a final decision. The next signal for the account
  opens a new case.

Queues are ordered by priority (highest first), then by the time of the oldest
waiting signal. Passing a case on is never counted against the reviewer: it does
not touch exposure counters, decisions or statistics, it only records who passed
and unassigns (or hands to a named colleague).

The case view (:class:`CaseView`) gathers the hash matches (bank, entry,
distance), guard blocks, provenance verdicts and every decision -- on this case
and on the account's earlier cases. Viewing is audited (``case.view``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._db import ConnOrEngine, audit, loads, scope
from .errors import Conflict, NotFound, ReviewError
from .roles import require
from .tables import aware, case_items, case_passes, cases, decisions, users, utcnow

STATUSES = ("open", "assigned", "awaiting_approval", "closed")
MAX_PAGE = 500


@dataclass(frozen=True)
class CaseSummary:
    id: int
    account_id: str
    status: str
    priority: int
    assigned_to: int | None
    assignee: str | None
    item_count: int
    pending_items: int
    created_at: datetime
    updated_at: datetime
    last_signal_at: datetime
    closed_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class DecisionView:
    id: int
    case_id: int
    item_id: int
    reviewer: str
    verdict: str
    category: str | None
    notes: str
    state: str  # pending | final | returned (final + approver: approved by a second reviewer)
    approver: str | None
    approver_notes: str | None
    approved_at: datetime | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class ItemView:
    id: int
    case_id: int
    kind: str
    summary: dict[str, Any]
    bank: str | None
    entry_id: int | None
    distance: float | None
    media_sha256: str | None
    media_blob_id: int | None
    status: str  # pending | awaiting_approval | confirmed | rejected
    occurred_at: datetime
    decisions: list[DecisionView] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class CaseView:
    case: CaseSummary
    items: list[ItemView]
    prior_cases: list[CaseSummary]
    prior_decisions: list[DecisionView]
    passes: list[dict[str, Any]]

    @property
    def hash_matches(self) -> list[ItemView]:
        return [i for i in self.items if i.kind == "hash_match"]

    @property
    def guard_blocks(self) -> list[ItemView]:
        return [i for i in self.items if i.kind in ("guard_block", "guard_escalation")]

    @property
    def provenance(self) -> list[ItemView]:
        return [i for i in self.items if i.kind == "provenance"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case.to_dict(),
            "items": [i.to_dict() for i in self.items],
            "prior_cases": [c.to_dict() for c in self.prior_cases],
            "prior_decisions": [d.to_dict() for d in self.prior_decisions],
            "passes": _jsonable(self.passes),
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


# --------------------------------------------------------------- queries
_assignee = users.alias("assignee")
_pending = (
    sa.select(sa.func.count())
    .where(case_items.c.case_id == cases.c.id, case_items.c.status == "pending")
    .scalar_subquery()
)


def _summary_query() -> sa.Select:
    return sa.select(cases, _assignee.c.username.label("assignee"), _pending.label("pending")).join(
        _assignee, _assignee.c.id == cases.c.assigned_to, isouter=True
    )


def _summary(r: Any) -> CaseSummary:
    return CaseSummary(
        id=int(r.id),
        account_id=r.account_id,
        status=r.status,
        priority=int(r.priority),
        assigned_to=r.assigned_to,
        assignee=r.assignee,
        item_count=int(r.item_count),
        pending_items=int(r.pending or 0),
        created_at=aware(r.created_at),  # type: ignore[arg-type]
        updated_at=aware(r.updated_at),  # type: ignore[arg-type]
        last_signal_at=aware(r.last_signal_at),  # type: ignore[arg-type]
        closed_at=aware(r.closed_at),
    )


def _statuses(status: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    if status is None:
        return None
    wanted = [status] if isinstance(status, str) else list(status)
    bad = [s for s in wanted if s not in STATUSES]
    if bad:
        raise ReviewError(f"status must be among {list(STATUSES)}", code="bad_status")
    return wanted


def list_cases(
    conn_or_engine: ConnOrEngine,
    *,
    status: str | list[str] | None = ("open", "assigned"),  # type: ignore[assignment]
    assigned_to: int | None = None,
    account_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[CaseSummary]:
    """A queue page: the cases in ``status`` (None = all), most urgent first."""
    if not 1 <= int(limit) <= MAX_PAGE or int(offset) < 0:
        raise ReviewError(f"limit must be 1-{MAX_PAGE}, offset >= 0", code="bad_page")
    q = _summary_query()
    wanted = _statuses(status)
    if wanted is not None:
        q = q.where(cases.c.status.in_(wanted))
    if assigned_to is not None:
        q = q.where(cases.c.assigned_to == assigned_to)
    if account_id is not None:
        q = q.where(cases.c.account_id == account_id)
    q = q.order_by(cases.c.priority.desc(), cases.c.created_at, cases.c.id)
    with scope(conn_or_engine, write=False) as conn:
        return [_summary(r) for r in conn.execute(q.limit(int(limit)).offset(int(offset)))]


def queue_counts(conn_or_engine: ConnOrEngine) -> dict[str, int]:
    """Number of cases per status (every status present, 0 when none)."""
    out = dict.fromkeys(STATUSES, 0)
    with scope(conn_or_engine, write=False) as conn:
        for s, n in conn.execute(
            sa.select(cases.c.status, sa.func.count()).group_by(cases.c.status)
        ):
            out[s] = int(n)
    return out


def get_summary(conn_or_engine: ConnOrEngine, case_id: int) -> CaseSummary:
    with scope(conn_or_engine, write=False) as conn:
        r = conn.execute(_summary_query().where(cases.c.id == case_id)).first()
    if r is None:
        raise NotFound(f"no case {case_id}", code="unknown_case")
    return _summary(r)


# ------------------------------------------------------------- assignment
def _lock_case(conn: Any, case_id: int) -> Any:
    q = sa.select(cases).where(cases.c.id == case_id)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).first()
    if row is None:
        raise NotFound(f"no case {case_id}", code="unknown_case")
    return row


def _active_user(conn: Any, user_id: int) -> Any:
    row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
    if row is None or row.disabled:
        raise NotFound(f"no active user {user_id}", code="unknown_user")
    return row


def assign_case(
    conn_or_engine: ConnOrEngine, case_id: int, user: Any, *, assignee_id: int | None = None
) -> CaseSummary:
    """Assign a case to ``user`` (``case.assign``) or to another reviewer
    (``case.assign_others``; the assignee must be able to decide). Closed cases
    and cases held by someone else (``not_assigned``) are refused unless the
    caller may assign others."""
    target = user.id if assignee_id is None else int(assignee_id)
    require(user, "case.assign" if target == user.id else "case.assign_others")
    with scope(conn_or_engine) as conn:
        row = _lock_case(conn, case_id)
        if row.status == "closed":
            raise Conflict(f"case {case_id} is closed", code="case_closed")
        if row.assigned_to not in (None, user.id, target) and not user.can("case.assign_others"):
            raise Conflict(f"case {case_id} is assigned to someone else", code="not_assigned")
        if target != user.id:
            from .roles import permissions_for

            t = _active_user(conn, target)
            if "decision.create" not in permissions_for(t.role, loads(t.grants, [])):
                raise ReviewError("the assignee cannot review cases", code="bad_assignee")
        status = "assigned" if row.status == "open" else row.status
        conn.execute(
            cases.update()
            .where(cases.c.id == case_id)
            .values(assigned_to=target, status=status, updated_at=utcnow())
        )
        audit(
            conn,
            actor=user.actor,
            action="case.assign",
            target=f"case:{case_id}",
            details={"assignee": target},
        )
    return get_summary(conn_or_engine, case_id)


def next_case(conn_or_engine: ConnOrEngine, user: Any) -> CaseSummary | None:
    """Take the most urgent unassigned open case (atomically); None when the queue is empty."""
    require(user, "case.assign")
    for _ in range(5):  # another reviewer may take the same case between read and update
        with scope(conn_or_engine) as conn:
            cid = conn.execute(
                sa.select(cases.c.id)
                .where(cases.c.status == "open", cases.c.assigned_to.is_(None))
                .order_by(cases.c.priority.desc(), cases.c.created_at, cases.c.id)
                .limit(1)
            ).scalar()
            if cid is None:
                return None
            res = conn.execute(
                cases.update()
                .where(cases.c.id == cid, cases.c.assigned_to.is_(None))
                .values(assigned_to=user.id, status="assigned", updated_at=utcnow())
            )
            if res.rowcount == 1:
                audit(
                    conn,
                    actor=user.actor,
                    action="case.assign",
                    target=f"case:{cid}",
                    details={"assignee": user.id, "via": "next"},
                )
                break
    else:
        return None
    return get_summary(conn_or_engine, int(cid))


def pass_case(
    conn_or_engine: ConnOrEngine,
    case_id: int,
    user: Any,
    *,
    to_user_id: int | None = None,
    reason: str = "",
) -> CaseSummary:
    """Hand a case back to the queue or to a colleague, without penalty (``case.pass``).

    Only the current assignee may pass a case. Exposure counters, decisions and
    statistics are untouched; the pass is recorded and audited.
    """
    require(user, "case.pass")
    if not isinstance(reason, str) or len(reason) > 2000:
        raise ReviewError("reason: at most 2000 characters", code="bad_reason")
    with scope(conn_or_engine) as conn:
        row = _lock_case(conn, case_id)
        if row.assigned_to != user.id:
            raise Conflict("only the assignee can pass a case on", code="not_assigned")
        if to_user_id is not None:
            if int(to_user_id) == user.id:
                raise ReviewError("pass to someone else", code="bad_assignee")
            from .roles import permissions_for

            t = _active_user(conn, int(to_user_id))
            if "decision.create" not in permissions_for(t.role, loads(t.grants, [])):
                raise ReviewError("the colleague cannot review cases", code="bad_assignee")
        now = utcnow()
        status = row.status
        if status == "assigned" and to_user_id is None:
            status = "open"
        conn.execute(
            cases.update()
            .where(cases.c.id == case_id)
            .values(assigned_to=to_user_id, status=status, updated_at=now)
        )
        conn.execute(
            case_passes.insert().values(
                case_id=case_id,
                from_user_id=user.id,
                to_user_id=to_user_id,
                reason=reason.strip(),
                created_at=now,
            )
        )
        audit(
            conn,
            actor=user.actor,
            action="case.pass",
            target=f"case:{case_id}",
            details={"to": to_user_id},
        )
    return get_summary(conn_or_engine, case_id)


# -------------------------------------------------------------- case view
_reviewer = users.alias("reviewer")
_approver = users.alias("approver")


def _decision_query() -> sa.Select:
    return (
        sa.select(
            decisions,
            _reviewer.c.username.label("reviewer_name"),
            _approver.c.username.label("approver_name"),
        )
        .join(_reviewer, _reviewer.c.id == decisions.c.reviewer_id)
        .join(_approver, _approver.c.id == decisions.c.approver_id, isouter=True)
        .order_by(decisions.c.id)
    )


def _decision(r: Any) -> DecisionView:
    return DecisionView(
        id=int(r.id),
        case_id=int(r.case_id),
        item_id=int(r.item_id),
        reviewer=r.reviewer_name,
        verdict=r.verdict,
        category=r.category,
        notes=r.notes,
        state=r.state,
        approver=r.approver_name,
        approver_notes=r.approver_notes,
        approved_at=aware(r.approved_at),
        created_at=aware(r.created_at),  # type: ignore[arg-type]
    )


def _item(r: Any, decs: list[DecisionView]) -> ItemView:
    summary = loads(r.summary, {})
    dist = summary.get("distance") if isinstance(summary, dict) else None
    return ItemView(
        id=int(r.id),
        case_id=int(r.case_id),
        kind=r.kind,
        summary=summary if isinstance(summary, dict) else {},
        bank=r.bank,
        entry_id=r.entry_id,
        distance=dist if isinstance(dist, int | float) and not isinstance(dist, bool) else None,
        media_sha256=r.media_sha256,
        media_blob_id=r.media_blob_id,
        status=r.status,
        occurred_at=aware(r.occurred_at),  # type: ignore[arg-type]
        decisions=decs,
    )


def load_case(conn_or_engine: ConnOrEngine, case_id: int) -> CaseView:
    """The case view without permission check or audit (for internal callers)."""
    with scope(conn_or_engine, write=False) as conn:
        r = conn.execute(_summary_query().where(cases.c.id == case_id)).first()
        if r is None:
            raise NotFound(f"no case {case_id}", code="unknown_case")
        summary = _summary(r)
        decs = [
            _decision(d)
            for d in conn.execute(_decision_query().where(decisions.c.case_id == case_id))
        ]
        by_item: dict[int, list[DecisionView]] = {}
        for d in decs:
            by_item.setdefault(d.item_id, []).append(d)
        items = [
            _item(i, by_item.get(int(i.id), []))
            for i in conn.execute(
                sa.select(case_items)
                .where(case_items.c.case_id == case_id)
                .order_by(case_items.c.occurred_at, case_items.c.id)
            )
        ]
        prior = [
            _summary(p)
            for p in conn.execute(
                _summary_query()
                .where(cases.c.account_id == summary.account_id, cases.c.id != case_id)
                .order_by(cases.c.id.desc())
                .limit(50)
            )
        ]
        prior_ids = [p.id for p in prior]
        prior_decs = (
            [
                _decision(d)
                for d in conn.execute(
                    _decision_query().where(decisions.c.case_id.in_(prior_ids)).limit(500)
                )
            ]
            if prior_ids
            else []
        )
        passes = [
            {
                "from_user_id": p.from_user_id,
                "to_user_id": p.to_user_id,
                "reason": p.reason,
                "created_at": aware(p.created_at),
            }
            for p in conn.execute(
                sa.select(case_passes)
                .where(case_passes.c.case_id == case_id)
                .order_by(case_passes.c.id)
            )
        ]
    return CaseView(summary, items, prior, prior_decs, passes)


def get_case(conn_or_engine: ConnOrEngine, case_id: int, user: Any) -> CaseView:
    """The case view for ``user`` (``case.view``); audited as ``case.view``."""
    require(user, "case.view")
    view = load_case(conn_or_engine, case_id)
    with scope(conn_or_engine) as conn:
        audit(conn, actor=user.actor, action="case.view", target=f"case:{case_id}")
    return view
