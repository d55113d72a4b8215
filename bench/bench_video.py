"""vPDQ throughput: seconds of 720p video hashed per second, ours vs per-frame PDQ.

Run by hand:  .venv/bin/python bench/bench_video.py [--seconds 10] [--rounds 5] [--no-append]

Renders a benign 720p30 H.264 clip with PyAV (moving gradients, shapes and a
frame counter) into ``bench/out/``, then hashes every frame with:

* ours fast   -- ``vpdq_hash(p, exact=False)``: swscale shrinks to <= 360 px luma
* ours exact  -- ``vpdq_hash(p, exact=True)``: native RGB24, reference-exact
* reference-style per-frame PDQ -- PyAV decode (single thread) + ``to_ndarray("rgb24")``
  + ``pdqhash.compute`` on every full-size frame (what a straightforward port does)

and reports video-seconds per wall-second, plus the conformance of both paths on
``shared/conformance/vpdq`` (share of reference frames, quality >= 50, within
distance 31; video-level match).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pdqhash
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import OUT_DIR, append_results  # noqa: E402
from sentinelle.signals.hashcodec import hamming_hex  # noqa: E402
from sentinelle.signals.vpdq import (  # noqa: E402
    FAST_MAX_SIDE,
    match_videos,
    read_reference_file,
    vpdq_hash,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
W, H, FPS = 1280, 720, 30


def render_clip(path: Path, seconds: int) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=Fraction(FPS))
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"crf": "23", "preset": "veryfast"}
        for i in range(seconds * FPS):
            t = i / FPS
            r = 128 + 100 * np.sin(x / W * 6 + t)
            g = 128 + 100 * np.cos(y / H * 4 - t * 0.7)
            b = 128 + 60 * np.sin((x + y) / (W + H) * 10 + t * 1.3)
            arr = np.clip(np.stack([r, g, b], axis=2), 0, 255).astype(np.uint8)
            im = Image.fromarray(arr)
            d = ImageDraw.Draw(im)
            cx = int(W / 2 + W / 3 * np.sin(t * 0.9))
            cy = int(H / 2 + H / 3 * np.cos(t * 1.1))
            d.ellipse((cx - 90, cy - 90, cx + 90, cy + 90), fill=(250, 220, 40))
            d.rectangle((int(t * 40) % W, 500, int(t * 40) % W + 200, 620), fill=(20, 40, 200))
            d.text((40, 40), f"frame {i}", fill=(255, 255, 255))
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.asarray(im), format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


def reference_per_frame(path: Path) -> int:
    n = 0
    with av.open(str(path)) as c:
        for fr in c.decode(video=0):
            pdqhash.compute(fr.to_ndarray(format="rgb24"))
            n += 1
    return n


def timed(fn) -> tuple[float, int]:
    t = time.perf_counter()
    n = fn()
    return time.perf_counter() - t, n


def conformance(exact: bool) -> tuple[float, float, int, int]:
    """(overall % frames within 31, worst clip %, clips matched, clips)."""
    ok = total = matched = 0
    worst = 100.0
    clips = sorted((SHARED / "conformance/vpdq/videos").glob("*.mp4"))
    for p in clips:
        ref = read_reference_file(SHARED / "conformance/vpdq/expected" / f"{p.stem}.txt")
        ours = vpdq_hash(p, exact=exact)
        by = {f.frame: f for f in ours.frames}
        frames = [f for f in ref.frames if f.quality >= 50]
        k = sum(f.frame in by and hamming_hex(by[f.frame].hash, f.hash) <= 31 for f in frames)
        ok, total = ok + k, total + len(frames)
        worst = min(worst, 100.0 * k / max(1, len(frames)))
        matched += match_videos(ours, ref)[2]
    return 100.0 * ok / total, worst, matched, len(clips)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=10, help="length of the rendered clip")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()
    clip = render_clip(OUT_DIR / f"video-720p-{args.seconds}s.mp4", args.seconds)
    dur = args.seconds

    runs = {
        "ours fast (vpdq_hash exact=False)": lambda: len(vpdq_hash(clip, exact=False).frames),
        "ours exact (vpdq_hash exact=True)": lambda: len(vpdq_hash(clip, exact=True).frames),
        "per-frame reference PDQ (PyAV rgb24 + pdqhash)": lambda: reference_per_frame(clip),
    }
    # Interleaved: every round hashes the clip once with each method (rotating which
    # goes first), so a burst of load on the shared machine hits all methods alike;
    # speed-ups are computed per round against the reference and reported as
    # median (min).
    names = list(runs)
    ref_name = names[-1]
    secs: dict[str, list[float]] = {k: [] for k in names}
    frames: dict[str, int] = {}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            dt, n = timed(runs[name])
            secs[name].append(dt)
            frames[name] = n
            print(f"round {r + 1}: {name:<48} {n} frames in {dt:6.1f} s", flush=True)
    rows = []
    for name in names:
        dt = statistics.median(secs[name])
        n = frames[name]
        up = [b / a for a, b in zip(secs[name], secs[ref_name], strict=True)]
        rows.append(
            f"| {name} | {n} | {dt:.1f} | {dur / dt:.2f} | {n / dt:.0f} "
            f"| {statistics.median(up):.1f}x ({min(up):.1f}x) |"
        )
    table = (
        f"720p30 H.264 rendered clip, {dur} s ({dur * FPS} frames); fast path max side "
        f"{FAST_MAX_SIDE} px. **Interleaved**: {args.rounds} rounds, each hashing the clip "
        "once with every method (rotating the order); wall s = median over rounds; "
        "speed-up vs the reference computed per round, median (min).\n\n"
        "| method | frames | wall s | video-s per s | frames/s | speed-up median (min) |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    conf_rows = []
    for label, exact in (("fast", False), ("exact", True)):
        pct, worst, m, n = conformance(exact)
        conf_rows.append(f"| {label} | {pct:.2f}% | {worst:.1f}% | {m}/{n} |")
        print(f"conformance {label}: {pct:.2f}% overall, worst clip {worst:.1f}%, {m}/{n} matched")
    conf = (
        "Conformance on shared/conformance/vpdq (10 clips; target >= 95% of reference frames "
        "with quality >= 50 within distance 31 on every clip, and a video-level match):\n\n"
        "| path | frames within 31 | worst clip | videos matched |\n|---|---|---|---|\n"
        + "\n".join(conf_rows)
    )
    body = f"{table}\n\n{conf}"
    print(body)
    if not args.no_append:
        append_results("vPDQ video hashing (bench_video.py)", body)


if __name__ == "__main__":
    main()
