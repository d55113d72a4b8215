"""NovelAI "stealth" metadata: generation parameters hidden in the pixels' low bits.

NovelAI writes a copy of its metadata into the least significant bit of the **alpha**
channel, so it survives metadata stripping (but not re-encoding to JPEG, flattening the
alpha, or resizing). The layout, from NovelAI's published reader and the
``stealth-pnginfo`` web-UI extension that adopted it:

* bits are read **column by column** (x outer, y inner: the alpha plane transposed);
* a 15-byte magic: ``stealth_pngcomp`` (payload gzip-compressed, NovelAI's choice) or
  ``stealth_pnginfo`` (plain UTF-8);
* a 32-bit big-endian **bit** count of the payload, then the payload;
* the payload is JSON (``Software``, ``Source``, ``Comment`` = a JSON string with the
  generation settings...).

The extension's ``stealth_rgbinfo`` / ``stealth_rgbcomp`` variants put the bits in the
LSB of R, G and B instead (three bits per pixel, same column order); they are read too.

Everything is bounded: the payload length is checked against the pixels available and a
cap, and gzip is inflated with an output limit (a zip bomb stops at the cap).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

MAGIC_LEN = 15
MAX_PAYLOAD_BYTES = 4_000_000
ALPHA_MAGICS = {b"stealth_pngcomp": True, b"stealth_pnginfo": False}
RGB_MAGICS = {b"stealth_rgbcomp": True, b"stealth_rgbinfo": False}


class StealthError(ValueError):
    """A magic was found but the payload is unreadable (truncated, not gzip, not JSON)."""


@dataclass(frozen=True)
class StealthPayload:
    channel: str  # "alpha" or "rgb"
    compressed: bool
    data: dict[str, Any]


def _bit_stream(img: Image.Image, channel: str, n_bits: int) -> np.ndarray:
    """The first ``n_bits`` LSBs in column-major order (fewer when the image is small)."""
    width, height = img.size
    per_column = height * (1 if channel == "alpha" else 3)
    columns = min(width, -(-n_bits // per_column))
    box = (0, 0, columns, height)
    if channel == "alpha":
        plane = np.asarray(img.getchannel("A").crop(box), dtype=np.uint8)
        bits = plane.T.reshape(-1) & 1
    else:
        rgb = np.asarray(img.convert("RGB").crop(box), dtype=np.uint8)
        bits = rgb.transpose(1, 0, 2).reshape(-1) & 1
    return bits[:n_bits]


def _bytes(bits: np.ndarray) -> bytes:
    return np.packbits(bits[: bits.size // 8 * 8]).tobytes()


def _inflate(blob: bytes) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(blob, MAX_PAYLOAD_BYTES)
    except zlib.error as e:
        raise StealthError(f"stealth payload is not gzip data: {e}") from e
    if inflater.unconsumed_tail:
        raise StealthError(f"stealth payload inflates to more than {MAX_PAYLOAD_BYTES} bytes")
    return out


def read_stealth(img: Image.Image) -> StealthPayload | None:
    """The stealth payload of ``img``, None when there is no magic, StealthError if broken."""
    has_alpha = "A" in img.getbands()
    for channel, magics in (("alpha", ALPHA_MAGICS), ("rgb", RGB_MAGICS)):
        if channel == "alpha" and not has_alpha:
            continue
        magic = _bytes(_bit_stream(img, channel, MAGIC_LEN * 8))
        if magic not in magics:
            continue
        compressed = magics[magic]
        header_bits = (MAGIC_LEN + 4) * 8
        head = _bit_stream(img, channel, header_bits)
        if head.size < header_bits:
            raise StealthError("stealth magic found but the image ends before the length")
        n_bits = int.from_bytes(_bytes(head[MAGIC_LEN * 8 :]), "big")
        if n_bits <= 0 or n_bits // 8 > MAX_PAYLOAD_BYTES:
            raise StealthError(f"stealth payload length {n_bits} bits is out of range")
        stream = _bit_stream(img, channel, header_bits + n_bits)
        if stream.size < header_bits + n_bits:
            raise StealthError("stealth payload is longer than the image")
        blob = _bytes(stream[header_bits:])
        raw = _inflate(blob) if compressed else blob
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StealthError(f"stealth payload is not JSON: {e}"[:200]) from e
        if not isinstance(data, dict):
            raise StealthError("stealth payload is not a JSON object")
        return StealthPayload(channel, compressed, data)
    return None


def write_stealth(
    img: Image.Image, data: dict[str, Any], *, compressed: bool = True
) -> Image.Image:
    """Return an RGBA copy of ``img`` with ``data`` in its alpha LSBs (for tests/benchmarks).

    Raises ``ValueError`` when the image has too few pixels for the payload.
    """
    import gzip

    payload = json.dumps(data).encode("utf-8")
    if compressed:
        payload = gzip.compress(payload)
    magic = b"stealth_pngcomp" if compressed else b"stealth_pnginfo"
    message = magic + (len(payload) * 8).to_bytes(4, "big") + payload
    bits = np.unpackbits(np.frombuffer(message, dtype=np.uint8))
    out = img.convert("RGBA")
    alpha = np.asarray(out.getchannel("A"), dtype=np.uint8).T.copy()  # column-major view
    flat = alpha.reshape(-1)
    if bits.size > flat.size:
        raise ValueError("image too small for the stealth payload")
    flat[: bits.size] = (flat[: bits.size] & 0xFE) | bits
    out.putalpha(Image.fromarray(np.ascontiguousarray(flat.reshape(alpha.shape).T)))
    return out
