"""Output image guard and attempt log benchmark (issue 4, items 5-6). Run by hand::

    .venv/bin/python bench/bench_guard_image.py [--photos 200] [--pg URL] [--no-append]

Measures, single-threaded (onnxruntime and OpenCV pinned to one thread):

* ``ImageGuard.check`` latency p50/p99 on benign photos (BSDS500 + Kodak24 from
  ``../shared``) with ``SENTINELLE_GUARD_FACES=always`` (faces on every image, the
  behaviour before G3) and ``when_needed`` (the default: faces only on explicit images),
  run interleaved on the same images, and whether both modes decide alike; split into
  decode, explicit-content detector and face detector;
* our direct-ONNX explicit-content detector beside the reference ``NudeDetector.detect``
  (same model): latency, and whether the detections are identical on the same pixels;
* benign false positives: photos the guard did not ``allow``, photos with any
  explicit-label score >= the threshold;
* attempt log: blocks logged per second (SQLite, PostgreSQL), and 8 threads blocking the
  same account at once (exact count, one flag).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import append_results  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000.0, p))


def bench_image(n: int) -> tuple[str, dict]:
    import cv2

    cv2.setNumThreads(1)
    from nudenet import NudeDetector

    from sentinelle.guard.config import GuardConfig
    from sentinelle.guard.faces import face_detector
    from sentinelle.guard.image import ImageGuard, decode_rgb
    from sentinelle.guard.nsfw import nsfw_detector

    cfg = GuardConfig(onnx_threads=1, faces="always")
    guard = ImageGuard(cfg)
    lazy = ImageGuard(GuardConfig(onnx_threads=1, faces="when_needed"))
    photos = sorted((SHARED / "corpora/photos/bsds500").glob("*.jpg"))[:n]
    photos += sorted((SHARED / "corpora/photos/kodak24").glob("*.png"))
    datas = [p.read_bytes() for p in photos]
    guard.check(datas[0])  # load models
    det = nsfw_detector("auto", 1)
    faces = face_detector()
    ref = NudeDetector()
    ref.onnx_session.set_providers(["CPUExecutionProvider"])
    t_check, t_lazy, t_decode, t_nsfw, t_faces, t_ref = [], [], [], [], [], []
    not_allowed, explicit_hits, identical, face_imgs, same = 0, 0, 0, 0, 0
    for p, data in zip(photos, datas, strict=True):
        t = time.perf_counter()
        r = guard.check(data)
        t_check.append(time.perf_counter() - t)
        t = time.perf_counter()
        r_lazy = lazy.check(data)
        t_lazy.append(time.perf_counter() - t)
        same += (r_lazy.decision, r_lazy.reasons) == (r.decision, r.reasons)
        not_allowed += r.decision != "allow"
        explicit_hits += r.explicit >= cfg.nsfw_threshold
        face_imgs += bool(r.faces)
        t = time.perf_counter()
        rgb, _ = decode_rgb(data)
        t_decode.append(time.perf_counter() - t)
        t = time.perf_counter()
        ours = det.detect(rgb)
        t_nsfw.append(time.perf_counter() - t)
        t = time.perf_counter()
        faces.detect(rgb)
        t_faces.append(time.perf_counter() - t)
        bgr = cv2.imread(str(p))
        t = time.perf_counter()
        theirs = ref.detect(bgr)
        t_ref.append(time.perf_counter() - t)
        a = sorted((d.label, round(d.score, 4)) for d in det.detect(bgr[:, :, ::-1].copy()))
        b = sorted((d["class"], round(d["score"], 4)) for d in theirs)
        identical += a == b
        del ours
    n_img = len(photos)
    rows = [
        ("`ImageGuard.check`, faces `always` (decode + nsfw + faces)", t_check),
        ("`ImageGuard.check`, faces `when_needed` (default)", t_lazy),
        ("  decode (Pillow, media limits)", t_decode),
        ("  explicit-content detector (ours: direct ONNX)", t_nsfw),
        ("  explicit-content detector (baseline: `NudeDetector.detect`)", t_ref),
        ("  face detector (Haar alt2)", t_faces),
    ]
    md = [
        f"Benign photos: {n_img} (BSDS500 {n_img - 24} + Kodak24), single thread.",
        "",
        "| step | p50 ms | p99 ms | mean ms |",
        "|---|---|---|---|",
    ]
    for name, xs in rows:
        md.append(
            f"| {name} | {_pct(xs, 50):.1f} | {_pct(xs, 99):.1f} "
            f"| {statistics.fmean(xs) * 1000:.1f} |"
        )
    md += [
        "",
        f"- Detections identical to NudeNet's own `detect` on the same pixels: "
        f"{identical}/{n_img} images.",
        f"- Benign photos not `allow`ed: {not_allowed}/{n_img}; with an explicit-label "
        f"score >= {cfg.nsfw_threshold}: {explicit_hits}/{n_img}.",
        f"- Photos with at least one detected face: {face_imgs}/{n_img}.",
        f"- Same decision and reasons with faces `when_needed` as with `always`: {same}/{n_img}.",
    ]
    return "\n".join(md), {"p50": _pct(t_check, 50), "p99": _pct(t_check, 99)}


def bench_attempts(url: str, label: str, n: int = 300) -> str:
    from sentinelle.guard.attempts import AttemptLog
    from sentinelle.guard.config import GuardConfig
    from sentinelle.store.db import open_engine

    eng = open_engine(url)
    log = AttemptLog(eng, GuardConfig(escalate_blocks=5))
    cats = {"minor_sexual": 1.0}
    t = time.perf_counter()
    for i in range(n):
        log.record_block(
            source="prompt", account_id=f"acct-{i % 50}", categories=cats, policy_id="bench"
        )
    single = n / (time.perf_counter() - t)
    threads, per = 8, 25
    barrier = threading.Barrier(threads)
    results: list = []

    def worker() -> None:
        barrier.wait()
        for _ in range(per):
            results.append(
                log.record_block(
                    source="prompt", account_id="hot", categories=cats, policy_id="bench"
                )
            )

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    hot = threads * per / (time.perf_counter() - t)
    exact = sorted(r.blocks_in_window for r in results) == list(range(1, threads * per + 1))
    flags = sum(r.flagged for r in results)
    eng.dispose()
    return f"| {label} | {single:.0f} | {hot:.0f} | {'yes' if exact else 'NO'} | {flags} |"


def main() -> None:
    import logging

    logging.getLogger("sentinelle.guard").setLevel(logging.ERROR)  # one line per flag
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument("--image-only", action="store_true", help="skip the attempt-log part")
    args = ap.parse_args()

    img_md, _ = bench_image(args.photos)
    print(img_md)
    if args.image_only:
        return
    rows = []
    with tempfile.TemporaryDirectory() as d:
        rows.append(bench_attempts(f"sqlite:///{d}/bench.db", "SQLite (file, WAL)"))
    if args.pg and args.pg != "off":
        import uuid

        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.pg)
        with admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = make_url(args.pg).update_query_dict({"options": f"-csearch_path={schema}"})
            rows.append(bench_attempts(url.render_as_string(hide_password=False), "PostgreSQL"))
        finally:
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    att_md = "\n".join(
        [
            "Attempt log (each block: account upsert + insert + window count; review "
            "signal per block with an account, into the review tables):",
            "",
            "| database | blocks/s, 1 thread, 50 accounts | blocks/s, 8 threads, one "
            "account | exact count under contention | flags of that account (threshold 5) |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    print(att_md)
    if not args.no_append:
        append_results(
            "Issue 4: output image guard and attempt log (bench_guard_image.py)",
            img_md + "\n\n" + att_md,
        )


if __name__ == "__main__":
    main()
