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

**Memory.** Nothing per group is kept as an object: the groups and their cues are read
in keyset chunks of ``CHUNK`` rows into arrays by group position (distinct values as
small ints, per-group values as offset/value arrays), candidates and links are int64
pair codes, a pair's cue sets are built only while it is scored, link rows are written
in batches; the scene cue's features live in a temporary file and its votes are
counted in slices and partitions on disk (:func:`.scene.vote_arrays`).

**Stable ids.** A series keeps the key of the earlier run's series it shares the most
groups with (each old key goes to one new series); otherwise its key is ``S-`` + 12
hex digits of the SHA-256 of its smallest group key. Names (imported VICS/ICSE series
names) follow their key.
"""

from __future__ import annotations

import hashlib
import json
import math
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, bindparam, delete, insert, select, update

from ..index.pdq_index import PDQIndex
from .grouping import MIN_QUALITY, _hex_rows
from .tables import triage_files, triage_groups, triage_links, triage_media, triage_series
from .union_find import UnionFind

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
    """One group's cues, built on demand for scoring a pair (never kept for all)."""

    id: int
    key: str
    rep: int | None  # representative media id
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


CHUNK = 5_000
"""Rows read from the database at a time."""


class _CSR:
    """Values per group position, as two arrays (offsets, values): a compressed
    sparse row table instead of a set or list object per group."""

    def __init__(self, n: int, pos: np.ndarray, vals: np.ndarray) -> None:
        order = np.lexsort((vals, pos))
        pos, vals = pos[order], vals[order]
        if len(pos):  # distinct (position, value) pairs
            keep = np.r_[True, (pos[1:] != pos[:-1]) | (vals[1:] != vals[:-1])]
            pos, vals = pos[keep], vals[keep]
        self.vals = vals
        self.ptr = np.searchsorted(pos, np.arange(n + 1))

    def of(self, i: int) -> np.ndarray:
        return self.vals[self.ptr[i] : self.ptr[i + 1]]

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        """(position, value) of every entry."""
        return np.repeat(np.arange(len(self.ptr) - 1), np.diff(self.ptr)), self.vals


class _Interned:
    """Distinct values (device models, serials, quantisation tables) as small ints."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.values: list[Any] = []

    def __call__(self, v: Any) -> int:
        i = self.ids.get(v)
        if i is None:
            i = self.ids[v] = len(self.values)
            self.values.append(v)
        return i


class _Cues:
    """The case's new groups (and groups kept by imported series) with their capture
    cues, in arrays indexed by group position (groups sorted by id): a few dozen bytes
    per media and group, no object per group. Series are built on positions."""

    def __init__(self, engine: Engine, case_id: int, also: Iterable[int] = ()) -> None:
        ids: list[np.ndarray] = []
        keys: list[np.ndarray] = []
        reps: list[np.ndarray] = []
        wanted = (triage_groups.c.status == "new") | triage_groups.c.id.in_(sorted(also))
        last = 0
        with engine.connect() as c:
            while True:
                rows = c.execute(
                    select(
                        triage_groups.c.id,
                        triage_groups.c.key,
                        triage_groups.c.representative_media_id,
                    )
                    .where(triage_groups.c.case_id == case_id, triage_groups.c.id > last, wanted)
                    .order_by(triage_groups.c.id)
                    .limit(CHUNK)
                ).all()
                if not rows:
                    break
                last = rows[-1].id
                ids.append(np.array([r.id for r in rows], dtype=np.int64))
                keys.append(np.array([r.key.encode() for r in rows]))
                reps.append(np.array([-1 if r[2] is None else r[2] for r in rows], dtype=np.int64))
        self.ids = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
        self.keys = np.concatenate(keys) if keys else np.zeros(0, dtype="S1")
        self.reps = np.concatenate(reps) if reps else np.zeros(0, dtype=np.int64)
        self.n = len(self.ids)
        self.key_rank = np.empty(self.n, dtype=np.int64)
        self.key_rank[np.argsort(self.keys, kind="stable")] = np.arange(self.n)
        self.models, self.serials, self.qtables = _Interned(), _Interned(), _Interned()
        self._read_media(engine, case_id)

    def _read_media(self, engine: Engine, case_id: int) -> None:
        cols: dict[str, list[np.ndarray]] = defaultdict(list)
        pdq_rows: list[np.ndarray] = []
        pdq_pos: list[np.ndarray] = []
        last = 0
        while True:
            with engine.connect() as c:
                rows = c.execute(
                    select(
                        triage_media.c.id,
                        triage_media.c.group_id,
                        triage_media.c.pdq,
                        triage_media.c.pdq_quality,
                        triage_media.c.meta,
                    )
                    .select_from(
                        triage_media.join(
                            triage_groups, triage_media.c.group_id == triage_groups.c.id
                        )
                    )
                    .where(
                        triage_media.c.case_id == case_id,
                        triage_media.c.id > last,
                        triage_groups.c.status == "new",
                    )
                    .order_by(triage_media.c.id)
                    .limit(CHUNK)
                ).all()
            if not rows:
                break
            last = rows[-1].id
            pos = np.searchsorted(self.ids, [r.group_id for r in rows])
            hexes: list[str] = []
            hpos: list[int] = []
            got: dict[str, list[Any]] = defaultdict(list)
            for p, r in zip(pos.tolist(), rows, strict=True):
                if r.pdq and (r.pdq_quality or 0) >= MIN_QUALITY:
                    hexes.append(r.pdq)
                    hpos.append(p)
                meta = json.loads(r.meta) if r.meta else {}
                make, model = (meta.get("make") or "").lower(), (meta.get("model") or "").lower()
                if make or model:
                    got["model"].append((p, self.models((make, model))))
                    if meta.get("serial"):
                        got["serial"].append(
                            (p, self.serials((make, model, str(meta["serial"]).lower())))
                        )
                if meta.get("qtables"):
                    got["qtables"].append((p, self.qtables(meta["qtables"])))
                t = parse_time(meta.get("taken_at"))
                if t is not None:
                    got["time"].append((p, t))
                if meta.get("gps"):
                    lat, lon = meta["gps"]
                    got["gps"].append((p, float(lat), float(lon)))
            for name, items in got.items():
                cols[name].append(np.array(items, dtype=np.float64).reshape(len(items), -1))
            if hexes:
                pdq_rows.append(_hex_rows(hexes))
                pdq_pos.append(np.array(hpos, dtype=np.int64))

        def table(name: str, width: int) -> np.ndarray:
            parts = cols.get(name)
            return np.concatenate(parts) if parts else np.zeros((0, width))

        for name in ("model", "serial", "qtables"):
            t = table(name, 2)
            setattr(
                self, f"{name}_of", _CSR(self.n, t[:, 0].astype(np.int64), t[:, 1].astype(np.int64))
            )
        t = table("time", 2)
        self.time_of = _CSR(self.n, t[:, 0].astype(np.int64), t[:, 1])
        t = table("gps", 3)
        # a place as one float pair code: positions sorted with their distinct places
        pos = t[:, 0].astype(np.int64)
        order = np.lexsort((t[:, 2], t[:, 1], pos))
        t, pos = t[order], pos[order]
        if len(pos):
            keep = np.r_[
                True, (np.diff(pos) != 0) | (np.diff(t[:, 1]) != 0) | (np.diff(t[:, 2]) != 0)
            ]
            t, pos = t[keep], pos[keep]
        self.gps_lat, self.gps_lon = t[:, 1].copy(), t[:, 2].copy()
        self.gps_ptr = np.searchsorted(pos, np.arange(self.n + 1))
        self.tmin = np.full(self.n, np.inf)
        tp, tv = self.time_of.entries()
        np.minimum.at(self.tmin, tp, tv)
        self.pdq_rows = np.concatenate(pdq_rows) if pdq_rows else np.zeros((0, 32), np.uint8)
        self.pdq_pos = np.concatenate(pdq_pos) if pdq_pos else np.zeros(0, dtype=np.int64)

    def key(self, i: int) -> str:
        return self.keys[i].decode()

    def group(self, i: int) -> _G:
        """Position ``i``'s cues as sets and lists (for one pair's scoring)."""
        lo, hi = self.gps_ptr[i], self.gps_ptr[i + 1]
        rep = int(self.reps[i])
        return _G(
            int(self.ids[i]),
            self.key(i),
            None if rep < 0 else rep,
            serials={self.serials.values[v] for v in self.serial_of.of(i).tolist()},
            models={self.models.values[v] for v in self.model_of.of(i).tolist()},
            qtables={self.qtables.values[v] for v in self.qtables_of.of(i).tolist()},
            times=self.time_of.of(i).tolist(),
            gps=list(zip(self.gps_lat[lo:hi].tolist(), self.gps_lon[lo:hi].tolist(), strict=True)),
        )

    def pos(self, group_id: int) -> int | None:
        i = int(np.searchsorted(self.ids, group_id))
        return i if i < self.n and self.ids[i] == group_id else None


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


def _code(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pair codes ``min << 32 | max`` of two position arrays (equal ones dropped)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    keep = a != b
    a, b = a[keep], b[keep]
    return (np.minimum(a, b) << 32) | np.maximum(a, b)


def _chain(order_pos: np.ndarray, same: np.ndarray | None = None) -> np.ndarray:
    """Codes of consecutive positions (within runs of equal ``same``)."""
    if len(order_pos) < 2:
        return np.zeros(0, dtype=np.int64)
    a, b = order_pos[:-1], order_pos[1:]
    if same is not None:
        ok = same[:-1] == same[1:]
        a, b = a[ok], b[ok]
    return _code(a, b)


def _candidates(cues: _Cues, o: SeriesOptions) -> np.ndarray:
    """Sorted distinct pair codes: groups sharing a serial, a model or tables chained in
    capture-time order; every group chained in time order within a burst; groups in
    neighbouring GPS cells."""
    parts: list[np.ndarray] = []
    for csr in (cues.serial_of, cues.model_of, cues.qtables_of):
        pos, val = csr.entries()
        order = np.lexsort((cues.key_rank[pos], cues.tmin[pos], val))
        parts.append(_chain(pos[order], val[order]))
    tp, tv = cues.time_of.entries()
    order = np.lexsort((tp, tv))
    tp, tv = tp[order], tv[order]
    for d in (1, 2, 3):
        if len(tp) > d:
            ok = tv[d:] - tv[:-d] <= o.burst_s
            parts.append(_code(tp[:-d][ok], tp[d:][ok]))
    parts.append(_gps_candidates(cues, o))
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(parts))


def _gps_candidates(cues: _Cues, o: SeriesOptions, per_cell: int = 64) -> np.ndarray:
    """Groups of one GPS cell (about ``gps_m`` wide) paired with the groups of it and its
    eight neighbours (at most ``per_cell`` groups of each cell)."""
    n_pts = np.diff(cues.gps_ptr)
    if not n_pts.sum():
        return np.zeros(0, dtype=np.int64)
    pos = np.repeat(np.arange(cues.n), n_pts)
    cell_deg = max(o.gps_m / 111_000.0, 1e-5)
    cx = np.floor(cues.gps_lat / cell_deg).astype(np.int64) + (1 << 25)
    cy = np.floor(cues.gps_lon / cell_deg).astype(np.int64) + (1 << 25)
    cell = (cx << 26) | cy
    order = np.lexsort((pos, cell))
    cell, pos = cell[order], pos[order]
    keep = np.r_[True, (cell[1:] != cell[:-1]) | (pos[1:] != pos[:-1])]
    cell, pos = cell[keep], pos[keep]
    starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
    ucell = cell[starts]
    lens = np.diff(np.r_[starts, len(cell)])
    take = np.minimum(lens, per_cell)
    out: list[np.ndarray] = []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            target = ucell + (dx << 26) + dy
            j = np.searchsorted(ucell, target)
            j = np.minimum(j, len(ucell) - 1)
            hit = np.flatnonzero(ucell[j] == target)
            for i, k in zip(hit.tolist(), j[hit].tolist(), strict=True):
                a = pos[starts[i] : starts[i] + take[i]]
                b = pos[starts[k] : starts[k] + take[k]]
                out.append(_code(np.repeat(a, len(b)), np.tile(b, len(a))))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _pdq_links(cues: _Cues, o: SeriesOptions) -> dict[int, tuple[float, str]]:
    """Near-duplicate links between groups: the smallest PDQ distance of each pair."""
    rows, owner = cues.pdq_rows, cues.pdq_pos
    out: dict[int, tuple[float, str]] = {}
    if len(rows) < 2 or "near_duplicate" not in o.cues:
        return out
    index = PDQIndex()
    index.add(np.arange(len(rows), dtype=np.int64), rows)
    code = np.zeros(0, dtype=np.int64)
    dist = np.zeros(0, dtype=np.int64)
    step = 4_096
    for s in range(0, len(rows), step):
        qi, j, d = index.search_pairs(rows[s : s + step], min(o.series_pdq, 47))
        a, b = owner[s + qi], owner[j]
        keep = a != b
        # the smallest distance of each group pair so far (one entry per pair held)
        code, dist = _closest(np.r_[code, _code(a[keep], b[keep])], np.r_[dist, d[keep]])
        del qi, j, d, a, b, keep
    for k, d in zip(code.tolist(), dist.tolist(), strict=True):
        out[k] = (SCORES["near_duplicate"], f"PDQ distance {d} bits")
    return out


def _closest(code: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct codes (sorted), each with its smallest distance."""
    order = np.lexsort((dist, code))
    code, dist = code[order], dist[order]
    first = np.r_[True, code[1:] != code[:-1]] if len(code) else np.zeros(0, dtype=bool)
    return code[first], dist[first]


def _scene_links(
    engine: Engine,
    case_id: int,
    cues: _Cues,
    reps: np.ndarray,
    o: SeriesOptions,
    reader: Callable[[int], bytes] | None,
    res: SeriesResult,
) -> dict[int, tuple[float, str]]:
    """Same-scene links between the groups at positions ``reps`` (pair code -> cue)."""
    out: dict[int, tuple[float, str]] = {}
    if o.scene == "none" or "scene" not in o.cues or reader is None or len(reps) < 2:
        return out
    from . import scene

    media = cues.reps[reps]
    has = media >= 0
    order = np.argsort(media[has], kind="stable")
    rep_media, rep_pos = media[has][order], reps[has][order]

    def pos_of(m: int) -> int:
        return int(rep_pos[np.searchsorted(rep_media, m)])

    def put(ma: int, mb: int, detail: str) -> None:
        out[int(_code(np.array([pos_of(ma)]), np.array([pos_of(mb)]))[0])] = (
            SCORES["scene"],
            detail,
        )

    if o.scene in ("orb", "orb-all"):
        for ma, mb, inl, how in _orb_scene(engine, case_id, rep_media, o, reader, res):
            put(ma, mb, f"{inl} ORB inliers ({how})")
        return out
    if o.scene in ("clip", "clip+orb"):
        from ..provenance.clip_encoder import available

        if not available():
            return out
        mids = rep_media.tolist()
        emb = _stored_embeddings(engine, mids)
        missing = [m for m in mids if m not in emb]
        fresh = scene.clip_embeddings(
            ((m, (lambda m=m: reader(m))) for m in missing), threads=o.threads
        )
        _store_embeddings(engine, fresh)
        emb.update(fresh)
        if o.scene == "clip":
            for ma, mb, cos in scene.clip_pairs(emb, o.clip_threshold):
                put(ma, mb, f"CLIP cosine {cos:.3f}")
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
                put(ma, mb, f"{inl} ORB inliers (CLIP cosine {cos:.3f})")
    return out


def _image_refs(engine: Engine, case_id: int, media_ids: np.ndarray) -> Iterator[Any]:
    """Where the workers read each media: its copies, by path (500 media a query)."""
    from .scene import ImageRef

    for s in range(0, len(media_ids), 500):
        part = [int(m) for m in media_ids[s : s + 500]]
        copies: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
        with engine.connect() as c:
            for mid, src, member in c.execute(
                select(
                    triage_files.c.media_id, triage_files.c.source_path, triage_files.c.member_path
                )
                .where(triage_files.c.case_id == case_id, triage_files.c.media_id.in_(part))
                .order_by(triage_files.c.path)
            ):
                copies[mid].append((src, member))
        yield from (ImageRef(m, tuple(copies.get(m, ()))) for m in part)


def _orb_scene(
    engine: Engine,
    case_id: int,
    media_ids: np.ndarray,
    o: SeriesOptions,
    reader: Callable[[int], bytes],
    res: SeriesResult,
) -> list[tuple[int, int, int, str]]:
    """``(media_a, media_b, inliers, how)`` for the verified same-scene pairs
    (``media_ids`` sorted: slot ``i`` of the feature file is ``media_ids[i]``).

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
            if pool is not None:
                refs = _image_refs(engine, case_id, media_ids)
                in_flight: set[Any] = set()
                while True:
                    for ref in refs:
                        in_flight.add(pool.submit(scene.features_job, ref, DEFAULT_SOURCE_LIMITS))
                        if len(in_flight) >= 8 * o.threads:
                            break
                    if not in_flight:
                        break
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    for fut in done:  # slot = the media's place in media_ids (sorted)
                        mid, rec = fut.result()
                        ff.put_packed(int(np.searchsorted(media_ids, mid)), rec)
            else:
                for m in media_ids.tolist():
                    ff.append(_orb(scene, reader, m))
            slot_mid = media_ids
            t1 = time.perf_counter()
            if o.scene == "orb":
                pa, pb, pv = scene.vote_arrays(ff.keys, top_k=o.vote_top_k, min_votes=o.vote_min)
                order = np.lexsort((pb, pa, -pv))  # strongest candidates first
                pa, pb, pv = pa[order], pb[order], pv[order]
            else:
                live = np.array([s for s in range(ff.n) if ff.has_features(s)], dtype=np.int64)
                total = len(live) * (len(live) - 1) // 2
                ia, ib = (
                    np.triu_indices(len(live), k=1)
                    if total <= o.orb_max_pairs
                    else (_first_pairs(len(live), o.orb_max_pairs))
                )
                pa, pb = live[ia], live[ib]
                pv = np.zeros(len(pa), dtype=np.int64)
                res.scene_truncated = total > len(pa)
            t2 = time.perf_counter()
            res.scene_candidates = len(pa)
            # in rounds; a pair whose groups earlier scene links already joined is
            # skipped (it could not change the series)
            joined = UnionFind(ff.n)
            found: list[tuple[int, int, int]] = []
            step = 128
            for r0 in range(0, len(pa), step * 8):
                rnd = zip(
                    pa[r0 : r0 + step * 8].tolist(), pb[r0 : r0 + step * 8].tolist(), strict=True
                )
                todo = [(a, b) for a, b in rnd if joined.find(a) != joined.find(b)]
                res.scene_skipped += min(len(pa), r0 + step * 8) - r0 - len(todo)
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
            if o.scene == "orb" and found:
                by = np.lexsort((pb, pa))
                codes = (pa[by] << 32) | pb[by]
                want = (np.array([a for a, _b, _i in found], dtype=np.int64) << 32) | np.array(
                    [b for _a, b, _i in found], dtype=np.int64
                )
                votes = pv[by][np.searchsorted(codes, want)].tolist()
            else:
                votes = [0] * len(found)
            for (a, b, inl), v in zip(found, votes, strict=True):
                how = f"{v} key votes" if o.scene == "orb" else "all pairs"
                out.append((int(slot_mid[a]), int(slot_mid[b]), inl, how))
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


def _first_pairs(n: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` pairs ``(i, j)``, ``i < j < n``, in row order."""
    ia: list[int] = []
    ib: list[int] = []
    for i in range(n):
        take = min(n - i - 1, limit - len(ia))
        if take <= 0:
            break
        ia.extend([i] * take)
        ib.extend(range(i + 1, i + 1 + take))
    return np.array(ia, dtype=np.int64), np.array(ib, dtype=np.int64)


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

    Memory: the groups' cues are arrays by group position (:class:`_Cues`), candidate
    pairs and links are int64 pair codes; a pair's cue sets are built only while it
    is scored, and the link rows are written in batches.
    """
    o = options or SeriesOptions()
    res = SeriesResult()
    previous = previous or {}
    kept_ids = _imported_group_ids(engine, case_id, previous)
    cues = _Cues(engine, case_id, also=kept_ids)
    extra: dict[int, dict[str, tuple[float, str]]] = defaultdict(dict)
    kept = _imported_links(cues, kept_ids, previous, extra)
    for k, v in _pdq_links(cues, o).items():
        extra[k]["near_duplicate"] = v
    if face_pairs and "face" in o.cues:
        _face_extra(engine, cues, face_pairs, extra)
    cand = np.union1d(_candidates(cues, o), np.fromiter(extra, dtype=np.int64, count=len(extra)))
    uf = UnionFind(cues.n)
    linked = array("q")
    last: list[Any] = [None, None]  # (position, _G) of the last pair's first group

    def cues_of(code: int) -> list[tuple[str, float, str]]:
        a, b = code >> 32, code & 0xFFFFFFFF
        if last[0] != a:
            last[0], last[1] = a, cues.group(a)
        return _pair_cues(last[1], cues.group(b), o, extra.get(code, {}))

    def consider(codes: Iterable[int]) -> None:
        for code in codes:
            found = cues_of(code)
            if found and sum(s for _c, s, _d in found) >= o.link_at - 1e-9:
                a, b = code >> 32, code & 0xFFFFFFFF
                uf.union(a, b)
                linked.append(code)
                for cue, _s, _d in found:
                    if cue == "face":
                        for p in (a, b):
                            gid = int(cues.ids[p])
                            res.face_links[gid] = res.face_links.get(gid, 0) + 1

    for s in range(0, len(cand), CHUNK):  # Python ints for one chunk at a time
        consider(cand[s : s + CHUNK].tolist())
    del cand
    # The scene cue last, and only between what the other cues left apart: one group per
    # linked component (the one with the smallest key) and every unlinked group. It is
    # the costly cue (an image embedding per group), so this is where it pays.
    by_key = np.argsort(cues.key_rank)
    roots = uf.roots() if cues.n else np.zeros(0, dtype=np.int64)
    _u, first = np.unique(roots[by_key], return_index=True)
    reps = np.sort(by_key[first])
    scene_pairs = _scene_links(engine, case_id, cues, reps, o, reader, res)
    res.scene_groups = len(reps) if o.scene != "none" and "scene" in o.cues else 0
    for k, v in scene_pairs.items():
        extra[k]["scene"] = v
    scene_only = np.fromiter(sorted(scene_pairs), dtype=np.int64, count=len(scene_pairs))
    scene_only = scene_only[~np.isin(scene_only, np.array(linked, dtype=np.int64))]
    for s in range(0, len(scene_only), CHUNK):
        consider(scene_only[s : s + CHUNK].tolist())
    del scene_only
    _write(engine, case_id, cues, uf, linked, kept, previous, cues_of, res)
    return res


def _face_extra(
    engine: Engine,
    cues: _Cues,
    face_pairs: list[tuple[int, int, float, str]],
    extra: dict[int, dict[str, tuple[float, str]]],
) -> None:
    mids = sorted({m for a, b, _s, _d in face_pairs for m in (a, b)})
    g_of: dict[int, int] = {}
    with engine.connect() as c:
        for s in range(0, len(mids), 500):
            g_of.update(
                c.execute(
                    select(triage_media.c.id, triage_media.c.group_id).where(
                        triage_media.c.id.in_(mids[s : s + 500])
                    )
                ).all()
            )
    for ma, mb, _score, detail in face_pairs:
        ga, gb = g_of.get(ma), g_of.get(mb)
        a = cues.pos(ga) if ga is not None else None
        b = cues.pos(gb) if gb is not None else None
        if a is not None and b is not None and a != b:
            code = int(_code(np.array([a]), np.array([b]))[0])
            extra[code]["face"] = (SCORES["face"], detail[:200])


def _write(
    engine: Engine,
    case_id: int,
    cues: _Cues,
    uf: UnionFind,
    linked: array[int],
    kept: np.ndarray,
    previous: dict[str, Any],
    cues_of: Callable[[int], list[tuple[str, float, str]]],
    res: SeriesResult,
) -> None:
    """Series rows, groups' series ids and link rows (each link's cues recomputed, in
    the order the links were made), in one transaction."""
    roots = uf.roots() if cues.n else np.zeros(0, dtype=np.int64)
    size = np.bincount(roots, minlength=cues.n) if cues.n else np.zeros(0, dtype=np.int64)
    in_series = size[roots] > 1
    if len(kept):
        in_series[np.isin(roots, roots[kept])] = True
    members = np.flatnonzero(in_series)
    members = members[np.lexsort((cues.key_rank[members], roots[members]))]
    bounds = np.flatnonzero(np.r_[True, roots[members][1:] != roots[members][:-1]])
    comps = np.split(members, bounds[1:]) if len(members) else []
    # series in the order of their first group by id
    comps.sort(key=lambda m: int(m.min()))
    keys = _stable_keys(comps, cues, previous)
    names = previous.get("names", {})
    sid_of = np.full(cues.n, -1, dtype=np.int64)
    with engine.begin() as c:
        c.execute(delete(triage_links).where(triage_links.c.case_id == case_id))
        c.execute(delete(triage_series).where(triage_series.c.case_id == case_id))
        c.execute(
            update(triage_groups).where(triage_groups.c.case_id == case_id).values(series_id=None)
        )
        set_sid = (
            update(triage_groups)
            .where(triage_groups.c.id == bindparam("gid"))
            .values(series_id=bindparam("sid"))
        )
        for comp, key in zip(comps, keys, strict=True):
            name, imported = names.get(key, (None, False))
            sid = c.execute(
                insert(triage_series).values(
                    case_id=case_id,
                    key=key,
                    name=name,
                    imported=imported,
                    n_groups=len(comp),
                    priority=0.0,
                    cues="{}",
                )
            ).inserted_primary_key[0]
            sid_of[comp] = sid
            c.execute(set_sid, [{"gid": int(g), "sid": sid} for g in cues.ids[comp]])
        per_series: dict[int, Counter[str]] = defaultdict(Counter)
        rows: list[dict[str, Any]] = []
        for code in linked.tolist():
            a, b = code >> 32, code & 0xFFFFFFFF
            sid = int(sid_of[a])
            for cue, score, detail in cues_of(code):
                if sid >= 0:
                    per_series[sid][cue] += 1
                res.per_cue[cue] = res.per_cue.get(cue, 0) + 1
                rows.append(
                    {
                        "case_id": case_id,
                        "series_id": sid if sid >= 0 else None,
                        "group_a": int(cues.ids[a]),
                        "group_b": int(cues.ids[b]),
                        "cue": cue,
                        "score": score,
                        "detail": detail,
                    }
                )
            if len(rows) >= 2000:
                c.execute(insert(triage_links), rows)
                rows = []
        if rows:
            c.execute(insert(triage_links), rows)
        if per_series:
            c.execute(
                update(triage_series)
                .where(triage_series.c.id == bindparam("sid"))
                .values(cues=bindparam("b_cues")),
                [
                    {"sid": s, "b_cues": json.dumps(dict(sorted(cnt.items())))}
                    for s, cnt in per_series.items()
                ],
            )
    res.series = len(comps)
    res.grouped = int(sum(len(m) for m in comps))
    res.links = len(linked)


def _imported_group_ids(engine: Engine, case_id: int, previous: dict[str, Any]) -> list[int]:
    """Ids of the groups (known ones too) in series named by imported data."""
    imported: dict[str, list[str]] = previous.get("imported") or {}
    wanted = sorted({k for ks in imported.values() for k in ks})
    out: list[int] = []
    with engine.connect() as c:
        for s in range(0, len(wanted), 500):
            out.extend(
                c.execute(
                    select(triage_groups.c.id).where(
                        triage_groups.c.case_id == case_id,
                        triage_groups.c.key.in_(wanted[s : s + 500]),
                    )
                ).scalars()
            )
    return sorted(out)


def _imported_links(
    cues: _Cues,
    kept_ids: list[int],
    previous: dict[str, Any],
    extra: dict[int, dict[str, tuple[float, str]]],
) -> np.ndarray:
    """Series named by imported data keep their groups (known ones too) across reruns:
    consecutive groups of each are linked; returns the positions of those groups."""
    imported: dict[str, list[str]] = previous.get("imported") or {}
    if not kept_ids or not imported:
        return np.zeros(0, dtype=np.int64)
    kept = np.searchsorted(cues.ids, kept_ids)
    by_key = {cues.key(int(p)): int(p) for p in kept}
    names = previous.get("names", {})
    for skey, gkeys in imported.items():
        present = sorted(by_key[k] for k in gkeys if k in by_key)
        name = names.get(skey, (None, True))[0] or skey
        for a, b in zip(present, present[1:], strict=False):
            extra[(a << 32) | b]["imported"] = (
                SCORES["imported"],
                f"series {name!r} from imported data",
            )
    return kept


def _stable_keys(comps: list[np.ndarray], cues: _Cues, previous: dict[str, Any]) -> list[str]:
    old = previous.get("members", {})
    overlaps: list[tuple[int, str, int]] = []  # (-overlap, old key, component)
    if old:
        for ci, members in enumerate(comps):
            cnt = Counter(old[k] for k in (cues.key(int(g)) for g in members) if k in old)
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
            seed = cues.key(int(members[0]))
            k = "S-" + hashlib.sha256(seed.encode()).hexdigest()[:12]
            while k in used:
                k = "S-" + hashlib.sha256(k.encode()).hexdigest()[:12]
        used.add(k)
        out.append(k)
    return out
