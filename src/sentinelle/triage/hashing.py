"""Hash one file or archive member in a worker process: hashes, cues, provenance.

Reuses the scan's code: :func:`sentinelle.scan.runner._hash_only` for files on disk
(one read, fast-path PDQ, trimmed view), the hasher's own steps for member bytes,
and the scan's provenance record (:mod:`sentinelle.provenance`, sharing the bytes and
decodes hashing made). The worker answers a small JSON-able dict (:func:`hash_item`);
it never raises for bad media, and a wall-clock alarm backs the decoders' own limits.
"""

from __future__ import annotations

import hashlib
import io
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import MediaError
from ..media.limits import DEFAULT_LIMITS, Limits
from ..signals.types import HashResult, HashSignal, VPDQSignal

if TYPE_CHECKING:  # pragma: no cover
    from ..media.shared import SharedImage
    from ..provenance.evidence import DetectorConfig

VARIANTS = ("trimmed",)
CRYPTO = ("md5", "sha1", "sha256")


@dataclass(frozen=True)
class HashOptions:
    limits: Limits = DEFAULT_LIMITS
    provenance: bool = True
    provenance_sources: tuple[str, ...] | None = ("c2pa", "metadata", "camera", "detector")
    trust_anchors_pem: str | None = None
    detector: DetectorConfig | None = None
    exact: bool = False  # reference-exact PDQ (slower); default: the scan's fast path


class _Alarm:
    def __init__(self, seconds: float, exc: BaseException) -> None:
        self.seconds, self.exc = seconds, exc

    def __enter__(self) -> None:
        def _fire(signum: int, frame: object) -> None:
            raise self.exc

        self.old = signal.signal(signal.SIGALRM, _fire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.old)


def _hash_data(
    data: bytes, name: str, exact: bool, limits: Limits
) -> tuple[HashResult, SharedImage | None]:
    """:func:`sentinelle.signals.hasher.hash_file_shared` for bytes held in memory."""
    from ..media.detect import HEAD_BYTES, detect
    from ..media.shared import SharedImage
    from ..signals.crypto import crypto_hashes_bytes
    from ..signals.hasher import _perceptual

    result = HashResult(path=name, size=len(data))
    if len(data) > limits.max_file_bytes:
        result.error = MediaError("member over the file size limit", "file_too_large")
        return result, None
    crypto = crypto_hashes_bytes(data, list(CRYPTO))
    if not data:
        result.signals = list(crypto)
        result.error = MediaError("file is empty", "empty_file")
        return result, None
    detected = detect(data[:HEAD_BYTES])
    media = None
    if detected is not None and detected[0] == "image":
        media = SharedImage(data, detected[1], limits)
    try:
        with _Alarm(
            limits.decode_timeout_s * 1.5 + 1.0,
            MediaError(f"decoding took longer than {limits.decode_timeout_s:g}s", "decode_timeout"),
        ):
            perceptual = _perceptual(
                result, data, detected, ("pdq", "vpdq"), exact, VARIANTS, limits, media
            )
    except MediaError as e:
        result.error = e
        perceptual = []
    result.signals = [*perceptual, *crypto]
    return result, media


def _provenance(
    name: str, path: str | None, data: bytes | None, media: SharedImage | None, o: HashOptions
) -> dict[str, Any] | None:
    from ..provenance import analyze_bytes, analyze_file
    from ..provenance.analyze import DEFAULT_MAX_BYTES

    kw: dict[str, Any] = {
        "trust_anchors_pem": o.trust_anchors_pem,
        "max_bytes": min(o.limits.max_file_bytes, DEFAULT_MAX_BYTES),
        "sources": o.provenance_sources,
        "detector": o.detector,
    }
    try:
        with _Alarm(o.limits.decode_timeout_s * 1.5 + 1.0, TimeoutError("provenance timed out")):
            if media is not None and media.data is not None:
                res = analyze_bytes(media.data, path=name, decoder=media.full_image, **kw)
            elif data is not None:
                res = analyze_bytes(data, path=name, **kw)
            elif path is not None:
                res = analyze_file(path, **kw)
            else:
                return None
    except Exception:  # noqa: BLE001 - provenance must never lose the hash record
        return None
    rec = res.to_dict()
    rec.pop("path", None)
    return rec


def _gps(gps: Any) -> list[float] | None:
    def deg(v: Any, ref: Any) -> float | None:
        try:
            d, m, s = (float(x) for x in v)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        out = d + m / 60 + s / 3600
        return -out if str(ref).upper().startswith(("S", "W")) else out

    if not gps:
        return None
    lat, lon = deg(gps.get(2), gps.get(1)), deg(gps.get(4), gps.get(3))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    if lat == 0 and lon == 0:
        return None
    return [round(lat, 7), round(lon, 7)]


def _text(v: Any, n: int = 100) -> str | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    s = str(v).replace("\x00", "").strip()
    return s[:n] or None


def read_cues(data: bytes) -> dict[str, Any]:
    """Capture cues from an image's headers (no pixel decode): EXIF make, model,
    body serial, software, capture time, GPS, and a digest of non-standard JPEG
    quantisation tables (camera firmware / editor fingerprint)."""
    from PIL import Image

    out: dict[str, Any] = {}
    try:
        with Image.open(io.BytesIO(data)) as im:
            exif = im.getexif()
            out["make"] = _text(exif.get(0x010F))
            out["model"] = _text(exif.get(0x0110))
            out["software"] = _text(exif.get(0x0131))
            sub = exif.get_ifd(0x8769)
            out["serial"] = _text(sub.get(0xA431)) or _text(exif.get(0xC62F))
            taken = _text(sub.get(0x9003)) or _text(exif.get(0x0132))
            if taken:
                sub_s = _text(sub.get(0x9291))
                out["taken_at"] = taken + (f".{sub_s}" if sub_s and sub_s.isdigit() else "")
            out["gps"] = _gps(exif.get_ifd(0x8825))
            if im.format == "JPEG":
                tables = dict(getattr(im, "quantization", None) or {})
                if tables:
                    from ..provenance.camera import standard_tables

                    key = tuple(tuple(tables[i]) for i in sorted(tables))
                    if key not in standard_tables():
                        out["qtables"] = hashlib.sha1(repr(key).encode()).hexdigest()[:16]
    except Exception:  # noqa: BLE001 - hostile headers: no cues, never a failure
        pass
    return {k: v for k, v in out.items() if v is not None}


CROP_PERCENTS = (6, 12)
"""Central crops hashed for near-duplicate grouping: PDQ drifts past 31 bits for crops
of a few percent, so each image also offers the hashes of its central 94% and 88%
(a cropped copy lands near one of them; see :mod:`sentinelle.signals.augment`)."""


def _crop_variants(media: SharedImage, exact: bool) -> list[list[Any]]:
    from ..media.image import to_pdq_rgb
    from ..signals.augment import central_crops
    from ..signals.pdq import FAST_MIN_SIDE, pdq_from_array

    try:
        im = media.decode(None if exact else FAST_MIN_SIDE).image
        out = []
        for name, crop in central_crops(im, CROP_PERCENTS):
            h, q = pdq_from_array(to_pdq_rgb(crop))
            out.append([name, h, q])
        return out
    except Exception:  # noqa: BLE001 - extra views only: never lose the record
        return []


def hash_item(
    path: str | None, data: bytes | None, name: str, options: HashOptions
) -> dict[str, Any]:
    """Runs in a worker: hash a file on disk (``path``) or member bytes (``data``)."""
    try:
        return _hash_item(path, data, name, options)
    except MediaError as e:
        return {"error": [e.code, e.message[:300]], "size": len(data or b"")}
    except Exception as e:  # noqa: BLE001 - a worker always answers
        return {"error": ["internal_error", type(e).__name__], "size": len(data or b"")}


def _hash_item(path: str | None, data: bytes | None, name: str, o: HashOptions) -> dict[str, Any]:
    from ..scan.runner import _hash_only

    if data is not None:
        result, media = _hash_data(data, name, o.exact, o.limits)
    else:
        assert path is not None
        result, media = _hash_only(path, o.exact, VARIANTS, o.limits)
    rec: dict[str, Any] = {
        "size": result.size,
        "media_type": result.media_type,
        "format": result.format,
        "width": result.width,
        "height": result.height,
        "error": [result.error.code, result.error.message[:300]] if result.error else None,
    }
    for s in result.signals:
        if isinstance(s, HashSignal):
            rec[s.type] = s.hash
            if s.type == "pdq":
                rec["pdq_quality"] = s.quality
        elif isinstance(s, VPDQSignal):
            rec["vpdq"] = [[f.frame, f.hash, f.quality, round(f.timestamp, 3)] for f in s.frames]
    rec["variants"] = [
        [v.variant, v.hash, v.quality] for v in result.query_variants if v.variant != "plain"
    ]
    if media is not None and result.error is None and result.media_type == "image":
        rec["variants"] += _crop_variants(media, o.exact)
    raw = media.data if media is not None else data
    rec["meta"] = read_cues(raw) if raw is not None and result.media_type == "image" else {}
    if o.provenance and result.media_type is not None:
        rec["provenance"] = _provenance(name, path, data, media, o)
    return rec
