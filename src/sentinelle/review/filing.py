"""File a scanned upload's matches for human review (what ``POST /v1/scan`` does
with an ``account_id``).

::

    from sentinelle.review.filing import file_scan

    out = file_scan(engine, account_id="user-42", matches=matches, data=raw_bytes,
                    media_type="image/jpeg", provenance=provenance_record)
    out.to_dict()  # {"case_id", "item_ids", "provenance_item_id",
                   #  "media_preserved", "media_error", "error"}

What it writes, for an upload that matched at least one bank entry:

1. one ``hash_match`` item per match in the account's open case
   (:func:`sentinelle.review.intake.record_signal`), with ``media_sha256`` = the
   SHA-256 of the bytes **as received** (what a CyberTipline report calls
   ``originalFileHash``) and, in the summary, the file's provenance verdict
   (``provenance: {verdict, confidence}``) when it was computed;
2. a ``provenance`` item for the same media when the verdict says something a
   reviewer and a report need (``ai_generated``, ``ai_edited``,
   ``camera_signed``, ``conflicting``; not ``no_evidence``): report drafts turn
   an AI verdict into the ``generativeAi`` annotation of that file;
3. the bytes, encrypted with the case's data key
   (:class:`sentinelle.evidence.EvidenceStore`), attached to the match items
   (:func:`sentinelle.review.media.preserve_media`) -- only when a master key is
   configured. Without one the items are still filed, ``media_preserved`` is
   false and ``media_error`` says ``no_master_key``; never an error.

Items 1 and 2 commit together. Nothing here raises: a failure is reported in
``error`` (intake) or ``media_error`` (evidence), so the scan answer still
reaches its caller. Logs carry error classes and codes only, never media.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from ._db import scope
from .intake import record_signal
from .media import preserve_media

log = logging.getLogger("sentinelle.review.filing")

#: Verdicts worth a ``provenance`` item of their own (``no_evidence`` is not).
INFORMATIVE_VERDICTS = ("ai_generated", "ai_edited", "camera_signed", "conflicting")
DEFAULT_MEDIA_TYPE = "application/octet-stream"
#: MIME types of the formats :mod:`sentinelle.media.detect` recognises (others: image/<fmt>).
_MIME = {
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "avi": "video/x-msvideo",
    "mp4": "video/mp4",
    "webm": "video/webm",
}

__all__ = ["INFORMATIVE_VERDICTS", "ScanFiling", "file_scan", "mime_type", "provenance_summary"]


def mime_type(kind: str | None, fmt: str | None) -> str:
    """The MIME type of a detected ``(media_type, format)`` pair, e.g. ``("image",
    "jpeg")`` -> ``image/jpeg``; ``application/octet-stream`` when undetected."""
    if not fmt or not isinstance(fmt, str) or not fmt.isalnum():
        return DEFAULT_MEDIA_TYPE
    fmt = fmt.lower()
    if fmt in _MIME:
        return _MIME[fmt]
    return f"image/{fmt}" if kind == "image" else DEFAULT_MEDIA_TYPE


@dataclass
class ScanFiling:
    """The ``review`` part of a scan answer."""

    case_id: int | None = None
    item_ids: list[int] = field(default_factory=list)
    provenance_item_id: int | None = None
    media_preserved: bool = False
    media_error: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def provenance_summary(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``{verdict, confidence}`` of a provenance record (``/v1/provenance`` body), or None
    when there is no usable verdict (analysis failed or absent)."""
    if not isinstance(record, Mapping):
        return None
    verdict = record.get("verdict")
    if not isinstance(verdict, str) or not verdict or len(verdict) > 32:
        return None
    conf = record.get("confidence")
    ok = isinstance(conf, int | float) and not isinstance(conf, bool) and math.isfinite(conf)
    return {"verdict": verdict, "confidence": round(float(conf), 4) if ok else None}


def _match_summary(m: Any, prov: dict[str, Any] | None) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "bank": m.bank,
        "entry_id": int(m.entry_id),
        "distance": int(m.distance),
        "signal_type": m.signal,
        "hash": m.entry_hash,
        "variant": getattr(m, "variant", None),
        "category": getattr(m, "category", None),
    }
    if prov is not None:
        summary["provenance"] = prov
    return summary


def _record(
    engine: sa.Engine, account_id: str, matches: Sequence[Any], sha: str, prov: Any, out: ScanFiling
) -> None:
    with scope(engine) as conn:
        for m in matches:
            case_id, item_id = record_signal(
                conn,
                account_id=account_id,
                kind="hash_match",
                summary=_match_summary(m, prov),
                media_sha256=sha,
            )
            out.case_id = case_id
            if item_id not in out.item_ids:
                out.item_ids.append(item_id)
        if prov is not None and prov["verdict"] in INFORMATIVE_VERDICTS:
            _, out.provenance_item_id = record_signal(
                conn, account_id=account_id, kind="provenance", summary=prov, media_sha256=sha
            )


def _preserve(
    engine: sa.Engine, data: bytes, media_type: str | None, env: Mapping[str, str], out: ScanFiling
) -> None:
    from ..evidence import EvidenceError, EvidenceStore, load_master_key

    try:
        store = EvidenceStore(engine, load_master_key(env))
        preserve_media(
            engine,
            store,
            int(out.case_id),  # type: ignore[arg-type]
            out.item_ids,
            data,
            media_type=media_type or DEFAULT_MEDIA_TYPE,
            actor="system",
        )
    except EvidenceError as e:
        out.media_error = e.code
        if e.code != "no_master_key":
            log.warning("scan media not preserved (%s)", e.code)
        return
    except Exception as e:  # noqa: BLE001 - the scan answer must still reach its caller
        log.error("scan media not preserved (%s)", type(e).__name__)
        out.media_error = "evidence_store_failed"
        return
    out.media_preserved = True


def file_scan(
    engine: sa.Engine,
    *,
    account_id: str,
    matches: Sequence[Any],
    data: bytes,
    media_type: str | None,
    provenance: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> ScanFiling:
    """File ``matches`` of the upload ``data`` in ``account_id``'s case (module docs).

    ``matches`` are :class:`sentinelle.index.matcher.Match` objects (none: nothing is
    written); ``media_type`` is a MIME type (:func:`mime_type`); ``env`` (default
    ``os.environ``) supplies the master key.
    """
    out = ScanFiling()
    if not matches:
        return out
    sha = hashlib.sha256(data).hexdigest()
    prov = provenance_summary(provenance)
    try:
        _record(engine, account_id, matches, sha, prov, out)
    except Exception as e:  # noqa: BLE001 - the match result must still reach the caller
        log.error("review intake failed (%s)", type(e).__name__)
        return ScanFiling(error="review_intake_failed")
    _preserve(engine, data, media_type, os.environ if env is None else env, out)
    return out
