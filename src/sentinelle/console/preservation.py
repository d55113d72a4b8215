"""What the console's preservation page shows: evidence per case, its holds, and proofs.

Read-only views over the evidence tables (:mod:`sentinelle.evidence.tables`);
every change goes through :mod:`sentinelle.evidence` (holds) and
:func:`sentinelle.evidence.store.destroy_case` (destruction), which audit
themselves. Nothing here decrypts anything: sizes and counts come from the
blob rows, so the page never needs the master key.

A case's *state* on the page:

=============  ================================================================
``held``       at least one hold is active: destruction is refused (unless forced)
``due``        it had holds and none is active: the next scheduled run deletes it
``unheld``     evidence stored, never held (never reported): left to the review
``destroyed``  crypto-shredded; the deletion log holds the proof
=============  ================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ..evidence.errors import EvidenceError
from ..evidence.preservation import Hold, list_holds
from ..evidence.tables import deletion_log, evidence_blobs, evidence_keys
from ..review.tables import cases as review_cases

#: Most deletion-log rows shown on the page (newest first).
DELETIONS_SHOWN = 100


@dataclass
class CaseEvidence:
    """One case on the preservation page."""

    case_id: int
    account_id: str | None = None
    live_blobs: int = 0
    live_bytes: int = 0
    destroyed_at: datetime | None = None
    has_evidence: bool = False
    holds: list[Hold] = field(default_factory=list)
    active: list[Hold] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.destroyed_at is not None:
            return "destroyed"
        if self.active:
            return "held"
        if self.holds and self.has_evidence:
            return "due"
        return "unheld"

    @property
    def next_expiry(self) -> datetime | None:
        """When the last active retention hold ends (None: a legal hold, or no hold)."""
        if not self.active or any(h.expires_at is None for h in self.active):
            return None
        return max(h.expires_at for h in self.active if h.expires_at is not None)


@dataclass(frozen=True)
class Deletion:
    """One deletion-log row with its stored proof (canonical JSON, parsed)."""

    id: int
    case_id: int
    at: datetime
    actor: str
    kind: str
    reason: str
    proof_sha256: str
    proof: dict[str, Any]
    proof_json: str

    @property
    def blob_count(self) -> int:
        return len(self.proof.get("blobs") or [])


def overview(
    engine: sa.Engine, *, case_id: int | None = None, now: datetime | None = None
) -> list[CaseEvidence]:
    """Every case with evidence or holds (or just ``case_id``), newest case first."""
    now = now or datetime.now(UTC)
    by_case: dict[int, CaseEvidence] = {}

    def entry(cid: int) -> CaseEvidence:
        return by_case.setdefault(cid, CaseEvidence(case_id=cid))

    keys_q = sa.select(evidence_keys.c.case_id, evidence_keys.c.destroyed_at)
    blobs_q = (
        sa.select(
            evidence_blobs.c.case_id,
            sa.func.count().label("n"),
            sa.func.coalesce(sa.func.sum(evidence_blobs.c.size), 0).label("size"),
        )
        .where(evidence_blobs.c.destroyed_at.is_(None))
        .group_by(evidence_blobs.c.case_id)
    )
    if case_id is not None:
        keys_q = keys_q.where(evidence_keys.c.case_id == case_id)
        blobs_q = blobs_q.where(evidence_blobs.c.case_id == case_id)
    with engine.connect() as conn:
        for cid, destroyed_at in conn.execute(keys_q):
            e = entry(int(cid))
            e.has_evidence = True
            e.destroyed_at = destroyed_at
        for cid, n, size in conn.execute(blobs_q):
            e = entry(int(cid))
            e.live_blobs, e.live_bytes = int(n), int(size)
    for h in list_holds(engine, case_id=case_id):
        e = entry(h.case_id)
        e.holds.append(h)
        if h.active(now):
            e.active.append(h)
    if by_case:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(review_cases.c.id, review_cases.c.account_id).where(
                    review_cases.c.id.in_(list(by_case))
                )
            )
            for cid, account in rows:
                by_case[int(cid)].account_id = account
    return sorted(by_case.values(), key=lambda e: e.case_id, reverse=True)


def _deletion(r: Any) -> Deletion:
    try:
        proof = json.loads(r.proof)
    except ValueError:
        proof = {}
    return Deletion(
        id=int(r.id),
        case_id=int(r.case_id),
        at=r.at,
        actor=r.actor,
        kind=r.kind,
        reason=r.reason,
        proof_sha256=r.proof_sha256,
        proof=proof if isinstance(proof, dict) else {},
        proof_json=json.dumps(proof, indent=2, sort_keys=True),
    )


def deletions(engine: sa.Engine, *, limit: int = DELETIONS_SHOWN) -> list[Deletion]:
    """The deletion log, newest first."""
    q = sa.select(deletion_log).order_by(deletion_log.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        return [_deletion(r) for r in conn.execute(q)]


def deletion(engine: sa.Engine, deletion_id: int) -> Deletion:
    """One deletion-log row; :class:`EvidenceError` ``unknown_deletion`` when absent."""
    with engine.connect() as conn:
        r = conn.execute(sa.select(deletion_log).where(deletion_log.c.id == deletion_id)).first()
    if r is None:
        raise EvidenceError(f"no deletion record {deletion_id}", code="unknown_deletion")
    return _deletion(r)
