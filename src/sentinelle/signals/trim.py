"""Trimming of uniform borders, letterbox/pillarbox bars and screenshot padding.

Why: PDQ hashes the *whole* frame. A copy of an image that gained a 10% solid
border, black bars or the flat canvas of a screenshot has a different 64x64
luminance layout, so its PDQ hash lands far past the match threshold (plain PDQ finds
almost none of them: ``bench/RESULTS.md``, "Robustness").
Cutting the padding away and hashing what is left recovers the match. The
trimmed hash is only an *extra query variant*: the plain hash is always kept,
so trimming too little costs recall and trimming too much costs (a little)
false-match risk, never the plain match.

How (:func:`trim_uniform_borders`):

1. Work on a small copy: the image is reduced by an integer factor (box filter)
   so its longer side is <= ``WORK_MAX_SIDE`` pixels. Box averaging also
   flattens JPEG noise in flat areas. Coordinates are mapped back at the end.
2. For each side, walk inward one line (row or column) at a time while the line
   is *uniform along its whole length*: every pixel is close to the line's
   median colour (mean, 98th percentile and maximum of the per-pixel deviation
   all below thresholds tuned on JPEG q30 copies), or its deviation is spread
   thinly (mean a little higher but no pixel far off: the JPEG ringing of a
   saturated blue/red border, whose chroma error smears over 16-pixel blocks
   and used to stop the walk well before the content, so that the step test
   never saw the content edge). Consecutive uniform lines
   form *segments* of one colour; a new colour starts a new segment, so nested
   borders (a thin line, then a thick pad; a title bar, then a canvas) are
   removed in one walk, up to ``MAX_SEGMENTS`` colours per side.
3. Guards against cutting into real content (a flat sky, a white wall):

   - a side may lose at most ``MAX_SIDE_FRACTION`` of the image; a uniform run
     that reaches that cap is *not* a border (it is a flat image region) and
     the side is left alone;
   - a border ends on a *step*: among the first content lines after the band,
     a real content edge has many pixels far from the band colour. A sky that
     fades into a tree line does not, and is left alone;
   - at least ``MIN_KEEP_FRACTION`` of each dimension must remain.

4. The four sides are walked repeatedly inside the shrinking box until nothing
   changes, because a title bar spanning the full width makes the left/right
   columns non-uniform until the top rows have been removed.

The function returns ``None`` when no side lost at least
``MIN_TRIM_FRACTION`` of its dimension: a 1-2 pixel frame does not change PDQ
enough to be worth an extra hash.
"""

from __future__ import annotations

import math
import struct

import numpy as np
from PIL import Image

from ..errors import MediaError

WORK_MAX_SIDE = 1024
"""Longer side of the working copy (pixels); larger images are box-reduced."""

MAX_SIDE_FRACTION = 0.45
"""A side may lose at most this fraction of the image's dimension."""

MIN_KEEP_FRACTION = 0.2
"""At least this fraction of the width and of the height is always kept."""

MIN_TRIM_FRACTION = 0.02
"""Trims smaller than this on every side are not worth reporting (returns None)."""

MAX_SEGMENTS = 4
"""At most this many nested borders (colours separated by a sharp jump) per side."""

TRANSITION_LINES = 4
"""After a jump, the line colour may keep changing for this many lines (the edge
between two nested borders is blurred by JPEG chroma subsampling and resizing)."""

# Uniformity of one line (0..255 scale, deviation = max over channels of
# |pixel - line median|). Tuned so that JPEG q30 copies of flat bars pass and
# natural skies/walls (noise, vignetting, gradients) mostly fail.
LINE_MEAN_DEV = 3.0
LINE_Q98_DEV = 12.0
LINE_MAX_DEV = 40.0
LINE_Q = 0.98

RINGING_MEAN_DEV = 6.0
RINGING_MAX_DEV = 16.0
"""A line is also uniform when its deviation is spread thinly: mean up to
``RINGING_MEAN_DEV`` but no pixel beyond ``RINGING_MAX_DEV``. That is JPEG
ringing in a saturated border (blue, red: chroma is coded at half resolution and
its error spreads over a 16-pixel block), which the mean test above rejects. Real
content entering a flat area (a branch into a dark background) has a few pixels
far off, and still ends the run. Only for lines whose colour is saturated
(max - min channel >= ``RINGING_MIN_SATURATION``): on grey or pastel lines the
looser test let smooth rendered content pass as border (lossless PNG copies in
``sentinelle demo`` were cut into)."""
RINGING_MIN_SATURATION = 60.0

SEGMENT_COLOUR_TOL = 6.0
"""A line whose median colour differs from its segment's first line by more than
this ends the segment (0..255 scale, max over channels). 5 was too tight: the
first line after a jump carries chroma blur from the previous colour, so a flat
(240, 240, 240) screenshot canvas under a title bar drifted by 6 in blue and the
canvas was taken for a gradient and kept..."""
SEGMENT_JUMP = 10.0
"""...and starts a new one only if it also jumps by at least this much from the
previous line; otherwise the run is a gradient and the band stops there."""

STEP_DEV = 24.0
"""A content pixel differs from the border colour by more than this..."""
STEP_MIN_FRACTION = 0.2
"""...and at least this fraction of a line beyond the band must do so (a step edge)."""
STEP_LOOKAHEAD = 10
STEP_TEXTURE = 2.5 * LINE_MEAN_DEV
"""...or one of those lines must be clearly textured (mean deviation from its
median at least this): dark content next to a black bar is not far in colour."""
"""How many lines beyond the band are examined for the step edge."""

EDGE_SEARCH_LINES = 16
"""Lines past the uniform run searched for the exact content edge (a 16-pixel
JPEG chroma block of ringing)."""
EDGE_BACK_LINES = 2
"""Lines before the run's end re-examined by the edge refinement."""
EDGE_MIN_CONTRAST = 7.0
"""A line whose mean deviation from the border colour reaches this is content."""

_SIDES = ("top", "bottom", "left", "right")


def trim_uniform_borders(img: Image.Image) -> Image.Image | None:
    """Return ``img`` with uniform borders / bars / padding cropped away, or ``None``.

    ``None`` means nothing significant was trimmed (no side lost at least
    ``MIN_TRIM_FRACTION`` of its dimension). The crop is taken from ``img``
    itself, so the mode is preserved. Any Pillow mode is accepted; alpha is
    ignored (as PDQ ignores it). Raises :class:`MediaError` (``corrupt_media``)
    only if the pixel data cannot be read.
    """
    box = trim_box(img)
    if box is None:
        return None
    return img.crop(box)


def trim_box(
    img: Image.Image, work_long_side: int | None = None
) -> tuple[int, int, int, int] | None:
    """The ``(left, top, right, bottom)`` box :func:`trim_uniform_borders` keeps, or None.

    ``work_long_side``: walk on a working copy of exactly this longer side (a box
    resize) instead of the integer reduction to at most ``WORK_MAX_SIDE``. The fast
    scan path passes the exact path's working size when it trims a reduced decode, so
    both walk the same pixels: the walk's thresholds are in working pixels, and on
    other sizes it can stop at other lines.
    """
    width, height = img.size
    if width < 8 or height < 8:
        return None
    if work_long_side and work_long_side < max(width, height):
        factor: float = max(width, height) / work_long_side
        size = (max(1, round(width / factor)), max(1, round(height / factor)))
        arr = _work_array(img, 1, size)
    else:
        factor = max(1, math.ceil(max(width, height) / WORK_MAX_SIDE))
        if factor == 1 and not _any_outer_line_uniform(img):
            return None  # what the walk below finds too, without the float copy
        arr = _work_array(img, factor)
    h, w = arr.shape[:2]

    x0, y0, x1, y1 = 0, 0, w, h
    caps = {
        "top": int(MAX_SIDE_FRACTION * h),
        "bottom": int(MAX_SIDE_FRACTION * h),
        "left": int(MAX_SIDE_FRACTION * w),
        "right": int(MAX_SIDE_FRACTION * w),
    }
    for _ in range(2 * len(_SIDES)):
        changed = False
        for side in _SIDES:
            # Lines already removed on this side count against its cap.
            used = {"top": y0, "bottom": h - y1, "left": x0, "right": w - x1}[side]
            n = _side_band(arr, (x0, y0, x1, y1), side, caps[side] - used)
            if n <= 0:
                continue
            changed = True
            if side == "top":
                y0 += n
            elif side == "bottom":
                y1 -= n
            elif side == "left":
                x0 += n
            else:
                x1 -= n
        if not changed:
            break

    # Map back to full resolution (work pixel i covers full pixels [i*f, (i+1)*f)).
    left = min(round(x0 * factor), width)
    top = min(round(y0 * factor), height)
    right = min(round(x1 * factor), width)
    bottom = min(round(y1 * factor), height)
    if right - left < MIN_KEEP_FRACTION * width or bottom - top < MIN_KEEP_FRACTION * height:
        return None
    significant = (
        max(left, width - right) >= MIN_TRIM_FRACTION * width
        or max(top, height - bottom) >= MIN_TRIM_FRACTION * height
    )
    if not significant:
        return None
    return left, top, right, bottom


def _any_outer_line_uniform(img: Image.Image) -> bool:
    """Whether any of the four outermost lines of ``img`` passes the uniformity test.

    When none does, every side's walk stops at its first line and nothing is trimmed:
    most photos, decided here from four 1-pixel strips instead of a float copy of the
    whole image (the scan path's reduced decode is its own working copy)."""
    if img.mode not in ("L", "RGB"):
        return True  # let the full walk convert and decide
    w, h = img.size
    boxes = ((0, 0, w, 1), (0, h - 1, w, h), (0, 0, 1, h), (w - 1, 0, w, h))
    for box in boxes:
        try:
            strip = img.crop(box)
            line = np.asarray(strip, dtype=np.float32).reshape(1, max(strip.size), -1)
        except (OSError, ValueError, SyntaxError, struct.error):
            return True  # unreadable pixels: the full walk reports them
        if bool(_line_stats(line)[0][0]):
            return True
    return False


def _work_array(img: Image.Image, factor: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """Box-reduced float32 copy of shape (h, w, c), c = 1 (grey) or 3 (RGB).

    Reduced by the integer ``factor``, or box-resized to ``size`` when given."""
    try:
        im = img
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB")
        if size is not None:
            im = im.resize(size, Image.Resampling.BOX)
        elif factor > 1:
            im = im.reduce(factor)
        arr = np.asarray(im, dtype=np.float32)
    except (OSError, ValueError, SyntaxError) as exc:  # lazy decode of a damaged file
        raise MediaError(f"cannot read pixels for trimming: {exc}", "corrupt_media") from exc
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def _lines(arr: np.ndarray, box: tuple[int, int, int, int], side: str, n: int) -> np.ndarray:
    """The first ``n`` lines of ``box`` seen from ``side``, outermost first: (n, length, c)."""
    x0, y0, x1, y1 = box
    region = arr[y0:y1, x0:x1]
    if side == "top":
        return region[:n]
    if side == "bottom":
        return region[::-1][:n]
    if side == "left":
        return region[:, :n].transpose(1, 0, 2)
    return region[:, ::-1][:, :n].transpose(1, 0, 2)


def _line_stats(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per line: (uniform flag, median colour) for lines of shape (n, length, c)."""
    colours = np.median(lines, axis=1)  # (n, c)
    dev = np.abs(lines - colours[:, None, :]).max(axis=2)  # (n, length)
    mean = dev.mean(axis=1)
    peak = dev.max(axis=1)
    uniform = (
        (mean <= LINE_MEAN_DEV)
        & (peak <= LINE_MAX_DEV)
        & ((dev > LINE_Q98_DEV).mean(axis=1) <= 1.0 - LINE_Q)
    )
    if lines.shape[2] == 3:  # chroma ringing exists only around saturated colours
        saturated = (colours.max(axis=1) - colours.min(axis=1)) >= RINGING_MIN_SATURATION
        uniform |= saturated & (mean <= RINGING_MEAN_DEV) & (peak <= RINGING_MAX_DEV)
    return uniform, colours


def _side_band(arr: np.ndarray, box: tuple[int, int, int, int], side: str, cap: int) -> int:
    """How many border lines to remove on ``side`` of ``box`` (0 if none / not a border)."""
    if cap <= 0:
        return 0
    x0, y0, x1, y1 = box
    depth = (y1 - y0) if side in ("top", "bottom") else (x1 - x0)
    # Look at up to cap+1 lines (to detect a run that reaches the cap) plus the
    # lookahead lines used for the step test. Lines are examined in growing
    # chunks: most images fail on their very first line.
    n_max = min(depth, cap + 1 + max(STEP_LOOKAHEAD, EDGE_SEARCH_LINES))
    if n_max <= 1:
        return 0
    all_lines = _lines(arr, box, side, n_max)

    band = 0
    borders = 0  # segments that began with a jump (or at the edge): nested borders
    seg_colour: np.ndarray | None = None
    prev_colour: np.ndarray | None = None
    last_jump = -(10**9)
    seg_start = 0
    candidates: list[int] = []  # band ends just before a jump: always a step
    start, chunk = 0, 8
    done = False
    while start < n_max and not done:
        stop = min(n_max, start + chunk)
        uniform, colours = _line_stats(all_lines[start:stop])
        for k in range(stop - start):
            i = start + k
            if not uniform[k]:
                done = True
                break
            c = colours[k]
            if seg_colour is None or prev_colour is None:
                borders, seg_colour, last_jump, seg_start = 1, c, i, i
            elif float(np.abs(c - seg_colour).max()) > SEGMENT_COLOUR_TOL:
                # A new colour must start with a jump from the previous line (or
                # lie in the short blurred zone that follows one): a slow drift
                # (sky gradient, vignetting) is content, not a border.
                if float(np.abs(c - prev_colour).max()) >= SEGMENT_JUMP:
                    borders += 1
                    if borders > MAX_SEGMENTS:
                        done = True
                        break
                    candidates.append(i)
                    last_jump = i
                elif i - last_jump > TRANSITION_LINES:
                    done = True
                    break
                seg_colour, seg_start = c, i
            prev_colour = c
            band = i + 1
        start, chunk = stop, chunk * 2
    if band == 0 or seg_colour is None:
        return 0
    if band > cap:
        return 0  # uniform beyond the cap: a flat region of the image, not a border
    if _has_step(all_lines, band, seg_colour):
        return _refine_edge(all_lines, band, seg_colour, seg_start)
    # The run fades into the content (sky, wall): keep only the nested borders
    # that ended on a sharp colour jump, if any.
    return candidates[-1] if candidates else 0


def _refine_edge(lines: np.ndarray, band: int, colour: np.ndarray, seg_start: int) -> int:
    """Place the band end exactly on the content's first line.

    PDQ is very sensitive to leftover border: one or two lines of a flat canvas
    colour along a side can move a hash by 20 bits. The uniform run stops at the
    first line disturbed by JPEG ringing, which may still be mostly border, and
    may have swallowed a line or two of flat content close to the border colour.
    So, from ``EDGE_BACK_LINES`` before the run's end to ``EDGE_SEARCH_LINES``
    after it, the edge is the first line whose mean deviation from the border
    colour reaches ``EDGE_MIN_CONTRAST``. If no line does (dark content next to
    a black bar), the run's end is kept.
    """
    lo = max(seg_start, band - EDGE_BACK_LINES)  # never back into an outer border
    window = lines[lo : band + EDGE_SEARCH_LINES]
    if len(window) == 0:
        return band
    m = np.abs(window - colour[None, None, :]).max(axis=2).mean(axis=1)
    hits = np.flatnonzero(m >= EDGE_MIN_CONTRAST)
    if len(hits) == 0:
        return band
    return lo + int(hits[0])


def _has_step(lines: np.ndarray, band: int, colour: np.ndarray) -> bool:
    """Whether the content just beyond ``band`` lines clearly starts there.

    JPEG ringing and resampling blur make the last few border lines before the
    content non-uniform, so the step is searched ``STEP_LOOKAHEAD`` lines on.
    """
    after = lines[band : band + STEP_LOOKAHEAD]
    if len(after) == 0:
        return False
    far = np.abs(after - colour[None, None, :]).max(axis=2) > STEP_DEV
    if float(far.mean(axis=1).max()) >= STEP_MIN_FRACTION:
        return True  # content clearly differs from the border colour
    # Dark content next to a black bar: not far in colour, but textured.
    colours = np.median(after, axis=1)
    texture = np.abs(after - colours[:, None, :]).max(axis=2).mean(axis=1)
    return float(texture.max()) >= STEP_TEXTURE
