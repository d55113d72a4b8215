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

import math
from functools import lru_cache

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

FAST_JPEG_MIN_SIDE = 180
"""Shorter side a JPEG's fast decode keeps (DCT scaling: 1/8 for 4 MP and up).

The reduced decode is hashed by :func:`pdq_from_reduced`, which computes the
reference's full-resolution blur and sampling from it, so a smaller decode costs
little accuracy: at 1/8, 1.0 bit from the exact hash on average at 12 MP and 2.2 at
4 MP (BSDS500 photos upscaled, q92), against 5.1 and 11.0 (1/4) for the reference code
run on the reduced pixels at :data:`FAST_MIN_SIDE`. A 1/8 decode skips the inverse
DCT and colour work of a 1/4 one (12 MP 3:2 photos decoded at 1/4 before: their 1/8
side is 354 px)."""

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


def _box_pass_t(rows: np.ndarray, n: int) -> np.ndarray:
    """``rows @ M`` for the reference's one-pass 1-D box filter ``M`` (``box1DFloat``:
    output ``i`` is the mean of inputs ``[i + half - w, i + half - 1]`` clipped to the
    vector, ``w = (n + 127) // 128``, ``half = (w + 2) // 2``)."""
    w = (n + 127) // 128
    half = (w + 2) // 2
    i = np.arange(n)
    lo = np.maximum(0, i + half - w)
    hi = np.minimum(n - 1, i + half - 1)
    weights = rows / (hi - lo + 1)
    diff = np.zeros((rows.shape[0], n + 1))
    np.add.at(diff.T, lo, weights.T)
    np.add.at(diff.T, hi + 1, -weights.T)
    return np.cumsum(diff, axis=1)[:, :n]


@lru_cache(maxsize=256)
def _axis_taps(full_n: int, reduced_n: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference's 64 samples along one axis of a ``full_n`` image (two box passes,
    then decimation) as weights over the pixels of a ``reduced_n`` copy whose pixel
    ``j`` covers full pixels ``[j * f, (j + 1) * f)``: sample ``i`` is
    ``sum_t weights[i, t] * pixel[start[i] + t]`` (each tent spans a few reduced
    pixels, so this is a short gather, not a matrix product: OpenBLAS's threads cost
    20x the work itself on a busy 2-core machine)."""
    samples = ((np.arange(64) + 0.5) * full_n / 64).astype(np.int64)
    rows = np.zeros((64, full_n))
    rows[np.arange(64), samples] = 1.0
    tent = _box_pass_t(_box_pass_t(rows, full_n), full_n)
    f = -(-full_n // reduced_n)
    owner = np.minimum(np.arange(full_n) // f, reduced_n - 1)
    dense = np.zeros((64, reduced_n))
    np.add.at(dense.T, owner, tent.T)
    nz = dense > 1e-9 * dense.max()  # the cumulative sums leave ~1e-17 elsewhere
    first = nz.argmax(axis=1)
    last = reduced_n - 1 - nz[:, ::-1].argmax(axis=1)
    k = int((last - first).max()) + 1
    start = np.minimum(first, reduced_n - k)
    idx = start[:, None] + np.arange(k)[None, :]
    weights = np.take_along_axis(dense, idx, axis=1)
    return idx, weights.astype(np.float32)


_I16 = np.arange(16, dtype=np.float64)[:, None]
_J64 = np.arange(64, dtype=np.float64)[None, :]
_DCT16x64 = (
    np.float32(math.sqrt(2 / 64)) * np.cos(math.pi / 2 / 64 * (_I16 + 1) * (2 * _J64 + 1))
).astype(np.float32)

REDUCED_MIN_SIDE = 32
""":func:`pdq_from_reduced` needs at least this many pixels per side (else pdqhash)."""


def pdq_from_reduced(im: Image.Image, full_width: int, full_height: int) -> tuple[str, int]:
    """PDQ ``(hex, quality)`` of a reduced decode, as the reference would hash the full image.

    The reference blurs the full image with two box passes per axis whose window grows
    with the image (1/128 of the side), then samples it at 64 x 64 points. Hashing a
    1/8 decode with the reference code uses windows 8 times too narrow and sampling
    points up to 4 full pixels off: 5 bits of drift on average at 12 MP, 20 at 4 MP
    (1/8; 11 at 1/4). Here the 64 x 64 samples are computed as the full image's
    would be: each sample's tent weights over the full-resolution pixels, summed over
    the footprint of each reduced pixel (a DCT-scaled or box-reduced pixel is the mean
    of that footprint), so ``samples = A_rows @ luma @ A_cols.T``. The DCT, median and
    quality are the reference's. On full-size input it gives the reference hash
    (tests); on a 1/8 decode it drifts about 1 bit on average at 12 MP and 2 at 4 MP.
    Luma is Pillow's integer RGB -> L (within 0.5 of the reference's float luma before
    a blur over dozens of pixels). No BLAS call (see :func:`_axis_taps`).
    """
    coeffs, quality = _reduced_coeffs(im, full_width, full_height)
    return _coeff_hex(coeffs), quality


def _reduced_coeffs(im: Image.Image, full_width: int, full_height: int) -> tuple[np.ndarray, int]:
    """The reference's 16 x 16 DCT block and quality, from a reduced decode."""
    grey = im if im.mode == "L" else to_pdq_rgb_image(im).convert("L")
    luma = np.asarray(grey, dtype=np.float32)
    h, w = luma.shape
    row_idx, row_w = _axis_taps(full_height, h)
    col_idx, col_w = _axis_taps(full_width, w)
    rows = np.einsum("ik,ikw->iw", row_w, luma[row_idx])  # (64, w)
    samples = np.einsum("jk,ijk->ij", col_w, rows[:, col_idx])  # (64, 64)
    coeffs = np.einsum("ab,db->ad", np.einsum("ab,bc->ac", _DCT16x64, samples), _DCT16x64)
    dv = np.trunc((samples[:-1] - samples[1:]) * np.float32(100) / np.float32(255))
    dh = np.trunc((samples[:, :-1] - samples[:, 1:]) * np.float32(100) / np.float32(255))
    quality = min(100, int(np.abs(dv).sum() + np.abs(dh).sum()) // 90)
    return coeffs, quality


def _coeff_hex(coeffs: np.ndarray) -> str:
    """The reference's bits of a 16 x 16 block (1 above the median), as hex."""
    flat = coeffs.ravel()
    median = np.partition(flat, 127)[127]
    return pdq_bits_to_hex((flat > median)[::-1].astype(np.uint8))


_PARITY = np.add.outer(np.arange(16), np.arange(16)) & 1
_ODD_I = np.broadcast_to((np.arange(16) & 1)[:, None], (16, 16))
_ODD_J = np.broadcast_to((np.arange(16) & 1)[None, :], (16, 16))


def _dihedral_blocks(a: np.ndarray) -> tuple[np.ndarray, ...]:
    """The reference's 8 orientations of a 16 x 16 DCT block (pdqhashing.cpp
    ``dct16OriginalTo*``: sign changes by row/column parity, and transposition), in
    :data:`DIHEDRAL_NAMES` order."""
    neg_even_j = np.where(_ODD_J == 1, a, -a)
    neg_even_i = np.where(_ODD_I == 1, a, -a)
    neg_odd_sum = np.where(_PARITY == 1, -a, a)
    return (
        a,
        neg_even_j.T,  # rotate90
        neg_odd_sum,  # rotate180
        neg_even_i.T,  # rotate270
        neg_even_i,  # flipx
        neg_even_j,  # flipy
        a.T,  # flip_plus1
        neg_odd_sum.T,  # flip_minus1
    )


def dihedral_from_reduced(
    im: Image.Image, full_width: int, full_height: int
) -> tuple[PDQVariant, ...]:
    """The 8 dihedral hashes of a reduced decode (see :func:`pdq_from_reduced`), from
    its one 16 x 16 block as the reference derives them."""
    coeffs, quality = _reduced_coeffs(im, full_width, full_height)
    return tuple(
        PDQVariant(name, _coeff_hex(block), quality)
        for name, block in zip(DIHEDRAL_NAMES, _dihedral_blocks(coeffs), strict=True)
    )


def to_pdq_rgb_image(im: Image.Image) -> Image.Image:
    """``im`` as the RGB image :func:`~sentinelle.media.image.to_pdq_rgb` hashes."""
    if im.mode == "RGB":
        return im
    return Image.fromarray(to_pdq_rgb(im), "RGB")


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
