"""Series: new groups that belong together, and why.

Different shots of one session are far apart in PDQ (a near-duplicate group holds
copies of *one* picture), so series need other links. Each candidate pair of new
groups is scored on every cue; a pair whose scores add up to at least 1.0 is linked,
and series are the connected components (two groups or more). Weights (``SCORES``):

===============  =====  ==========================================================
cue              score  when
===============  =====  ==========================================================
near_duplicate   1.0    PDQ within ``series_pdq`` bits (crops, shifts, re-encodes)
device_serial    1.0    same EXIF make, model and body serial number
device_model     0.4    same make and model (none when both have serials that differ)
qtables          0.3    same non-standard JPEG quantisation tables (firmware)
time_burst       0.5    capture times within ``burst_s`` seconds
gps              0.6    capture places within ``gps_m`` metres
scene            1.0    same scene (ORB keypoints verified by RANSAC; or CLIP cosine)
face             0.5    the face hook links a face in both (a lead, never identity)
imported         1.0    both in a series named by imported VICS/ICSE data (kept, even
                        for known groups)
===============  =====  ==========================================================

So one strong cue links; weak ones only together (same phone model + its tables + a
burst = 1.2; a burst alone, 0.5, does not). Every contributing cue of a linked pair is
stored in ``triage_links`` with its score and a detail, and each series counts its
links per cue.

Candidate pairs stay near-linear in the number of groups: groups sharing a serial or a
model are chained in capture-time order, all groups are chained in time order within
a burst, GPS cells hold a few neighbours, PDQ candidates come from the MIH index, scene
candidates from ORB descriptor votes (:func:`.scene.vote_pairs`; CLIP: a blockwise
cosine product). The scene cue runs last and only between what the other cues left
apart (one group per linked component, every unlinked group): it reads and decodes one
image per group it looks at (in the worker processes), about 15 ms each.

**Stable ids.** A series keeps the key of the earlier run's series it shares the most
groups with (each old key goes to one new series); otherwise its key is ``S-`` + 12
hex digits of the SHA-256 of its smallest group key. Names (imported VICS/ICSE series
names) follow their key.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, bindparam, delete, insert, select, update

from ..index.pdq_index import PDQIndex
from .grouping import MIN_QUALITY, _hex_rows, _UnionFind
from .tables import triage_files, triage_groups, triage_links, triage_media, triage_series

SCORES = {
    "near_duplicate": 1.0,
    "device_serial": 1.0,
    "device_model": 0.4,
    "qtables": 0.3,
    "time_burst": 0.5,
    "gps": 0.6,
    "scene": 1.0,
    "face": 0.5,
    "imported": 1.0,
}
LINK_AT = 1.0
CUES = tuple(SCORES)
SCENES = ("orb", "orb-all", "clip+orb", "clip", "none")


@dataclass
class SeriesOptions:
    series_pdq: int = 47  # <= 47: the MIH index answers exactly
    burst_s: float = 600.0
    gps_m: float = 100.0
    scene: str = "orb"  # orb (votes + RANSAC) | orb-all | clip+orb | clip | none
    clip_threshold: float = 0.95  # "clip" alone
    clip_candidate: float = 0.80  # "clip+orb": CLIP neighbours at or above this ...
    clip_top_k: int = 8  # ... at most this many per group, verified by ORB
    orb_min_inliers: int = 25
    vote_top_k: int = 8  # "orb": candidates per group, most key votes first ...
    vote_min: int = 3  # ... with at least this many shared keys
    orb_max_pairs: int = 200_000  # "orb-all": stops there (reported: scene_truncated)
    cues: tuple[str, ...] = CUES  # which cues may link (bench: one at a time)
    link_at: float = LINK_AT  # the bench lowers it to let one weak cue decide alone
    threads: int = 1


@dataclass
class _G:
    id: int
    key: str
    rep: int  # representative media id
    pdqs: list[str] = field(default_factory=list)
    serials: set[tuple[str, str, str]] = field(default_factory=set)
    models: set[tuple[str, str]] = field(default_factory=set)
    qtables: set[str] = field(default_factory=set)
    times: list[float] = field(default_factory=list)
    gps: list[tuple[float, float]] = field(default_factory=list)


def parse_time(s: str | None) -> float | None:
    """EXIF ``YYYY:MM:DD HH:MM:SS[.frac]`` as seconds (naive: the camera's clock)."""
    if not s:
        return None
    base, _, frac = s.strip().partition(".")
    try:
        t = datetime.strptime(base[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    secs = (t - datetime(1970, 1, 1)).total_seconds()
    if frac.isdigit():
        secs += float("0." + frac)
    return secs


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_000 * math.asin(min(1.0, math.sqrt(h)))


def _load(engine: Engine, case_id: int) -> dict[int, _G]:
    with engine.connect() as c:
        groups = {
            r.id: _G(r.id, r.key, r.representative_media_id)
            for r in c.execute(
                select(
                    triage_groups.c.id, triage_groups.c.key, triage_groups.c.representative_media_id
                ).where(triage_groups.c.case_id == case_id, triage_groups.c.status == "new")
            )
        }
        rows = c.execute(
            select(
                triage_media.c.group_id,
                triage_media.c.pdq,
                triage_media.c.pdq_quality,
                triage_media.c.meta,
            )
            .select_from(
                triage_media.join(triage_groups, triage_media.c.group_id == triage_groups.c.id)
            )
            .where(triage_groups.c.case_id == case_id, triage_groups.c.status == "new")
        )
        for r in rows:
            g = groups[r.group_id]
            if r.pdq and (r.pdq_quality or 0) >= MIN_QUALITY:
                g.pdqs.append(r.pdq)
            meta = json.loads(r.meta) if r.meta else {}
            make, model = (meta.get("make") or "").lower(), (meta.get("model") or "").lower()
            if make or model:
                g.models.add((make, model))
                if meta.get("serial"):
                    g.serials.add((make, model, str(meta["serial"]).lower()))
            if meta.get("qtables"):
                g.qtables.add(meta["qtables"])
            t = parse_time(meta.get("taken_at"))
            if t is not None:
                g.times.append(t)
            if meta.get("gps"):
                lat, lon = meta["gps"]
                g.gps.append((float(lat), float(lon)))
    return groups


def _pair_cues(
    a: _G, b: _G, o: SeriesOptions, extra: dict[str, tuple[float, str]]
) -> list[tuple[str, float, str]]:
    """[(cue, score, detail)] for one pair; ``extra``: cues found elsewhere (pdq, scene...)."""
    out: list[tuple[str, float, str]] = []
    allowed = set(o.cues)
    for cue, (score, detail) in extra.items():
        if cue in allowed:
            out.append((cue, score, detail))
    same_serial = a.serials & b.serials
    if "device_serial" in allowed and same_serial:
        mk, md, sn = sorted(same_serial)[0]
        out.append(("device_serial", SCORES["device_serial"], f"{mk} {md} serial {sn}"))
    # same model, unless both carry serials and they differ (two devices of one model)
    consistent = bool(same_serial) or not (a.serials and b.serials)
    if "device_model" in allowed and a.models & b.models and consistent:
        mk, md = sorted(a.models & b.models)[0]
        out.append(("device_model", SCORES["device_model"], f"{mk} {md}"))
    if "qtables" in allowed and a.qtables & b.qtables:
        out.append(("qtables", SCORES["qtables"], "same quantisation tables"))
    if "time_burst" in allowed and a.times and b.times:
        gap = min(abs(x - y) for x in a.times for y in b.times)
        if gap <= o.burst_s:
            out.append(("time_burst", SCORES["time_burst"], f"captured {gap:.0f} s apart"))
    if "gps" in allowed and a.gps and b.gps:
        d = min(_metres(x, y) for x in a.gps for y in b.gps)
        if d <= o.gps_m:
            out.append(("gps", SCORES["gps"], f"captured {d:.0f} m apart"))
    return out


def _candidates(groups: dict[int, _G], o: SeriesOptions) -> set[tuple[int, int]]:
    cand: set[tuple[int, int]] = set()

    def add(a: int, b: int) -> None:
        if a != b:
            cand.add((a, b) if a < b else (b, a))

    def tkey(g: _G) -> tuple[float, str]:
        return (min(g.times) if g.times else float("inf"), g.key)

    buckets: dict[Any, list[_G]] = defaultdict(list)
    for g in groups.values():
        for s in g.serials:
            buckets[("s", s)].append(g)
        for m in g.models:
            buckets[("m", m)].append(g)
        for q in g.qtables:
            buckets[("q", q)].append(g)
    for members in buckets.values():
        members.sort(key=tkey)
        for x, y in zip(members, members[1:], strict=False):
            add(x.id, y.id)
    timed = sorted((t, g.id) for g in groups.values() for t in g.times)
    for i, (t, gid) in enumerate(timed):
        for t2, gid2 in timed[i + 1 : i + 4]:
            if t2 - t <= o.burst_s:
                add(gid, gid2)
    cells: dict[tuple[int, int], list[int]] = defaultdict(list)
    cell_deg = max(o.gps_m / 111_000.0, 1e-5)
    for g in groups.values():
        for lat, lon in g.gps:
            cells[(int(lat // cell_deg), int(lon // cell_deg))].append(g.id)
    for (cx, cy), ids in cells.items():
        near = [
            j for dx in (-1, 0, 1) for dy in (-1, 0, 1) for j in cells.get((cx + dx, cy + dy), [])
        ]
        near = sorted(set(near))[:64]
        for a in ids[:64]:
            for b in near:
                add(a, b)
    return cand


def _pdq_links(groups: dict[int, _G], o: SeriesOptions) -> dict[tuple[int, int], tuple[float, str]]:
    owners: list[int] = []
    hexes: list[str] = []
    for g in groups.values():
        for h in g.pdqs:
            owners.append(g.id)
            hexes.append(h)
    out: dict[tuple[int, int], tuple[float, str]] = {}
    if len(hexes) < 2 or "near_duplicate" not in o.cues:
        return out
    index = PDQIndex()
    index.add(np.arange(len(hexes), dtype=np.int64), _hex_rows(hexes))
    step = 20_000
    for s in range(0, len(hexes), step):
        found = index.search(_hex_rows(hexes[s : s + step]), min(o.series_pdq, 47))
        for qi, hits in enumerate(found):
            a = owners[s + qi]
            for j, d in hits:
                b = owners[int(j)]
                if a == b:
                    continue
                k = (a, b) if a < b else (b, a)
                if k not in out or d < int(out[k][1].split()[2]):
                    out[k] = (SCORES["near_duplicate"], f"PDQ distance {d} bits")
    return out


def _scene_links(
    engine: Engine,
    case_id: int,
    groups: dict[int, _G],
    o: SeriesOptions,
    reader: Callable[[int], bytes] | None,
    res: SeriesResult,
) -> dict[tuple[int, int], tuple[float, str]]:
    out: dict[tuple[int, int], tuple[float, str]] = {}
    if o.scene == "none" or "scene" not in o.cues or reader is None or len(groups) < 2:
        return out
    from . import scene

    rep_of = {g.rep: g.id for g in groups.values() if g.rep is not None}
    if o.scene in ("orb", "orb-all"):
        for ma, mb, inl, how in _orb_scene(engine, case_id, sorted(rep_of), o, reader, res):
            a, b = rep_of[ma], rep_of[mb]
            out[(a, b) if a < b else (b, a)] = (SCORES["scene"], f"{inl} ORB inliers ({how})")
        return out
    if o.scene in ("clip", "clip+orb"):
        from ..provenance.clip_encoder import available

        if not available():
            return out
        emb = _stored_embeddings(engine, list(rep_of))
        missing = [m for m in rep_of if m not in emb]
        fresh = scene.clip_embeddings(
            ((m, (lambda m=m: reader(m))) for m in missing), threads=o.threads
        )
        _store_embeddings(engine, fresh)
        emb.update(fresh)
        if o.scene == "clip":
            for ma, mb, cos in scene.clip_pairs(emb, o.clip_threshold):
                a, b = rep_of[ma], rep_of[mb]
                out[(a, b) if a < b else (b, a)] = (SCORES["scene"], f"CLIP cosine {cos:.3f}")
            return out
        # CLIP proposes (its nearest neighbours), ORB keypoints decide
        cand = scene.clip_pairs(emb, o.clip_candidate, top_k=o.clip_top_k)
        feats: dict[int, Any] = {}
        for ma, mb, cos in cand:
            for m in (ma, mb):
                if m not in feats:
                    feats[m] = _orb(scene, reader, m)
            inl = scene.orb_inliers(feats[ma], feats[mb])
            if inl >= o.orb_min_inliers:
                a, b = rep_of[ma], rep_of[mb]
                out[(a, b) if a < b else (b, a)] = (
                    SCORES["scene"],
                    f"{inl} ORB inliers (CLIP cosine {cos:.3f})",
                )
    return out


def _image_refs(engine: Engine, case_id: int, media_ids: list[int]) -> list[Any]:
    """Where the workers read each media: its copies, by path."""
    from .scene import ImageRef

    copies: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
    with engine.connect() as c:
        for s in range(0, len(media_ids), 500):
            for mid, src, member in c.execute(
                select(
                    triage_files.c.media_id, triage_files.c.source_path, triage_files.c.member_path
                )
                .where(
                    triage_files.c.case_id == case_id,
                    triage_files.c.media_id.in_(media_ids[s : s + 500]),
                )
                .order_by(triage_files.c.path)
            ):
                copies[mid].append((src, member))
    return [ImageRef(m, tuple(copies.get(m, ()))) for m in media_ids]


def _orb_scene(
    engine: Engine,
    case_id: int,
    media_ids: list[int],
    o: SeriesOptions,
    reader: Callable[[int], bytes],
    res: SeriesResult,
) -> list[tuple[int, int, int, str]]:
    """``(media_a, media_b, inliers, how)`` for the verified same-scene pairs.

    Features: one worker task per image (``o.threads`` processes; in-process through
    ``reader`` with one), packed into a :class:`.scene.FeatureFile`. Candidates: key
    votes (``orb``) or every pair (``orb-all``, up to ``o.orb_max_pairs``). Verification:
    chunks of pairs in the workers, which read the records from the file."""
    import time

    from . import scene
    from .pipeline import _pool
    from .sources import DEFAULT_SOURCE_LIMITS

    t0 = time.perf_counter()
    out: list[tuple[int, int, int, str]] = []
    pool = _pool(o.threads) if o.threads > 1 else None
    try:
        with scene.FeatureFile() as ff:
            slot_mid: list[int] = []
            if pool is not None:
                refs = iter(_image_refs(engine, case_id, media_ids))
                in_flight: set[Any] = set()
                while True:
                    for ref in refs:
                        in_flight.add(pool.submit(scene.features_job, ref, DEFAULT_SOURCE_LIMITS))
                        if len(in_flight) >= 8 * o.threads:
                            break
                    if not in_flight:
                        break
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    for fut in done:
                        mid, rec = fut.result()
                        ff.append_packed(rec)
                        slot_mid.append(mid)
            else:
                for m in media_ids:
                    ff.append(_orb(scene, reader, m))
                    slot_mid.append(m)
            t1 = time.perf_counter()
            votes: dict[tuple[int, int], int] = {}
            if o.scene == "orb":
                for a, b, v in scene.vote_pairs(ff.keys, top_k=o.vote_top_k, min_votes=o.vote_min):
                    votes[(a, b)] = v
                pairs = sorted(votes)
            else:
                live = [s for s in range(ff.n) if ff.has_features(s)]
                total = len(live) * (len(live) - 1) // 2
                pairs = []
                for i, a in enumerate(live):
                    for b in live[i + 1 :]:
                        if len(pairs) >= o.orb_max_pairs:
                            break
                        pairs.append((a, b))
                res.scene_truncated = total > len(pairs)
            t2 = time.perf_counter()
            res.scene_candidates = len(pairs)
            # strongest candidates first, in rounds; a pair whose groups earlier scene
            # links already joined is skipped (it could not change the series)
            if votes:
                pairs.sort(key=lambda p: (-votes[p], p))
            joined = _UnionFind(ff.n)
            found: list[tuple[int, int, int]] = []
            step = 128
            for r0 in range(0, len(pairs), step * 8):
                todo = [
                    p for p in pairs[r0 : r0 + step * 8] if joined.find(p[0]) != joined.find(p[1])
                ]
                res.scene_skipped += min(len(pairs), r0 + step * 8) - r0 - len(todo)
                chunks = [todo[k : k + step] for k in range(0, len(todo), step)]
                if pool is not None:
                    parts = list(
                        pool.map(
                            scene.verify_job,
                            [ff.path] * len(chunks),
                            chunks,
                            [o.orb_min_inliers] * len(chunks),
                        )
                    )
                else:
                    parts = [scene.verify_job(ff.path, ch, o.orb_min_inliers) for ch in chunks]
                for part in parts:
                    for a, b, inl in part:
                        joined.union(a, b)
                        found.append((a, b, inl))
            for a, b, inl in found:
                how = f"{votes[(a, b)]} key votes" if (a, b) in votes else "all pairs"
                out.append((slot_mid[a], slot_mid[b], inl, how))
            t3 = time.perf_counter()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    res.scene_seconds = {
        "features": round(t1 - t0, 3),
        "candidates": round(t2 - t1, 3),
        "verify": round(t3 - t2, 3),
    }
    return out


def _orb(scene: Any, reader: Callable[[int], bytes], media_id: int) -> Any:
    try:
        return scene.orb_features(reader(media_id))
    except Exception:  # noqa: BLE001 - unreadable: no cue
        return None


def _stored_embeddings(engine: Engine, media_ids: list[int]) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    with engine.connect() as c:
        for s in range(0, len(media_ids), 500):
            for mid, blob in c.execute(
                select(triage_media.c.id, triage_media.c.embedding).where(
                    triage_media.c.id.in_(media_ids[s : s + 500]),
                    triage_media.c.embedding.is_not(None),
                )
            ):
                out[mid] = np.frombuffer(blob, dtype=np.float16)
    return out


def _store_embeddings(engine: Engine, emb: dict[int, np.ndarray]) -> None:
    if not emb:
        return
    with engine.begin() as c:
        c.execute(
            update(triage_media)
            .where(triage_media.c.id == bindparam("mid"))
            .values(embedding=bindparam("emb")),
            [{"mid": k, "emb": v.astype(np.float16).tobytes()} for k, v in emb.items()],
        )


def snapshot(engine: Engine, case_id: int) -> dict[str, Any]:
    """The earlier run's series by group key (taken before groups are rebuilt)."""
    with engine.connect() as c:
        series = {
            r.id: (r.key, r.name, bool(r.imported))
            for r in c.execute(select(triage_series).where(triage_series.c.case_id == case_id))
        }
        members: dict[str, str] = {}
        for gkey, sid in c.execute(
            select(triage_groups.c.key, triage_groups.c.series_id).where(
                triage_groups.c.case_id == case_id, triage_groups.c.series_id.is_not(None)
            )
        ):
            if sid in series:
                members[gkey] = series[sid][0]
    names = {k: (n, imp) for k, n, imp in series.values()}
    imported: dict[str, list[str]] = defaultdict(list)
    for gkey, skey in members.items():
        if names.get(skey, (None, False))[1]:
            imported[skey].append(gkey)
    return {"members": members, "names": names, "imported": dict(imported)}


@dataclass
class SeriesResult:
    series: int = 0
    grouped: int = 0  # new groups in a series
    links: int = 0
    per_cue: dict[str, int] = field(default_factory=dict)
    face_links: dict[int, int] = field(default_factory=dict)  # group id -> face links
    scene_groups: int = 0  # groups the scene cue looked at
    scene_candidates: int = 0  # candidate pairs it proposed ...
    scene_skipped: int = 0  # ... of which already joined by earlier scene links
    scene_truncated: bool = False  # orb-all stopped at orb_max_pairs
    scene_seconds: dict[str, float] = field(default_factory=dict)


def build_series(
    engine: Engine,
    case_id: int,
    options: SeriesOptions | None = None,
    *,
    previous: dict[str, Any] | None = None,
    reader: Callable[[int], bytes] | None = None,
    face_pairs: list[tuple[int, int, float, str]] | None = None,
) -> SeriesResult:
    """Link the case's new groups into series (see the module docstring).

    ``reader(media_id) -> bytes`` gives the scene cue its images; ``face_pairs``:
    ``(media_a, media_b, score, detail)`` from the face hook.
    """
    o = options or SeriesOptions()
    res = SeriesResult()
    groups = _load(engine, case_id)
    extra: dict[tuple[int, int], dict[str, tuple[float, str]]] = defaultdict(dict)
    kept = _imported_links(engine, case_id, groups, previous or {}, extra)
    for k, v in _pdq_links(groups, o).items():
        extra[k]["near_duplicate"] = v
    if face_pairs and "face" in o.cues:
        with engine.connect() as c:
            mids = {m for a, b, _s, _d in face_pairs for m in (a, b)}
            g_of = dict(
                c.execute(
                    select(triage_media.c.id, triage_media.c.group_id).where(
                        triage_media.c.id.in_(list(mids))
                    )
                ).all()
            )
        for ma, mb, _score, detail in face_pairs:
            a, b = g_of.get(ma), g_of.get(mb)
            if a in groups and b in groups and a != b:
                extra[(a, b) if a < b else (b, a)]["face"] = (SCORES["face"], detail[:200])
    cand = _candidates(groups, o) | set(extra)
    ids = sorted(groups)
    pos = {g: i for i, g in enumerate(ids)}
    uf = _UnionFind(len(ids))
    linked: list[tuple[int, int, list[tuple[str, float, str]]]] = []

    def consider(pairs: Iterable[tuple[int, int]]) -> None:
        for a, b in sorted(pairs):
            cues = _pair_cues(groups[a], groups[b], o, extra.get((a, b), {}))
            if cues and sum(s for _c, s, _d in cues) >= o.link_at - 1e-9:
                uf.union(pos[a], pos[b])
                linked.append((a, b, cues))
                for cue, _s, _d in cues:
                    if cue == "face":
                        res.face_links[a] = res.face_links.get(a, 0) + 1
                        res.face_links[b] = res.face_links.get(b, 0) + 1

    consider(cand)
    # The scene cue last, and only between what the other cues left apart: one group per
    # linked component (the one with the smallest key) and every unlinked group. It is
    # the costly cue (an image embedding per group), so this is where it pays.
    by_root: dict[int, int] = {}
    for g in sorted(ids, key=lambda g: groups[g].key):
        by_root.setdefault(uf.find(pos[g]), g)
    reps = {g: groups[g] for g in by_root.values()}
    scene_pairs = _scene_links(engine, case_id, reps, o, reader, res)
    for k, v in scene_pairs.items():
        extra[k]["scene"] = v
    res.scene_groups = len(reps) if o.scene != "none" and "scene" in o.cues else 0
    done = {(a, b) for a, b, _c in linked}
    consider(k for k in scene_pairs if k not in done)
    roots = uf.roots() if ids else np.zeros(0, dtype=np.int64)
    comps: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(roots):
        comps[int(r)].append(ids[i])
    comps_list = [
        sorted(m, key=lambda g: groups[g].key)
        for m in comps.values()
        if len(m) > 1 or kept & set(m)
    ]
    keys = _stable_keys(comps_list, groups, previous or {"members": {}, "names": {}})
    names = (previous or {}).get("names", {})
    with engine.begin() as c:
        c.execute(delete(triage_links).where(triage_links.c.case_id == case_id))
        c.execute(delete(triage_series).where(triage_series.c.case_id == case_id))
        c.execute(
            update(triage_groups).where(triage_groups.c.case_id == case_id).values(series_id=None)
        )
        sid_of: dict[int, int] = {}
        for members, key in zip(comps_list, keys, strict=True):
            name, imported = names.get(key, (None, False))
            sid = c.execute(
                insert(triage_series).values(
                    case_id=case_id,
                    key=key,
                    name=name,
                    imported=imported,
                    n_groups=len(members),
                    priority=0.0,
                    cues="{}",
                )
            ).inserted_primary_key[0]
            for g in members:
                sid_of[g] = sid
        if sid_of:
            c.execute(
                update(triage_groups)
                .where(triage_groups.c.id == bindparam("gid"))
                .values(series_id=bindparam("sid")),
                [{"gid": g, "sid": s} for g, s in sid_of.items()],
            )
        per_series: dict[int, Counter[str]] = defaultdict(Counter)
        link_rows = []
        for a, b, cues in linked:
            sid = sid_of.get(a)
            for cue, score, detail in cues:
                per_series[sid][cue] += 1 if sid is not None else 0
                res.per_cue[cue] = res.per_cue.get(cue, 0) + 1
                link_rows.append(
                    {
                        "case_id": case_id,
                        "series_id": sid,
                        "group_a": a,
                        "group_b": b,
                        "cue": cue,
                        "score": score,
                        "detail": detail,
                    }
                )
        for s in range(0, len(link_rows), 2000):
            c.execute(insert(triage_links), link_rows[s : s + 2000])
        if per_series:
            c.execute(
                update(triage_series)
                .where(triage_series.c.id == bindparam("sid"))
                .values(cues=bindparam("b_cues")),
                [
                    {"sid": s, "b_cues": json.dumps(dict(sorted(cnt.items())))}
                    for s, cnt in per_series.items()
                    if s is not None
                ],
            )
    res.series = len(comps_list)
    res.grouped = sum(len(m) for m in comps_list)
    res.links = len(linked)
    return res


def _imported_links(
    engine: Engine,
    case_id: int,
    groups: dict[int, _G],
    previous: dict[str, Any],
    extra: dict[tuple[int, int], dict[str, tuple[float, str]]],
) -> set[int]:
    """Series named by imported data keep their groups (known ones too) across reruns;
    returns the ids of those groups."""
    imported: dict[str, list[str]] = previous.get("imported") or {}
    if not imported:
        return set()
    kept: set[int] = set()
    wanted = {k for ks in imported.values() for k in ks}
    with engine.connect() as c:
        by_key = {
            r.key: r
            for r in c.execute(
                select(
                    triage_groups.c.id, triage_groups.c.key, triage_groups.c.representative_media_id
                ).where(triage_groups.c.case_id == case_id, triage_groups.c.key.in_(list(wanted)))
            )
        }
    names = previous.get("names", {})
    for skey, gkeys in imported.items():
        present = sorted(by_key[k].id for k in gkeys if k in by_key)
        kept.update(present)
        for gid in present:
            if gid not in groups:
                r = next(v for v in by_key.values() if v.id == gid)
                groups[gid] = _G(gid, r.key, r.representative_media_id)
        name = names.get(skey, (None, True))[0] or skey
        for a, b in zip(present, present[1:], strict=False):
            extra[(a, b)]["imported"] = (SCORES["imported"], f"series {name!r} from imported data")
    return kept


def _stable_keys(
    comps: list[list[int]], groups: dict[int, _G], previous: dict[str, Any]
) -> list[str]:
    old = previous.get("members", {})
    overlaps: list[tuple[int, str, int]] = []  # (-overlap, old key, component)
    for ci, members in enumerate(comps):
        cnt = Counter(old[groups[g].key] for g in members if groups[g].key in old)
        overlaps.extend((-n, k, ci) for k, n in cnt.items())
    overlaps.sort()
    keys: list[str | None] = [None] * len(comps)
    used: set[str] = set()
    for _n, k, ci in overlaps:
        if keys[ci] is None and k not in used:
            keys[ci] = k
            used.add(k)
    out = []
    for ci, members in enumerate(comps):
        k = keys[ci]
        if k is None:
            seed = groups[members[0]].key
            k = "S-" + hashlib.sha256(seed.encode()).hexdigest()[:12]
            while k in used:
                k = "S-" + hashlib.sha256(k.encode()).hexdigest()[:12]
        used.add(k)
        out.append(k)
    return out
