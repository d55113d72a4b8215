"""Video as a strip of key frames, so a reviewer never has to play a clip.

:func:`keyframes` picks up to ``count`` frames spread evenly over a video. Two
ways, cheapest first:

1. **Key frames only.** FFmpeg is told to skip every non-key frame
   (``skip_frame = "NONKEY"``), so only the intra-coded frames are decoded, far
   less work than decoding the whole clip (not benchmarked in bench/). When the
   video has at least ``count`` key frames, ``count`` of them,
   evenly spread, make the strip.
2. **Every frame**, through :func:`sentinelle.media.video.iter_frames`, when key
   frames are too few (long GOPs, very short clips). When the container states
   its duration, the frames nearest to the middles of ``count`` equal slices are
   kept and decoding stops after the last one; otherwise a bounded reservoir
   keeps every ``stride``-th frame and halves itself (doubling the stride)
   whenever it holds ``2 * count`` frames, so memory stays bounded however long
   the video is.

Both ways apply the decode limits of :class:`~sentinelle.media.limits.Limits`
(pixels per frame, duration, frame count, wall-clock time) and scale frames down
while decoding (``max_side``); every failure is a
:class:`~sentinelle.errors.MediaError`.

:func:`compose_strip` lays frames side by side on a neutral background. Audio
is never decoded.
"""

from __future__ import annotations

import time

from PIL import Image

from ..errors import MediaError
from ..media.limits import Limits
from ..media.video import VideoInfo, _open_container, _scaled_size, iter_frames

DEFAULT_COUNT = 6
FRAME_SIDE = 320
GAP = 4
BACKGROUND = (40, 42, 48)


def _spread(items: list, count: int) -> list:
    """``count`` items evenly spread over ``items`` (all of them when fewer)."""
    if len(items) <= count:
        return list(items)
    step = len(items) / count
    return [items[int(step * i + step / 2)] for i in range(count)]


def intra_frames(data: bytes, *, max_side: int, limits: Limits) -> list[Image.Image]:
    """Every key (intra-coded) frame of the first video stream, scaled down, in order.

    At most ``limits.max_frames`` frames; stops with ``decode_timeout`` past the
    wall-clock limit. Returns ``[]`` when no key frame decodes (caller falls back).
    """
    start = time.monotonic()
    container = _open_container(data)
    try:
        if not container.streams.video:
            raise MediaError("file has no video stream", "no_frames")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if int(ctx.width or 0) * int(ctx.height or 0) > limits.max_pixels:
            raise MediaError("video frames are over the pixel limit", "too_many_pixels")
        ctx.skip_frame = "NONKEY"
        out: list[Image.Image] = []
        for packet in container.demux(stream):
            if time.monotonic() - start > limits.decode_timeout_s:
                raise MediaError("decoding took too long", "decode_timeout")
            try:
                decoded = packet.decode()
            except Exception:  # noqa: BLE001 - a damaged packet: the full pass decides
                return []
            for frame in decoded:
                if frame.width * frame.height > limits.max_pixels:
                    raise MediaError("a video frame is over the pixel limit", "too_many_pixels")
                if len(out) >= limits.max_frames:
                    raise MediaError("video has too many frames", "too_many_frames")
                size = _scaled_size(frame.width, frame.height, max_side)
                if size is not None:
                    frame = frame.reformat(width=size[0], height=size[1])
                out.append(frame.to_image())
        return out
    except MediaError:
        raise
    except Exception as e:  # noqa: BLE001 - demuxer errors on hostile input
        raise MediaError(f"corrupt video: {type(e).__name__}", "corrupt_media") from e
    finally:
        container.close()


def keyframes(
    data: bytes,
    fmt: str = "video",
    *,
    count: int = DEFAULT_COUNT,
    max_side: int = FRAME_SIDE,
    limits: Limits,
) -> list[Image.Image]:
    """Up to ``count`` RGB frames spread over the video in ``data`` (MediaError if none)."""
    if count < 1:
        raise ValueError("count must be >= 1")
    intra = intra_frames(data, max_side=max_side, limits=limits)
    if len(intra) >= count:
        return _spread(intra, count)
    return _all_frames(data, fmt, count=count, max_side=max_side, limits=limits)


def _all_frames(
    data: bytes, fmt: str, *, count: int, max_side: int, limits: Limits
) -> list[Image.Image]:
    """Slow path: decode every frame, keep ``count`` spread over the video."""
    info: list[VideoInfo] = []
    frames = iter_frames(data, fmt, limits, pix_fmt="rgb24", max_side=max_side, info_out=info)
    picked: list[Image.Image] = []
    targets: list[float] | None = None
    reservoir: list[Image.Image] = []
    stride, seen = 1, 0
    for frame in frames:
        if targets is None:
            duration = info[0].duration_s if info else None
            targets = (
                [duration * (i + 0.5) / count for i in range(count)]
                if duration and duration > 0
                else []
            )
        if targets:
            if frame.timestamp + 1e-6 >= targets[len(picked)]:
                picked.append(Image.fromarray(frame.pixels, "RGB"))
                if len(picked) == len(targets):
                    break  # closes the container: no further decoding
            continue
        if seen % stride == 0:
            reservoir.append(Image.fromarray(frame.pixels, "RGB"))
            if len(reservoir) >= 2 * count:
                reservoir = reservoir[::2]
                stride *= 2
        seen += 1
    if targets:
        # A stated duration longer than the stream: fewer frames than asked is fine.
        if not picked:
            raise MediaError("video stream has no decodable frames", "no_frames")
        return picked
    if not reservoir:
        raise MediaError("video stream has no decodable frames", "no_frames")
    return _spread(reservoir, count)


def compose_strip(frames: list[Image.Image]) -> Image.Image:
    """Frames side by side (tops aligned, ``GAP`` px apart) on a dark background."""
    if not frames:
        raise ValueError("no frames")
    height = max(f.height for f in frames)
    width = sum(f.width for f in frames) + GAP * (len(frames) - 1)
    mode = "L" if all(f.mode == "L" for f in frames) else "RGB"
    fill = BACKGROUND[0] if mode == "L" else BACKGROUND
    strip = Image.new(mode, (width, height), fill)
    x = 0
    for f in frames:
        strip.paste(f.convert(mode), (x, (height - f.height) // 2))
        x += f.width + GAP
    return strip
