"""Content-type detection from magic bytes (never from the file name).

A file called ``holiday.jpg`` may be a video, a text file or garbage; hashing must
pick the decoder from what the bytes *are*. :func:`detect` looks at the first
bytes of a file (``HEAD_BYTES`` is enough for every format below) and returns
``(media_type, format)`` such as ``("image", "jpeg")`` or ``("video", "mp4")``,
or ``None`` when the content is not a supported image or video.

Recognised formats:

* images: ``jpeg``, ``png``, ``gif``, ``webp``, ``bmp``, ``tiff``, ``heic``, ``avif``
* videos: ``mp4`` (ISO-BMFF: MP4/M4V/3GP), ``mov`` (QuickTime), ``webm``, ``mkv``, ``avi``
"""

from __future__ import annotations

HEAD_BYTES = 4096
"""How many leading bytes :func:`detect` needs (the EBML header of WebM/MKV may
sit a little way in; every other signature is in the first 32 bytes)."""

IMAGE_FORMATS = ("jpeg", "png", "gif", "webp", "bmp", "tiff", "heic", "avif")
VIDEO_FORMATS = ("mp4", "mov", "webm", "mkv", "avi")

# ISO base media file format ("ftyp" box) brands.
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_GENERIC = {b"mif1", b"msf1", b"miaf"}
_MOV_BRANDS = {b"qt  "}
# QuickTime files without an ftyp box start directly with one of these atoms.
_QT_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
# BITMAPINFOHEADER family sizes (OS/2 v1 = 12 ... BITMAPV5HEADER = 124).
_BMP_DIB_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


def _ftyp(head: bytes) -> tuple[str, str] | None:
    """Classify an ISO-BMFF file from its ``ftyp`` box (major + compatible brands)."""
    box_size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    end = min(len(head), box_size) if 16 <= box_size <= 4096 else min(len(head), 64)
    compatible = {head[i : i + 4] for i in range(16, end - 3, 4)}
    brands = {major} | compatible
    if major in _AVIF_BRANDS:
        return ("image", "avif")
    if major in _HEIC_BRANDS:
        return ("image", "heic")
    if major in _HEIF_GENERIC:
        if brands & _AVIF_BRANDS:
            return ("image", "avif")
        return ("image", "heic")
    if major in _MOV_BRANDS:
        return ("video", "mov")
    # isom, iso2..iso9, mp41, mp42, avc1, M4V , M4VH, 3gp4/5/6, 3g2a, dash, ...
    # An MP4 that also lists HEIF brands is still a video when its major brand is video.
    return ("video", "mp4")


def _matroska_doctype(head: bytes) -> str:
    """``webm`` when the EBML header's DocType says so, else ``mkv``."""
    # DocType element id 0x4282, then a 1-byte size (0x84 -> 4, 0x88 -> 8) and the text.
    i = head.find(b"\x42\x82", 4, 64)
    if i >= 0 and b"webm" in head[i : i + 16]:
        return "webm"
    return "mkv"


def detect(head: bytes) -> tuple[str, str] | None:
    """Return ``(media_type, format)`` for the leading bytes ``head``, or ``None``.

    ``media_type`` is ``"image"`` or ``"video"``. Pass at least the first
    :data:`HEAD_BYTES` bytes (fewer is fine for short files). Never raises.
    """
    if len(head) < 4:
        return None
    if head.startswith(b"\xff\xd8\xff"):
        return ("image", "jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ("image", "png")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return ("image", "gif")
    if head.startswith(b"RIFF") and len(head) >= 12:
        kind = head[8:12]
        if kind == b"WEBP":
            return ("image", "webp")
        if kind == b"AVI ":
            return ("video", "avi")
        return None
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return ("image", "tiff")
    if head.startswith(b"BM") and len(head) >= 18:
        # "BM" alone is too weak (plenty of text starts with it): check the DIB size.
        if int.from_bytes(head[14:18], "little") in _BMP_DIB_SIZES:
            return ("image", "bmp")
        return None
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return ("video", _matroska_doctype(head))
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _ftyp(head)
    if len(head) >= 8 and head[4:8] in _QT_ATOMS:
        return ("video", "mov")
    return None
