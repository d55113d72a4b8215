"""Read the metadata fields generator rules look at: text chunks, EXIF, XMP.

:func:`read_fields` gathers, from any format Pillow opens (PNG, JPEG, WebP, TIFF...):

* ``text``: PNG ``tEXt``/``zTXt``/``iTXt`` chunks by keyword (A1111 ``parameters``,
  ComfyUI ``prompt``/``workflow``, NovelAI ``Software``/``Comment``...), plus the JPEG
  ``COM`` segment as ``"comment"``;
* ``exif``: the EXIF tags generators write (``Software``, ``ImageDescription``,
  ``Make``, ``Model``, ``Artist``, and ``UserComment`` from the Exif sub-IFD, decoded
  from its 8-byte charset prefix);
* ``xmp``: the XMP packet flattened to ``{"{namespace}Name": [values]}``, parsed with
  defusedxml (XMP is attacker-controlled XML: entity expansion and DTDs are refused).

Everything is capped (field sizes, XMP size, number of fields) so a hostile file cannot
make the reader slow or huge. Nothing here decides anything: see :mod:`.metadata`.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from defusedxml import ElementTree as SafeET
from PIL import Image

if TYPE_CHECKING:  # pragma: no cover
    from .evidence import SourceContext

MAX_FIELD_CHARS = 1_000_000
MAX_XMP_BYTES = 2_000_000
MAX_FIELDS = 512

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RDF_CONTAINERS = {f"{{{RDF}}}{n}" for n in ("Alt", "Seq", "Bag", "li")}
_RDF_SKIP_ATTRS = {f"{{{RDF}}}{n}" for n in ("about", "parseType", "resource", "nodeID", "ID")}

EXIF_TAGS = {
    0x010E: "ImageDescription",
    0x010F: "Make",
    0x0110: "Model",
    0x0131: "Software",
    0x013B: "Artist",
    0x8298: "Copyright",
}
EXIF_SUB_TAGS = {
    0x9286: "UserComment",
    0xA434: "LensModel",
    0xA433: "LensMake",
    0x829A: "ExposureTime",
    0x829D: "FNumber",
    0x8827: "ISOSpeedRatings",
    0x920A: "FocalLength",
    0x9003: "DateTimeOriginal",
    0xA431: "BodySerialNumber",
}


@dataclass
class MetadataFields:
    """The metadata of one file, as plain strings (see the module docstring)."""

    format: str | None = None
    text: dict[str, str] = field(default_factory=dict)
    exif: dict[str, str] = field(default_factory=dict)
    xmp: dict[str, list[str]] = field(default_factory=dict)
    xmp_error: str | None = None
    image: Image.Image | None = None

    def xmp_values(self, namespace: str, name: str) -> list[str]:
        return self.xmp.get(f"{{{namespace}}}{name}", [])


def _cap(value: str) -> str:
    return value[:MAX_FIELD_CHARS]


def decode_user_comment(raw: Any) -> str:
    """EXIF ``UserComment``: 8-byte charset prefix then the text.

    ``UNICODE`` is UTF-16 of either byte order (piexif, used by AUTOMATIC1111, writes
    big-endian; some tools write little-endian), so both are tried and the one with
    fewer unprintable characters wins.
    """
    if isinstance(raw, str):
        return _cap(raw)
    if not isinstance(raw, bytes | bytearray):
        return ""
    raw = bytes(raw[: 2 * MAX_FIELD_CHARS + 8])
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        candidates = [body.decode(enc, "replace") for enc in ("utf-16-be", "utf-16-le")]
        return _cap(min(candidates, key=_unprintable).rstrip("\x00"))
    if prefix.startswith((b"ASCII", b"JIS", b"\x00" * 8)):
        return _cap(body.decode("utf-8", "replace").rstrip("\x00"))
    return _cap(raw.decode("utf-8", "replace").rstrip("\x00"))


def _unprintable(text: str) -> int:
    return sum(1 for ch in text if not ch.isprintable() and ch not in "\n\r\t")


def _exif_value(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return _cap(bytes(value).decode("utf-8", "replace").rstrip("\x00"))
    if isinstance(value, tuple):
        return ", ".join(_exif_value(v) for v in value[:16])
    return _cap(str(value)).rstrip("\x00")


def read_exif(img: Image.Image) -> dict[str, str]:
    """The generator- and camera-relevant EXIF tags of ``img`` (empty when none)."""
    out: dict[str, str] = {}
    try:
        exif = img.getexif()
    except Exception:  # noqa: BLE001 - corrupt EXIF is just "no EXIF"
        return out
    for tag, name in EXIF_TAGS.items():
        if tag in exif:
            out[name] = _exif_value(exif[tag])
    try:
        sub = exif.get_ifd(0x8769)
    except Exception:  # noqa: BLE001
        sub = {}
    for tag, name in EXIF_SUB_TAGS.items():
        if tag in sub:
            value = sub[tag]
            out[name] = decode_user_comment(value) if tag == 0x9286 else _exif_value(value)
    return out


def parse_xmp(packet: bytes | str) -> dict[str, list[str]]:
    """Flatten an XMP packet to ``{"{ns}Name": [values]}``.

    Property values come from element text, ``rdf:resource`` and ``rdf:li`` items (an
    item counts for the property that holds the ``rdf:Alt/Seq/Bag``), and from
    attributes of ``rdf:Description`` (the short form). Raises ``ValueError`` for
    malformed or hostile XML (DTDs and entities are refused by defusedxml).
    """
    if isinstance(packet, str):
        packet = packet.encode("utf-8", "replace")
    if len(packet) > MAX_XMP_BYTES:
        raise ValueError(f"XMP packet is {len(packet)} bytes, over {MAX_XMP_BYTES}")
    start = packet.find(b"<")
    if start < 0:
        raise ValueError("XMP packet holds no XML")
    try:
        root = SafeET.fromstring(packet[start:].rstrip(b"\x00 \r\n\t"), forbid_dtd=True)
    except Exception as e:  # noqa: BLE001 - ParseError, DTDForbidden, EntitiesForbidden...
        raise ValueError(f"malformed XMP: {type(e).__name__}: {e}"[:200]) from e
    values: dict[str, list[str]] = {}

    def add(key: str, value: str | None) -> None:
        text = (value or "").strip()
        if not text or (key not in values and len(values) >= MAX_FIELDS):
            return
        items = values.setdefault(key, [])
        if len(items) < 64:
            items.append(_cap(text))

    def walk(elem: Any, prop: str | None, depth: int) -> None:
        if depth > 64:
            return
        tag = elem.tag if isinstance(elem.tag, str) else ""
        is_container = tag in _RDF_CONTAINERS
        is_description = tag == f"{{{RDF}}}Description"
        here = prop if is_container else (None if is_description else tag)
        if here and not tag.startswith(f"{{{RDF}}}RDF"):
            add(here, elem.text)
            add(here, elem.attrib.get(f"{{{RDF}}}resource"))
        for name, value in elem.attrib.items():
            if name in _RDF_SKIP_ATTRS or name.startswith("{http://www.w3.org/XML"):
                continue
            add(name, value)
        for child in elem:
            walk(child, here, depth + 1)

    walk(root, None, 0)
    return values


def _open_headers(data: bytes) -> Image.Image | None:
    """Open without decoding pixels (for files the context refused: huge or truncated)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - not an image Pillow knows
        return None


def read_fields(data: bytes, ctx: SourceContext) -> MetadataFields:
    """Gather text chunks, EXIF and XMP of the file (empty fields when there are none).

    Read once per file: the result is kept in ``ctx.shared`` for the other sources
    (:mod:`.camera` reads the same EXIF and image headers).
    """
    cached = ctx.shared.get("metadata_fields")
    if isinstance(cached, MetadataFields):
        return cached
    fields = _read_fields(data, ctx)
    ctx.shared["metadata_fields"] = fields
    return fields


def _read_fields(data: bytes, ctx: SourceContext) -> MetadataFields:
    img = ctx.header_image() or _open_headers(data)  # JPEG: headers only, no pixel decode
    fields = MetadataFields()
    if img is None:
        return fields
    fields.image = img
    fields.format = img.format
    info = dict(getattr(img, "info", {}) or {})
    for key, value in list(info.items())[:MAX_FIELDS]:
        if key in ("exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "photoshop"):
            continue
        if isinstance(value, str):
            fields.text[str(key)] = _cap(value)
        elif key == "comment" and isinstance(value, bytes | bytearray):
            fields.text["comment"] = _cap(bytes(value).decode("utf-8", "replace"))
    fields.exif = read_exif(img)
    packet = info.get("xmp") or info.get("XML:com.adobe.xmp")
    if packet:
        try:
            fields.xmp = parse_xmp(packet)
        except ValueError as e:
            fields.xmp_error = str(e)
    return fields
