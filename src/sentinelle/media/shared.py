"""One image file, decoded once, shared by every step that needs its pixels.

``scan`` used to decode a 12 MP JPEG twice: once at reduced size for PDQ and again in
full for the provenance sources, although the default sources only read the file's
headers. A :class:`SharedImage` holds the file's bytes and every decode made of it, so:

* hashing asks for the reduced decode it wants (:meth:`SharedImage.decode`: a JPEG
  DCT-scaled decode, or a box reduce of the full decode for other formats);
* trimming works on that same decode, and asks for a finer one only when it found a
  border that a very small decode cannot place precisely (see
  :func:`sentinelle.signals.hasher`'s trimmed view);
* provenance gets :meth:`SharedImage.full_image` as its decoder: full-resolution pixels
  only for the sources that really read pixels (stealth metadata in lossless files, an
  operator's detector, the watermark decoder), made from an earlier full decode when
  there is one (a PNG's box reduce starts from it), else decoded then, once.

:attr:`SharedImage.decodes` counts the pixel decodes made (tests assert it).
Not thread-safe: one file, one worker.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from .image import DecodedImage, open_image, reduce_for_pdq
from .limits import DEFAULT_LIMITS, Limits


class SharedImage:
    """An image file's bytes plus the decodes made of it (cached by requested size).

    ``source`` is the file's bytes (``data``) or, for a file too big to hold in memory,
    its path (``data`` is then None and decodes read the file).
    """

    def __init__(self, source: bytes | Path, fmt: str, limits: Limits = DEFAULT_LIMITS) -> None:
        self.source = source
        self.data = source if isinstance(source, bytes) else None
        self.format = fmt
        self.limits = limits
        self.decodes = 0  # pixel decodes of the bytes made so far
        self._by_min_side: dict[int | None, DecodedImage] = {}
        self._full: DecodedImage | None = None

    def decode(self, min_side: int | None = None) -> DecodedImage:
        """The image decoded to a shorter side of about ``min_side`` (None: full size).

        Same result as :func:`sentinelle.media.image.open_image` with that
        ``min_side``; raises :class:`~sentinelle.errors.MediaError` the same way.
        """
        got = self._by_min_side.get(min_side)
        if got is not None:
            return got
        full = self._full
        if full is not None and (min_side is None or self.format != "jpeg"):
            # Non-JPEG reductions are box reduces of the full decode: no new decode.
            im = full.image if min_side is None else reduce_for_pdq(full.image, min_side)
            got = DecodedImage(
                im, full.format, full.width, full.height, full.width / im.size[0], full.image
            )
        else:
            got = open_image(self.source, self.format, self.limits, min_side=min_side)
            self.decodes += 1
            if got.full is not None:
                f = got.full
                self._full = DecodedImage(f, got.format, got.width, got.height, 1.0, f)
        self._by_min_side[min_side] = got
        return got

    def full_image(self) -> Image.Image:
        """Full-resolution pixels (decoded now only if no full decode was made yet)."""
        if self._full is not None:
            return self._full.image
        decoded = self.decode(None)
        return decoded.image
