"""Public hashing entry point: one file (or bytes) in, one :class:`HashResult` out.

::

    from sentinelle.signals.hasher import hash_file
    r = hash_file("photo.jpg")                    # md5, sha1, sha256 + pdq
    r = hash_file("clip.mp4", signals=("vpdq",))  # per-frame PDQ
    r = hash_file("photo.jpg", exact=False, query_variants=("trimmed", "dihedral"))

What happens, in order:

1. **Size check** before reading anything (``Limits.max_file_bytes``).
2. **Type detection** from the first bytes (:mod:`sentinelle.media.detect`); the
   file name is ignored.
3. **Crypto hashes** (MD5/SHA-1/SHA-256) of the original bytes. They are reported
   even when decoding later fails, so a corrupt copy of a known file still matches.
4. **Decoding** under limits and **perceptual hashes**: PDQ for images, vPDQ for
   videos. A requested signal that does not apply to the media type is absent.

``hash_file`` and ``hash_bytes`` never raise for bad media: every problem ends in
``HashResult.error`` (a :class:`~sentinelle.errors.MediaError` with a stable code).
They raise ``ValueError`` only for programming mistakes (unknown signal names).

``exact=True`` (default; ``sentinelle hash`` and enrollment) gives
reference-exact PDQ/vPDQ hashes; ``exact=False`` (``scan``) decodes at reduced
size for speed; its PDQ hashes drift a few bits from the reference (figures in
``bench/RESULTS.md``), so ``scan`` re-hashes exactly any near miss.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from ..errors import MediaError
from ..media.detect import HEAD_BYTES, detect
from ..media.image import (
    DecodedImage,
    min_side_for_long_side,
    open_image,
    reduce_for_pdq,
    to_pdq_rgb,
)
from ..media.limits import DEFAULT_LIMITS, Limits
from ..media.shared import SharedImage
from ..media.video import VideoInfo
from .crypto import crypto_hashes_bytes, crypto_hashes_stream
from .pdq import (
    DIHEDRAL_NAMES,
    FAST_JPEG_MIN_SIDE,
    FAST_MIN_SIDE,
    REDUCED_MIN_SIDE,
    dihedral_from_array,
    dihedral_from_reduced,
    pdq_from_array,
    pdq_from_reduced,
)
from .types import (
    CRYPTO_SIGNALS,
    SIGNAL_TYPES,
    DihedralSignal,
    HashResult,
    HashSignal,
    PDQVariant,
    Signal,
)

DEFAULT_SIGNALS = ("md5", "sha1", "sha256", "pdq", "vpdq")
QUERY_VARIANTS = ("trimmed", "dihedral")

IN_MEMORY_MAX_BYTES = 256 * 1024**2
"""Images up to this size are read once into memory (crypto hashes and decoding
share the bytes); bigger files are streamed for the hashes and decoded from disk."""

_Source = Path | bytes

CRYPTO_THREAD_MIN_BYTES = 256 * 1024
"""Files from this size have their crypto hashes computed in a helper thread while the
image is decoded and hashed (hashlib and Pillow's decoder release the GIL): on a
second core the MD5/SHA-1/SHA-256 of a 12 MP JPEG (about 11 ms for 3.8 MB) then costs
no wall time. Smaller files hash in line (the hand-over would cost more)."""

_CRYPTO_POOL: ThreadPoolExecutor | None = None
_CRYPTO_POOL_PID = 0


def _crypto_pool() -> ThreadPoolExecutor:
    """The process's crypto-hash thread (made again in a forked child)."""
    global _CRYPTO_POOL, _CRYPTO_POOL_PID
    if _CRYPTO_POOL is None or os.getpid() != _CRYPTO_POOL_PID:
        _CRYPTO_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentinelle-crypto")
        _CRYPTO_POOL_PID = os.getpid()
    return _CRYPTO_POOL


def _check_options(signals: Collection[str], query_variants: Collection[str]) -> None:
    bad = [s for s in signals if s not in SIGNAL_TYPES]
    if bad:
        raise ValueError(f"unknown signal type(s) {bad}; choose from {list(SIGNAL_TYPES)}")
    badq = [q for q in query_variants if q not in QUERY_VARIANTS]
    if badq:
        raise ValueError(f"unknown query variant(s) {badq}; choose from {list(QUERY_VARIANTS)}")


# --------------------------------------------------------------------------- images


def _fast_min_side(fmt: str) -> int:
    """Shorter side the fast path decodes ``fmt`` to (JPEG: DCT scaling, down to 1/8)."""
    return FAST_JPEG_MIN_SIDE if fmt == "jpeg" else FAST_MIN_SIDE


def _decode_for_pdq(source: _Source, fmt: str, exact: bool, limits: Limits):
    # enrollment: its augmented crops are hashed by the reference code, so the decode
    # keeps FAST_MIN_SIDE
    return open_image(source, fmt, limits, min_side=None if exact else FAST_MIN_SIDE)


def _hash_views(
    im: Image.Image,
    prefix: str,
    dihedral: bool,
    full_size: tuple[int, int] | None = None,
) -> tuple[PDQVariant, tuple[PDQVariant, ...]]:
    """PDQ of ``im`` (named ``prefix`` or ``plain``) and, if asked, its 8 orientations.

    ``full_size``: ``im`` is a reduced decode of an image of that size; its plain hash
    is then computed as the reference would compute it on the full image
    (:func:`~sentinelle.signals.pdq.pdq_from_reduced`).
    """
    if full_size is not None and full_size != im.size and min(im.size) >= REDUCED_MIN_SIDE:
        if not dihedral:
            h, q = pdq_from_reduced(im, *full_size)
            return PDQVariant(prefix or "plain", h, q), ()
        views = dihedral_from_reduced(im, *full_size)
        if prefix:
            views = tuple(
                PDQVariant(
                    prefix if v.variant == "plain" else f"{prefix}+{v.variant}", v.hash, v.quality
                )
                for v in views
            )
        return views[0], views
    rgb = to_pdq_rgb(im)
    if dihedral:
        views = dihedral_from_array(rgb)
        if prefix:
            views = tuple(
                PDQVariant(
                    prefix if v.variant == "plain" else f"{prefix}+{v.variant}", v.hash, v.quality
                )
                for v in views
            )
        return views[0], views
    h, q = pdq_from_array(rgb)
    return PDQVariant(prefix or "plain", h, q), ()


def _crop(im: Image.Image, box: tuple[int, int, int, int] | None) -> Image.Image | None:
    if box is None:
        return None
    out = im.crop(box)
    if out.size == im.size or min(out.size) < 1:
        return None
    return out


def _trimmed(
    media: SharedImage, decoded: DecodedImage, exact: bool
) -> tuple[Image.Image, float] | None:
    """The trimmed view (borders, bars, screenshot padding cut away) and how many
    original pixels one of its pixels spans, or ``None``.

    Trimming runs on the decode that was hashed. On the fast path that may be very
    small (a 12 MP JPEG decodes at 1/8, 500 px): a border's edge is known only to a
    reduced pixel (8 original ones), and the crop of that small decode hashes up to
    ~20 bits away from the exact path's trimmed hash (12 MP screenshots of
    ``bench/bench_robustness.py``; 1/4 still drifted up to 20, 1/2 about 2-4), enough
    to lose matches. So when a border is found on a decode coarser than the exact
    path's trimming copy (the image box-reduced to a longer side of at most
    ``WORK_MAX_SIDE``), it is cut again on a decode twice that fine: a JPEG at the DCT
    scale that reaches it (1/2 for 12 MP, full size for 4 MP), any other format on its
    full decode (already in memory), the walk running on a working copy of the exact
    path's size (the walk is resolution-sensitive: on 706 or 530 px copies of a 12 MP
    screenshot it stopped at other lines than on the exact path's 848 px one). Images
    without borders, the vast majority, pay for one walk on the small decode; bordered
    ones for one finer decode.
    """
    from .trim import WORK_MAX_SIDE, trim_box  # lazy: optional heavier module

    im = decoded.image
    box = trim_box(im)
    if box is None:
        return None
    long_side = max(decoded.width, decoded.height)
    exact_work = long_side // -(-long_side // WORK_MAX_SIDE)  # the exact path's copy
    if not exact and max(im.size) < exact_work:
        if media.format == "jpeg":
            fine_side = min(long_side, 2 * exact_work)
            finer = media.decode(min_side_for_long_side(decoded.width, decoded.height, fine_side))
        else:
            finer = media.decode(None)
        if max(finer.image.size) > max(im.size):
            # walk the exact path's working copy: same size, so the same lines
            out = _crop(finer.image, trim_box(finer.image, exact_work))
            if out is None:
                return None
            scale = decoded.width / finer.image.size[0]
            if media.format != "jpeg":
                reduced = reduce_for_pdq(out, FAST_MIN_SIDE)
                scale *= out.size[0] / reduced.size[0]
                out = reduced
            return out, scale
    out = _crop(im, box)
    return None if out is None else (out, decoded.width / im.size[0])


def _image_signals(
    result: HashResult,
    media: SharedImage,
    signals: Collection[str],
    exact: bool,
    query_variants: Collection[str],
) -> list[Signal]:
    want_dihedral_signal = "pdq-dihedral" in signals
    want_q = bool(query_variants)
    if not ("pdq" in signals or want_dihedral_signal or want_q):
        return []
    decoded = media.decode(None if exact else _fast_min_side(media.format))
    result.width, result.height = decoded.width, decoded.height
    need_dihedral = want_dihedral_signal or "dihedral" in query_variants
    full_size = None if exact else (decoded.width, decoded.height)
    plain, views = _hash_views(decoded.image, "", need_dihedral, full_size)
    out: list[Signal] = []
    if "pdq" in signals:
        out.append(HashSignal("pdq", plain.hash, plain.quality))
    if want_dihedral_signal:
        out.append(DihedralSignal(hashes=views))
    if want_q:
        qv = [plain]
        if "dihedral" in query_variants:
            qv.extend(views[1:])
        if "trimmed" in query_variants:
            cut = _trimmed(media, decoded, exact)
            if cut is not None:
                trimmed, scale = cut
                t_full = None
                if not exact and scale > 1.0:
                    t_full = (round(trimmed.size[0] * scale), round(trimmed.size[1] * scale))
                t_plain, t_views = _hash_views(
                    trimmed, "trimmed", "dihedral" in query_variants, t_full
                )
                qv.extend(t_views if t_views else (t_plain,))
        result.query_variants = qv
    return out


# --------------------------------------------------------------------------- videos


def _video_signals(
    result: HashResult,
    source: _Source,
    fmt: str,
    signals: Collection[str],
    exact: bool,
    limits: Limits,
) -> list[Signal]:
    if "vpdq" not in signals:
        return []
    from .vpdq import vpdq_hash  # lazy: imports PyAV

    info: list[VideoInfo] = []
    sig = vpdq_hash(source, fmt, limits, exact=exact, info_out=info)
    if info:
        result.width, result.height = info[0].width, info[0].height
    return [sig]


# --------------------------------------------------------------------------- driver


def _perceptual(
    result: HashResult,
    source: _Source,
    detected: tuple[str, str] | None,
    signals: Collection[str],
    exact: bool,
    query_variants: Collection[str],
    limits: Limits,
    media: SharedImage | None = None,
) -> list[Signal]:
    """Decode + perceptual hashes; on failure sets ``result.error`` and returns [].

    ``media``: the image's :class:`SharedImage` (made by the caller, who shares its
    decodes with other steps); None: a private one.
    """
    if detected is None:
        result.error = MediaError(
            "not a supported image or video (unrecognised content)", "unsupported_type"
        )
        return []
    media_type, fmt = detected
    result.media_type, result.format = media_type, fmt
    try:
        if media_type == "image":
            media = media or SharedImage(source, fmt, limits)
            return _image_signals(result, media, signals, exact, query_variants)
        return _video_signals(result, source, fmt, signals, exact, limits)
    except MediaError as e:
        result.error = e
    except MemoryError:
        result.error = MediaError("out of memory while decoding", "too_many_pixels")
    except Exception as e:  # noqa: BLE001 - last line of defence: never raise for media
        result.error = MediaError(f"cannot decode {fmt}: {type(e).__name__}: {e}", "corrupt_media")
    return []


def hash_file(
    path: str | os.PathLike[str],
    *,
    signals: Collection[str] = DEFAULT_SIGNALS,
    exact: bool = True,
    query_variants: Collection[str] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> HashResult:
    """Hash one file. Never raises for bad or hostile media (see module docstring).

    ``signals``: any of ``md5``, ``sha1``, ``sha256``, ``pdq``, ``pdq-dihedral``,
    ``vpdq``. ``query_variants``: ``trimmed`` and/or ``dihedral`` (images only),
    filling ``HashResult.query_variants`` (``plain`` first).
    """
    return hash_file_shared(
        path, signals=signals, exact=exact, query_variants=query_variants, limits=limits
    )[0]


def hash_file_shared(
    path: str | os.PathLike[str],
    *,
    signals: Collection[str] = DEFAULT_SIGNALS,
    exact: bool = True,
    query_variants: Collection[str] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[HashResult, SharedImage | None]:
    """:func:`hash_file`, plus the image as read and decoded for hashing.

    The :class:`~sentinelle.media.shared.SharedImage` (None for videos, unreadable
    or undetected files) holds the bytes read once and the decodes made, for the
    next step on the same file (``scan`` gives it to provenance): nothing is read
    or decoded twice.
    """
    _check_options(signals, query_variants)
    p = Path(path)
    result = HashResult(path=str(path), size=0)
    crypto_names = [s for s in CRYPTO_SIGNALS if s in signals]
    crypto_later: Future[list[HashSignal]] | None = None
    try:
        st = p.stat()
        if not p.is_file():
            result.error = MediaError(f"not a regular file: {path}", "io_error")
            return result, None
        result.size = st.st_size
        if st.st_size > limits.max_file_bytes:
            result.error = MediaError(
                f"file is {st.st_size} bytes, over the limit of {limits.max_file_bytes}",
                "file_too_large",
            )
            return result, None
        with open(p, "rb") as fh:
            head = fh.read(HEAD_BYTES)
            detected = detect(head)
            small_image = (
                detected is not None
                and detected[0] == "image"
                and st.st_size <= IN_MEMORY_MAX_BYTES
            )
            if small_image:
                # One read: the bytes feed both the crypto hashes and the decoder.
                fh.seek(0)  # one read into one buffer (head + rest would copy it)
                data = fh.read(limits.max_file_bytes + 1)
                source: _Source = data
                if len(data) >= CRYPTO_THREAD_MIN_BYTES and crypto_names:
                    crypto_later = _crypto_pool().submit(crypto_hashes_bytes, data, crypto_names)
                    crypto = []
                else:
                    crypto = crypto_hashes_bytes(data, crypto_names)
                size = len(data)
            else:
                fh.seek(0)
                crypto, size = crypto_hashes_stream(fh, crypto_names)
                source = p
    except FileNotFoundError:
        result.error = MediaError(f"no such file: {path}", "io_error")
        return result, None
    except OSError as e:
        result.error = MediaError(f"cannot read {path}: {e.strerror or e}", "io_error")
        return result, None
    result.size = size
    if size > limits.max_file_bytes:  # the file grew while we read it
        result.error = MediaError("file grew past the size limit while reading", "file_too_large")
        return result, None
    if size == 0:
        result.signals = list(crypto)
        result.error = MediaError("file is empty", "empty_file")
        return result, None
    media = None
    if detected is not None and detected[0] == "image":
        media = SharedImage(source, detected[1], limits)
    try:
        perceptual = _perceptual(
            result, source, detected, signals, exact, query_variants, limits, media
        )
    finally:
        if crypto_later is not None:
            crypto = crypto_later.result()
    result.signals = [*perceptual, *crypto]
    return result, media


def hash_bytes(
    data: bytes,
    *,
    name: str | None = None,
    signals: Collection[str] = DEFAULT_SIGNALS,
    exact: bool = True,
    query_variants: Collection[str] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> HashResult:
    """Like :func:`hash_file` for in-memory content (``name`` is only recorded as ``path``).

    Nothing is written to disk: images and videos are decoded from memory.
    """
    _check_options(signals, query_variants)
    result = HashResult(path=name, size=len(data))
    if len(data) > limits.max_file_bytes:
        result.error = MediaError(
            f"data is {len(data)} bytes, over the limit of {limits.max_file_bytes}",
            "file_too_large",
        )
        return result
    data = bytes(data)
    crypto = crypto_hashes_bytes(data, [s for s in CRYPTO_SIGNALS if s in signals])
    if not data:
        result.signals = list(crypto)
        result.error = MediaError("data is empty", "empty_file")
        return result
    detected = detect(data[:HEAD_BYTES])
    perceptual = _perceptual(result, data, detected, signals, exact, query_variants, limits)
    result.signals = [*perceptual, *crypto]
    return result


def enrollment_hashes(
    path_or_bytes: str | os.PathLike[str] | bytes,
    *,
    augment: bool = False,
    exact: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> list[PDQVariant]:
    """PDQ hashes to store when enrolling an image into a bank.

    Returns ``[plain]``, plus with ``augment=True`` one hash per central crop from
    :func:`sentinelle.signals.augment.central_crops` (named as that function names
    them), so crops of the enrolled image are matched too. Raises
    :class:`~sentinelle.errors.MediaError` when the input is not a decodable image.
    """
    if isinstance(path_or_bytes, bytes | bytearray):
        data = bytes(path_or_bytes)
        if len(data) > limits.max_file_bytes:
            raise MediaError("data is over the file size limit", "file_too_large")
    else:
        p = Path(path_or_bytes)
        try:
            if p.stat().st_size > limits.max_file_bytes:
                raise MediaError("file is over the file size limit", "file_too_large")
            data = p.read_bytes()
        except FileNotFoundError as e:
            raise MediaError(f"no such file: {p}", "io_error") from e
        except OSError as e:
            raise MediaError(f"cannot read {p}: {e.strerror or e}", "io_error") from e
    if not data:
        raise MediaError("file is empty", "empty_file")
    detected = detect(data[:HEAD_BYTES])
    if detected is None or detected[0] != "image":
        raise MediaError("enrollment from media needs an image", "unsupported_type")
    try:
        decoded = _decode_for_pdq(data, detected[1], exact, limits)
        plain, _ = _hash_views(decoded.image, "", False)
        out = [plain]
        if augment:
            from .augment import central_crops  # lazy: colleague's module

            for crop_name, crop in central_crops(decoded.image):
                h, q = pdq_from_array(to_pdq_rgb(crop))
                out.append(PDQVariant(crop_name, h, q))
        return out
    except MediaError:
        raise
    except MemoryError as e:
        raise MediaError("out of memory while decoding", "too_many_pixels") from e
    except Exception as e:  # noqa: BLE001
        raise MediaError(f"cannot decode image: {type(e).__name__}: {e}", "corrupt_media") from e


__all__ = [
    "DEFAULT_SIGNALS",
    "DIHEDRAL_NAMES",
    "QUERY_VARIANTS",
    "enrollment_hashes",
    "hash_bytes",
    "hash_file",
    "hash_file_shared",
]
