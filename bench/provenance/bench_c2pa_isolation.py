"""Per-file cost of reading C2PA in a killable worker process against reading in-process.

Usage: ``python bench/provenance/bench_c2pa_isolation.py [--reps 5]``

Reads every shared c2pa-rs fixture plus a few large benign JPEGs (12 MP renders written
here) both ways, alternating per file so the machine's noise hits both sides alike, and
prints the median per-file time of each and the difference (the isolation overhead: one
request/reply over pipes, the bytes copied once). Worker start-up is excluded (the pool is
warmed first; it is paid once per process).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _machine import append_results  # noqa: E402
from sentinelle.provenance.c2pa_isolation import ReaderFailed, ReaderPool  # noqa: E402
from sentinelle.provenance.c2pa_reader import read_store_json  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "provenance" / "c2pa-rs-fixtures"


def _big_jpeg(seed: int, size: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _once(fn, data: bytes) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    with contextlib.suppress(Exception):  # unreadable fixtures cost time too
        fn(data)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    files = {p.name: p.read_bytes() for p in sorted(FIXTURES.iterdir()) if p.stat().st_size}
    for i, size in enumerate([(4000, 3000), (2304, 1728)]):
        files[f"render_{size[0]}x{size[1]}.jpg"] = _big_jpeg(i, size)
    pool = ReaderPool(size=1, timeout_s=60)
    with contextlib.suppress(ReaderFailed):
        pool.read(b"warm-up")

    def isolated(data: bytes) -> None:
        pool.read(data)

    inproc_all: list[float] = []
    iso_all: list[float] = []
    big: list[tuple[str, float, float, int]] = []
    for name, data in files.items():
        a, b = [], []
        for _ in range(args.reps):
            a.append(_once(read_store_json, data))
            b.append(_once(isolated, data))
        ma, mb = statistics.median(a), statistics.median(b)
        inproc_all.append(ma)
        iso_all.append(mb)
        if len(data) > 1_000_000 or name.startswith("render_"):
            big.append((name, ma, mb, len(data)))
    pool.close()
    ta, tb = statistics.median(inproc_all), statistics.median(iso_all)
    sa, sb = sum(inproc_all), sum(iso_all)
    lines = [
        f"{len(files)} files (the shared c2pa-rs fixtures + 2 rendered JPEGs), {args.reps} "
        "reps each alternating in-process / worker, median per file; worker start-up "
        "excluded (paid once per process).",
        "",
        "| | in-process | isolated worker | overhead |",
        "|---|---|---|---|",
        f"| median file | {ta * 1e3:.2f} ms | {tb * 1e3:.2f} ms | {(tb - ta) * 1e3:+.2f} ms |",
        f"| all files, summed | {sa * 1e3:.1f} ms | {sb * 1e3:.1f} ms "
        f"| {(sb - sa) * 1e3:+.1f} ms ({(sb - sa) / len(files) * 1e3:+.2f} ms/file) |",
    ]
    for name, ma, mb, n in big:
        lines.append(
            f"| {name} ({n / 1e6:.1f} MB) | {ma * 1e3:.2f} ms | {mb * 1e3:.2f} ms "
            f"| {(mb - ma) * 1e3:+.2f} ms |"
        )
    body = "\n".join(lines)
    print(body)
    if args.write:
        append_results("C2PA reader isolation overhead", body)


if __name__ == "__main__":
    main()
