"""Case intake: every detection that needs a human becomes an item of a case.

::

    from sentinelle.review.intake import record_signal

    case_id, item_id = record_signal(
        engine,                      # or a Connection: written in the caller's transaction
        account_id="platform-user-42",
        kind="hash_match",
        summary={"bank": "ncmec", "entry_id": 7, "distance": 12, "signal_type": "pdq",
                 "hash": "f0e1..."},
        media_sha256="9f86d0...",   # optional, lowercase hex SHA-256 of the bytes as received
        media_blob_id=None,          # optional, an evidence-store blob id (sentinelle.evidence)
    )

Media stored later is attached with :mod:`sentinelle.review.media` (``preserve_media``).

A case gathers everything about ONE platform account (the caller's account id).
While a case is not closed, every new signal for that account joins it; once
closed, the next signal opens a new case (earlier cases stay visible as history).
One open case per account is enforced by the database (``cases.open_key`` is
unique), so two instances recording signals at once never open two.

Signal kinds and the ``summary`` fields each expects (others are kept too):

====================  ==============================================  ========
kind                  summary                                         priority
====================  ==============================================  ========
``hash_match``        bank, entry_id, distance, signal_type, hash     30
``guard_escalation``  blocks, window_s                                20
``guard_block``       categories, prompt_sha256 (an HMAC), policy_id  10
``provenance``        verdict, confidence                             5
====================  ==============================================  ========

A case's priority is the highest priority of its items. A ``hash_match`` item
repeating one that is still pending in the case (same media and bank entry), or
a ``provenance`` item for media that already has a pending one, is not added
again: its id is returned. Summaries are small JSON objects of
metadata; they must never contain media bytes or prompt text (use hashes).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ._db import ConnOrEngine, dumps, scope
from .errors import ReviewError
from .tables import case_items, cases, utcnow

KIND_PRIORITY: dict[str, int] = {
    "hash_match": 30,
    "guard_escalation": 20,
    "guard_block": 10,
    "provenance": 5,
}
KINDS = tuple(KIND_PRIORITY)
MAX_ACCOUNT_ID = 256
MAX_SUMMARY_BYTES = 16 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")

__all__ = ["KINDS", "KIND_PRIORITY", "IntakeError", "record_signal"]


class IntakeError(ReviewError):
    """A signal was refused (bad kind, account id, summary, hash, time)."""

    code = "bad_signal"
    status = 422


def _check(
    account_id: Any,
    kind: Any,
    summary: Any,
    media_sha256: Any,
    media_blob_id: Any,
    occurred_at: Any,
) -> tuple[str, str, str, str | None, int | None, datetime]:
    if not isinstance(account_id, str) or not account_id.strip():
        raise IntakeError("account_id must be a non-empty string", code="bad_account_id")
    account_id = account_id.strip()
    if len(account_id) > MAX_ACCOUNT_ID or not account_id.isprintable():
        raise IntakeError(
            f"account_id must be at most {MAX_ACCOUNT_ID} printable characters",
            code="bad_account_id",
        )
    if kind not in KIND_PRIORITY:
        raise IntakeError(f"kind must be one of {list(KINDS)}", code="bad_signal_kind")
    if not isinstance(summary, dict):
        raise IntakeError("summary must be a JSON object", code="bad_summary")
    try:
        text = dumps(summary)
    except (TypeError, ValueError) as e:
        raise IntakeError(f"summary is not JSON-serialisable: {e}", code="bad_summary") from None
    if len(text) > MAX_SUMMARY_BYTES:
        raise IntakeError(
            f"summary is over {MAX_SUMMARY_BYTES} bytes (metadata only, no media)",
            code="bad_summary",
        )
    if media_sha256 is not None:
        if not isinstance(media_sha256, str) or not _SHA256.fullmatch(media_sha256.lower()):
            raise IntakeError("media_sha256 must be 64 hex digits", code="bad_media_sha256")
        media_sha256 = media_sha256.lower()
    if media_blob_id is not None and (
        isinstance(media_blob_id, bool) or not isinstance(media_blob_id, int) or media_blob_id < 1
    ):
        raise IntakeError("media_blob_id must be a positive integer", code="bad_media_blob_id")
    if occurred_at is None:
        occurred_at = utcnow()
    elif not isinstance(occurred_at, datetime) or occurred_at.tzinfo is None:
        raise IntakeError("occurred_at must be a timezone-aware datetime", code="bad_occurred_at")
    return account_id, kind, text, media_sha256, media_blob_id, occurred_at


def _bank_entry(kind: str, summary: dict[str, Any]) -> tuple[str | None, int | None]:
    """(bank, entry_id) of a hash match, for false-positive statistics."""
    if kind != "hash_match":
        return None, None
    bank = summary.get("bank")
    entry = summary.get("entry_id")
    if not isinstance(bank, str) or not bank or len(bank) > 200:
        raise IntakeError("a hash_match summary needs a bank name", code="bad_summary")
    if isinstance(entry, bool) or not isinstance(entry, int) or entry < 0:
        raise IntakeError("a hash_match summary needs an integer entry_id", code="bad_summary")
    dist = summary.get("distance")
    if dist is not None and (
        isinstance(dist, bool) or not isinstance(dist, int | float) or not math.isfinite(dist)
    ):
        raise IntakeError("distance must be a number", code="bad_summary")
    return bank, entry


def _open_case(conn: Connection, account_id: str, priority: int, now: datetime) -> int:
    """Id of the account's open case, created if needed (race-safe via ``open_key``)."""
    found = conn.execute(sa.select(cases.c.id).where(cases.c.open_key == account_id)).scalar()
    if found is not None:
        return int(found)
    row = {
        "account_id": account_id,
        "open_key": account_id,
        "status": "open",
        "priority": priority,
        "item_count": 0,
        "created_at": now,
        "updated_at": now,
        "last_signal_at": now,
    }
    try:
        with conn.begin_nested():
            return int(conn.execute(cases.insert().returning(cases.c.id), row).scalar_one())
    except IntegrityError:  # another writer opened it first
        return int(
            conn.execute(sa.select(cases.c.id).where(cases.c.open_key == account_id)).scalar_one()
        )


def record_signal(
    conn_or_engine: ConnOrEngine,
    *,
    account_id: str,
    kind: str,
    summary: dict,
    media_sha256: str | None = None,
    media_blob_id: int | None = None,
    occurred_at: datetime | None = None,
) -> tuple[int, int]:
    """Attach a signal to the account's open case; returns ``(case_id, item_id)``.

    Raises :class:`IntakeError` (``bad_*`` codes) for invalid input. With a
    Connection the rows are written in the caller's transaction.
    """
    account_id, kind, text, media_sha256, media_blob_id, occurred_at = _check(
        account_id, kind, summary, media_sha256, media_blob_id, occurred_at
    )
    bank, entry_id = _bank_entry(kind, summary)
    priority = KIND_PRIORITY[kind]
    now = utcnow()
    with scope(conn_or_engine) as conn:
        case_id = _open_case(conn, account_id, priority, now)
        if kind in ("hash_match", "provenance") and media_sha256 is not None:
            dup = conn.execute(
                sa.select(case_items.c.id).where(
                    case_items.c.case_id == case_id,
                    case_items.c.kind == kind,
                    case_items.c.media_sha256 == media_sha256,
                    case_items.c.bank == bank,
                    case_items.c.entry_id == entry_id,
                    case_items.c.status == "pending",
                )
            ).scalar()
            if dup is not None:
                return case_id, int(dup)
        item_id = conn.execute(
            case_items.insert().returning(case_items.c.id),
            {
                "case_id": case_id,
                "kind": kind,
                "summary": text,
                "bank": bank,
                "entry_id": entry_id,
                "media_sha256": media_sha256,
                "media_blob_id": media_blob_id,
                "status": "pending",
                "occurred_at": occurred_at,
                "created_at": now,
            },
        ).scalar_one()
        conn.execute(
            cases.update()
            .where(cases.c.id == case_id)
            .values(
                item_count=cases.c.item_count + 1,
                priority=sa.case((cases.c.priority < priority, priority), else_=cases.c.priority),
                updated_at=now,
                last_signal_at=now,
            )
        )
    return case_id, int(item_id)
