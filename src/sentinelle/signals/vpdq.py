"""vPDQ: video hashing as one PDQ hash per frame, and the video-level match rule.

The reference (facebook/ThreatExchange ``vpdq``, C++) decodes every frame at the
video's frame rate, converts it to RGB24 at native size, and records
``(frame index, quality, PDQ hash, timestamp)``. Two videos are compared on their
*unique* frame hashes with quality >= 50: a query frame "matches" when some target
frame is within Hamming distance 31, and the videos match when at least
``threshold_pct`` percent of the query's unique frames match *and* at least that
percent of the target's unique frames match.

Two hashing modes:

* ``exact=True``: frames as the reference sees them (native-size RGB24).
* ``exact=False`` (fast): swscale shrinks each frame to at most
  :data:`FAST_MAX_SIDE` pixels and returns luma only; the resulting hashes stay
  well inside the match distance of the reference frames (see ``tests/test_vpdq.py``
  and ``bench/bench_video.py``) at a fraction of the cost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pdqhash

from ..media.limits import DEFAULT_LIMITS, Limits
from ..media.video import VideoInfo, iter_frames
from .hashcodec import pdq_bits_to_hex, pdq_hexes_to_array
from .types import VideoFrame, VPDQSignal

FAST_MAX_SIDE = 360
"""Longer side of frames on the fast path. PDQ keeps only 64x64 of detail, but its
Jarosz box filter (window ~ side/128, two passes) must still see enough pixels to
avoid aliasing: 128-256 px loses too many bits on striped/synthetic clips, 360
stays within a few bits of the reference (measured on the conformance clips)."""
FAST_INTERPOLATION = "BICUBIC"

MATCH_DISTANCE = 31
MIN_QUALITY = 50
THRESHOLD_PCT = 80.0

# popcount of every byte value, for vectorised Hamming distances.
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _grey_to_rgb_view(grey: np.ndarray) -> np.ndarray:
    """``(h, w)`` luma -> ``(h, w, 3)`` without copying (pdqhash reads 3 channels;
    with R = G = B the luma it computes equals the input)."""
    return np.broadcast_to(grey[:, :, np.newaxis], (*grey.shape, 3))


def vpdq_hash(
    source: str | Path | bytes,
    fmt: str = "video",
    limits: Limits = DEFAULT_LIMITS,
    *,
    exact: bool = True,
    first_frames: int | None = None,
    info_out: list[VideoInfo] | None = None,
) -> VPDQSignal:
    """Hash every frame of a video. Raises :class:`~sentinelle.errors.MediaError`.

    ``first_frames``: stop (without error) after that many frames, for previews
    and tests; limits still apply to the frames decoded.
    """
    frames: list[VideoFrame] = []
    if exact:
        it = iter_frames(source, fmt, limits, pix_fmt="rgb24", threads=True, info_out=info_out)
    else:
        it = iter_frames(
            source,
            fmt,
            limits,
            pix_fmt="gray",
            max_side=FAST_MAX_SIDE,
            interpolation=FAST_INTERPOLATION,
            threads=True,
            info_out=info_out,
        )
    for fr in it:
        px = fr.pixels if exact else _grey_to_rgb_view(fr.pixels)
        bits, quality = pdqhash.compute(px)
        frames.append(VideoFrame(fr.index, pdq_bits_to_hex(bits), int(quality), fr.timestamp))
        if first_frames is not None and len(frames) >= first_frames:
            it.close()
            break
    return VPDQSignal(tuple(frames))


def _match_fraction(a: np.ndarray, b: np.ndarray, distance: int) -> float:
    """Share (0-100) of rows of ``a`` within ``distance`` of some row of ``b``."""
    if len(a) == 0:
        return 0.0
    if len(b) == 0:
        return 0.0
    hits = 0
    # Chunk the (len(a) x len(b) x 32) XOR so memory stays bounded for long videos.
    step = max(1, 2_000_000 // (32 * len(b)))
    for i in range(0, len(a), step):
        x = np.bitwise_xor(a[i : i + step, None, :], b[None, :, :])
        d = _POPCOUNT[x].sum(axis=2, dtype=np.uint16)
        hits += int((d.min(axis=1) <= distance).sum())
    return 100.0 * hits / len(a)


def match_videos(
    query: VPDQSignal,
    target: VPDQSignal,
    distance: int = MATCH_DISTANCE,
    min_quality: int = MIN_QUALITY,
    threshold_pct: float = THRESHOLD_PCT,
) -> tuple[float, float, bool]:
    """Video-level vPDQ comparison, as the reference ``vpdq`` library does it.

    Returns ``(query_match_pct, target_match_pct, is_match)``: the percentage of
    the query's unique frame hashes (quality >= ``min_quality``) within
    ``distance`` of any of the target's, the same the other way round, and whether
    both are >= ``threshold_pct``. A video with no usable frames matches nothing.
    """
    q = pdq_hexes_to_array([f.hash for f in query.unique_frames(min_quality)])
    t = pdq_hexes_to_array([f.hash for f in target.unique_frames(min_quality)])
    q_pct = _match_fraction(q, t, distance)
    t_pct = _match_fraction(t, q, distance)
    return q_pct, t_pct, bool(q_pct >= threshold_pct and t_pct >= threshold_pct and len(q))


def read_reference_file(path: str | Path) -> VPDQSignal:
    """Parse a reference vPDQ output file (``frame,quality,pdq_hex,timestamp`` per line)."""
    frames = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        idx, quality, hex_hash, ts = line.split(",")[:4]
        frames.append(VideoFrame(int(idx), hex_hash.strip().lower(), int(quality), float(ts)))
    return VPDQSignal(tuple(frames))
