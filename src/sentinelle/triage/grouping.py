"""Known vs new: exact and near-duplicate groups of a case, matched against the banks.

* **Exact duplicates** are one ``triage_media`` row already (same SHA-256); contents
  that share an MD5 but not a SHA-256 are joined too.
* **Near duplicates**: images whose PDQ hashes (plain, or the trimmed view against a
  plain hash) lie within ``near_threshold`` bits (default 31, the PDQ match threshold)
  are joined, single-linkage, with the project's :class:`~sentinelle.index.PDQIndex`
  (exact MIH search: no pair within the radius is missed). Hashes of quality below 50
  join nothing by PDQ. Videos are joined by the vPDQ rule (>= 80% of each one's unique
  frames of quality >= 50 matched within 31 bits).
* **Banks**: every media is matched with the scan's :class:`~sentinelle.index.Matcher`
  (its fast-path PDQ re-hashed exactly when it lies near a threshold, as ``scan``
  does); a group with any matched member is ``known`` and carries its bank category
  (the most severe of ``A1 > A2 > B1 > B2``, else VICS categories, else the commonest).

Arrays, not objects: no Python object per media or group lives through the run. The
media are read in keyset chunks of ``CHUNK`` rows into numpy arrays: 25 bytes per media
(id, key prefix, type code); the union-find (8 bytes per media) and, to write, four
more int64 arrays (roots, order, sorted roots, copies). The PDQ index holds the plain
hashes, ``INDEX_BUDGET`` at most at a time (about 90 bytes each with its MIH tables);
the PDQ queries (plain + variants) are streamed from the database past each part and
searched ``QUERY_STEP`` at a time, their hits as arrays joined in a compiled
union-find. MD5 twins are found by the database (GROUP BY). Videos are streamed
``VIDEO_CHUNK`` at a time into frame arrays. Bank matches are spilled to a private
temporary SQLite file and read back per window of at most ``GROUP_STEP`` groups and
``MEMBER_STEP`` members.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, bindparam, delete, func, insert, select, update

from ..index.pdq_index import PDQIndex
from ..signals.types import HashResult, HashSignal, PDQVariant, VideoFrame, VPDQSignal
from .tables import triage_files, triage_groups, triage_media
from .union_find import UnionFind

MIN_QUALITY = 50
VIDEO_PCT = 0.8
SEVERITY = ("A1", "A2", "B1", "B2")


@dataclass
class GroupingResult:
    groups: int = 0
    known: int = 0
    new: int = 0
    media: int = 0
    near_pairs: int = 0
    verified_exact: int = 0


def _hex_rows(hexes: list[str]) -> np.ndarray:
    if not hexes:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8).reshape(-1, 32)


def _category_of(cats: Counter[str]) -> str | None:
    """A group's bank category from its matches' category counts (in match order):
    the most severe of SEVERITY, else the commonest (the first seen on a tie)."""
    if not cats:
        return None
    for sev in SEVERITY:
        if sev in cats:
            return sev
    return cats.most_common(1)[0][0]


def _result_of(row: Any, meta: dict[str, Any]) -> HashResult:
    signals: list[Any] = []
    for name in ("md5", "sha1", "sha256"):
        v = getattr(row, name)
        if v:
            signals.append(HashSignal(name, v))
    variants: list[PDQVariant] = []
    if row.pdq:
        signals.append(HashSignal("pdq", row.pdq, row.pdq_quality))
        variants.append(PDQVariant("plain", row.pdq, int(row.pdq_quality or 0)))
        for name, h, q in meta.get("variants") or []:
            variants.append(PDQVariant(str(name), str(h), int(q)))
    if row.vpdq:
        frames = tuple(
            VideoFrame(int(f), h, int(q), float(t)) for f, h, q, t in json.loads(row.vpdq)
        )
        signals.append(VPDQSignal(frames=frames))
    return HashResult(
        path=None,
        size=int(row.size or 0),
        media_type=row.media_type,
        signals=signals,
        query_variants=variants,
    )


# what bank matching reads of a media (not its embedding, provenance...)
MATCH_COLUMNS = tuple(
    triage_media.c[k]
    for k in (
        "id",
        "md5",
        "sha1",
        "sha256",
        "size",
        "media_type",
        "pdq",
        "pdq_quality",
        "vpdq",
        "meta",
    )
)


def _match_all(
    engine: Engine,
    case_id: int,
    matcher: Any,
    reader: Any,
    res: GroupingResult,
    workers: int = 1,
    limits: Any = None,
    spill: _MatchSpill | None = None,
) -> None:
    """Put media id -> compact matches into ``spill``, for every media that matched a bank.

    A fast hash near a threshold is re-hashed exactly, as ``scan`` does: per batch of
    2,000 media, in ``workers`` processes (in this one with ``workers`` 1). Only one
    batch's matches are held in memory."""
    if matcher is None or spill is None:
        return
    last = 0
    pool = None
    try:
        while True:
            with engine.connect() as c:
                rows = c.execute(
                    select(*MATCH_COLUMNS)
                    .where(triage_media.c.case_id == case_id, triage_media.c.id > last)
                    .order_by(triage_media.c.id)
                    .limit(2000)
                ).all()
            if not rows:
                return
            last = rows[-1].id
            found: dict[int, list[Any]] = {}
            out: dict[int, list[dict[str, Any]]] = {}
            pending: list[Any] = []
            for r in rows:
                meta = json.loads(r.meta) if r.meta else {}
                matches = matcher.match_fast(_result_of(r, meta))
                if matches is None:  # near a threshold: the exact hash decides, as scan does
                    pending.append(r)
                elif matches:
                    found[r.id] = matches
            if pending:
                if workers > 1 and pool is None:
                    from .pipeline import _pool

                    pool = _pool(workers)
                for r, exact in zip(
                    pending,
                    _exact_hashes(engine, case_id, pending, reader, pool, limits),
                    strict=True,
                ):
                    res.verified_exact += 1
                    matches = matcher.match(exact) if exact is not None else None
                    if matches:
                        found[r.id] = matches
            batch_ids: list[int] = []
            for r in rows:
                if r.id not in found:
                    continue
                seen: dict[tuple[str, int], dict[str, Any]] = {}
                for m in found[r.id]:
                    k = (m.bank, m.entry_id)
                    if k not in seen or m.distance < seen[k]["distance"]:
                        seen[k] = {
                            "bank": m.bank,
                            "entry_id": m.entry_id,
                            "category": m.category,
                            "signal": m.signal,
                            "distance": m.distance,
                            "variant": m.variant,
                        }
                out[r.id] = sorted(seen.values(), key=lambda d: (d["distance"], d["entry_id"]))[:20]
                batch_ids.append(r.id)
            _entry_facts(matcher, [out[i] for i in batch_ids])
            spill.put([(i, out[i]) for i in batch_ids])
            del rows, found, out, pending
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


FACTS = ("series", "victim_identified", "offender_identified", "is_distributed")


def _entry_facts(matcher: Any, lists: list[list[dict[str, Any]]]) -> None:
    """Add the VICS/ICSE facts of each matched bank entry (series, victim identified...)."""
    get = getattr(getattr(matcher, "store", None), "get_entries", None)
    if get is None or not lists:
        return
    entries = get({m["entry_id"] for ms in lists for m in ms})
    for ms in lists:
        for m in ms:
            e = entries.get(m["entry_id"])
            for k in FACTS:
                v = getattr(e, k, None) if e is not None else None
                if v is not None:
                    m[k] = v


def exact_hash(source_path: str, member_path: str | None, limits: Any) -> HashResult | None:
    """The reference-exact hashes of one copy (a worker task); None if unreadable."""
    from ..signals.hasher import hash_bytes
    from .sources import DEFAULT_SOURCE_LIMITS, read_bytes

    try:
        data = read_bytes(source_path, member_path, limits or DEFAULT_SOURCE_LIMITS)
    except (OSError, KeyError, ValueError):
        return None
    exact = hash_bytes(data, query_variants=("trimmed",))
    if exact.error is not None and not exact.signals:
        return None
    return exact


def _exact_hashes(
    engine: Engine, case_id: int, rows: list[Any], reader: Any, pool: Any, limits: Any
) -> list[HashResult | None]:
    """Exact hashes of one copy of each media (its first path), in the pool if any."""
    from ..signals.hasher import hash_bytes

    where: dict[int, tuple[str, str | None]] = {}
    ids = [r.id for r in rows]
    with engine.connect() as c:
        for s in range(0, len(ids), 500):
            for mid, src, member in c.execute(
                select(
                    triage_files.c.media_id, triage_files.c.source_path, triage_files.c.member_path
                )
                .where(
                    triage_files.c.case_id == case_id, triage_files.c.media_id.in_(ids[s : s + 500])
                )
                .order_by(triage_files.c.path)
            ):
                where.setdefault(mid, (src, member))
    locs = [where.get(i) for i in ids]
    if pool is not None:
        todo = [loc for loc in locs if loc is not None]
        got = iter(
            pool.map(
                exact_hash,
                [t[0] for t in todo],
                [t[1] for t in todo],
                [limits] * len(todo),
                chunksize=16,
            )
        )
        return [next(got) if loc is not None else None for loc in locs]
    out: list[HashResult | None] = []
    for loc in locs:
        if loc is None:
            out.append(None)
            continue
        try:
            data = reader(*loc)
        except (OSError, KeyError, ValueError):
            out.append(None)
            continue
        exact = hash_bytes(data, query_variants=("trimmed",))
        out.append(None if exact.error is not None and not exact.signals else exact)
    return out


def group_case(
    engine: Engine,
    case_id: int,
    *,
    matcher: Any = None,
    near_threshold: int = 31,
    reader: Any = None,
    workers: int = 1,
    limits: Any = None,
) -> GroupingResult:
    """(Re)build the case's groups from its media; see the module docstring.

    ``workers`` > 1: exact re-hashes for bank matching run in that many processes,
    reading copies under ``limits`` (:class:`.sources.SourceLimits`).

    Group keys are ``G-`` + the first 16 hex digits of the group's smallest SHA-256,
    so a rerun over the same material gives the same keys.
    """
    from .sources import read_bytes

    reader = reader or read_bytes
    res = GroupingResult()
    cols = _load_columns(engine, case_id)
    ids = cols.ids
    n = len(ids)
    res.media = n
    uf = UnionFind(n)
    _md5_joins(engine, case_id, ids, uf)  # exact: same MD5, different SHA-256
    # near: PDQ. The index holds at most INDEX_BUDGET plain hashes; every query is
    # streamed past each part of them (one part up to that many images)
    for pos, hashes in _plain_parts(engine, case_id, ids, INDEX_BUDGET):
        index = PDQIndex()
        index.add(pos, hashes)
        del pos, hashes
        res.near_pairs += _pdq_pairs(engine, case_id, ids, index, near_threshold, uf)
        del index
    res.near_pairs += _video_pairs(engine, case_id, ids, uf)  # near: vPDQ
    roots = uf.roots()
    del uf
    with tempfile.TemporaryDirectory(prefix="sentinelle-group-") as tmp:
        spill = _MatchSpill(os.path.join(tmp, "matches.sqlite"))
        try:
            _match_all(engine, case_id, matcher, reader, res, workers, limits, spill)
            _write_groups(engine, case_id, ids, roots, cols.sha16, cols.mtype, spill, res)
        finally:
            spill.close()
    return res


CHUNK = 5_000  # triage_media rows read at a time (keyset by id)
INDEX_BUDGET = 2_000_000  # plain PDQ hashes indexed at once (~90 bytes each with the MIH tables)
QUERY_STEP = 1_024  # PDQ query hashes searched at once (their hits held as arrays)
VIDEO_CHUNK = 100  # video rows read at a time (a vPDQ column holds every frame)
GROUP_STEP = 500  # groups written at once...
MEMBER_STEP = 2_000  # ...and at most this many members (bar one bigger group)
# media type codes: 0 is None; the others index TYPES (unknown names get "other")
TYPES = (None, "image", "video", "other")


@dataclass
class _Columns:
    """The case's media as compact arrays, in id order (position k is the k-th id)."""

    ids: np.ndarray  # int64, sorted
    sha16: np.ndarray  # S16: the first 16 hex digits of the SHA-256 (the group key)
    mtype: np.ndarray  # uint8 codes into TYPES


def _load_columns(engine: Engine, case_id: int) -> _Columns:
    """Stream the case's media in keyset chunks of CHUNK rows, keeping only arrays
    (8 + 16 + 1 bytes per media)."""
    m = triage_media.c
    ids: list[np.ndarray] = []
    sha16: list[np.ndarray] = []
    mtype: list[np.ndarray] = []
    code = {t: i for i, t in enumerate(TYPES)}
    last = None
    while True:
        sel = select(m.id, m.sha256, m.media_type).where(m.case_id == case_id)
        if last is not None:
            sel = sel.where(m.id > last)
        with engine.connect() as c:
            rows = c.execute(sel.order_by(m.id).limit(CHUNK)).all()
        if not rows:
            break
        last = rows[-1].id
        n = len(rows)
        ids.append(np.fromiter((r.id for r in rows), dtype=np.int64, count=n))
        sha16.append(np.array([r.sha256[:16].encode("ascii") for r in rows], dtype="S16"))
        mtype.append(
            np.fromiter((code.get(r.media_type, 3) for r in rows), dtype=np.uint8, count=n)
        )
        del rows
    if not ids:
        return _Columns(np.zeros(0, dtype=np.int64), np.zeros(0, "S16"), np.zeros(0, np.uint8))
    return _Columns(np.concatenate(ids), np.concatenate(sha16), np.concatenate(mtype))


def _good_pdq(m: Any) -> Any:
    """The media rows whose plain PDQ hash joins by PDQ (quality >= MIN_QUALITY)."""
    return (m.pdq.is_not(None)) & (m.pdq != "") & (m.pdq_quality >= MIN_QUALITY)


def _plain_parts(
    engine: Engine, case_id: int, ids: np.ndarray, budget: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The plain PDQ hashes of quality >= MIN_QUALITY, by id, in parts of at most
    ``budget`` hashes: (positions int64, hashes uint8 (k, 32)), read in CHUNK rows."""
    m = triage_media.c
    budget = max(1, budget)
    last = None
    while True:
        pos: list[np.ndarray] = []
        rows_h: list[np.ndarray] = []
        held = 0
        while held < budget:
            sel = select(m.id, m.pdq).where(m.case_id == case_id, _good_pdq(m))
            if last is not None:
                sel = sel.where(m.id > last)
            with engine.connect() as c:
                rows = c.execute(sel.order_by(m.id).limit(min(CHUNK, budget - held))).all()
            if not rows:
                break
            last = rows[-1].id
            at = _positions(ids, np.fromiter((r.id for r in rows), np.int64, len(rows)))
            keep = at >= 0
            pos.append(at[keep])
            rows_h.append(_hex_rows([r.pdq for r, k in zip(rows, keep, strict=True) if k]))
            held += len(rows)
            del rows
        if not held:
            return
        yield np.concatenate(pos), np.concatenate(rows_h)
        if held < budget:
            return


def _positions(ids: np.ndarray, mids: np.ndarray) -> np.ndarray:
    """Positions of ``mids`` in the sorted ``ids``; -1 for an id not there."""
    at = np.searchsorted(ids, mids)
    ok = at < len(ids)
    ok[ok] = ids[at[ok]] == mids[ok]
    return np.where(ok, at, -1)


def _md5_joins(engine: Engine, case_id: int, ids: np.ndarray, uf: UnionFind) -> None:
    """Join the media that share an MD5 (not a SHA-256): the database finds them."""
    m = triage_media.c
    shared = (
        select(m.md5)
        .where(m.case_id == case_id, m.md5.is_not(None), m.md5 != "")
        .group_by(m.md5)
        .having(func.count() > 1)
    )
    sel = select(m.id, m.md5).where(m.case_id == case_id, m.md5.in_(shared)).order_by(m.md5, m.id)
    head_md5, head = None, -1
    with engine.connect() as c:
        cur = c.execute(sel)
        while part := cur.fetchmany(CHUNK):
            pos = _positions(ids, np.fromiter((r[0] for r in part), np.int64, len(part)))
            for (_mid, md5), k in zip(part, pos.tolist(), strict=True):
                if k < 0:
                    continue
                if md5 != head_md5:
                    head_md5, head = md5, k
                elif k != head:
                    uf.union(head, k)


def _pdq_pairs(
    engine: Engine,
    case_id: int,
    ids: np.ndarray,
    index: PDQIndex,
    near_threshold: int,
    uf: UnionFind,
) -> int:
    """Join each media whose query hashes (plain + variants of quality >= MIN_QUALITY)
    lie within ``near_threshold`` of an indexed plain hash; the queries are streamed
    from the database (CHUNK rows, QUERY_STEP hashes searched at once)."""
    m = triage_media.c
    pairs = 0
    last = None
    while True:
        sel = select(m.id, m.pdq, m.meta).where(m.case_id == case_id, _good_pdq(m))
        if last is not None:
            sel = sel.where(m.id > last)
        with engine.connect() as c:
            rows = c.execute(sel.order_by(m.id).limit(CHUNK)).all()
        if not rows:
            return pairs
        last = rows[-1].id
        pos = _positions(ids, np.fromiter((r.id for r in rows), np.int64, len(rows))).tolist()
        qp: list[int] = []
        qh: list[str] = []
        for r, k in zip(rows, pos, strict=True):
            if k < 0:
                continue
            qp.append(k)
            qh.append(r.pdq)
            meta = json.loads(r.meta) if r.meta else {}
            for _name, h, qq in meta.get("variants") or []:
                if int(qq) >= MIN_QUALITY:
                    qp.append(k)
                    qh.append(str(h))
        del rows
        at = np.array(qp, dtype=np.int64)
        for s in range(0, len(qh), QUERY_STEP):
            qi, other, _d = index.search_pairs(_hex_rows(qh[s : s + QUERY_STEP]), near_threshold)
            pairs += uf.union_many(at[s + qi], other)
            del qi, other, _d


class _MatchSpill:
    """media id -> its compact bank matches (JSON), spilled to a private SQLite file."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, js TEXT NOT NULL)")
        self.count = 0

    def put(self, items: list[tuple[int, list[dict[str, Any]]]]) -> None:
        self.db.executemany(
            "INSERT INTO m (id, js) VALUES (?, ?)",
            [(mid, json.dumps(ms, separators=(",", ":"))) for mid, ms in items],
        )
        self.db.commit()
        self.count += len(items)

    def get(self, mids: list[int]) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        if not self.count:
            return out
        for s in range(0, len(mids), 500):
            part = mids[s : s + 500]
            qs = ",".join("?" * len(part))
            for mid, js in self.db.execute(f"SELECT id, js FROM m WHERE id IN ({qs})", part):
                out[int(mid)] = json.loads(js)
        return out

    def close(self) -> None:
        self.db.close()


def _video_pairs(engine: Engine, case_id: int, ids: np.ndarray, uf: UnionFind) -> int:
    """Join videos by the vPDQ rule: >= VIDEO_PCT of each one's unique frames of
    quality >= MIN_QUALITY match a frame of the other within 31 bits.

    The videos are streamed (VIDEO_CHUNK rows); held are arrays: per video its
    position and unique-frame count, per unique frame its video and hash (+ the
    index), and per (video, video) pair with a matching frame its count."""
    m = triage_media.c
    vpos: list[np.ndarray] = []  # per video: its position in ids (int64)
    uniq: list[np.ndarray] = []  # per video: its unique frames of good quality (int64)
    fvid: list[np.ndarray] = []  # per frame: its video number (int32)
    fhash: list[np.ndarray] = []  # per frame: uint8 (32,)
    nv = 0
    last = None
    step = max(1, min(CHUNK, VIDEO_CHUNK))
    while True:
        sel = select(m.id, m.vpdq).where(m.case_id == case_id, m.vpdq.is_not(None))
        if last is not None:
            sel = sel.where(m.id > last)
        with engine.connect() as c:
            rows = c.execute(sel.order_by(m.id).limit(step)).all()
        if not rows:
            break
        last = rows[-1].id
        pos = _positions(ids, np.fromiter((r.id for r in rows), np.int64, len(rows))).tolist()
        hexes: list[str] = []
        owners: list[int] = []
        at: list[int] = []
        nu: list[int] = []
        for (_mid, vp), k in zip(rows, pos, strict=True):
            if k < 0:
                continue
            seen = sorted({h for _f, h, q, _t in json.loads(vp) if int(q) >= MIN_QUALITY})
            owners.extend([nv] * len(seen))
            hexes.extend(seen)
            at.append(k)
            nu.append(len(seen))
            nv += 1
        del rows
        vpos.append(np.array(at, dtype=np.int64))
        uniq.append(np.array(nu, dtype=np.int64))
        fvid.append(np.array(owners, dtype=np.int32))
        fhash.append(_hex_rows(hexes))
    frames = np.concatenate(fhash) if fhash else np.zeros((0, 32), np.uint8)
    del fhash
    if nv < 2 or not len(frames):
        return 0
    owner = np.concatenate(fvid)
    del fvid
    index = PDQIndex()
    index.add(np.arange(len(frames), dtype=np.int64), frames)
    # matched (a * nv + b -> count): how many of a's unique frames match some frame of b
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    held = 0
    for s in range(0, len(frames), QUERY_STEP):
        qi, hit, _d = index.search_pairs(frames[s : s + QUERY_STEP], 31)
        va, vb = owner[s + qi].astype(np.int64), owner[hit].astype(np.int64)
        # one entry per (query frame, other video): a frame matching several frames of
        # one video counts once
        keys = np.unique(((s + qi) << 32 | vb)[va != vb])
        del qi, hit, _d, vb
        if len(keys):
            frame = keys >> 32
            pair = owner[frame].astype(np.int64) * nv + (keys & 0xFFFFFFFF)
            parts.append(np.unique(pair, return_counts=True))
            held += len(parts[-1][0])
            if held > 1 << 20:
                parts = [_sum_counts(parts)]
                held = len(parts[0][0])
    del index, frames, owner
    if not parts:
        return 0
    key, cnt = _sum_counts(parts)  # sorted, unique
    del parts
    a, b = key // nv, key % nv
    nu = np.concatenate(uniq)
    sel = (a < b) & (nu[a] > 0) & (nu[b] > 0)
    a, b, n_ab = a[sel], b[sel], cnt[sel]
    back = b * nv + a
    at = np.minimum(np.searchsorted(key, back), len(key) - 1)
    n_ba = np.where(key[at] == back, cnt[at], 0)
    both = (n_ab >= VIDEO_PCT * nu[a]) & (n_ba >= VIDEO_PCT * nu[b])
    where = np.concatenate(vpos)
    return uf.union_many(where[a[both]], where[b[both]])


def _sum_counts(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(keys, counts) parts -> the sorted unique keys and their summed counts."""
    keys = np.concatenate([k for k, _c in parts])
    counts = np.concatenate([c for _k, c in parts])
    u, inv = np.unique(keys, return_inverse=True)
    total = np.zeros(len(u), dtype=np.int64)
    np.add.at(total, inv.reshape(-1), counts)
    return u, total


def _write_groups(
    engine: Engine,
    case_id: int,
    ids: np.ndarray,
    roots: np.ndarray,
    sha16: np.ndarray,
    mtype: np.ndarray,
    spill: _MatchSpill,
    res: GroupingResult,
) -> None:
    order = np.lexsort((ids, roots))
    copies = np.zeros(len(ids), dtype=np.int64)
    with engine.connect() as c:
        cur = c.execute(
            select(triage_files.c.media_id, func.count())
            .where(triage_files.c.case_id == case_id, triage_files.c.media_id.is_not(None))
            .group_by(triage_files.c.media_id)
        )
        while part := cur.fetchmany(CHUNK):
            mids = np.fromiter((r[0] for r in part), dtype=np.int64, count=len(part))
            cnt = np.fromiter((r[1] for r in part), dtype=np.int64, count=len(part))
            at = np.searchsorted(ids, mids)
            ok = at < len(ids)
            ok[ok] = ids[at[ok]] == mids[ok]
            copies[at[ok]] += cnt[ok]
    with engine.begin() as c:
        c.execute(delete(triage_groups).where(triage_groups.c.case_id == case_id))
        c.execute(
            update(triage_media).where(triage_media.c.case_id == case_id).values(group_id=None)
        )
    n = len(order)
    sorted_roots = roots[order]
    # group boundaries in the (root, id) order
    starts = np.flatnonzero(np.r_[True, sorted_roots[1:] != sorted_roots[:-1]]) if n else []
    ends = np.r_[starts[1:], n] if n else []
    batch_groups: list[dict[str, Any]] = []
    batch_members: list[np.ndarray] = []
    held = 0  # members in the batch

    def flush() -> None:
        nonlocal held
        if not batch_groups:
            return
        with engine.begin() as c:
            c.execute(insert(triage_groups), batch_groups)
            keys = [g["key"] for g in batch_groups]
            gid = dict(
                c.execute(
                    select(triage_groups.c.key, triage_groups.c.id).where(
                        triage_groups.c.case_id == case_id, triage_groups.c.key.in_(keys)
                    )
                ).all()
            )
            set_group = (
                update(triage_media)
                .where(triage_media.c.id == bindparam("mid"))
                .values(group_id=bindparam("gid"))
            )
            params: list[dict[str, int]] = []
            for g, members in zip(batch_groups, batch_members, strict=True):
                for s in range(0, len(members), MEMBER_STEP):
                    params.extend(
                        {"mid": m, "gid": gid[g["key"]]}
                        for m in members[s : s + MEMBER_STEP].tolist()
                    )
                    if len(params) >= MEMBER_STEP:
                        c.execute(set_group, params)
                        params.clear()
            if params:
                c.execute(set_group, params)
        batch_groups.clear()
        batch_members.clear()
        held = 0

    video = TYPES.index("video")
    n_groups = len(starts)
    g0 = 0
    while g0 < n_groups:
        # a window of groups: at most GROUP_STEP of them and MEMBER_STEP members
        # (or one bigger group), whose bank matches are fetched at once
        g1 = g0 + 1
        while g1 < n_groups and g1 - g0 < GROUP_STEP and ends[g1] - starts[g0] <= MEMBER_STEP:
            g1 += 1
        lo, hi = int(starts[g0]), int(ends[g1 - 1])
        window = spill.get(ids[order[lo:hi]].tolist()) if hi - lo <= MEMBER_STEP else None
        for i, j in zip(starts[g0:g1].tolist(), ends[g0:g1].tolist(), strict=True):
            members = order[i:j]
            first: list[dict[str, Any]] = []  # the first 20 matches, in member id order
            cats: Counter[str] = Counter()
            found = False
            for s in range(i, j, MEMBER_STEP):
                part = ids[order[s : min(j, s + MEMBER_STEP)]].tolist()
                got = window if window is not None else spill.get(part)
                for mid in part:
                    for mm in got.get(mid, ()):
                        found = True
                        if len(first) < 20:
                            first.append(mm)
                        if mm.get("category"):
                            cats[str(mm["category"])] += 1
                del got
            codes = set(np.unique(mtype[members]).tolist()) - {0}
            if not codes and not found:
                continue  # undecodable and unmatched (text, junk): listed as file errors only
            key = "G-" + bytes(np.sort(sha16[members])[0]).decode("ascii")
            status = "known" if found else "new"
            res.groups += 1
            res.known += status == "known"
            res.new += status == "new"
            member_ids = ids[members]
            batch_groups.append(
                {
                    "case_id": case_id,
                    "key": key,
                    "media_type": "video" if video in codes else ("image" if codes else None),
                    "status": status,
                    "bank_category": _category_of(cats),
                    "matches": json.dumps(first, separators=(",", ":")) if found else None,
                    "series_id": None,
                    "tier": "known" if found else "unknown_new",
                    "priority": 0.0,
                    "rank": 0,
                    "reasons": "[]",
                    "provenance_verdict": None,
                    "n_media": len(member_ids),
                    "n_files": int(copies[members].sum()),
                    "representative_media_id": int(member_ids.min()),
                }
            )
            batch_members.append(member_ids)
            held += len(member_ids)
            if len(batch_groups) >= GROUP_STEP or held >= MEMBER_STEP:
                flush()
        del window
        g0 = g1
    flush()
