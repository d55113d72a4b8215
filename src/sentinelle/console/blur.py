"""Reviewer-safe previews: blurred, grayscale renderings made in memory with Pillow.

A reviewer never sees media in the clear unless they ask for it, item by item.
:func:`render_preview` turns the bytes of an image (or a video, through
:mod:`sentinelle.console.keyframes`) into a small JPEG that is

* **scaled down** so its longer side is at most ``max_side`` pixels (less detail
  reaches the screen, and the page stays light);
* **grayscale** when ``grayscale`` is on (colour carries much of the emotional
  impact of an image; the default for every reviewer);
* **blurred** at ``blur_level``, the reviewer's setting
  (:class:`sentinelle.review.exposure.UserSettings`): the Gaussian radius in
  tenths of a percent of the image's short side, 0 (sharp) to 100 (10 %); the
  default 24 keeps only coarse shapes, enough to tell a document from a
  landscape, not enough to recognise anyone. The blur is done on a reduced copy
  and scaled back up, so even the strongest level is cheap and fine detail never
  reaches the output.

Nothing is written to disk: decoded pixels and the encoded JPEG live in memory
only. Decoding goes through :mod:`sentinelle.media` with its limits (pixel bombs,
decode time), so hostile uploads end in a :class:`~sentinelle.errors.MediaError`
rather than a crash::

    from sentinelle.console.blur import render_preview
    preview = render_preview(data, blur_level=6, grayscale=True)
    preview.data          # JPEG bytes, serve with Cache-Control: no-store
    preview.media_type    # "image/jpeg"
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageFilter, ImageOps

from ..errors import MediaError
from ..media.detect import HEAD_BYTES, detect
from ..media.image import open_image
from ..media.limits import Limits

DEFAULT_MAX_SIDE = 640
DEFAULT_BLUR_LEVEL = 24
MAX_BLUR_LEVEL = 100
MIN_PREVIEW_BLUR = 8
"""Previews are never sharp, whatever the setting: seeing an item in the clear is a
reveal, which is audited and counted (a setting of 0 gets this lightest blur)."""
PREVIEW_LIMITS = Limits(max_file_bytes=512 * 1024**2, max_pixels=100_000_000, decode_timeout_s=20)


@dataclass(frozen=True)
class Preview:
    """An encoded preview ready to send: JPEG bytes plus what it shows."""

    data: bytes
    media_type: str
    width: int
    height: int
    blurred: bool
    grayscale: bool
    source_kind: str  # "image" or "video"


def blur_radius(level: int, size: tuple[int, int]) -> float:
    """Gaussian radius (pixels) for ``level`` 0..100 on an image of ``size``.

    ``level`` is tenths of a percent of the short side: 24 on a 640x480 image is
    a radius of 11.5 px; 100 (the most) is 10 % of the short side.
    """
    level = max(0, min(MAX_BLUR_LEVEL, int(level)))
    return min(size) * level / 1000.0


def protect(
    im: Image.Image,
    *,
    blur_level: int = DEFAULT_BLUR_LEVEL,
    grayscale: bool = True,
    max_side: int = DEFAULT_MAX_SIDE,
) -> Image.Image:
    """Scale ``im`` down, then apply grayscale and blur as asked (a new image)."""
    im = ImageOps.exif_transpose(im)
    im = im.convert("RGB")
    im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if grayscale:
        im = ImageOps.grayscale(im)
    radius = blur_radius(blur_level, im.size)
    if radius > 0:
        # Blur a copy reduced so the radius is ~2 px there, then scale back up:
        # same look as a full-size Gaussian of ``radius``, at a fraction of the cost,
        # and fine detail is gone for good (it never reaches the reduced copy).
        factor = max(1.0, radius / 2.0)
        small = im.resize(
            (max(1, round(im.width / factor)), max(1, round(im.height / factor))),
            Image.Resampling.BOX,
        )
        small = small.filter(ImageFilter.GaussianBlur(2.0))
        im = small.resize(im.size, Image.Resampling.BICUBIC)
        im = im.filter(ImageFilter.GaussianBlur(radius / 4.0))
    return im


def encode_jpeg(im: Image.Image, quality: int = 82) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def media_kind(data: bytes) -> tuple[str, str]:
    """``(kind, format)`` of ``data`` ("image"/"video"), or MediaError ``unsupported_type``."""
    if not data:
        raise MediaError("empty file", "empty_file")
    found = detect(data[:HEAD_BYTES])
    if found is None:
        raise MediaError("not a supported image or video", "unsupported_type")
    return found


def render_preview(
    data: bytes,
    *,
    blur_level: int = DEFAULT_BLUR_LEVEL,
    grayscale: bool = True,
    max_side: int = DEFAULT_MAX_SIDE,
    limits: Limits = PREVIEW_LIMITS,
) -> Preview:
    """A protected JPEG preview of an image, or of a video's key-frame strip.

    ``blur_level`` 0 gives the revealed (sharp) rendering; grayscale stays as the
    reviewer's setting says. Raises :class:`MediaError` on undecodable input.
    """
    kind, fmt = media_kind(data)
    if kind == "video":
        from .keyframes import compose_strip, keyframes

        frames = keyframes(data, fmt, limits=limits)
        side = max(64, max_side // 3)  # each frame small; the strip stays legible
        out = compose_strip(
            [protect(f, blur_level=blur_level, grayscale=grayscale, max_side=side) for f in frames]
        )
    else:
        im = open_image(data, fmt, limits, min_side=max_side).image
        out = protect(im, blur_level=blur_level, grayscale=grayscale, max_side=max_side)
    return Preview(
        data=encode_jpeg(out),
        media_type="image/jpeg",
        width=out.width,
        height=out.height,
        blurred=blur_level > 0,
        grayscale=grayscale,
        source_kind=kind,
    )
