"""The ``dwtDct`` invisible watermark of the ``invisible-watermark`` package, without torch.

Stable Diffusion's reference scripts mark every output with
``imwatermark.WatermarkEncoder().encode(bgr, "dwtDct")`` (class ``EmbedMaxDct`` in
``imwatermark/maxDct.py``). The package imports torch eagerly, so this module
re-implements that one algorithm with numpy, OpenCV and PyWavelets, vectorised over
blocks instead of a Python loop per block. What the algorithm really does (read from
the package source, version 0.2.0; the name promises a DCT that is not there):

1. Convert the BGR image to YUV with OpenCV (``COLOR_BGR2YUV``). With the default
   ``scales=[0, 36, 36]`` and ``for channel in range(2)`` only channel 1 (**U**) is
   used: Y has scale 0 and V is never reached.
2. Crop to a multiple of 4 and take a one-level Haar DWT (``pywt.dwt2``) of U. Only
   the approximation band ``cA`` (2x the mean of each 2x2 pixel cell) carries bits.
3. Cut ``cA`` into 4x4 blocks in row-major order; block ``n`` carries message bit
   ``n % len(bits)``, so every bit is repeated across the image.
4. In each block, pick the coefficient with the largest magnitude *excluding* the
   first (top-left) one, and quantise its magnitude with step ``scale = 36``:
   ``(|v| // 36 + 0.25 + 0.5 * bit) * 36`` (sign kept). The value then sits at 9
   (bit 0) or 27 (bit 1) modulo 36.
5. Inverse DWT. The reference passes ``(cA, (cV, cH, cD))`` back to ``idwt2``, i.e.
   it swaps the horizontal and vertical detail bands of U; we keep that quirk so
   the pixels we write are the reference's pixels (tests compare the two).

Decoding repeats 1-4 and reads ``|v| % 36 > 18`` as a 1 per block, then averages
the votes of all blocks that carry the same bit: a bit is 1 when the mean vote is
above 127/255 (the reference's ``mean * 255 > 127``).

The reference writes the inverse DWT into a ``uint8`` array, so values above 255
wrap around (strong blues). We clip instead: the marked pixels are identical
except in those rare saturated blocks, and decoding is unaffected.
"""

from __future__ import annotations

import cv2
import numpy as np
import pywt

BLOCK = 4
SCALE = 36.0
U_CHANNEL = 1
MIN_PIXELS = 256 * 256  # the reference refuses smaller images


def _u_approx(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """YUV image (uint8 for uint8 input) and the Haar ``cA`` band of its U channel."""
    rows, cols = bgr.shape[:2]
    r4, c4 = rows // 4 * 4, cols // 4 * 4
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)
    return yuv, yuv[:r4, :c4, U_CHANNEL], r4, c4


def _blocks(ca: np.ndarray) -> tuple[np.ndarray, int, int]:
    """View ``cA`` as (n_blocks, 16) in the reference's row-major block order."""
    br, bc = ca.shape[0] // BLOCK, ca.shape[1] // BLOCK
    blocks = (
        ca[: br * BLOCK, : bc * BLOCK]
        .reshape(br, BLOCK, bc, BLOCK)
        .transpose(0, 2, 1, 3)
        .reshape(br * bc, BLOCK * BLOCK)
    )
    return blocks, br, bc


def _peak_index(blocks: np.ndarray) -> np.ndarray:
    """Index (1..15) of the largest-magnitude coefficient of each block, first wins."""
    return np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1


def _check(bgr: np.ndarray) -> None:
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 BGR array, got shape {bgr.shape}")
    if bgr.shape[0] * bgr.shape[1] < MIN_PIXELS:
        raise ValueError("image too small for dwtDct (needs at least 256x256 pixels)")


def encode(bgr: np.ndarray, bits: list[int] | np.ndarray) -> np.ndarray:
    """Embed ``bits`` into a uint8 BGR image; returns a new uint8 BGR image."""
    _check(bgr)
    message = np.asarray(bits, dtype=np.int64) % 2
    if message.size == 0:
        raise ValueError("empty watermark")
    yuv, u, r4, c4 = _u_approx(np.ascontiguousarray(bgr, dtype=np.uint8))
    ca, (ch, cv, cd) = pywt.dwt2(u, "haar")
    blocks, br, bc = _blocks(ca)
    idx = _peak_index(blocks)
    rows = np.arange(blocks.shape[0])
    val = blocks[rows, idx]
    bit = message[rows % message.size]
    mag = (np.abs(val) // SCALE + 0.25 + 0.5 * bit) * SCALE
    blocks[rows, idx] = np.where(val >= 0.0, mag, -mag)
    ca[: br * BLOCK, : bc * BLOCK] = (
        blocks.reshape(br, bc, BLOCK, BLOCK).transpose(0, 2, 1, 3).reshape(br * BLOCK, -1)
    )
    rebuilt = pywt.idwt2((ca, (cv, ch, cd)), "haar")  # the reference's h/v swap
    out = yuv.copy()
    out[:r4, :c4, U_CHANNEL] = np.clip(rebuilt, 0, 255).astype(np.uint8)
    return cv2.cvtColor(out, cv2.COLOR_YUV2BGR)


def block_votes(bgr: np.ndarray) -> np.ndarray:
    """The 0/1 vote of every 4x4 block, in block order (independent of the message).

    Computing these once lets a caller test several message lengths (SD 1.x, SD 2.x,
    SDXL) for the price of one DWT: see :func:`votes_for_length`.
    """
    _check(bgr)
    _, u, _, _ = _u_approx(np.ascontiguousarray(bgr, dtype=np.uint8))
    ca, _ = pywt.dwt2(u, "haar")
    blocks, _, _ = _blocks(ca)
    val = np.abs(blocks[np.arange(blocks.shape[0]), _peak_index(blocks)])
    return (val % SCALE > 0.5 * SCALE).astype(np.float64)


def votes_for_length(votes: np.ndarray, length: int) -> np.ndarray:
    """Mean vote per message bit (``length`` values in 0..1) from :func:`block_votes`."""
    if length <= 0:
        raise ValueError("watermark length must be positive")
    if votes.shape[0] < length:
        raise ValueError("image too small to hold one copy of the watermark")
    slot = np.arange(votes.shape[0]) % length
    return np.bincount(slot, weights=votes, minlength=length) / np.bincount(slot, minlength=length)


def bits_from_votes(mean_votes: np.ndarray) -> np.ndarray:
    """Bits as the reference thresholds them (``mean * 255 > 127``)."""
    return mean_votes * 255 > 127


def decode(bgr: np.ndarray, length: int) -> np.ndarray:
    """Decoded message bits (bool array of ``length``), as the reference decodes them."""
    return bits_from_votes(votes_for_length(block_votes(bgr), length))
