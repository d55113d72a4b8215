"""JSON-lines scan records: one per file, written as soon as the file is done.

A record is self-describing and carries everything needed to resume a scan or to
re-match the file against changed banks without hashing it again::

    {"path": ..., "size": ..., "mtime_ns": ..., "media_type": "image", "format": "jpeg",
     "signals": [...], "variants": [...], "matches": [...], "error": null,
     "config": "pdq+trim", "bank_version": 12, "scanned_at": "2026-11-25T15:00:00Z",
     "provenance": {"verdict": "no_evidence", "confidence": 0.9, "evidence": [...], ...}}

``provenance`` (present when the scan ran with provenance, the default) is the
``sentinelle provenance --json`` record without ``path``; ``null`` if it failed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import MediaError
from ..signals.types import (
    DihedralSignal,
    HashResult,
    HashSignal,
    PDQVariant,
    Signal,
    VideoFrame,
    VPDQSignal,
)


def make_record(
    result: HashResult,
    *,
    mtime_ns: int,
    matches: list[dict[str, Any]],
    config: str,
    bank_version: int,
) -> dict[str, Any]:
    rec = result.to_dict()
    rec["mtime_ns"] = mtime_ns
    rec["variants"] = [v.to_dict() for v in result.query_variants]
    rec["matches"] = matches
    rec["config"] = config
    rec["bank_version"] = bank_version
    rec["scanned_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return rec


def error_record(path: str, code: str, message: str, *, size: int = 0) -> dict[str, Any]:
    return make_record(
        HashResult(path=path, size=size, error=MediaError(message, code)),
        mtime_ns=0,
        matches=[],
        config="",
        bank_version=-1,
    )


def result_from_record(rec: dict[str, Any]) -> HashResult:
    """Rebuild the :class:`HashResult` a record was made from (for re-matching)."""
    signals: list[Signal] = []
    for s in rec.get("signals") or []:
        t = s.get("type")
        if t == "vpdq":
            frames = tuple(
                VideoFrame(int(f["frame"]), f["hash"], int(f["quality"]), float(f["timestamp"]))
                for f in s.get("frames", [])
            )
            signals.append(VPDQSignal(frames=frames))
        elif t == "pdq-dihedral":
            signals.append(DihedralSignal(hashes=tuple(PDQVariant(**h) for h in s["hashes"])))
        else:
            signals.append(HashSignal(t, s["hash"], s.get("quality")))
    err = rec.get("error")
    return HashResult(
        path=rec.get("path"),
        size=int(rec.get("size") or 0),
        media_type=rec.get("media_type"),
        format=rec.get("format"),
        signals=signals,
        query_variants=[PDQVariant(**v) for v in rec.get("variants") or []],
        error=MediaError(err["message"], err["code"]) if err else None,
    )


def read_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the records of a JSONL file, ignoring a torn last line (interrupted scan)."""
    p = Path(path)
    if not p.exists():
        return
    with p.open("r", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn write from an interrupted run: the file is re-scanned
            if isinstance(rec, dict) and isinstance(rec.get("path"), str):
                yield rec


def dumps(rec: dict[str, Any]) -> str:
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
