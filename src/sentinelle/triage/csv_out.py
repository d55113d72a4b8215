"""CSV of a case: one row per physical copy, in priority order (spreadsheet-safe).

Columns follow what investigators' tools export (Griffeye separates ``Visual Group``,
near duplicates, from ``Series Name``): rank, tier, priority, group, series key and
name, status, bank category, provenance verdict, hashes, path, and the reasons.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, select

from ..formats._io import spreadsheet_safe
from .store import File, Group, Series, by_files, files_by_group, id_list, iter_groups, series_by_id
from .tables import triage_media

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


def write_csv(
    engine: Engine,
    case_id: int,
    out: str | os.PathLike[str] | IO[str],
    *,
    batch: int = 500,
    files_budget: int = 2000,
) -> int:
    """Write the case's CSV; returns the number of rows (copies).

    Groups are read ``batch`` at a time by rank with their series, and their media
    and files about ``files_budget`` files at a time (memory does not grow with the
    case)."""
    if isinstance(out, str | os.PathLike):
        with Path(out).open("w", encoding="utf-8", newline="") as fh:
            return write_csv(engine, case_id, fh, batch=batch, files_budget=files_budget)
    w = csv.writer(out)
    w.writerow(COLUMNS)
    n = 0
    for page in iter_groups(engine, case_id, batch=batch):
        series = series_by_id(engine, case_id, (g.series_id for g in page if g.series_id))
        for groups in by_files(page, files_budget):
            ids = [g.id for g in groups]
            media = _media(engine, case_id, ids)
            files = files_by_group(engine, case_id, ids)
            n += _rows(w, groups, series, media, files)
    return n


def _media(engine: Engine, case_id: int, group_ids: list[int]) -> dict[int, Any]:
    """The columns the CSV shows of the groups' media, by media id."""
    m = triage_media
    with engine.connect() as c:
        rows = c.execute(
            select(m.c.id, m.c.provenance_verdict, m.c.md5, m.c.sha1, m.c.sha256, m.c.pdq).where(
                m.c.case_id == case_id, m.c.group_id.in_(id_list(group_ids))
            )
        )
        return {int(r.id): r for r in rows}


def _rows(
    w: Any,
    groups: list[Group],
    series: dict[int, Series],
    media: dict[int, Any],
    files: dict[int, list[File]],
) -> int:
    n = 0
    for g in groups:
        s = series.get(g.series_id) if g.series_id else None
        reasons = "; ".join(f"{r['cue']} {r['weight']:+g}: {r['detail']}" for r in g.reasons)
        for f in files.get(g.id, []):
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
    return n
