"""Reviewer-safe renderings (blur, grayscale, key-frame strips) and the console's
security helpers, on benign media from ``../shared`` and rendered images."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.requests import Request

from sentinelle.console import security
from sentinelle.console.blur import blur_radius, render_preview
from sentinelle.console.keyframes import intra_frames, keyframes
from sentinelle.errors import MediaError
from sentinelle.media.limits import Limits

LIMITS = Limits(decode_timeout_s=30)


def _detail(data: bytes) -> float:
    a = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float32)
    return float(np.abs(np.diff(a, axis=1)).mean())


@pytest.fixture(scope="module")
def photo(shared: Path) -> bytes:
    return (shared / "corpora" / "photos" / "kodak24" / "kodim05.png").read_bytes()


def test_preview_blur_grows_with_the_level_and_stays_small(photo: bytes) -> None:
    sharp = render_preview(photo, blur_level=0, grayscale=False)
    assert (sharp.width, sharp.height) == (500, 500) and not sharp.blurred
    details = [_detail(render_preview(photo, blur_level=lvl).data) for lvl in (0, 8, 24, 60)]
    assert details == sorted(details, reverse=True)
    assert details[2] < 0.25 * details[0]  # the default level removes most detail
    p = render_preview(photo)
    assert p.grayscale and p.blurred and p.media_type == "image/jpeg"
    assert Image.open(io.BytesIO(p.data)).mode == "L"
    big = Image.new("RGB", (3000, 1000), (10, 120, 200))
    buf = io.BytesIO()
    big.save(buf, "PNG")
    out = render_preview(buf.getvalue())
    assert max(out.width, out.height) == 640  # scaled down
    assert blur_radius(24, (640, 480)) == pytest.approx(11.52)
    assert blur_radius(500, (640, 480)) == blur_radius(100, (640, 480))  # clamped


def test_video_becomes_a_strip_of_key_frames(shared: Path) -> None:
    clip = (shared / "conformance" / "vpdq" / "videos" / "chair-19-sd-bar.mp4").read_bytes()
    assert len(intra_frames(clip, max_side=64, limits=LIMITS)) == 10  # one every 2 s
    frames = keyframes(clip, "mp4", count=6, max_side=64, limits=LIMITS)
    assert len(frames) == 6 and max(frames[0].size) == 64
    p = render_preview(clip)
    assert p.source_kind == "video" and p.width > 3 * p.height
    # two key frames only: every frame is decoded and six are spread over the clip
    short = (shared / "conformance" / "vpdq" / "videos" / "doorknob-hd-no-bar.mp4").read_bytes()
    assert len(intra_frames(short, max_side=64, limits=LIMITS)) == 2
    spread = keyframes(short, "mp4", count=6, max_side=64, limits=LIMITS)
    assert len(spread) == 6
    arrays = [np.asarray(f, dtype=np.int16) for f in spread]
    assert np.abs(arrays[0] - arrays[-1]).mean() > 1  # different moments of the clip


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("data", "codes"),
    [
        (b"", {"empty_file"}),
        (b"plain text, not media at all", {"unsupported_type"}),
        (_png_header_only(60_000, 60_000), {"too_many_pixels"}),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, {"corrupt_media"}),
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, {"corrupt_media", "no_frames"}),
    ],
    ids=["empty", "text", "pixel-bomb", "broken-jpeg", "broken-mp4"],
)
def test_hostile_media_is_a_clear_error(data: bytes, codes: set[str]) -> None:
    with pytest.raises(MediaError) as e:
        render_preview(data)
    assert e.value.code in codes


def _request(headers: dict[str, str], url: str = "http://127.0.0.1:8080/console/x") -> Request:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"host", u.netloc.encode()))
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": u.scheme,
            "path": u.path,
            "query_string": b"",
            "headers": raw,
            "server": (u.hostname, u.port or 80),
        }
    )


def test_csrf_tokens_and_origin_checks() -> None:
    a, b = "session-token-a" * 3, "session-token-b" * 3
    ta = security.csrf_for_session(a)
    assert ta == security.csrf_for_session(a) and ta != security.csrf_for_session(b)
    assert a not in ta
    ok = _request({"origin": "http://127.0.0.1:8080", "x-csrf-token": ta})
    assert security.csrf_ok(ok, ta)
    assert not security.csrf_ok(_request({"x-csrf-token": "x" * 64}), ta)
    assert not security.csrf_ok(_request({}), ta)
    assert security.csrf_ok(_request({}), ta, form_value=ta)  # form field, no Origin header
    assert not security.csrf_ok(_request({"origin": "https://evil.example"}), ta, ta)
    assert not security.csrf_ok(_request({"origin": "null"}), ta, ta)
    assert not security.csrf_ok(_request({"x-csrf-token": ""}), "")


def test_signed_media_links_expire_and_are_bound() -> None:
    grant = security.sign_media("tok-a" * 8, 7, now=1000.0)
    assert security.check_media("tok-a" * 8, 7, grant, now=1000.0 + 60)
    assert not security.check_media("tok-a" * 8, 7, grant, now=1000.0 + 121)  # expired
    assert not security.check_media("tok-a" * 8, 8, grant, now=1000.0)  # other item
    assert not security.check_media("tok-b" * 8, 7, grant, now=1000.0)  # other session
    for bad in ("", "abc", "1.2", "99999999999999.00", grant + "0"):
        assert not security.check_media("tok-a" * 8, 7, bad, now=1000.0)
