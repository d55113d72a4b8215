"""Resource limits applied to every piece of media before and while decoding."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 2 * 1024**3  # 2 GiB
    max_pixels: int = 100_000_000  # per image / frame (decompression bombs)
    decode_timeout_s: float = 60.0  # wall clock per file
    max_frames: int = 100_000  # video frames decoded per file
    max_video_seconds: float = 4 * 3600.0


DEFAULT_LIMITS = Limits()
