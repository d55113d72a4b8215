"""Report drafts from review cases.

A case (``sentinelle.review``) gathers the signals about one platform account;
reviewers confirm or reject each item with a category. :func:`create_draft` turns
the *confirmed* items of a case into a CyberTipline draft:

==========================  ===================================================
report field                from
==========================  ===================================================
incidentDateTime            the earliest confirmed item's ``occurred_at``
personOrUserReported        ``espIdentifier`` = the case's account id
fileDetails (one per item)  ``originalFileHash`` SHA256 (+ MD5/SHA1 when the
                            encrypted bytes are available), ``industryClassification``
                            = the reviewer's category when A1/A2/B1/B2,
                            ``fileViewedByEsp`` = a reviewer revealed that
                            media in the clear (a ``media.reveal`` audit event
                            on an item of the case with the same SHA-256),
                            ``generativeAi`` when a provenance item for the same
                            media (not rejected), or the verdict a scan put in
                            the match's summary, says ``ai_generated`` /
                            ``ai_edited``,
                            ``details`` HASH = the matched perceptual hash
==========================  ===================================================

:func:`case_report_input` is the pure mapping from a plain dict (usable without
the review tables); :func:`load_case` reads that dict from the database.

``fileViewedByEsp`` has legal weight (it tells NCMEC a person at the ESP looked at
the file), so it is never inferred from a decision: reviewers decide on blurred
previews, and only the console's reveal (``POST /console/items/{id}/reveal``),
which writes a ``media.reveal`` audit event with target ``item:<id>`` before any
pixel leaves the server, counts as viewing. The audit trail is the only per-item
record of reveals (the exposure counters are per user and day).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from .builder import (
    INCIDENT_CHILD_PORNOGRAPHY,
    INDUSTRY_CLASSES,
    Email,
    FileInput,
    IncidentSummary,
    IpCaptureEvent,
    Person,
    ReportedPerson,
    Reporter,
    ReportInput,
    annotations_for_verdict,
)
from .errors import ReportError


def reporter_from_env(env: Mapping[str, str] | None = None) -> Reporter:
    """``SENTINELLE_REPORTER_{EMAIL,FIRST_NAME,LAST_NAME,LEGAL_URL}`` (email required)."""
    env = os.environ if env is None else env
    email = env.get("SENTINELLE_REPORTER_EMAIL", "").strip()
    if not email:
        raise ReportError(
            "set SENTINELLE_REPORTER_EMAIL (the reporting person's address) to draft reports",
            "no_reporter",
        )
    return Reporter(
        Person(
            first_name=env.get("SENTINELLE_REPORTER_FIRST_NAME") or None,
            last_name=env.get("SENTINELLE_REPORTER_LAST_NAME") or None,
            emails=(Email(email),),
        ),
        legal_url=env.get("SENTINELLE_REPORTER_LEGAL_URL") or None,
    )


def _aware(v: Any) -> dt.datetime:
    if isinstance(v, str):
        v = dt.datetime.fromisoformat(v)
    if not isinstance(v, dt.datetime):
        raise ReportError(f"not a datetime: {v!r}", "invalid_input")
    return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v


def _generative_media(items: Sequence[Mapping[str, Any]]) -> set[str]:
    """SHA-256s of the media an AI provenance verdict applies to: a ``provenance``
    item (unless a reviewer rejected it) or the verdict a scan stored in a match
    item's summary (``summary.provenance.verdict``)."""
    out: set[str] = set()
    for it in items:
        sha = it.get("media_sha256")
        summary = it.get("summary") or {}
        if not sha or not isinstance(summary, Mapping):
            continue
        if it.get("kind") == "provenance":
            verdict = summary.get("verdict") if it.get("status") != "rejected" else None
        else:
            prov = summary.get("provenance")
            verdict = prov.get("verdict") if isinstance(prov, Mapping) else None
        if isinstance(verdict, str) and annotations_for_verdict(verdict):
            out.add(str(sha).lower())
    return out


def case_report_input(
    case: Mapping[str, Any],
    *,
    reporter: Reporter,
    platform: str | None = None,
    ip_events: Sequence[IpCaptureEvent] = (),
    file_bytes: Mapping[str, bytes] | None = None,
    incident_type: str = INCIDENT_CHILD_PORNOGRAPHY,
) -> ReportInput:
    """Map a case dict to a :class:`ReportInput` (see the module table).

    ``case``: ``{"id", "account_id", "items": [{"id", "kind", "summary" (dict),
    "media_sha256", "media_blob_id", "occurred_at", "status", "category",
    "viewed"}]}``; ``viewed`` = a person revealed that item's media. A file is
    marked ``fileViewedByEsp`` when any item of the case with the same SHA-256 was
    viewed. ``file_bytes`` (SHA-256 -> bytes) adds MD5/SHA1 hashes.
    Raises ``nothing_to_report`` when no item with media is confirmed.
    """
    items = list(case.get("items") or [])
    generative = _generative_media(items)
    viewed = {
        str(it["media_sha256"]).lower()
        for it in items
        if it.get("viewed") is True and it.get("media_sha256")
    }
    confirmed = [
        it
        for it in items
        if it.get("status") == "confirmed"
        and it.get("media_sha256")
        and it.get("kind") != "provenance"
    ]
    if not confirmed:
        raise ReportError(
            f"case {case.get('id')} has no confirmed item with media", "nothing_to_report"
        )
    files: list[FileInput] = []
    seen: set[str] = set()
    for it in sorted(confirmed, key=lambda i: _aware(i["occurred_at"])):
        sha = str(it["media_sha256"]).lower()
        if sha in seen:
            continue
        seen.add(sha)
        summary = it.get("summary") or {}
        details: tuple = ()
        if summary.get("hash") and summary.get("signal_type"):
            details = (("HASH", ((str(summary["signal_type"]).upper(), str(summary["hash"])),)),)
        category = it.get("category")
        common: dict[str, Any] = dict(
            file_name=f"case{case.get('id')}-item{it.get('id')}",
            uploaded_to_esp_timestamp=_aware(it["occurred_at"]),
            file_viewed_by_esp=sha in viewed,
            file_relevance="Reported",
            industry_classification=category if category in INDUSTRY_CLASSES else None,
            annotations=frozenset({"generativeAi"}) if sha in generative else frozenset(),
            details=details,
            blob_id=it.get("media_blob_id"),
        )
        data = (file_bytes or {}).get(sha)
        if data is not None:
            files.append(FileInput.from_bytes(data, **common))
        else:
            files.append(FileInput(hashes=(("SHA256", sha),), **common))
    first = min(_aware(i["occurred_at"]) for i in confirmed)
    return ReportInput(
        incident=IncidentSummary(incident_type, first, platform=platform),
        reporter=reporter,
        reported_people=(
            ReportedPerson(
                esp_identifier=str(case["account_id"]),
                esp_service=platform,
                ip_capture_events=tuple(ip_events),
            ),
        ),
        files=tuple(files),
    )


_REVEAL_ACTION = "media.reveal"
_TARGET_CHUNK = 500  # item targets per IN (...) query; stays far below driver limits


def revealed_items(conn: Connection, item_ids: Sequence[int]) -> set[int]:
    """The ids among ``item_ids`` whose media a person revealed in the clear.

    Read from the audit trail: the console writes ``media.reveal`` with target
    ``item:<id>`` (in its own committed transaction) before it sends the pixels.
    """
    from ..audit.tables import audit_log

    by_target = {f"item:{i}": int(i) for i in item_ids}
    targets = list(by_target)
    out: set[int] = set()
    for start in range(0, len(targets), _TARGET_CHUNK):
        chunk = targets[start : start + _TARGET_CHUNK]
        rows = conn.execute(
            sa.select(audit_log.c.target)
            .where(audit_log.c.action == _REVEAL_ACTION, audit_log.c.target.in_(chunk))
            .distinct()
        )
        out.update(by_target[t] for (t,) in rows)
    return out


def load_case(conn: Connection, case_id: int) -> dict[str, Any]:
    """Read a case, its items, their final decisions and reveals from the database."""
    from ..review.tables import case_items, cases, decisions

    case = conn.execute(sa.select(cases).where(cases.c.id == case_id)).first()
    if case is None:
        raise ReportError(f"no case {case_id}", "unknown_case")
    rows = conn.execute(
        sa.select(case_items).where(case_items.c.case_id == case_id).order_by(case_items.c.id)
    ).all()
    final = {
        d.item_id: d
        for d in conn.execute(
            sa.select(decisions)
            .where(decisions.c.case_id == case_id, decisions.c.state == "final")
            .order_by(decisions.c.id)
        )
    }
    revealed = revealed_items(conn, [r.id for r in rows])
    items = []
    for r in rows:
        d = final.get(r.id)
        try:
            summary = json.loads(r.summary) if r.summary else {}
        except ValueError:
            summary = {}
        items.append(
            {
                "id": r.id,
                "kind": r.kind,
                "summary": summary if isinstance(summary, dict) else {},
                "media_sha256": r.media_sha256,
                "media_blob_id": r.media_blob_id,
                "occurred_at": r.occurred_at,
                "status": r.status,
                "category": d.category if d is not None else None,
                "decided": d is not None,
                "viewed": r.id in revealed,
            }
        )
    return {"id": case.id, "account_id": case.account_id, "items": items}


def create_draft(
    conn_or_engine: Connection | Engine,
    case_id: int,
    *,
    reporter: Reporter | None = None,
    platform: str | None = None,
    ip_events: Sequence[IpCaptureEvent] = (),
    file_bytes: Mapping[str, bytes] | None = None,
    actor: str = "system",
    environment: str | None = None,
) -> int:
    """Store a draft report for ``case_id`` and return its id (state ``draft``).

    With a Connection the draft is written inside the caller's transaction.
    ``reporter`` defaults to :func:`reporter_from_env`; ``environment`` to
    ``$SENTINELLE_CYBERTIP_ENV`` (``test``).
    """
    from .lifecycle import ReportManager

    reporter = reporter or reporter_from_env()
    platform = platform or os.environ.get("SENTINELLE_PLATFORM_NAME") or None
    env = environment or os.environ.get("SENTINELLE_CYBERTIP_ENV", "").strip() or "test"

    def run(conn: Connection) -> int:
        report = case_report_input(
            load_case(conn, case_id),
            reporter=reporter,
            platform=platform,
            ip_events=ip_events,
            file_bytes=file_bytes,
        )
        from .builder import build_report_xml

        return ReportManager(conn.engine, actor=actor).create_from_xml(
            build_report_xml(report),
            report.files,
            case_id=case_id,
            created_by=actor,
            environment=env,
            conn=conn,
        )

    if isinstance(conn_or_engine, Connection):
        return run(conn_or_engine)
    with conn_or_engine.begin() as conn:
        return run(conn)


def register() -> None:
    """The plugin hook (:mod:`sentinelle.plugins`): a report draft for every case whose
    first item a reviewer confirms (:func:`sentinelle.review.decisions.on_first_confirm`)."""
    from ..review.decisions import on_first_confirm

    on_first_confirm(create_draft)
