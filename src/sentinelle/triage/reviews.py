"""Review decisions on triage groups: the console queue's and those imported from VICS.

One row per group (``triage_reviews``, migration 0014): the latest decision, who made
it and when. Decisions:

* ``confirmed_new`` -- a specialist confirmed new material (added to ``bank``);
* ``not_pertinent`` -- not relevant to the case (VICS category 0);
* ``known`` -- already known material (confirmed as such);
* ``deferred`` -- looked at, left for later;
* ``imported`` -- a category read from an imported VICS case file.

Every console decision is also an audit event (written by the caller in the same
transaction); this table is only the current state the queue shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from ..store.models import utcnow
from .store import TriageError
from .tables import triage_reviews

DECISIONS = ("confirmed_new", "not_pertinent", "known", "deferred", "imported")
SOURCES = ("console", "vics")
MAX_NOTE = 2000


@dataclass(frozen=True)
class Review:
    case_id: int
    group_id: int
    decision: str
    category: str | None
    bank: str | None
    source: str
    actor: str
    at: datetime
    note: str | None


def _review(r: Any) -> Review:
    return Review(
        int(r.case_id),
        int(r.group_id),
        r.decision,
        r.category,
        r.bank,
        r.source,
        r.actor,
        r.at,
        r.note,
    )


def record(
    conn: Connection,
    *,
    case_id: int,
    group_id: int,
    decision: str,
    category: str | None = None,
    bank: str | None = None,
    source: str = "console",
    actor: str,
    at: datetime | None = None,
    note: str | None = None,
) -> None:
    """Set the group's decision (replacing any earlier one) inside ``conn``'s transaction."""
    if decision not in DECISIONS:
        raise TriageError(f"unknown decision {decision!r}", "bad_decision")
    if source not in SOURCES:
        raise TriageError(f"unknown review source {source!r}", "bad_decision")
    if category is not None and (not isinstance(category, str) or len(category) > 64):
        raise TriageError("a category is at most 64 characters", "bad_category")
    if note is not None and len(note) > MAX_NOTE:
        raise TriageError(f"a note is at most {MAX_NOTE} characters", "bad_note")
    values = dict(
        decision=decision,
        category=category,
        bank=bank,
        source=source,
        actor=actor[:200],
        at=at or utcnow(),
        note=note or None,
    )
    t = triage_reviews
    have = conn.execute(
        select(t.c.id).where(t.c.case_id == case_id, t.c.group_id == group_id)
    ).scalar()
    if have is None:
        conn.execute(t.insert().values(case_id=case_id, group_id=group_id, **values))
    else:
        conn.execute(t.update().where(t.c.id == have).values(**values))


def get_review(engine: Engine, case_id: int, group_id: int) -> Review | None:
    t = triage_reviews
    with engine.connect() as c:
        r = c.execute(select(t).where(t.c.case_id == case_id, t.c.group_id == group_id)).first()
    return _review(r) if r else None


def list_reviews(engine: Engine, case_id: int) -> list[Review]:
    t = triage_reviews
    with engine.connect() as c:
        rows = c.execute(select(t).where(t.c.case_id == case_id).order_by(t.c.group_id))
        return [_review(r) for r in rows]
