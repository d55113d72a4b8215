"""Triage faces: detection time per image, face-link quality on derived copies, clustering time.

Run by hand:  .venv/bin/python bench/bench_triage_faces.py [--cnn] [--limit N] [--json PATH]

Benign data only: the photos of ``shared/corpora/photos`` (BSDS500, Kodak) in which the
default detector finds a face. Each such photo becomes a small "series": the photo and
three derived copies (a 7 % crop on every side, a 0.7x downscale, a JPEG re-encode at
quality 45). Ground truth at the file level:

* pairs of files of one series that both show a face should be linked (recall);
* pairs of files of two different source photos should not be linked. Distinct Corel
  photos *may* show the same person (a photo shoot); such links are counted as false
  here, so the false-link figure is an upper bound, and they are listed for a look.

True cross-photo identity (the same person photographed twice) cannot be measured here:
there is no labelled identity set among the shared corpora.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sentinelle.triage import faces as F  # noqa: E402
from sentinelle.triage.face_clusters import FaceRef, cluster_faces  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "corpora" / "photos"


def variants(path: Path) -> dict[str, bytes]:
    im = Image.open(path).convert("RGB")
    w, h = im.size
    out: dict[str, bytes] = {}

    def enc(x: Image.Image, q: int = 92) -> bytes:
        b = io.BytesIO()
        x.save(b, "JPEG", quality=q)
        return b.getvalue()

    out["orig"] = path.read_bytes()
    dx, dy = round(w * 0.07), round(h * 0.07)
    out["crop"] = enc(im.crop((dx, dy, w - dx, h - dy)))
    out["small"] = enc(im.resize((round(w * 0.7), round(h * 0.7)), Image.Resampling.LANCZOS))
    out["q45"] = enc(im, 45)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cnn", action="store_true", help="also time the CNN detector")
    ap.add_argument("--limit", type=int, default=0, help="at most N source photos")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    reason = F.unavailable_reason()
    if reason:
        print(f"faces extra not usable: {reason}")
        return 1
    srcs = sorted(PHOTOS.glob("bsds500/*.jpg")) + sorted(PHOTOS.glob("kodak24/*.png"))
    F.detect_faces(np.zeros((64, 64, 3), np.uint8))  # load models outside the timings

    # 1. detection over the whole corpus (most photos show no face)
    t_all: list[float] = []
    with_faces: list[Path] = []
    n_faces = 0
    for p in srcs:
        data = p.read_bytes()
        t = time.perf_counter()
        fs = F.detect_faces(data)
        t_all.append(time.perf_counter() - t)
        if any(f.embedding is not None for f in fs):
            with_faces.append(p)
        n_faces += len(fs)
    if args.limit:
        with_faces = with_faces[: args.limit]

    # 2. series of derived copies
    files: dict[str, list[F.Face]] = {}
    series_of: dict[str, str] = {}
    t_face: list[float] = []
    for p in with_faces:
        for name, data in variants(p).items():
            fid = f"{p.stem}/{name}"
            t = time.perf_counter()
            fs = F.detect_faces(data)
            dt = time.perf_counter() - t
            if fs:
                t_face.append(dt / len(fs))
            files[fid] = fs
            series_of[fid] = p.stem
    refs = [
        FaceRef(fid, i, f.embedding, series_id=series_of[fid], apparent_age=f.apparent_age)
        for fid, fs in files.items()
        for i, f in enumerate(fs)
        if f.embedding is not None
    ]
    has_face = sorted({r.file_id for r in refs})
    same = {(a, b) for a, b in combinations(has_face, 2) if series_of[a] == series_of[b]}
    n_diff = len(has_face) * (len(has_face) - 1) // 2 - len(same)
    quality = {}
    young = {
        r.key for r in refs if r.apparent_age is not None and r.apparent_age < F.AGE_RAISE_BELOW
    }
    for thr in (0.4, 0.45, 0.5, 0.55, 0.6):
        t = time.perf_counter()
        res = cluster_faces(refs, thr)
        t_cluster = time.perf_counter() - t
        linked = {(fl.file_a, fl.file_b) for fl in res.file_links}
        tp = len(linked & same)
        false = sorted(linked - same)
        false_faces = [lk for lk in res.links if series_of[lk.a.file_id] != series_of[lk.b.file_id]]
        false_young = sum(1 for lk in false_faces if lk.a.key in young or lk.b.key in young)
        quality[thr] = {
            "recall_same_series_file_pairs": round(tp / max(1, len(same)), 4),
            "false_links_between_photos": len(false),
            "pairs_between_photos": n_diff,
            "false_link_rate": round(len(false) / max(1, n_diff), 6),
            "series_links_between_photos": len(res.series_links),
            "false_face_links": len(false_faces),
            "false_face_links_with_a_young_looking_face": false_young,
            "clusters": len(res.clusters),
            "cluster_seconds": round(t_cluster, 4),
            "false_examples": [f"{a} ~ {b}" for a, b in false[:6]],
        }

    # 3. clustering cost on 10,000 synthetic embeddings (random unit-ish 128-d vectors)
    rng = np.random.default_rng(0)
    syn = rng.normal(size=(10_000, 128)).astype(np.float32)
    syn /= np.linalg.norm(syn, axis=1, keepdims=True) * 1.0
    t = time.perf_counter()
    cluster_faces([FaceRef(str(i), 0, syn[i]) for i in range(len(syn))], 0.5)
    t_syn = time.perf_counter() - t

    cnn = None
    if args.cnn:
        t_c, n_c = [], 0
        for p in srcs[:60]:
            data = p.read_bytes()
            t = time.perf_counter()
            n_c += len(F.detect_faces(data, detector="cnn", with_age=False))
            t_c.append(time.perf_counter() - t)
        t_h, n_h = [], 0
        for p in srcs[:60]:
            data = p.read_bytes()
            t = time.perf_counter()
            n_h += len(F.detect_faces(data, with_age=False))
            t_h.append(time.perf_counter() - t)
        cnn = {
            "images": len(t_c),
            "cnn_ms_median": round(1000 * statistics.median(t_c), 1),
            "cnn_faces": n_c,
            "hog_ms_median": round(1000 * statistics.median(t_h), 1),
            "hog_faces": n_h,
        }

    report = {
        "corpus_images": len(srcs),
        "corpus_faces": n_faces,
        "photos_with_embedded_face": len(with_faces),
        "detect_ms_median": round(1000 * statistics.median(t_all), 1),
        "detect_ms_p90": round(1000 * float(np.percentile(t_all, 90)), 1),
        "derived_files": len(files),
        "faces_embedded": len(refs),
        "faces_young_looking": len(young),
        "ms_per_face_in_files_with_faces_median": round(1000 * statistics.median(t_face), 1),
        "same_series_file_pairs": len(same),
        "quality": quality,
        "cluster_10k_synthetic_s": round(t_syn, 2),
        "cnn_vs_hog": cnn,
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
