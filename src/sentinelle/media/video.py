"""Safe video decoding with PyAV (FFmpeg's libraries, no ``ffmpeg`` binary needed).

:func:`iter_frames` yields every decoded frame of the first video stream as a
numpy array, with its index and timestamp, while enforcing
:class:`~sentinelle.media.limits.Limits`:

* ``max_pixels``: the frame size from the stream header is checked before
  decoding, and every frame is checked again (resolution can change mid-stream);
* ``max_frames`` and ``max_video_seconds``: the stream is abandoned (with an
  error, never silently truncated) when either is exceeded;
* ``decode_timeout_s``: wall-clock time is checked after every frame and packet.

Every failure is a :class:`~sentinelle.errors.MediaError` (``corrupt_media``,
``no_frames``, ``too_many_pixels``, ``too_many_frames``, ``decode_timeout``).

Frame formats: ``rgb24`` at native size is what the reference vPDQ hashes
(FFmpeg converts each frame to RGB24). For speed, frames can instead be scaled
by swscale (in C) and delivered as ``gray`` (luma only), which
is all PDQ uses.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import MediaError
from .limits import DEFAULT_LIMITS, Limits


@dataclass(frozen=True)
class VideoInfo:
    """Facts from the container/stream header."""

    format: str
    width: int
    height: int
    fps: float | None
    duration_s: float | None
    codec: str


@dataclass(frozen=True)
class DecodedFrame:
    index: int  # 0-based, in decode (presentation) order
    timestamp: float  # seconds from the stream start
    pixels: np.ndarray  # (h, w, 3) uint8 for rgb24, (h, w) uint8 for gray


def _open_container(source: str | Path | bytes):  # -> av.container.InputContainer
    import av

    fp = io.BytesIO(source) if isinstance(source, bytes | bytearray) else str(source)
    try:
        # Timeouts (seconds) for network-ish blocking reads; local files never block long.
        return av.open(fp, mode="r", timeout=(10.0, 10.0))
    except Exception as e:  # noqa: BLE001 - FFmpeg raises many error types on bad input
        raise MediaError(f"cannot open video: {type(e).__name__}: {e}", "corrupt_media") from e


def _fps(stream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            f = float(Fraction(rate))
            if 0 < f < 1000:
                return f
    return None


def _scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int] | None:
    """Target size keeping aspect so the longer side is <= ``max_side`` (None: keep)."""
    if not max_side or max(width, height) <= max_side:
        return None
    s = max_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def iter_frames(
    source: str | Path | bytes,
    fmt: str = "video",
    limits: Limits = DEFAULT_LIMITS,
    *,
    pix_fmt: str = "rgb24",
    size: tuple[int, int] | None = None,
    max_side: int | None = None,
    threads: bool = False,
    interpolation: str = "BICUBIC",
    info_out: list[VideoInfo] | None = None,
) -> Iterator[DecodedFrame]:
    """Decode the first video stream frame by frame, enforcing ``limits``.

    ``pix_fmt``: ``"rgb24"`` or ``"gray"``. ``size=(w, h)`` scales every frame to
    exactly that size; ``max_side`` scales (keeping aspect) only frames larger than
    it, with swscale's ``interpolation`` filter. ``threads=True`` lets FFmpeg
    decode with several threads (faster, same pixels). When ``info_out`` is a
    list, the :class:`VideoInfo` is appended to it once the header is read.
    Raises :class:`MediaError`; the container is always closed, even when the
    caller stops iterating early.
    """
    start = time.monotonic()
    container = _open_container(source)
    try:
        if not container.streams.video:
            raise MediaError("file has no video stream", "no_frames")
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"
        ctx = stream.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width * height > limits.max_pixels:
            raise MediaError(
                f"video frames are {width}x{height}, over the pixel limit {limits.max_pixels}",
                "too_many_pixels",
            )
        fps = _fps(stream)
        duration = None
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        if duration is not None and duration > limits.max_video_seconds:
            raise MediaError(
                f"video lasts {duration:.0f} s, over the limit {limits.max_video_seconds:.0f} s",
                "too_many_frames",
            )
        if info_out is not None:
            info_out.append(VideoInfo(fmt, width, height, fps, duration, ctx.name))

        index = 0
        for packet in container.demux(stream):
            if time.monotonic() - start > limits.decode_timeout_s:
                raise _timeout(limits)
            try:
                frames = packet.decode()
            except Exception as e:  # noqa: BLE001
                raise MediaError(
                    f"corrupt video data at frame {index}: {type(e).__name__}: {e}",
                    "corrupt_media",
                ) from e
            for frame in frames:
                if frame.width * frame.height > limits.max_pixels:
                    raise MediaError(
                        f"frame {index} is {frame.width}x{frame.height}, over the pixel limit",
                        "too_many_pixels",
                    )
                if index >= limits.max_frames:
                    raise MediaError(
                        f"video has more than {limits.max_frames} frames", "too_many_frames"
                    )
                ts = frame.time
                if ts is None:
                    ts = index / fps if fps else 0.0
                if ts > limits.max_video_seconds:
                    raise MediaError(
                        f"video runs past {limits.max_video_seconds:.0f} s", "too_many_frames"
                    )
                target = size or _scaled_size(frame.width, frame.height, max_side)
                try:
                    if target is None:
                        pixels = frame.to_ndarray(format=pix_fmt)
                    else:
                        pixels = frame.reformat(
                            width=target[0],
                            height=target[1],
                            format=pix_fmt,
                            interpolation=interpolation,
                        ).to_ndarray()
                except Exception as e:  # noqa: BLE001
                    raise MediaError(
                        f"cannot convert frame {index}: {type(e).__name__}: {e}", "corrupt_media"
                    ) from e
                yield DecodedFrame(index, float(ts), pixels)
                index += 1
                if time.monotonic() - start > limits.decode_timeout_s:
                    raise _timeout(limits)
        if index == 0:
            raise MediaError("video stream has no decodable frames", "no_frames")
    except MediaError:
        raise
    except Exception as e:  # noqa: BLE001 - demuxer errors on hostile input
        raise MediaError(f"corrupt video: {type(e).__name__}: {e}", "corrupt_media") from e
    finally:
        container.close()


def _timeout(limits: Limits) -> MediaError:
    return MediaError(
        f"decoding took longer than {limits.decode_timeout_s:.0f} s", "decode_timeout"
    )
