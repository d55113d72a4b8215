"""Evidence source: traits of camera capture (EXIF consistency, JPEG quantisation tables).

Both signals are **weak** on their own: EXIF is trivially copied or written, and camera
quantisation tables survive only until the first re-encode. They still help triage a
file that carries nothing stronger: a photo straight from a camera usually has a
consistent set of EXIF capture fields and a vendor-specific quantisation table, while
generator output and most re-encoded copies have neither.

* **EXIF consistency**: ``Make`` and ``Model`` together with plausible exposure fields
  (exposure time, f-number, ISO, focal length, capture time) -> ``camera`` (weak). The
  same fields with impossible values (f/0.1, ISO 0, a 3-hour exposure...) -> ``none``
  with the problems listed: a sign of forged or corrupted EXIF.
* **JPEG quantisation tables**: compared with the standard libjpeg tables scaled for
  every quality 1-100 (built once by encoding a tiny image with Pillow, so the ordering
  of table entries is the same on both sides). Standard tables mean a libjpeg-family
  encoder (software, many phones, every re-encode by a web service) and are reported
  as ``none``; a non-standard table is typical of camera firmware or of an image editor
  (Photoshop uses its own tables) and is reported as weak ``camera`` evidence.
* C2PA ``digitalCapture`` assertions, the only *strong* camera evidence, are read by
  the C2PA source (:mod:`.c2pa_reader`).
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from PIL import Image

from .evidence import Evidence
from .metadata_fields import read_fields

if TYPE_CHECKING:  # pragma: no cover
    from .evidence import SourceContext

SOURCE = "camera"
EXPOSURE_FIELDS = ("ExposureTime", "FNumber", "ISOSpeedRatings", "FocalLength")


def _number(value: str | None) -> float | None:
    """First number of an EXIF value rendered as text (``"0.004"``, ``"(1, 250)"``...)."""
    if not value:
        return None
    nums = re.findall(r"-?\d+(?:\.\d+)?", value)
    if not nums:
        return None
    if value.strip().startswith("(") and len(nums) >= 2 and float(nums[1]) != 0:
        return float(nums[0]) / float(nums[1])
    return float(nums[0])


def exif_problems(exif: dict[str, str]) -> list[str]:
    """Impossible capture values in ``exif`` (empty when plausible or absent)."""
    limits = {
        "ExposureTime": (1e-6, 3600.0, "exposure time {v} s"),
        "FNumber": (0.5, 128.0, "f-number f/{v}"),
        "ISOSpeedRatings": (1.0, 10_000_000.0, "ISO {v}"),
        "FocalLength": (0.5, 5000.0, "focal length {v} mm"),
    }
    problems = []
    for name, (low, high, text) in limits.items():
        value = _number(exif.get(name))
        if name in exif and (value is None or not low <= value <= high):
            problems.append(f"implausible {text.format(v=exif[name][:20])}")
    when = exif.get("DateTimeOriginal", "")
    if when and not re.match(r"^(19[89]\d|20\d\d):[01]\d:[0-3]\d [0-2]\d:[0-5]\d:[0-5]\d", when):
        problems.append(f"malformed capture time {when[:25]!r}")
    return problems


def exif_evidence(exif: dict[str, str]) -> list[Evidence]:
    """Weak camera evidence from EXIF capture fields (see the module docstring)."""
    make, model = exif.get("Make", "").strip(), exif.get("Model", "").strip()
    present = [f for f in EXPOSURE_FIELDS if exif.get(f)]
    if not (make and model) or not present:
        return []
    details: dict[str, Any] = {
        "rule": "exif_capture",
        "make": make[:60],
        "model": model[:60],
        "exposure_fields": present,
        "lens": exif.get("LensModel", "")[:60] or None,
        "capture_time": bool(exif.get("DateTimeOriginal")),
    }
    problems = exif_problems(exif)
    if problems:
        details["problems"] = problems
        return [
            Evidence(
                source=SOURCE,
                finding=f"EXIF claims a {make} {model} capture but has " + "; ".join(problems),
                strength="weak",
                indicates="none",
                forgeable=True,
                strippable=True,
                details=details,
            )
        ]
    return [
        Evidence(
            source=SOURCE,
            finding=(
                f"EXIF capture fields of a {make} {model} ({len(present)} of "
                f"{len(EXPOSURE_FIELDS)} exposure fields, plausible values); "
                "EXIF is easily copied or forged"
            ),
            strength="weak",
            indicates="camera",
            forgeable=True,
            strippable=True,
            details=details,
        )
    ]


@lru_cache(maxsize=1)
def standard_tables() -> dict[tuple[tuple[int, ...], ...], int]:
    """{(luma, chroma) table tuple: quality} for libjpeg's scaled tables, quality 1-100."""
    out: dict[tuple[tuple[int, ...], ...], int] = {}
    tiny = Image.new("RGB", (16, 16), (128, 100, 90))
    for quality in range(1, 101):
        buf = io.BytesIO()
        tiny.save(buf, "JPEG", quality=quality)
        with Image.open(buf) as im:
            tables = im.quantization  # type: ignore[attr-defined]
            key = tuple(tuple(tables[i]) for i in sorted(tables))
        out.setdefault(key, quality)
    return out


@lru_cache(maxsize=1)
def _standard_luma() -> dict[tuple[int, ...], int]:
    return {key[0]: q for key, q in standard_tables().items()}


def quantization_evidence(tables: dict[int, Any]) -> list[Evidence]:
    """Evidence from a JPEG's quantisation tables (Pillow's ``im.quantization``)."""
    if not tables:
        return []
    key = tuple(tuple(int(v) for v in tables[i]) for i in sorted(tables))
    quality = standard_tables().get(key)
    if quality is None and len(key) == 1:  # greyscale JPEG: luma table only
        quality = _standard_luma().get(key[0])
    details: dict[str, Any] = {"rule": "jpeg_quantization", "tables": len(key)}
    if quality is not None:
        details.update(standard=True, libjpeg_quality=quality)
        return [
            Evidence(
                source=SOURCE,
                finding=(
                    f"standard libjpeg quantisation tables (quality {quality}): written by a "
                    "software encoder or re-encoded, not a camera-specific table"
                ),
                strength="weak",
                indicates="none",
                forgeable=True,
                strippable=True,
                details=details,
            )
        ]
    details.update(standard=False, luma_dc=int(key[0][0]) if key and key[0] else None)
    return [
        Evidence(
            source=SOURCE,
            finding=(
                "non-standard JPEG quantisation tables, typical of camera firmware or an "
                "image editor (lost on any re-encode)"
            ),
            strength="weak",
            indicates="camera",
            forgeable=True,
            strippable=True,
            details=details,
        )
    ]


def collect(data: bytes, ctx: SourceContext) -> list[Evidence]:
    """Evidence source: EXIF capture consistency and JPEG quantisation tables."""
    fields = read_fields(data, ctx)  # shared with the metadata source: parsed once
    img = fields.image  # decoded, or headers only (EXIF and DQT come first)
    if img is None:  # not an image: nothing to say
        return []
    items = exif_evidence(fields.exif)
    if img.format == "JPEG":
        try:
            tables = dict(getattr(img, "quantization", None) or {})
        except Exception:  # noqa: BLE001 - malformed DQT
            tables = {}
        items += quantization_evidence(tables)
    return items
