"""Decisions on case items: confirm or reject, second review, and their effects.

::

    from sentinelle.review import decisions

    r = decisions.decide(engine, item_id, user, verdict="confirm", category="A1",
                         notes="matches the bank entry")
    r.decision.state       # "final", or "pending" when second review is on
    decisions.approve(engine, r.decision.id, specialist)             # -> "final", approver set
    decisions.approve(engine, r.decision.id, specialist, accept=False,
                      notes="not enough context")                    # -> "returned"
    decisions.recategorize(engine, r.decision.id, specialist, "B1")
    decisions.false_positive_stats(engine, bank="ncmec")

Categories: the industry classification ``A1``, ``A2``, ``B1``, ``B2`` or a custom
label (letters, digits, space, ``. _ : -``; at most 64). A confirmation needs a
category; a rejection may carry one.

Second review (console setting ``second_review``, :mod:`.config`): a decision
is ``pending`` (its item ``awaiting_approval``) until a specialist other than
the reviewer approves it (``final`` with ``approver`` set, optionally
re-categorised) or returns it
(``returned``: the item is ``pending`` again for a fresh decision). Without
second review a decision is ``final`` at once.

Every decision in force has state ``final`` (other modules, e.g. the report
drafts, read exactly that). When a decision becomes final:

1. the item becomes ``confirmed`` or ``rejected``;
2. for hash-match items, ``fp_stats`` counts a rejection or a confirmation for
   the bank entry (:func:`false_positive_stats` reads them back);
3. the case closes when no item is left undecided;
4. after commit, the matched bank's webhooks receive a ``decision``
   event (metadata only: case, item, verdict, category, bank, entry);
5. the case's first confirmed item with media (a ``media_sha256``) opens a
   CyberTipline report draft through the first-confirmation hook
   (:func:`on_first_confirm`), which :mod:`sentinelle.reports.drafts` registers
   with ``create_draft(engine, case_id)`` at start-up (:mod:`sentinelle.plugins`);
   the draft gathers every confirmed item of the case. The hook keeps this package
   below ``reports`` in the layers.

Each step after the commit is best effort: a failure is logged and listed in
:attr:`DecisionResult.errors`, never undoing the decision.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._db import ConnOrEngine, audit, engine_of, scope
from .cases import DecisionView, _decision, _decision_query
from .config import get_config
from .errors import Conflict, NotFound, PermissionDenied, ReviewError
from .roles import require
from .tables import aware, case_items, cases, decisions, fp_stats, utcnow

log = logging.getLogger("sentinelle.review.decisions")

INDUSTRY_CATEGORIES = ("A1", "A2", "B1", "B2")
VERDICTS = ("confirm", "reject")
MAX_NOTES = 10_000
_CUSTOM = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:-]{0,63}")

#: ``fn(engine, case_id) -> report id``: run after commit when a case's first item is
#: confirmed (at most one; :func:`on_first_confirm`).
FirstConfirmHook = Callable[[sa.Engine, int], int]
_first_confirm: list[FirstConfirmHook] = []


def on_first_confirm(fn: FirstConfirmHook) -> None:
    """Set the hook run when a case's first item is confirmed (replaces any earlier one)."""
    _first_confirm[:] = [fn]


#: ``fn(engine, result, item)``: run after commit for every decision that became final,
#: best effort (an exception is logged and listed in ``result.errors``). ``item`` is the
#: decided case item row (``kind``, ``bank``, ``entry_id``, ...). Registered by the
#: module that reacts (e.g. exchange feedback) from its ``register()``.
FinalDecisionHook = Callable[[sa.Engine, "DecisionResult", Any], None]
_final_hooks: list[FinalDecisionHook] = []


def on_final_decision(fn: FinalDecisionHook) -> None:
    """Add a hook run after every final decision (adding the same function again is a no-op)."""
    if fn not in _final_hooks:
        _final_hooks.append(fn)


@dataclass
class DecisionResult:
    decision: DecisionView
    case_status: str
    webhooks_queued: int = 0
    report_draft_id: int | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.to_dict(),
            "case_status": self.case_status,
            "webhooks_queued": self.webhooks_queued,
            "report_draft_id": self.report_draft_id,
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class FPStat:
    bank: str
    entry_id: int
    rejections: int
    confirmations: int
    last_rejected_at: datetime | None

    @property
    def false_positive_rate(self) -> float:
        total = self.rejections + self.confirmations
        return self.rejections / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "bank": self.bank,
            "entry_id": self.entry_id,
            "rejections": self.rejections,
            "confirmations": self.confirmations,
            "false_positive_rate": round(self.false_positive_rate, 4),
            "last_rejected_at": None
            if self.last_rejected_at is None
            else self.last_rejected_at.isoformat(),
        }


def check_category(category: Any, *, required: bool) -> str | None:
    """``A1``/``A2``/``B1``/``B2`` (any case) or a custom label; None if allowed."""
    if category is None or (isinstance(category, str) and not category.strip()):
        if required:
            raise ReviewError("a confirmation needs a category", code="bad_category")
        return None
    if not isinstance(category, str):
        raise ReviewError("category must be a string", code="bad_category")
    c = category.strip()
    if c.upper() in INDUSTRY_CATEGORIES:
        return c.upper()
    if not _CUSTOM.fullmatch(c):
        raise ReviewError(
            "category: A1, A2, B1, B2 or a custom label (letters, digits, space, . _ : -; "
            "at most 64)",
            code="bad_category",
        )
    return c


def _check_notes(notes: Any) -> str:
    if notes is None:
        return ""
    if not isinstance(notes, str) or len(notes) > MAX_NOTES:
        raise ReviewError(f"notes: text of at most {MAX_NOTES} characters", code="bad_notes")
    return notes.strip()


def _lock(conn: Any, table: sa.Table, id_: int, code: str) -> Any:
    q = sa.select(table).where(table.c.id == id_)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).first()
    if row is None:
        raise NotFound(f"no {code.removeprefix('unknown_')} {id_}", code=code)
    return row


# ------------------------------------------------------------ finalisation
def _bump_fp(conn: Any, bank: str, entry_id: int, verdict: str, now: datetime) -> None:
    col = "rejections" if verdict == "reject" else "confirmations"
    extra = {"last_rejected_at": now} if verdict == "reject" else {}
    res = conn.execute(
        fp_stats.update()
        .where(fp_stats.c.bank == bank, fp_stats.c.entry_id == entry_id)
        .values({col: fp_stats.c[col] + 1, "updated_at": now, **extra})
    )
    if res.rowcount:
        return
    try:
        with conn.begin_nested():
            conn.execute(
                fp_stats.insert().values(
                    bank=bank,
                    entry_id=entry_id,
                    rejections=int(verdict == "reject"),
                    confirmations=int(verdict == "confirm"),
                    updated_at=now,
                    **extra,
                )
            )
    except sa.exc.IntegrityError:  # a concurrent first decision inserted it
        conn.execute(
            fp_stats.update()
            .where(fp_stats.c.bank == bank, fp_stats.c.entry_id == entry_id)
            .values({col: fp_stats.c[col] + 1, "updated_at": now, **extra})
        )


def _refresh_case(conn: Any, case_id: int, now: datetime) -> str:
    """Recompute a case's status from its items; close it when all are final."""
    counts = dict(
        conn.execute(
            sa.select(case_items.c.status, sa.func.count())
            .where(case_items.c.case_id == case_id)
            .group_by(case_items.c.status)
        ).all()
    )
    row = conn.execute(sa.select(cases).where(cases.c.id == case_id)).one()
    values: dict[str, Any] = {"updated_at": now}
    if counts.get("pending"):
        status = "assigned" if row.assigned_to is not None else "open"
    elif counts.get("awaiting_approval"):
        status = "awaiting_approval"
    else:
        status = "closed"
        values.update(open_key=None, closed_at=now)
    values["status"] = status
    conn.execute(cases.update().where(cases.c.id == case_id).values(**values))
    return status


def _finalise(conn: Any, item: Any, verdict: str, now: datetime) -> bool:
    """Apply a final verdict to an item; True if it is the case's first confirmed
    item with media (what a CyberTipline report is about)."""
    first_confirm = False
    if verdict == "confirm" and item.media_sha256 and item.kind != "provenance":
        first_confirm = not conn.execute(
            sa.select(sa.func.count()).where(
                case_items.c.case_id == item.case_id,
                case_items.c.status == "confirmed",
                case_items.c.media_sha256.is_not(None),
                case_items.c.kind != "provenance",
            )
        ).scalar()
    conn.execute(
        case_items.update()
        .where(case_items.c.id == item.id)
        .values(status="confirmed" if verdict == "confirm" else "rejected")
    )
    if item.kind == "hash_match" and item.bank is not None and item.entry_id is not None:
        _bump_fp(conn, item.bank, int(item.entry_id), verdict, now)
    return first_confirm


@dataclass
class _Effects:
    item: Any = None
    verdict: str = ""
    category: str | None = None
    decision_id: int = 0
    first_confirm: bool = False


def _after_commit(engine: sa.Engine, fx: _Effects, result: DecisionResult) -> None:
    """Webhooks, decision hooks and report draft for a decision that just became final."""
    item = fx.item
    if item.bank:
        try:
            result.webhooks_queued = _enqueue_webhooks(engine, item, fx)
        except Exception as e:  # noqa: BLE001 - best effort, the decision stands
            log.warning("decision webhooks not queued (%s)", type(e).__name__)
            result.errors.append("webhooks not queued")
    for hook in list(_final_hooks):
        try:
            hook(engine, result, item)
        except Exception as e:  # noqa: BLE001 - best effort, the decision stands
            log.warning("decision hook failed (%s)", type(e).__name__)
            result.errors.append(f"decision hook failed: {getattr(hook, '__module__', '?')}")
    if fx.verdict == "confirm" and fx.first_confirm and _first_confirm:
        try:
            result.report_draft_id = int(_first_confirm[0](engine, int(item.case_id)))
        except Exception as e:  # noqa: BLE001
            log.warning("report draft not created (%s)", type(e).__name__)
            code = getattr(e, "code", None) or type(e).__name__
            result.errors.append(f"report draft not created: {code}")


def _enqueue_webhooks(engine: sa.Engine, item: Any, fx: _Effects) -> int:
    from ..actions import config as action_config
    from ..actions import webhooks

    actions = action_config.cached_actions(engine, ttl_s=0).get(item.bank)
    if actions is None or not actions.webhooks_active:
        return 0
    event = {
        "id": uuid.uuid4().hex,
        "type": "decision",
        "bank": item.bank,
        "created_at": utcnow().isoformat(),
        "decision": {
            "id": fx.decision_id,
            "case_id": int(item.case_id),
            "item_id": int(item.id),
            "verdict": fx.verdict,
            "category": fx.category,
            "entry_id": None if item.entry_id is None else int(item.entry_id),
            "signal": item.kind,
        },
    }
    return len(webhooks.enqueue_webhooks(engine, actions, event))


# ----------------------------------------------------------------- decide
def decide(
    conn_or_engine: ConnOrEngine,
    item_id: int,
    user: Any,
    *,
    verdict: str,
    category: str | None = None,
    notes: str = "",
) -> DecisionResult:
    """Confirm or reject one item (``decision.create``); audited ``decision.create``.

    The case must be unassigned (it is then assigned to ``user``) or assigned to
    ``user``. Raises ``already_decided`` / ``awaiting_approval`` (409) when the
    item is not pending, ``not_assigned`` (409) when someone else holds the case.
    """
    require(user, "decision.create")
    if verdict not in VERDICTS:
        raise ReviewError(f"verdict must be one of {list(VERDICTS)}", code="bad_verdict")
    cat = check_category(category, required=verdict == "confirm")
    notes = _check_notes(notes)
    now = utcnow()
    fx = _Effects(verdict=verdict, category=cat)
    with scope(conn_or_engine) as conn:
        item = _lock(conn, case_items, int(item_id), "unknown_item")
        case = _lock(conn, cases, int(item.case_id), "unknown_case")
        if case.assigned_to not in (None, user.id):
            raise Conflict(f"case {case.id} is assigned to someone else", code="not_assigned")
        if item.status == "awaiting_approval":
            raise Conflict(
                "the item's decision waits for a second reviewer", code="awaiting_approval"
            )
        if item.status != "pending":
            raise Conflict(f"item {item_id} is already {item.status}", code="already_decided")
        if case.assigned_to is None:
            conn.execute(cases.update().where(cases.c.id == case.id).values(assigned_to=user.id))
        second = bool(get_config(conn)["second_review"])
        state = "pending" if second else "final"
        fx.decision_id = int(
            conn.execute(
                decisions.insert().returning(decisions.c.id),
                {
                    "case_id": case.id,
                    "item_id": item.id,
                    "reviewer_id": user.id,
                    "verdict": verdict,
                    "category": cat,
                    "notes": notes,
                    "state": state,
                    "created_at": now,
                },
            ).scalar_one()
        )
        if second:
            conn.execute(
                case_items.update()
                .where(case_items.c.id == item.id)
                .values(status="awaiting_approval")
            )
        else:
            fx.item, fx.first_confirm = item, _finalise(conn, item, verdict, now)
        status = _refresh_case(conn, int(case.id), now)
        audit(
            conn,
            actor=user.actor,
            action="decision.create",
            target=f"item:{item.id}",
            details={
                "case_id": int(case.id),
                "decision_id": fx.decision_id,
                "verdict": verdict,
                "category": cat,
                "state": state,
            },
        )
        view = _decision(
            conn.execute(_decision_query().where(decisions.c.id == fx.decision_id)).one()
        )
    result = DecisionResult(decision=view, case_status=status)
    if fx.item is not None:
        _after_commit(engine_of(conn_or_engine), fx, result)
    return result


def approve(
    conn_or_engine: ConnOrEngine,
    decision_id: int,
    user: Any,
    *,
    accept: bool = True,
    category: str | None = None,
    notes: str = "",
) -> DecisionResult:
    """Second review of a ``pending`` decision (``decision.approve``; not one's own).

    ``accept=True``: the decision becomes ``final`` (with ``category`` if given,
    i.e. re-categorised) and takes effect. ``accept=False``: ``returned``; the
    item is pending again. Audited ``decision.approve``.
    """
    require(user, "decision.approve")
    notes = _check_notes(notes)
    now = utcnow()
    fx = _Effects()
    with scope(conn_or_engine) as conn:
        d = _lock(conn, decisions, int(decision_id), "unknown_decision")
        if d.state != "pending":
            raise Conflict(f"decision {decision_id} is {d.state}", code="not_pending")
        if d.reviewer_id == user.id:
            raise PermissionDenied("a second review must be someone else's", code="self_approval")
        cat = d.category
        if accept and category is not None:
            cat = check_category(category, required=d.verdict == "confirm")
        conn.execute(
            decisions.update()
            .where(decisions.c.id == d.id)
            .values(
                state="final" if accept else "returned",
                category=cat,
                approver_id=user.id,
                approver_notes=notes,
                approved_at=now,
            )
        )
        item = conn.execute(sa.select(case_items).where(case_items.c.id == d.item_id)).one()
        if accept:
            fx = _Effects(item=item, verdict=d.verdict, category=cat, decision_id=int(d.id))
            fx.first_confirm = _finalise(conn, item, d.verdict, now)
        else:
            conn.execute(
                case_items.update().where(case_items.c.id == item.id).values(status="pending")
            )
        status = _refresh_case(conn, int(d.case_id), now)
        audit(
            conn,
            actor=user.actor,
            action="decision.approve",
            target=f"decision:{d.id}",
            details={"accept": bool(accept), "category": cat, "original_category": d.category},
        )
        view = _decision(conn.execute(_decision_query().where(decisions.c.id == d.id)).one())
    result = DecisionResult(decision=view, case_status=status)
    if fx.item is not None:
        _after_commit(engine_of(conn_or_engine), fx, result)
    return result


def recategorize(
    conn_or_engine: ConnOrEngine, decision_id: int, user: Any, category: str, *, notes: str = ""
) -> DecisionView:
    """Change the category of a final decision (``decision.recategorize``)."""
    require(user, "decision.recategorize")
    notes = _check_notes(notes)
    with scope(conn_or_engine) as conn:
        d = _lock(conn, decisions, int(decision_id), "unknown_decision")
        if d.state != "final":
            raise Conflict(f"decision {decision_id} is {d.state}", code="not_final")
        cat = check_category(category, required=d.verdict == "confirm")
        conn.execute(decisions.update().where(decisions.c.id == d.id).values(category=cat))
        audit(
            conn,
            actor=user.actor,
            action="decision.recategorize",
            target=f"decision:{d.id}",
            details={"old": d.category, "new": cat, "notes_len": len(notes)},
        )
        return _decision(conn.execute(_decision_query().where(decisions.c.id == d.id)).one())


def pending_approvals(conn_or_engine: ConnOrEngine, *, limit: int = 100) -> list[DecisionView]:
    """Decisions waiting for a second review, oldest first."""
    with scope(conn_or_engine, write=False) as conn:
        return [
            _decision(r)
            for r in conn.execute(
                _decision_query().where(decisions.c.state == "pending").limit(int(limit))
            )
        ]


# ----------------------------------------------------- false positives
def false_positive_stats(
    conn_or_engine: ConnOrEngine,
    *,
    bank: str | None = None,
    min_rejections: int = 1,
    limit: int = 100,
) -> list[FPStat]:
    """Bank entries reviewers rejected, most rejected first.

    Use it to find hashes worth disabling or removing (``sentinelle bank``): an
    entry with many rejections and few confirmations is a likely false positive.
    """
    q = sa.select(fp_stats).where(fp_stats.c.rejections >= int(min_rejections))
    if bank is not None:
        q = q.where(fp_stats.c.bank == bank)
    q = q.order_by(fp_stats.c.rejections.desc(), fp_stats.c.bank, fp_stats.c.entry_id)
    with scope(conn_or_engine, write=False) as conn:
        return [
            FPStat(
                bank=r.bank,
                entry_id=int(r.entry_id),
                rejections=int(r.rejections),
                confirmations=int(r.confirmations),
                last_rejected_at=aware(r.last_rejected_at),
            )
            for r in conn.execute(q.limit(int(limit)))
        ]
