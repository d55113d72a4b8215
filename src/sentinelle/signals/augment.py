"""Central-crop views for augmented enrollment.

Why: PDQ is robust to resizing, compression and colour changes but not to
cropping: cutting 10% off each side moves every DCT basis against the image
content, and the hash drifts past the match threshold (31 bits) for a good
share of photos. Instead of searching for crops at query time (which would
multiply query hashes), a bank can *enroll* a few extra hashes per known item:
the hashes of central crops of the original. A cropped copy then lands near one
of the enrolled crop hashes.

Naming: ``crop<N>`` keeps the central ``(100 - N)%`` of the width and of the
height (``N/2`` percent is removed from each side), e.g. ``crop10`` of a
1000x800 image is its central 900x720 pixels. The same convention is used by
the robustness benchmark's ``crop<N>`` transforms.

The default set (5, 10, 15) was chosen with ``bench/bench_robustness.py``: it
lets crops up to 15% match (20% crops mostly do not; see ``bench/RESULTS.md``,
"Robustness") while adding only 3 enrolled hashes per item.
"""

from __future__ import annotations

from PIL import Image

DEFAULT_CROP_PERCENTS: tuple[int, ...] = (5, 10, 15)
"""Percent of each dimension removed (split evenly between the two sides)."""

MIN_CROP_SIDE = 16
"""Crops smaller than this (pixels) on either side are skipped: too small to hash."""


def crop_box(size: tuple[int, int], percent: float) -> tuple[int, int, int, int]:
    """The ``(left, top, right, bottom)`` box keeping the central ``100 - percent``%."""
    if not 0 <= percent < 100:
        raise ValueError(f"crop percent must be in [0, 100), got {percent}")
    w, h = size
    dx = round(w * percent / 200)
    dy = round(h * percent / 200)
    return dx, dy, w - dx, h - dy


def central_crops(
    img: Image.Image, percents: tuple[int, ...] = DEFAULT_CROP_PERCENTS
) -> list[tuple[str, Image.Image]]:
    """``[("crop5", view), ("crop10", view), ...]`` central crops of ``img``.

    Views keep ``img``'s mode; a crop that would be smaller than
    ``MIN_CROP_SIDE`` pixels on a side, or that removes nothing, is skipped
    (so tiny images return fewer views, possibly none).
    """
    out: list[tuple[str, Image.Image]] = []
    for p in percents:
        left, top, right, bottom = crop_box(img.size, p)
        if right - left < MIN_CROP_SIDE or bottom - top < MIN_CROP_SIDE:
            continue
        if (left, top, right, bottom) == (0, 0, *img.size):
            continue
        out.append((f"crop{p}", img.crop((left, top, right, bottom))))
    return out
