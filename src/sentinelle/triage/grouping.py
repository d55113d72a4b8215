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

Arrays, not objects: memory is a few dozen bytes per media besides the PDQ index.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, bindparam, delete, func, insert, select, update

from ..index.pdq_index import PDQIndex
from ..signals.types import HashResult, HashSignal, PDQVariant, VideoFrame, VPDQSignal
from .tables import triage_files, triage_groups, triage_media

MIN_QUALITY = 50
VIDEO_PCT = 0.8
SEVERITY = ("A1", "A2", "B1", "B2")


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, i: int) -> int:
        p = self.parent
        root = i
        while p[root] != root:
            root = int(p[root])
        while p[i] != root:
            p[i], i = root, int(p[i])
        return root

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if ra > rb:
            ra, rb = rb, ra
        self.parent[rb] = ra
        return True

    def roots(self) -> np.ndarray:
        return np.array([self.find(i) for i in range(len(self.parent))], dtype=np.int64)


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


def _category(matches: list[dict[str, Any]]) -> str | None:
    cats = [str(m["category"]) for m in matches if m.get("category")]
    if not cats:
        return None
    for sev in SEVERITY:
        if sev in cats:
            return sev
    return Counter(cats).most_common(1)[0][0]


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


def _match_all(
    engine: Engine,
    case_id: int,
    matcher: Any,
    reader: Any,
    res: GroupingResult,
    workers: int = 1,
    limits: Any = None,
) -> dict[int, list[dict[str, Any]]]:
    """media id -> compact matches, for every media that matched a bank.

    A fast hash near a threshold is re-hashed exactly, as ``scan`` does: per batch of
    2,000 media, in ``workers`` processes (in this one with ``workers`` 1)."""
    out: dict[int, list[dict[str, Any]]] = {}
    if matcher is None:
        return out
    last = 0
    pool = None
    try:
        while True:
            with engine.connect() as c:
                rows = c.execute(
                    select(triage_media)
                    .where(triage_media.c.case_id == case_id, triage_media.c.id > last)
                    .order_by(triage_media.c.id)
                    .limit(2000)
                ).all()
            if not rows:
                return out
            last = rows[-1].id
            found: dict[int, list[Any]] = {}
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
    with engine.connect() as c:
        rows = c.execute(
            select(
                triage_media.c.id,
                triage_media.c.sha256,
                triage_media.c.md5,
                triage_media.c.pdq,
                triage_media.c.pdq_quality,
                triage_media.c.media_type,
                triage_media.c.meta,
            )
            .where(triage_media.c.case_id == case_id)
            .order_by(triage_media.c.id)
        ).all()
        vids = c.execute(
            select(triage_media.c.id, triage_media.c.vpdq).where(
                triage_media.c.case_id == case_id, triage_media.c.vpdq.is_not(None)
            )
        ).all()
    n = len(rows)
    res.media = n
    ids = np.fromiter((r.id for r in rows), dtype=np.int64, count=n)
    pos = {int(i): k for k, i in enumerate(ids)}
    sha = [r.sha256 for r in rows]
    mtype = [r.media_type for r in rows]
    uf = _UnionFind(n)
    # exact: same MD5, different SHA-256
    by_md5: dict[str, int] = {}
    for k, r in enumerate(rows):
        if r.md5:
            if r.md5 in by_md5:
                uf.union(by_md5[r.md5], k)
            else:
                by_md5[r.md5] = k
    del by_md5
    # near: PDQ
    good = [k for k, r in enumerate(rows) if r.pdq and (r.pdq_quality or 0) >= MIN_QUALITY]
    if good:
        index = PDQIndex()
        index.add(np.array(good, dtype=np.int64), _hex_rows([rows[k].pdq for k in good]))
        q_pos: list[int] = []
        q_hex: list[str] = []
        for k in good:
            q_pos.append(k)
            q_hex.append(rows[k].pdq)
            meta = json.loads(rows[k].meta) if rows[k].meta else {}
            for _name, h, q in meta.get("variants") or []:
                if int(q) >= MIN_QUALITY:
                    q_pos.append(k)
                    q_hex.append(str(h))
        step = 20_000
        for s in range(0, len(q_pos), step):
            found = index.search(_hex_rows(q_hex[s : s + step]), near_threshold)
            for k, hits in zip(q_pos[s : s + step], found, strict=True):
                for other, _d in hits:
                    if other != k and uf.union(k, int(other)):
                        res.near_pairs += 1
        del index, q_hex, q_pos
    # near: vPDQ
    res.near_pairs += _video_pairs(vids, pos, uf)
    del rows
    matches = _match_all(engine, case_id, matcher, reader, res, workers, limits)
    roots = uf.roots()
    _write_groups(engine, case_id, ids, roots, sha, mtype, matches, res)
    return res


def _video_pairs(vids: list[Any], pos: dict[int, int], uf: _UnionFind) -> int:
    frames: list[tuple[int, str]] = []  # (video number, hash)
    uniq: list[int] = []
    for v, (_mid, vp) in enumerate(vids):
        seen = {h for _f, h, q, _t in json.loads(vp) if int(q) >= MIN_QUALITY}
        uniq.append(len(seen))
        frames.extend((v, h) for h in sorted(seen))
    if len(vids) < 2 or not frames:
        return 0
    index = PDQIndex()
    index.add(np.arange(len(frames), dtype=np.int64), _hex_rows([h for _v, h in frames]))
    hits = index.search(_hex_rows([h for _v, h in frames]), 31)
    # matched[a][b]: how many of a's unique frames match some frame of b
    matched: dict[tuple[int, int], int] = Counter()
    for (va, _h), found in zip(frames, hits, strict=True):
        for vb in {frames[int(j)][0] for j, _d in found}:
            if vb != va:
                matched[(va, vb)] += 1
    pairs = 0
    for (a, b), n_ab in matched.items():
        if a < b and uniq[a] and uniq[b]:
            n_ba = matched.get((b, a), 0)
            both = n_ab >= VIDEO_PCT * uniq[a] and n_ba >= VIDEO_PCT * uniq[b]
            if both and uf.union(pos[int(vids[a][0])], pos[int(vids[b][0])]):
                pairs += 1
    return pairs


def _write_groups(
    engine: Engine,
    case_id: int,
    ids: np.ndarray,
    roots: np.ndarray,
    sha: list[str],
    mtype: list[str | None],
    matches: dict[int, list[dict[str, Any]]],
    res: GroupingResult,
) -> None:
    order = np.lexsort((ids, roots))
    with engine.connect() as c:
        copies = dict(
            c.execute(
                select(triage_files.c.media_id, func.count())
                .where(triage_files.c.case_id == case_id, triage_files.c.media_id.is_not(None))
                .group_by(triage_files.c.media_id)
            ).all()
        )
    with engine.begin() as c:
        c.execute(delete(triage_groups).where(triage_groups.c.case_id == case_id))
        c.execute(
            update(triage_media).where(triage_media.c.case_id == case_id).values(group_id=None)
        )
    i = 0
    n = len(order)
    batch_groups: list[dict[str, Any]] = []
    batch_members: list[list[int]] = []

    def flush() -> None:
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
            params = [
                {"mid": m, "gid": gid[g["key"]]}
                for g, members in zip(batch_groups, batch_members, strict=True)
                for m in members
            ]
            c.execute(
                update(triage_media)
                .where(triage_media.c.id == bindparam("mid"))
                .values(group_id=bindparam("gid")),
                params,
            )
        batch_groups.clear()
        batch_members.clear()

    while i < n:
        j = i
        while j < n and roots[order[j]] == roots[order[i]]:
            j += 1
        members = [int(k) for k in order[i:j]]
        i = j
        member_ids = [int(ids[k]) for k in members]
        found = [m for mid in member_ids for m in matches.get(mid, [])]
        types = {mtype[k] for k in members} - {None}
        if not types and not found:
            continue  # undecodable and unmatched (text, junk): listed as file errors only
        key = "G-" + min(sha[k] for k in members)[:16]
        status = "known" if found else "new"
        res.groups += 1
        res.known += status == "known"
        res.new += status == "new"
        rep = min(member_ids)
        batch_groups.append(
            {
                "case_id": case_id,
                "key": key,
                "media_type": "video" if "video" in types else ("image" if types else None),
                "status": status,
                "bank_category": _category(found),
                "matches": json.dumps(found[:20], separators=(",", ":")) if found else None,
                "series_id": None,
                "tier": "known" if found else "unknown_new",
                "priority": 0.0,
                "rank": 0,
                "reasons": "[]",
                "provenance_verdict": None,
                "n_media": len(members),
                "n_files": int(sum(copies.get(m, 0) for m in member_ids)),
                "representative_media_id": rep,
            }
        )
        batch_members.append(member_ids)
        if len(batch_groups) >= 500:
            flush()
    flush()
