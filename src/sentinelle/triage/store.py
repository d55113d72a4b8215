"""Read API over a triage case (and the few writes other parts need).

Everything lives in the project's database (:mod:`sentinelle.triage.tables`); these
functions take an :class:`~sqlalchemy.engine.Engine` (``open_engine()``) and return
plain frozen dataclasses with JSON columns decoded, so outputs (HTML report, CSV, VICS
export, console queue) never write SQL themselves::

    case = get_case(engine, "op-kite")
    for g in list_groups(engine, case.id):          # by rank: 1 = review first
        g.tier, g.priority, g.reasons                # why it is where it is
        for f in group_files(engine, g.id): f.path   # every copy (archive!/member)
    for s in list_series(engine, case.id):
        series_groups(engine, s.id); series_links(engine, s.id)  # cues per pair
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select, update

from ..errors import SentinelleError
from .tables import (
    triage_cases,
    triage_files,
    triage_groups,
    triage_links,
    triage_media,
    triage_series,
)


class TriageError(SentinelleError):
    code = "triage_error"


def _json(value: str | None, default: Any) -> Any:
    if not value:
        return default
    try:
        return json.loads(value)
    except ValueError:
        return default


@dataclass(frozen=True)
class Case:
    id: int
    name: str
    created_at: datetime
    updated_at: datetime
    settings: dict[str, Any]  # weights (shown), thresholds, sources
    state: str


@dataclass(frozen=True)
class Group:
    id: int
    case_id: int
    key: str  # stable, e.g. G-3f2a...
    media_type: str | None
    status: str  # known | new
    bank_category: str | None
    matches: list[dict[str, Any]]
    series_id: int | None
    tier: str  # camera_new | unknown_new | ai_new | known
    priority: float
    rank: int
    reasons: list[dict[str, Any]]  # [{"cue", "weight", "detail"}]
    provenance_verdict: str | None
    n_media: int
    n_files: int
    representative_media_id: int | None


@dataclass(frozen=True)
class Media:
    id: int
    case_id: int
    sha256: str
    md5: str | None
    sha1: str | None
    size: int
    media_type: str | None
    format: str | None
    width: int | None
    height: int | None
    pdq: str | None
    pdq_quality: int | None
    meta: dict[str, Any]  # make, model, serial, taken_at, gps [lat, lon], qtables
    provenance_verdict: str | None
    provenance_confidence: float | None
    provenance: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    group_id: int | None


@dataclass(frozen=True)
class File:
    id: int
    case_id: int
    kind: str  # file | member | archive
    path: str  # display path; archive members: outer.zip!/inner.tar!/a/b.jpg
    source_path: str  # the file on disk
    member_path: str | None  # the chain inside it ("inner.tar!/a/b.jpg"), None for plain files
    size: int
    mtime_ns: int
    media_id: int | None
    error_code: str | None
    error_message: str | None


@dataclass(frozen=True)
class Series:
    id: int
    case_id: int
    key: str  # stable id, e.g. S-1a2b3c4d5e6f
    name: str | None
    imported: bool
    n_groups: int
    priority: float
    cues: dict[str, int]  # cue -> number of links


@dataclass(frozen=True)
class Link:
    group_a: int
    group_b: int
    cue: str  # near_duplicate | device | qtables | time_burst | gps | scene | face
    score: float
    detail: str | None
    series_id: int | None


def _case(r: Any) -> Case:
    return Case(r.id, r.name, r.created_at, r.updated_at, _json(r.settings, {}), r.state)


def _group(r: Any) -> Group:
    return Group(
        r.id,
        r.case_id,
        r.key,
        r.media_type,
        r.status,
        r.bank_category,
        _json(r.matches, []),
        r.series_id,
        r.tier,
        r.priority,
        r.rank,
        _json(r.reasons, []),
        r.provenance_verdict,
        r.n_media,
        r.n_files,
        r.representative_media_id,
    )


def _media(r: Any) -> Media:
    return Media(
        r.id,
        r.case_id,
        r.sha256,
        r.md5,
        r.sha1,
        r.size,
        r.media_type,
        r.format,
        r.width,
        r.height,
        r.pdq,
        r.pdq_quality,
        _json(r.meta, {}),
        r.provenance_verdict,
        r.provenance_confidence,
        _json(r.provenance, None),
        r.error_code,
        r.error_message,
        r.group_id,
    )


def _file(r: Any) -> File:
    return File(
        r.id,
        r.case_id,
        r.kind,
        r.path,
        r.source_path,
        r.member_path,
        r.size,
        r.mtime_ns,
        r.media_id,
        r.error_code,
        r.error_message,
    )


def _series(r: Any) -> Series:
    return Series(
        r.id, r.case_id, r.key, r.name, bool(r.imported), r.n_groups, r.priority, _json(r.cues, {})
    )


def _link(r: Any) -> Link:
    return Link(r.group_a, r.group_b, r.cue, r.score, r.detail, r.series_id)


def id_list(ids: Iterable[int]) -> list[int]:
    """``ids`` (distinct, sorted) padded with its last id to a power of two (16 at
    least), for an ``IN`` list. Every length of ``IN`` list is another SQL text, and
    so another prepared statement in the driver's cache (SQLite's keeps 128, each
    as large as its list): chunked readers would otherwise grow it with the case."""
    out = sorted(set(ids))
    if out:
        out += [out[-1]] * ((1 << max(4, (len(out) - 1).bit_length())) - len(out))
    return out


# ------------------------------------------------------------------------- cases


def now() -> datetime:
    return datetime.now(UTC)


def get_case(engine: Engine, name: str) -> Case | None:
    with engine.connect() as c:
        r = c.execute(select(triage_cases).where(triage_cases.c.name == name)).first()
    return _case(r) if r else None


def get_case_by_id(engine: Engine, case_id: int) -> Case | None:
    with engine.connect() as c:
        r = c.execute(select(triage_cases).where(triage_cases.c.id == case_id)).first()
    return _case(r) if r else None


def list_cases(engine: Engine) -> list[Case]:
    with engine.connect() as c:
        return [_case(r) for r in c.execute(select(triage_cases).order_by(triage_cases.c.id))]


def create_case(engine: Engine, name: str, settings: dict[str, Any] | None = None) -> Case:
    """The case named ``name``, created if needed (``settings`` then stored)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise TriageError("a case name is 1 to 200 characters", "bad_case_name")
    existing = get_case(engine, name)
    if existing:
        return existing
    t = now()
    with engine.begin() as c:
        c.execute(
            insert(triage_cases).values(
                name=name,
                created_at=t,
                updated_at=t,
                settings=json.dumps(settings or {}, sort_keys=True),
                state="hashing",
            )
        )
    case = get_case(engine, name)
    assert case is not None
    return case


def update_case(
    engine: Engine,
    case_id: int,
    *,
    settings: dict[str, Any] | None = None,
    state: str | None = None,
) -> None:
    values: dict[str, Any] = {"updated_at": now()}
    if settings is not None:
        values["settings"] = json.dumps(settings, sort_keys=True)
    if state is not None:
        values["state"] = state
    with engine.begin() as c:
        c.execute(update(triage_cases).where(triage_cases.c.id == case_id).values(**values))


# ------------------------------------------------------------------------ groups


def list_groups(
    engine: Engine,
    case_id: int,
    *,
    status: str | None = None,
    tier: str | None = None,
    series_id: int | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Group]:
    """The case's groups by rank (1 = review first), optionally filtered."""
    q = select(triage_groups).where(triage_groups.c.case_id == case_id)
    if status:
        q = q.where(triage_groups.c.status == status)
    if tier:
        q = q.where(triage_groups.c.tier == tier)
    if series_id is not None:
        q = q.where(triage_groups.c.series_id == series_id)
    q = q.order_by(triage_groups.c.rank, triage_groups.c.id).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    with engine.connect() as c:
        return [_group(r) for r in c.execute(q)]


def iter_groups(
    engine: Engine, case_id: int, *, status: str | None = None, batch: int = 500
) -> Iterator[list[Group]]:
    """The case's groups by rank (as :func:`list_groups`), ``batch`` at a time: keyset
    pages on ``(rank, id)``, so memory does not grow with the case."""
    g = triage_groups
    after: tuple[int, int] | None = None
    while True:
        q = select(g).where(g.c.case_id == case_id)
        if status:
            q = q.where(g.c.status == status)
        if after is not None:
            r, i = after
            q = q.where(g.c.rank >= r, or_(g.c.rank > r, g.c.id > i))
        with engine.connect() as c:
            rows = [_group(r) for r in c.execute(q.order_by(g.c.rank, g.c.id).limit(batch))]
        if not rows:
            return
        yield rows
        after = (rows[-1].rank, rows[-1].id)


def _rows_by_id(
    engine: Engine, table: Any, case_id: int, ids: Iterable[int], build: Callable[[Any], Any]
) -> dict[int, Any]:
    """``build(row)`` of the case's rows of ``table`` among ``ids``, by id (one query)."""
    want = id_list(ids)
    if not want:
        return {}
    with engine.connect() as c:
        rows = c.execute(select(table).where(table.c.case_id == case_id, table.c.id.in_(want)))
        return {int(r.id): build(r) for r in rows}


def groups_by_id(engine: Engine, case_id: int, ids: Iterable[int]) -> dict[int, Group]:
    """The case's groups among ``ids``, by id (one query: keep ``ids`` to a chunk)."""
    return _rows_by_id(engine, triage_groups, case_id, ids, _group)


def by_files(groups: list[Group], budget: int = 2000) -> Iterator[list[Group]]:
    """``groups`` in consecutive runs of about ``budget`` files (``n_files``) at most
    (a larger group alone): what a chunked reader loads with their media or files."""
    run: list[Group] = []
    n = 0
    for g in groups:
        if run and n + g.n_files > budget:
            yield run
            run, n = [], 0
        run.append(g)
        n += g.n_files
    if run:
        yield run


def files_by_group(engine: Engine, case_id: int, group_ids: Iterable[int]) -> dict[int, list[File]]:
    """Every copy of each of ``group_ids`` (as :func:`group_files`: by path), by group,
    in one indexed query (case, group) -> (case, media)."""
    want = id_list(group_ids)
    if not want:
        return {}
    out: dict[int, list[File]] = {}
    j = triage_files.join(triage_media, triage_files.c.media_id == triage_media.c.id)
    # files by an IN subquery on the groups' media: SQLite then walks (case, group) ->
    # (case, media), not every file of the case for each chunk
    media = select(triage_media.c.id).where(
        triage_media.c.case_id == case_id, triage_media.c.group_id.in_(want)
    )
    with engine.connect() as c:
        rows = c.execute(
            select(triage_files, triage_media.c.group_id.label("gid"))
            .select_from(j)
            .where(triage_files.c.case_id == case_id, triage_files.c.media_id.in_(media))
            .order_by(triage_files.c.path)
        )
        for r in rows:
            out.setdefault(int(r.gid), []).append(_file(r))
    return out


def _case_of(table: Any, row_id: int) -> Any:
    """The case of one row, as a scalar subquery: per-row queries name their case, so
    the ``(case_id, ...)`` indexes answer them (no scan of every case's rows)."""
    return select(table.c.case_id).where(table.c.id == row_id).scalar_subquery()


def get_group(engine: Engine, group_id: int) -> Group | None:
    with engine.connect() as c:
        r = c.execute(select(triage_groups).where(triage_groups.c.id == group_id)).first()
    return _group(r) if r else None


def group_media(engine: Engine, group_id: int) -> list[Media]:
    with engine.connect() as c:
        rows = c.execute(
            select(triage_media).where(
                triage_media.c.case_id == _case_of(triage_groups, group_id),
                triage_media.c.group_id == group_id,
            )
        )
        # sorted here: an ORDER BY sha256 made SQLite walk the (case, sha256) index,
        # i.e. every media of the case, instead of the (case, group) one
        return sorted((_media(r) for r in rows), key=lambda m: m.sha256)


def get_media(engine: Engine, media_id: int) -> Media | None:
    with engine.connect() as c:
        r = c.execute(select(triage_media).where(triage_media.c.id == media_id)).first()
    return _media(r) if r else None


def media_files(engine: Engine, media_id: int) -> list[File]:
    """Every copy of one content."""
    with engine.connect() as c:
        rows = c.execute(
            select(triage_files)
            .where(
                triage_files.c.case_id == _case_of(triage_media, media_id),
                triage_files.c.media_id == media_id,
            )
            .order_by(triage_files.c.path)
        )
        return [_file(r) for r in rows]


def group_files(engine: Engine, group_id: int) -> list[File]:
    """Every copy of every content of one group."""
    case = _case_of(triage_groups, group_id)
    # an IN subquery, not a join: SQLite then walks (case, group) -> (case, media)
    # instead of every file of the case (quadratic over a report's groups)
    media = select(triage_media.c.id).where(
        triage_media.c.case_id == case, triage_media.c.group_id == group_id
    )
    with engine.connect() as c:
        rows = c.execute(
            select(triage_files)
            .where(triage_files.c.case_id == case, triage_files.c.media_id.in_(media))
            .order_by(triage_files.c.path)
        )
        return [_file(r) for r in rows]


def iter_media(engine: Engine, case_id: int, batch: int = 2000) -> Iterator[Media]:
    """All media of a case, by id, in batches (bounded memory)."""
    last = 0
    while True:
        with engine.connect() as c:
            rows = list(
                c.execute(
                    select(triage_media)
                    .where(triage_media.c.case_id == case_id, triage_media.c.id > last)
                    .order_by(triage_media.c.id)
                    .limit(batch)
                )
            )
        if not rows:
            return
        for r in rows:
            yield _media(r)
        last = rows[-1].id


def iter_files(engine: Engine, case_id: int, batch: int = 5000) -> Iterator[File]:
    """All files of a case (errors included), by id, in batches."""
    last = 0
    while True:
        with engine.connect() as c:
            rows = list(
                c.execute(
                    select(triage_files)
                    .where(triage_files.c.case_id == case_id, triage_files.c.id > last)
                    .order_by(triage_files.c.id)
                    .limit(batch)
                )
            )
        if not rows:
            return
        for r in rows:
            yield _file(r)
        last = rows[-1].id


def file_errors(engine: Engine, case_id: int, *, limit: int | None = None) -> list[File]:
    """The files that could not be read or hashed (each with a stable error code), by
    path; the first ``limit`` only if given."""
    q = (
        select(triage_files)
        .where(triage_files.c.case_id == case_id, triage_files.c.error_code.is_not(None))
        .order_by(triage_files.c.path)
    )
    if limit is not None:
        q = q.limit(limit)
    with engine.connect() as c:
        return [_file(r) for r in c.execute(q)]


def file_error_counts(engine: Engine, case_id: int) -> list[tuple[str, int]]:
    """``(error code, files)`` of the case, most frequent first (then by code)."""
    counts: dict[str, int] = {}
    with engine.connect() as c:
        rows = c.execute(
            select(triage_files.c.error_code, func.count())
            .where(triage_files.c.case_id == case_id, triage_files.c.error_code.is_not(None))
            .group_by(triage_files.c.error_code)
        )
        for code, n in rows:
            counts[code or "?"] = counts.get(code or "?", 0) + int(n)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


# ------------------------------------------------------------------------ series


def list_series(engine: Engine, case_id: int) -> list[Series]:
    """The case's series, highest priority first."""
    with engine.connect() as c:
        rows = c.execute(
            select(triage_series)
            .where(triage_series.c.case_id == case_id)
            .order_by(triage_series.c.priority.desc(), triage_series.c.key)
        )
        return [_series(r) for r in rows]


def iter_series(engine: Engine, case_id: int, *, batch: int = 200) -> Iterator[list[Series]]:
    """The case's series in :func:`list_series` order, ``batch`` at a time (keyset
    pages on ``(priority, key, id)``)."""
    t = triage_series
    after: tuple[float, str, int] | None = None
    while True:
        q = select(t).where(t.c.case_id == case_id)
        if after is not None:
            p, k, i = after
            q = q.where(
                t.c.priority <= p,
                or_(t.c.priority < p, t.c.key > k, and_(t.c.key == k, t.c.id > i)),
            )
        q = q.order_by(t.c.priority.desc(), t.c.key, t.c.id).limit(batch)
        with engine.connect() as c:
            rows = [_series(r) for r in c.execute(q)]
        if not rows:
            return
        yield rows
        after = (rows[-1].priority, rows[-1].key, rows[-1].id)


def series_by_id(engine: Engine, case_id: int, ids: Iterable[int]) -> dict[int, Series]:
    """The case's series among ``ids``, by id (one query: keep ``ids`` to a chunk)."""
    return _rows_by_id(engine, triage_series, case_id, ids, _series)


def get_series(engine: Engine, case_id: int, key: str) -> Series | None:
    with engine.connect() as c:
        r = c.execute(
            select(triage_series).where(
                triage_series.c.case_id == case_id, triage_series.c.key == key
            )
        ).first()
    return _series(r) if r else None


def series_groups(engine: Engine, series_id: int) -> list[Group]:
    with engine.connect() as c:
        rows = c.execute(
            select(triage_groups).where(
                triage_groups.c.case_id == _case_of(triage_series, series_id),
                triage_groups.c.series_id == series_id,
            )
        )
        # sorted here, not ORDER BY rank (which walks every group of the case)
        return sorted((_group(r) for r in rows), key=lambda g: (g.rank, g.id))


def series_links(engine: Engine, series_id: int) -> list[Link]:
    """Why the series' groups belong together: one link per (pair of groups, cue)."""
    with engine.connect() as c:
        rows = c.execute(
            select(triage_links)
            .where(
                triage_links.c.case_id == _case_of(triage_series, series_id),
                triage_links.c.series_id == series_id,
            )
            .order_by(triage_links.c.group_a, triage_links.c.group_b, triage_links.c.cue)
        )
        return [_link(r) for r in rows]


def set_series_name(
    engine: Engine, case_id: int, key: str, name: str | None, *, imported: bool = True
) -> bool:
    """Name a series (VICS/ICSE import keeps names verbatim); False if no such series."""
    with engine.begin() as c:
        res = c.execute(
            update(triage_series)
            .where(triage_series.c.case_id == case_id, triage_series.c.key == key)
            .values(name=name, imported=imported)
        )
    return bool(res.rowcount)


# ----------------------------------------------------------------------- summary


def case_summary(engine: Engine, case_id: int) -> dict[str, Any]:
    """Counts for a report header: files, errors, media, groups per tier, series."""
    with engine.connect() as c:
        n_files = c.scalar(
            select(func.count()).select_from(triage_files).where(triage_files.c.case_id == case_id)
        )
        n_errors = c.scalar(
            select(func.count())
            .select_from(triage_files)
            .where(triage_files.c.case_id == case_id, triage_files.c.error_code.is_not(None))
        )
        n_media = c.scalar(
            select(func.count()).select_from(triage_media).where(triage_media.c.case_id == case_id)
        )
        tiers = dict(
            c.execute(
                select(triage_groups.c.tier, func.count())
                .where(triage_groups.c.case_id == case_id)
                .group_by(triage_groups.c.tier)
            ).all()
        )
        n_series = c.scalar(
            select(func.count())
            .select_from(triage_series)
            .where(triage_series.c.case_id == case_id)
        )
    return {
        "files": int(n_files or 0),
        "errors": int(n_errors or 0),
        "media": int(n_media or 0),
        "groups": int(sum(tiers.values())),
        "tiers": {k: int(v) for k, v in tiers.items()},
        "series": int(n_series or 0),
    }
