"""Clustering face embeddings within one case: leads between files and series.

Two faces are **linked** when the Euclidean distance between their 128-d dlib
embeddings is below ``threshold``; clusters are the connected components of those
links (single linkage). dlib's own rule is "same person below 0.6" (99.38 % on LFW
pairs, adults); the default here is stricter, :data:`DEFAULT_THRESHOLD` = 0.4, because a
case compares every face with every other and, measured on BSDS500 portraits
(``bench/bench_triage_faces.py``, docs/TRIAGE_FACES.md), distinct photos link far too
often at 0.5-0.6 (0.67 % and 5 % of file pairs), mostly through young-looking faces,
which dlib's embedding packs closer together. At 0.4 copies of a photo still link (97 %
of pairs) and distinct photos almost never do (0.009 %). A link is a **lead** for an
investigator to look at, never an identification (face clustering accuracy around 0.87
on LFW falls to about 0.27 with millions of distractors), and nothing is ever compared
with faces outside the case.

Rules that keep the leads honest:

* Two faces of one file are never linked to each other (two faces in one photo are two
  people). A cluster that still gathers two faces of one file through a chain of links
  is marked ``conflict`` (the chain is suspect); its links stay, each with its own
  distance.
* Every link reports its own distance; a cluster reports its ``diameter`` (the largest
  distance between two of its faces), so chaining (A~B, B~C, A far from C) is visible.
* The result is deterministic: faces are ordered by (file, face index), cluster keys are
  derived from their first member.

Cost: all pairs are compared in blocks (memory O(n x block)); 10,000 faces take about
10^8 distance evaluations (seconds in numpy). Far larger cases need an approximate
index, which this module does not provide.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .union_find import UnionFind

#: dlib's published same-person distance.
DLIB_THRESHOLD = 0.6
#: Stricter default for a case (see module docstring).
DEFAULT_THRESHOLD = 0.4
EMBEDDING_DIM = 128
_BLOCK = 1024

LEAD_NOTE = "a lead to review, not an identification"


@dataclass(frozen=True)
class FaceRef:
    """One embedded face of a case: ``file_id`` (any stable id: media id, path, key),
    its index in that file, the embedding and, when known, the file's series."""

    file_id: str
    face_index: int
    embedding: np.ndarray = field(compare=False, repr=False)
    series_id: str | None = None
    apparent_age: float | None = None

    @property
    def key(self) -> str:
        return f"{self.file_id}#{self.face_index}"


@dataclass(frozen=True)
class FaceLink:
    """Two faces in two files closer than the threshold."""

    a: FaceRef
    b: FaceRef
    distance: float
    threshold: float

    @property
    def reason(self) -> str:
        return (
            f"same face? {self.a.key} ~ {self.b.key}: embedding distance "
            f"{self.distance:.3f} < {self.threshold:.2f} -- {LEAD_NOTE}"
        )


@dataclass(frozen=True)
class FaceCluster:
    key: str  # stable: "P-" + 12 hex of the first member's key
    members: tuple[FaceRef, ...]
    diameter: float
    conflict: bool  # two faces of one file in the cluster (a chain through others)

    @property
    def files(self) -> list[str]:
        return sorted({m.file_id for m in self.members})

    @property
    def series(self) -> list[str]:
        return sorted({m.series_id for m in self.members if m.series_id is not None})


@dataclass(frozen=True)
class FileLink:
    """The closest face pair between two files."""

    file_a: str
    file_b: str
    distance: float
    n_face_pairs: int
    reason: str


@dataclass(frozen=True)
class SeriesLink:
    """Two series that share a face (closest pair first)."""

    series_a: str
    series_b: str
    distance: float
    files: tuple[tuple[str, str], ...]  # (file in a, file in b) per linking face pair
    reason: str


@dataclass(frozen=True)
class FaceClusters:
    threshold: float
    clusters: tuple[FaceCluster, ...]  # only clusters of >= 2 faces in >= 2 files
    links: tuple[FaceLink, ...]
    file_links: tuple[FileLink, ...]
    series_links: tuple[SeriesLink, ...]
    n_faces: int


def _check(refs: Sequence[FaceRef]) -> np.ndarray:
    if not refs:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    emb = np.stack([np.asarray(r.embedding, dtype=np.float32).reshape(-1) for r in refs])
    if emb.shape[1] != EMBEDDING_DIM:
        raise ValueError(f"face embeddings must have {EMBEDDING_DIM} values, got {emb.shape[1]}")
    if not np.isfinite(emb).all():
        raise ValueError("face embeddings must be finite")
    return emb


def pairs_below(emb: np.ndarray, threshold: float) -> Iterable[tuple[int, int, float]]:
    """``(i, j, distance)`` for every ``i < j`` closer than ``threshold`` (blockwise)."""
    n = len(emb)
    e = emb.astype(np.float64)
    sq = (e * e).sum(axis=1)
    t2 = threshold * threshold
    for start in range(0, n, _BLOCK):
        blk = e[start : start + _BLOCK]
        d2 = sq[start : start + _BLOCK, None] + sq[None, :] - 2.0 * blk @ e.T
        rows, cols = np.nonzero(d2 < t2)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if c <= i:
                continue
            # exact distance for the report (the expansion above can be off by ~1e-7)
            d = float(np.linalg.norm(e[i] - e[c]))
            if d < threshold:
                yield i, c, d


def cluster_faces(refs: Iterable[FaceRef], threshold: float = DEFAULT_THRESHOLD) -> FaceClusters:
    """Cluster the faces of one case; links between files and between series, with reasons.

    ``threshold`` must be in (0, 0.6]: above dlib's own 0.6 links are not meaningful.
    """
    if not 0.0 < threshold <= DLIB_THRESHOLD:
        raise ValueError(f"threshold must be in (0, {DLIB_THRESHOLD}], got {threshold}")
    items = sorted(refs, key=lambda r: (r.file_id, r.face_index))
    keys = [r.key for r in items]
    if len(set(keys)) != len(keys):
        raise ValueError("two faces share one (file_id, face_index)")
    emb = _check(items)
    uf = UnionFind(len(items))
    links: list[FaceLink] = []
    for i, j, d in pairs_below(emb, threshold):
        if items[i].file_id == items[j].file_id:
            continue  # two faces of one photo are two people
        links.append(FaceLink(items[i], items[j], d, threshold))
        uf.union(i, j)

    comps: dict[int, list[int]] = defaultdict(list)
    for i in range(len(items)):
        comps[uf.find(i)].append(i)
    clusters = []
    for idx in comps.values():
        if len(idx) < 2:
            continue
        members = tuple(items[i] for i in idx)
        sub = emb[idx].astype(np.float64)
        diam = float(np.sqrt(max(0.0, ((sub[:, None, :] - sub[None, :, :]) ** 2).sum(-1).max())))
        files = [m.file_id for m in members]
        key = "P-" + hashlib.sha256(members[0].key.encode()).hexdigest()[:12]
        clusters.append(FaceCluster(key, members, diam, len(set(files)) < len(files)))
    clusters.sort(key=lambda c: (-len(c.members), c.members[0].key))

    best: dict[tuple[str, str], list[FaceLink]] = defaultdict(list)
    for lk in links:
        best[(lk.a.file_id, lk.b.file_id)].append(lk)
    file_links = []
    for (fa, fb), lks in sorted(best.items()):
        top = min(lks, key=lambda x: x.distance)
        file_links.append(FileLink(fa, fb, top.distance, len(lks), top.reason + _count(len(lks))))

    by_series: dict[tuple[str, str], list[FaceLink]] = defaultdict(list)
    for lk in links:
        sa, sb = lk.a.series_id, lk.b.series_id
        if sa is None or sb is None or sa == sb:
            continue
        if sb < sa:
            lk = FaceLink(lk.b, lk.a, lk.distance, lk.threshold)
            sa, sb = sb, sa
        by_series[(sa, sb)].append(lk)
    series_links = []
    for (sa, sb), lks in sorted(by_series.items()):
        lks.sort(key=lambda x: (x.distance, x.a.key, x.b.key))
        pairs = tuple(dict.fromkeys((x.a.file_id, x.b.file_id) for x in lks))
        reason = (
            f"same face in series {sa} and {sb}: {lks[0].a.key} ~ {lks[0].b.key} "
            f"(distance {lks[0].distance:.3f} < {threshold:.2f}"
            f"{'' if len(lks) == 1 else f', {len(lks)} face pairs'}) -- {LEAD_NOTE}"
        )
        series_links.append(SeriesLink(sa, sb, lks[0].distance, pairs, reason))
    return FaceClusters(
        threshold,
        tuple(clusters),
        tuple(links),
        tuple(file_links),
        tuple(series_links),
        len(items),
    )


def _count(n: int) -> str:
    return "" if n == 1 else f" ({n} face pairs between these files)"
