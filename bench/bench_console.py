"""Review console (issue 6): preview rendering, video key-frame strips, page latency.

Run by hand (not in tests): ``.venv/bin/python bench/bench_console.py [--quick]``.

1. **Blurred previews** of the 24 Kodak photos (``../shared``): Sentinelle's
   ``render_preview`` (scale to 640 px, grayscale, blur on a reduced copy) against
   the straightforward baseline (decode, full-size Gaussian blur of the same
   radius, then scale), per image.
2. **Video key-frame strips** for the 10 benign vPDQ clips: decoding only the key
   frames (``skip_frame = NONKEY``) against decoding every frame (the baseline:
   ``iter_frames`` over the whole clip), both keeping 6 frames.
3. **Console latency** over HTTP (TestClient, SQLite, one reviewer): the case
   page, a blurred preview (decrypt + decode + blur), a reveal (audit + exposure
   counter + render), p50 / p95 over repeated requests.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageFilter, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _machine import append_results  # noqa: E402
from sentinelle.console.blur import DEFAULT_MAX_SIDE, blur_radius, render_preview  # noqa: E402
from sentinelle.console.keyframes import _all_frames, keyframes  # noqa: E402
from sentinelle.media.limits import Limits  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _ms(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return statistics.median(xs) * 1000, p95 * 1000


def baseline_preview(data: bytes, level: int = 24) -> bytes:
    """Full-size Gaussian blur of the same radius, then scale down (the obvious way)."""
    im = Image.open(io.BytesIO(data)).convert("L")
    scale = DEFAULT_MAX_SIDE / max(im.size)
    radius = blur_radius(level, im.size) / min(1.0, scale)
    im = im.filter(ImageFilter.GaussianBlur(radius))
    im.thumbnail((DEFAULT_MAX_SIDE, DEFAULT_MAX_SIDE))
    buf = io.BytesIO()
    ImageOps.grayscale(im).save(buf, "JPEG", quality=82)
    return buf.getvalue()


def bench_previews(rounds: int) -> str:
    photos = sorted((SHARED / "corpora" / "photos" / "kodak24").glob("*.png"))
    datas = [p.read_bytes() for p in photos]
    # also 12 MP versions: phones upload far larger images than the Kodak crops
    big = []
    for d in datas[:6]:
        im = Image.open(io.BytesIO(d)).convert("RGB").resize((4000, 3000))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        big.append(buf.getvalue())
    rows = []
    for label, set_ in (("Kodak 500x500 PNG (24)", datas), ("12 MP JPEG (6)", big)):
        ours, base = [], []
        for _ in range(rounds):
            for d in set_:
                t = time.perf_counter()
                render_preview(d)
                ours.append(time.perf_counter() - t)
                t = time.perf_counter()
                baseline_preview(d)
                base.append(time.perf_counter() - t)
        o50, o95 = _ms(ours)
        b50, b95 = _ms(base)
        rows.append(
            f"| {label} | {o50:.1f} / {o95:.1f} ms | {b50:.1f} / {b95:.1f} ms | {b50 / o50:.1f}x |"
        )
        print(rows[-1])
    return (
        "### Blurred grayscale previews (default blur level 24), p50 / p95 per image\n\n"
        "| images | Sentinelle `render_preview` | baseline: full-size Gaussian, then scale | "
        "speed-up (p50) |\n|---|---|---|---|\n" + "\n".join(rows)
    )


def bench_strips(rounds: int) -> str:
    limits = Limits(decode_timeout_s=60)
    clips = sorted((SHARED / "conformance" / "vpdq" / "videos").glob("*.mp4"))
    rows = []
    tot_o = tot_b = 0.0
    for clip in clips:
        data = clip.read_bytes()
        ours, base = [], []
        for _ in range(rounds):
            t = time.perf_counter()
            n_ours = len(keyframes(data, "mp4", count=6, max_side=213, limits=limits))
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            n_base = len(_all_frames(data, "mp4", count=6, max_side=213, limits=limits))
            base.append(time.perf_counter() - t)
        o, b = statistics.median(ours), statistics.median(base)
        tot_o += o
        tot_b += b
        rows.append(
            f"| {clip.name} | {len(data) / 1e6:.1f} MB | {o * 1000:.0f} ms ({n_ours}) | "
            f"{b * 1000:.0f} ms ({n_base}) | {b / o:.1f}x |"
        )
        print(rows[-1])
    speed = tot_b / tot_o
    rows.append(f"| **all 10** | | **{tot_o:.2f} s** | **{tot_b:.2f} s** | **{speed:.1f}x** |")
    return (
        "### Video key-frame strips (6 frames, 213 px), median per clip\n\n"
        "Clips with fewer than 6 key frames (doorknob, pattern, padded) fall back to "
        "decoding every frame, so both columns are the same work there.\n\n"
        "| clip | size | Sentinelle: key frames only (frames) | baseline: decode every "
        "frame (frames) | speed-up |\n|---|---|---|---|---|\n" + "\n".join(rows)
    )


def bench_http(n: int) -> str:
    from console_support import PASSWORD, build_console, login_csrf, page_csrf
    from fastapi.testclient import TestClient

    os.environ["SENTINELLE_MASTER_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
    os.environ["SENTINELLE_REPORTER_EMAIL"] = "reports@example.org"
    os.environ["SENTINELLE_CYBERTIP_XSD"] = str(SHARED / "schemas" / "cyber_tipline.xsd")
    tmp = Path(tempfile.mkdtemp())
    world = build_console(f"sqlite:///{tmp / 'bench.db'}", tmp)
    from sentinelle.review import config

    config.set_config(world.engine, "daily_exposure_cap", 0, actor="cli")
    timings: dict[str, list[float]] = {"case page": [], "preview (photo)": [], "reveal (photo)": []}
    timings["preview (video strip)"] = []
    with TestClient(world.app, base_url="http://127.0.0.1") as c:
        r = c.get("/console/login")
        c.post(
            "/console/login",
            data={"username": "rita", "password": PASSWORD, "csrf_token": login_csrf(r.text)},
        )
        csrf = page_csrf(c.get("/console/settings").text)
        hdr = {"X-CSRF-Token": csrf, "HX-Request": "true"}
        for _ in range(n):
            for name, call in (
                ("case page", lambda: c.get(f"/console/cases/{world.case_id}")),
                ("preview (photo)", lambda: c.get(f"/console/items/{world.match_item}/preview")),
                (
                    "preview (video strip)",
                    lambda: c.get(f"/console/items/{world.video_item}/preview"),
                ),
                (
                    "reveal (photo)",
                    lambda: c.post(f"/console/items/{world.match_item}/reveal", headers=hdr),
                ),
            ):
                t = time.perf_counter()
                r = call()
                timings[name].append(time.perf_counter() - t)
                assert r.status_code == 200, (name, r.status_code)
        assert re.search(r"revealed", r.text)
    rows = []
    for name, xs in timings.items():
        p50, p95 = _ms(xs)
        rows.append(f"| {name} | {p50:.1f} ms | {p95:.1f} ms |")
        print(rows[-1])
    return (
        f"### Console requests over HTTP (TestClient, SQLite, {n} rounds)\n\n"
        "Each preview and reveal decrypts the evidence (AES-256-GCM), writes an audit "
        "row (`evidence.read`; a reveal also `media.reveal` and the exposure counter) "
        "and renders in memory.\n\n"
        "| request | p50 | p95 |\n|---|---|---|\n" + "\n".join(rows)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer rounds")
    ap.add_argument("--no-append", action="store_true", help="print only")
    a = ap.parse_args()
    rounds = 1 if a.quick else 3
    body = "\n\n".join(
        [bench_previews(rounds), bench_strips(rounds), bench_http(10 if a.quick else 40)]
    )
    if not a.no_append:
        append_results("Issue 6: review console (bench_console.py)", body)


if __name__ == "__main__":
    main()
