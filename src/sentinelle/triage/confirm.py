"""A specialist's decision on a triage group, and "confirmed new -> bank (-> exchange)".

:func:`decide` records one decision on a group (:mod:`.reviews`) with its audit event
(``triage.decide``) in one transaction. :func:`confirm_to_bank` is the one-step
"confirm new material": the group's hashes (MD5, SHA-1, SHA-256 and PDQ of every
content in the group, ``media_ref`` = the content's SHA-256, the case's series name
when it has one) are added to ``bank`` in one atomic import, then every new entry is
offered to the bank's exchange feed when the bank is published
(:meth:`sentinelle.exchanges.publish.Publisher.on_confirmed`: only hashes, never media
or case data), then the decision and its audit event (``triage.confirm``, counts only)
are written. A failed import writes nothing; a feed that is off shares nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Engine

from ..audit import record_event
from ..banks import BankStore
from ..errors import BankError
from ..formats.entry import EntryIn
from ..store.models import BankEntry
from . import reviews, store
from .store import TriageError

#: What a specialist can decide in the console (``imported`` comes from VICS files).
CONSOLE_DECISIONS = ("confirmed_new", "not_pertinent", "known", "deferred")
MIN_PDQ_QUALITY = 50


@dataclass(frozen=True)
class ConfirmResult:
    bank: str
    added: int  # new entries in the bank
    duplicates: int  # hashes the bank already had
    shared: int  # entries appended to the bank's exchange feed
    published: bool  # the bank has an enabled feed


def _group_of(engine: Engine, case_id: int, group_id: int) -> store.Group:
    g = store.get_group(engine, group_id)
    if g is None or g.case_id != case_id:
        raise TriageError(f"no group {group_id} in this case", "unknown_group")
    return g


def decide(
    engine: Engine,
    case_id: int,
    group_id: int,
    decision: str,
    *,
    actor: str,
    category: str | None = None,
    note: str | None = None,
) -> reviews.Review:
    """Record ``decision`` (not ``confirmed_new``: use :func:`confirm_to_bank`)."""
    if decision not in CONSOLE_DECISIONS or decision == "confirmed_new":
        raise TriageError(
            "decision must be not_pertinent, known or deferred", "bad_triage_decision"
        )
    _group_of(engine, case_id, group_id)
    with engine.begin() as c:
        reviews.record(
            c,
            case_id=case_id,
            group_id=group_id,
            decision=decision,
            category=category,
            actor=actor,
            note=note,
        )
        record_event(
            c,
            actor=actor,
            action="triage.decide",
            target=f"triage_group:{group_id}",
            details={"case_id": case_id, "decision": decision, "category": category},
        )
    review = reviews.get_review(engine, case_id, group_id)
    assert review is not None
    return review


def group_entries(
    engine: Engine, case: store.Case, group: store.Group, *, category: str | None
) -> list[EntryIn]:
    """Bank entries for every content of ``group``."""
    series = None
    if group.series_id is not None:
        for s in store.list_series(engine, case.id):
            if s.id == group.series_id:
                series = s.name
                break
    note = f"triage case {case.name}, group {group.key}"[:4096]
    out: list[EntryIn] = []
    for m in store.group_media(engine, group.id):
        common = dict(media_ref=m.sha256, category=category, note=note, series=series)
        for st, h in (("md5", m.md5), ("sha1", m.sha1), ("sha256", m.sha256)):
            if h:
                out.append(EntryIn(st, h, **common))  # type: ignore[arg-type]
        if m.pdq and (m.pdq_quality is None or m.pdq_quality >= MIN_PDQ_QUALITY):
            out.append(EntryIn("pdq", m.pdq, **common))  # type: ignore[arg-type]
    return out


def confirm_to_bank(
    engine: Engine,
    case_id: int,
    group_id: int,
    *,
    bank: str,
    category: str | None,
    actor: str,
    note: str | None = None,
) -> ConfirmResult:
    """Confirm a new group: its hashes into ``bank``, shared if published, decision kept."""
    from ..exchanges.api import ExchangeError
    from ..exchanges.publish import Publisher

    case = store.get_case_by_id(engine, case_id)
    if case is None:
        raise TriageError(f"no triage case {case_id}", "unknown_case")
    g = _group_of(engine, case_id, group_id)
    if g.status != "new":
        raise TriageError("only new material can be confirmed into a bank", "not_new")
    bs = BankStore(engine)
    bid = bs.get_bank(bank).id  # unknown_bank before anything is written
    entries = group_entries(engine, case, g, category=category)
    if not entries:
        raise TriageError("the group has no hash a bank can hold", "no_hashes")
    report = bs.add_entries(bank, entries, actor=actor)
    refs = sorted({e.media_ref for e in entries if e.media_ref})
    E = BankEntry.__table__
    with engine.connect() as c:
        ids = [
            int(i)
            for i in c.execute(
                sa.select(E.c.id).where(E.c.bank_id == bid, E.c.media_ref.in_(refs))
            ).scalars()
        ]
    pub = Publisher(engine)
    try:
        feed = pub.feed(bank)
        published = feed.enabled
    except ExchangeError:  # the bank is not shared
        published = False
    shared = sum(1 for i in ids if pub.on_confirmed(i)) if published else 0
    with engine.begin() as c:
        reviews.record(
            c,
            case_id=case_id,
            group_id=group_id,
            decision="confirmed_new",
            category=category,
            bank=bank,
            actor=actor,
            note=note,
        )
        record_event(
            c,
            actor=actor,
            action="triage.confirm",
            target=f"triage_group:{group_id}",
            details={
                "case_id": case_id,
                "bank": bank,
                "category": category,
                "added": report.added,
                "duplicates": report.duplicates,
                "shared": shared,
            },
        )
    return ConfirmResult(bank, report.added, report.duplicates, shared, published)


__all__ = ["CONSOLE_DECISIONS", "BankError", "ConfirmResult", "confirm_to_bank", "decide"]
