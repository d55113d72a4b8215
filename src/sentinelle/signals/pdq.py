"""PDQ perceptual hashes of still images (reference-exact and fast), plus dihedral hashes.

PDQ (Meta, 2019) turns an image into 256 bits: luma -> Jarosz box-filter
downsampling to 64x64 -> 2-D DCT -> the 16x16 low-frequency block -> one bit per
coefficient (above/below the median). Two hashes within Hamming distance 31 are
considered the same picture. ``quality`` (0-100) measures how much gradient
(detail) the image has; hashes with quality < 50 are unreliable.

We call the reference C++ implementation through the ``pdqhash`` package, so on
the same pixels we produce exactly the reference hash. What differs between our
two paths is only the *pixels*:

* **exact** (``sentinelle hash``, enrollment): the full-resolution image, converted
  as python-threatexchange does (:func:`sentinelle.media.image.to_pdq_rgb`).
* **fast** (``scan``): the image decoded at reduced size (JPEG DCT scaling, or a box
  reduce) to about :data:`FAST_MIN_SIDE` pixels on the shorter side. PDQ throws
  away everything above 64x64 anyway, so this changes few bits (see
  ``bench/bench_hashing.py``) at a fraction of the cost.

Dihedral hashes: the reference computes the hashes of all 8 rotations/mirrors of
the image from one DCT (:data:`DIHEDRAL_NAMES` gives their order), so a rotated or
mirrored copy can be matched against a bank that holds only the original.
"""

from __future__ import annotations

import numpy as np
import pdqhash
from PIL import Image

from ..media.image import to_pdq_rgb
from .hashcodec import pdq_bits_to_hex
from .types import PDQVariant

FAST_MIN_SIDE = 360
"""Shorter side (pixels) the fast path decodes to (never below it).

At 360 a 4 MP photo decodes at 1/4 scale and a 12 MP one at 1/4 or 1/8: fast enough
for the hashing targets (``bench/bench_hashing.py``), but the hash drifts a few bits
from the reference one (mean ~3-8, a tail to ~20 on large photos; 512 px halves the
drift and costs the speed targets). Matching therefore never trusts a fast hash near
a threshold: ``Matcher.needs_exact`` sends such files back through the reference path
(``sentinelle.index.matcher.FAST_VERIFY_MARGIN``), and ``bench/bench_robustness.py`` measures
recall on exactly that scan path."""

DIHEDRAL_NAMES = (
    "plain",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flip_plus1",
    "flip_minus1",
)
"""Order of ``pdqhash.compute_dihedral`` outputs, verified against
``shared/conformance/pdq/dihedral/`` (each name's hash equals, within a few bits,
the plain hash of the file rotated/mirrored that way)."""

_PIL_TRANSPOSE = {
    "plain": None,
    "rotate90": Image.Transpose.ROTATE_90,
    "rotate180": Image.Transpose.ROTATE_180,
    "rotate270": Image.Transpose.ROTATE_270,
    # The reference names mirrors by their axis: "flipx" mirrors about the
    # horizontal (x) axis, i.e. top <-> bottom.
    "flipx": Image.Transpose.FLIP_TOP_BOTTOM,
    "flipy": Image.Transpose.FLIP_LEFT_RIGHT,
    "flip_plus1": Image.Transpose.TRANSPOSE,
    "flip_minus1": Image.Transpose.TRANSVERSE,
}
"""Pillow transform that produces each named orientation (used by tests and by
callers that want the transformed pixels rather than the hash)."""


def pdq_from_array(rgb: np.ndarray) -> tuple[str, int]:
    """PDQ ``(hex, quality)`` of an ``(h, w, 3)`` uint8 array (h, w >= 1)."""
    bits, quality = pdqhash.compute(rgb)
    return pdq_bits_to_hex(bits), int(quality)


def pdq_from_image(im: Image.Image) -> tuple[str, int]:
    """PDQ ``(hex, quality)`` of a decoded Pillow image (see module docstring)."""
    return pdq_from_array(to_pdq_rgb(im))


def dihedral_from_array(rgb: np.ndarray) -> tuple[PDQVariant, ...]:
    """The 8 dihedral PDQ hashes (named as in :data:`DIHEDRAL_NAMES`)."""
    hashes, quality = pdqhash.compute_dihedral(rgb)
    return tuple(
        PDQVariant(name, pdq_bits_to_hex(bits), int(quality))
        for name, bits in zip(DIHEDRAL_NAMES, hashes, strict=True)
    )


def dihedral_from_image(im: Image.Image) -> tuple[PDQVariant, ...]:
    return dihedral_from_array(to_pdq_rgb(im))


def transpose(im: Image.Image, name: str) -> Image.Image:
    """Return ``im`` in the named dihedral orientation (``plain`` returns ``im``)."""
    op = _PIL_TRANSPOSE[name]
    return im if op is None else im.transpose(op)
