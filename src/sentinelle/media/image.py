"""Safe image decoding with Pillow (+ pillow-heif for HEIC), with bomb checks.

Two things make image decoding dangerous with hostile input:

* **Decompression bombs**: a few KB of PNG can declare 100,000 x 100,000 pixels.
  Pillow reads only the header in :func:`PIL.Image.open`, so we check
  ``width * height`` against :class:`~sentinelle.media.limits.Limits` *before*
  ``load()`` decodes anything. Pillow's own ``DecompressionBombError`` is mapped
  to the same ``too_many_pixels`` error.
* **Plugin confusion**: Pillow would try every registered decoder on unknown
  bytes. We pass ``formats=[...]`` so only the decoder for the format that
  :mod:`sentinelle.media.detect` found from the magic bytes is used.

Fast path (``min_side``): JPEG can be decoded directly at 1/2, 1/4 or 1/8 scale in
the DCT domain (libjpeg "scaled decoding", :meth:`PIL.Image.Image.draft`), which
skips most of the inverse-DCT and colour work. We pick the smallest scale that
keeps both sides >= ``min_side``. Other formats are decoded in full and then box
reduced (:meth:`PIL.Image.Image.reduce`) to the same minimum side, which makes the
later PDQ step cheaper.

Pixel conversion for PDQ (:func:`to_pdq_rgb`) follows python-threatexchange's
``pdq_from_file`` for every mode where that is meaningful (RGB, L, LA, RGBA),
so hashes are identical to the reference; see the function for the modes where
the reference is wrong and we deliberately differ. EXIF orientation is **not**
applied, exactly like the reference (rotated copies are caught by the dihedral
query variants instead).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image

from ..errors import MediaError
from .limits import DEFAULT_LIMITS, Limits

pillow_heif.register_heif_opener()  # HEIC/HEIF decoder: registers "HEIF" with Pillow

# sentinelle format name -> Pillow decoder names allowed for it.
_PIL_FORMATS: dict[str, list[str]] = {
    "jpeg": ["JPEG"],
    "png": ["PNG"],
    "gif": ["GIF"],
    "webp": ["WEBP"],
    "bmp": ["BMP", "DIB"],
    "tiff": ["TIFF"],
    "heic": ["HEIF"],
    "avif": ["AVIF", "HEIF"],
}

# Modes whose plain numpy view is already what the reference hashes.
_DIRECT_RGB = {"RGB"}
_GREY_LIKE = {"L"}


@dataclass
class DecodedImage:
    """A decoded (first-frame) image plus facts about the original file.

    ``width``/``height`` are the original dimensions from the header;
    ``image`` may be smaller on the fast path (``reduced`` tells by how much,
    approximately: original width / decoded width). ``full`` is the
    full-resolution decode when one was made (``image`` itself, or what a box
    reduce started from; None for a JPEG decoded at reduced scale), so other
    consumers of the same file need not decode it again.
    """

    image: Image.Image
    format: str
    width: int
    height: int
    reduced: float = 1.0
    full: Image.Image | None = None


def _draft_size(width: int, height: int, min_side: int) -> tuple[int, int] | None:
    """Requested size for :meth:`Image.draft`: the smallest 1/2^k scale (k <= 3)
    whose sides stay >= ``min_side``, or ``None`` when no reduction is possible.

    The request is rounded *down* (``width // scale``): Pillow picks the scale
    from ``width // requested`` and falls back to the next larger scale when that
    is below ``scale``, which a rounded-up request causes on every size not
    divisible by the scale (4242 px at 1/4 asked 1061 px: 4242 // 1061 = 3, so
    Pillow decoded at 1/2)."""
    best = None
    for scale in (2, 4, 8):
        if min(-(-width // scale), -(-height // scale)) >= min_side:
            best = (max(1, width // scale), max(1, height // scale))
    return best


def open_image(
    source: str | Path | bytes,
    fmt: str,
    limits: Limits = DEFAULT_LIMITS,
    *,
    min_side: int | None = None,
) -> DecodedImage:
    """Decode the first frame of an image, or raise :class:`MediaError`.

    ``source`` is a path or the file's bytes; ``fmt`` is the format found by
    :func:`sentinelle.media.detect.detect`. With ``min_side`` set, large images are
    decoded/reduced so their shorter side is about ``min_side`` (never below it).
    Error codes: ``unsupported_type``, ``too_many_pixels``, ``corrupt_media``,
    ``io_error``.
    """
    formats = _PIL_FORMATS.get(fmt)
    if formats is None:
        raise MediaError(f"unsupported image format {fmt!r}", "unsupported_type")
    fp = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    try:
        with warnings.catch_warnings():
            # We enforce our own pixel limit below, and hostile files make Pillow
            # warn about corrupt EXIF etc.: decoding either works or raises.
            warnings.simplefilter("ignore")
            im = Image.open(fp, formats=formats)
            width, height = im.size
            if width <= 0 or height <= 0:
                raise MediaError(f"image has no pixels ({width}x{height})", "corrupt_media")
            if width * height > limits.max_pixels:
                raise MediaError(
                    f"image is {width}x{height} = {width * height} pixels, "
                    f"over the limit of {limits.max_pixels}",
                    "too_many_pixels",
                )
            reduced = 1.0
            if min_side and fmt == "jpeg":
                size = _draft_size(width, height, min_side)
                if size is not None:
                    im.draft(im.mode if im.mode in ("L", "CMYK") else "RGB", size)
            im.load()
            full = im if im.size == (width, height) else None
            if min_side and fmt != "jpeg":
                im = reduce_for_pdq(im, min_side)
            reduced = width / im.size[0]
            return DecodedImage(im, fmt, width, height, reduced, full)
    except MediaError:
        raise
    except Image.DecompressionBombError as e:
        raise MediaError(f"decompression bomb: {e}", "too_many_pixels") from e
    except Image.UnidentifiedImageError as e:
        raise MediaError(f"not a decodable {fmt} image", "corrupt_media") from e
    except FileNotFoundError as e:
        raise MediaError(f"cannot read file: {e.strerror}", "io_error") from e
    except PermissionError as e:
        raise MediaError(f"cannot read file: {e.strerror}", "io_error") from e
    except MemoryError as e:
        raise MediaError("image too large to decode in memory", "too_many_pixels") from e
    except Exception as e:  # noqa: BLE001 - any decoder failure on hostile input
        raise MediaError(
            f"corrupt or truncated {fmt} image: {type(e).__name__}: {e}", "corrupt_media"
        ) from e


def reduce_for_pdq(im: Image.Image, min_side: int) -> Image.Image:
    """A box reduce of a decoded image to a shorter side of about ``min_side`` (never less).

    JPEG needs none: its DCT-scaled decode is the whole reduction. A further box
    reduce by an integer factor moves PDQ by ~8-10 bits on average (up to 24;
    bench_robustness.py large images): PDQ's own Jarosz filter on the larger image
    is far closer to the exact hash. Returns ``im`` itself when it is small enough.
    """
    if min(im.size) < 2 * min_side:
        return im
    factor = min(im.size) // min_side
    if im.mode not in ("RGB", "L", "RGBA", "LA"):
        im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    return im.reduce(factor)


def min_side_for_long_side(width: int, height: int, long_side: int) -> int:
    """The ``min_side`` that makes a reduced decode keep its longer side >= ``long_side``."""
    return max(1, -(-min(width, height) * long_side // max(width, height)))


def _sixteen_bit_to_l(im: Image.Image) -> Image.Image:
    """16-bit (or 32-bit int / float) greyscale -> 8-bit L, scaling rather than clipping."""
    arr = np.asarray(im)
    if im.mode.startswith("I;16"):
        arr8 = (arr.astype(np.uint32) >> 8).astype(np.uint8)
    else:  # "I" or "F": Pillow stores 16-bit PNGs as I in some versions
        a = arr.astype(np.float64)
        hi = float(a.max()) if a.size else 0.0
        if hi > 255.0:
            a = a * (255.0 / 65535.0) if hi <= 65535.0 else a * (255.0 / hi)
        arr8 = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return Image.fromarray(arr8, mode="L")


def to_pdq_rgb(im: Image.Image) -> np.ndarray:
    """The ``(h, w, 3)`` uint8 array to feed ``pdqhash.compute``.

    Identical to python-threatexchange ``pdq_from_file`` for modes ``RGB``, ``L``
    (grey replicated to three channels), ``LA`` (converted to RGB) and ``RGBA``
    (the reference hands all four channels to pdqhash, which reads only R, G, B:
    the same as dropping alpha).

    Where the reference is wrong we differ on purpose:

    * ``P`` (palette: GIF, PNG-8): the reference hashes the palette *indices* as if
      they were grey levels; we hash the actual colours.
    * ``CMYK``: the reference treats C, M, Y as R, G, B (an inverted image); we
      convert to RGB.
    * ``I;16`` (16-bit grey PNG/TIFF): the reference's RGB conversion clips at 255
      (nearly white); we scale to 8 bits.
    * ``1``, ``PA``, ``I``, ``F``, ``YCbCr``, ``LAB``, ``HSV``...: the reference
      crashes; we convert to RGB.
    """
    mode = im.mode
    if mode in _DIRECT_RGB:
        return np.asarray(im)
    if mode in _GREY_LIKE:
        arr = np.asarray(im)
        return np.repeat(arr[:, :, np.newaxis], 3, axis=2)
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(_sixteen_bit_to_l(im))
        return np.repeat(arr[:, :, np.newaxis], 3, axis=2)
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    return np.asarray(im.convert("RGB"))
