"""Signal records: what hashing a piece of media produces.

Hash hex strings are lowercase. PDQ hashes are 64 hex chars (256 bits, big-endian,
as in python-threatexchange and the reference C++).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import MediaError

CRYPTO_SIGNALS = ("md5", "sha1", "sha256")
SIGNAL_TYPES = ("pdq", "pdq-dihedral", "vpdq", "md5", "sha1", "sha256")


@dataclass(frozen=True)
class HashSignal:
    """A single hash: ``md5``/``sha1``/``sha256`` (quality None) or ``pdq``."""

    type: str
    hash: str
    quality: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "hash": self.hash}
        if self.quality is not None:
            d["quality"] = self.quality
        return d


@dataclass(frozen=True)
class PDQVariant:
    """A query-side PDQ hash of a transformed view of the image.

    ``variant``: ``plain``, ``trimmed`` (uniform borders/padding removed),
    ``rotate90``, ``rotate180``, ``rotate270``, ``flipx``, ``flipy``,
    ``flip_plus1`` (transpose), ``flip_minus1`` (transverse); trimmed
    dihedral views are named ``trimmed+rotate90`` etc.
    """

    variant: str
    hash: str
    quality: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DihedralSignal:
    type: str = "pdq-dihedral"
    hashes: tuple[PDQVariant, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "hashes": [h.to_dict() for h in self.hashes]}


@dataclass(frozen=True)
class VideoFrame:
    frame: int
    hash: str
    quality: int
    timestamp: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame,
            "hash": self.hash,
            "quality": self.quality,
            "timestamp": round(self.timestamp, 3),
        }


@dataclass(frozen=True)
class VPDQSignal:
    frames: tuple[VideoFrame, ...]
    type: str = "vpdq"

    def unique_frames(self, min_quality: int = 0) -> list[VideoFrame]:
        """Frames with duplicate hashes collapsed (first occurrence kept)."""
        seen: set[str] = set()
        out = []
        for f in self.frames:
            if f.quality < min_quality or f.hash in seen:
                continue
            seen.add(f.hash)
            out.append(f)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "frames": [f.to_dict() for f in self.frames]}


Signal = HashSignal | DihedralSignal | VPDQSignal


@dataclass
class HashResult:
    """Everything hashing one file produced.

    ``signals`` is what ``sentinelle hash`` prints. ``query_variants`` holds extra
    PDQ hashes used only for matching (trimmed view, dihedral views); it is empty
    unless requested.
    """

    path: str | None
    size: int
    media_type: str | None = None  # "image" / "video"
    format: str | None = None  # "jpeg", "png", "mp4", ...
    width: int | None = None
    height: int | None = None
    signals: list[Signal] = field(default_factory=list)
    query_variants: list[PDQVariant] = field(default_factory=list)
    error: MediaError | None = None

    def signal(self, type_: str) -> Signal | None:
        for s in self.signals:
            if s.type == type_:
                return s
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "media_type": self.media_type,
            "format": self.format,
            "signals": [s.to_dict() for s in self.signals],
            "error": self.error.to_dict() if self.error else None,
        }
