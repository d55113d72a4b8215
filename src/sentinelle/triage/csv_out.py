"""CSV of a case: one row per physical copy, in priority order (spreadsheet-safe).

Columns follow what investigators' tools export (Griffeye separates ``Visual Group``,
near duplicates, from ``Series Name``): rank, tier, priority, group, series key and
name, status, bank category, provenance verdict, hashes, path, and the reasons.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import IO

from sqlalchemy import Engine

from ..formats._io import spreadsheet_safe
from .store import group_files, group_media, list_groups, list_series

COLUMNS = (
    "rank",
    "tier",
    "priority",
    "group",
    "series",
    "series_name",
    "status",
    "category",
    "provenance",
    "md5",
    "sha1",
    "sha256",
    "pdq",
    "path",
    "reasons",
)


def _cell(v: object) -> str:
    return spreadsheet_safe(None if v is None else str(v))


def write_csv(engine: Engine, case_id: int, out: str | os.PathLike[str] | IO[str]) -> int:
    """Write the case's CSV; returns the number of rows (copies)."""
    if isinstance(out, str | os.PathLike):
        with Path(out).open("w", encoding="utf-8", newline="") as fh:
            return write_csv(engine, case_id, fh)
    series = {s.id: s for s in list_series(engine, case_id)}
    w = csv.writer(out)
    w.writerow(COLUMNS)
    n = 0
    offset = 0
    while True:
        groups = list_groups(engine, case_id, limit=500, offset=offset)
        if not groups:
            return n
        offset += len(groups)
        for g in groups:
            s = series.get(g.series_id) if g.series_id else None
            reasons = "; ".join(f"{r['cue']} {r['weight']:+g}: {r['detail']}" for r in g.reasons)
            media = {m.id: m for m in group_media(engine, g.id)}
            for f in group_files(engine, g.id):
                m = media.get(f.media_id or -1)
                w.writerow(
                    [
                        _cell(x)
                        for x in (
                            g.rank,
                            g.tier,
                            f"{g.priority:g}",
                            g.key,
                            s.key if s else "",
                            s.name if s and s.name else "",
                            g.status,
                            g.bank_category or "",
                            m.provenance_verdict if m else "",
                            m.md5 if m else "",
                            m.sha1 if m else "",
                            m.sha256 if m else "",
                            m.pdq if m else "",
                            f.path,
                            reasons,
                        )
                    ]
                )
                n += 1
