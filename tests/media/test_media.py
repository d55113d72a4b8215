"""Media detection and safe decoding: every format, every kind of bad file."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

from sentinelle.errors import MediaError
from sentinelle.media.detect import detect
from sentinelle.media.image import open_image, to_pdq_rgb
from sentinelle.media.limits import Limits
from sentinelle.media.video import iter_frames
from sentinelle.signals.hashcodec import hamming_hex
from sentinelle.signals.hasher import hash_bytes, hash_file
from sentinelle.signals.pdq import pdq_from_image


def photo_like(w: int, h: int, seed: int = 0) -> Image.Image:
    """A benign synthetic 'photo': gradients, a disc, a bar and mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 100 * np.sin(x / w * 3.1 + seed)
    g = 255 * y / h
    b = 128 + 90 * np.cos((x + y) / (w + h) * 6.0)
    disc = (x - w * 0.6) ** 2 + (y - h * 0.4) ** 2 < (min(w, h) * 0.2) ** 2
    r[disc], g[disc], b[disc] = 240, 200, 30
    g[int(h * 0.7) : int(h * 0.8), :] = 20
    arr = np.stack([r, g, b], axis=2) + rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


IMAGE_SAVES = {
    "jpeg": ("JPEG", {"quality": 90}),
    "png": ("PNG", {}),
    "webp": ("WEBP", {"quality": 90}),
    "gif": ("GIF", {}),
    "bmp": ("BMP", {}),
    "tiff": ("TIFF", {}),
    "heic": ("HEIF", {"quality": 90}),
    "avif": ("AVIF", {"quality": 90}),
}


def image_bytes(fmt: str, im: Image.Image | None = None) -> bytes:
    im = im or photo_like(320, 240)
    name, kw = IMAGE_SAVES[fmt]
    buf = io.BytesIO()
    im.save(buf, name, **kw)
    return buf.getvalue()


def render_video(path: Path, codec: str, fmt: str | None = None, n: int = 12) -> Path:
    """Write a small benign moving-gradient video with PyAV."""
    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream(codec, rate=Fraction(10))
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        for i in range(n):
            arr = np.asarray(photo_like(160, 120, seed=i))
            for pkt in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


VIDEO_KINDS = {
    "mp4": ("libx264", "mp4"),
    "mov": ("libx264", "mov"),
    "webm": ("libvpx-vp9", "webm"),
    "mkv": ("libx264", "matroska"),
    "avi": ("mpeg4", "avi"),
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    # Misleading extensions on purpose: detection must ignore the name.
    return {
        kind: render_video(d / f"clip-{kind}.bin", codec, fmt)
        for kind, (codec, fmt) in VIDEO_KINDS.items()
    }


# ----------------------------------------------------------------------------- detect


@pytest.mark.parametrize("fmt", list(IMAGE_SAVES))
def test_detect_images(fmt: str) -> None:
    assert detect(image_bytes(fmt)[:4096]) == ("image", fmt)


def test_detect_videos(videos: dict[str, Path]) -> None:
    for kind, path in videos.items():
        assert detect(path.read_bytes()[:4096]) == ("video", kind), kind


def test_detect_shared_files(shared: Path) -> None:
    assert detect((shared / "conformance/vpdq/videos/chair-19-sd-bar.mp4").read_bytes()[:64]) == (
        "video",
        "mp4",
    )
    jpg = shared / "conformance/pdq/bridge-mods/aaa-orig.jpg"
    assert detect(jpg.read_bytes()[:64]) == ("image", "jpeg")


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\xff",
        b"hello world, this is text",
        b"BM is a text start too......",
        b"RIFF1234JUNK",
        bytes(64),
        b"\x00\x00\x00\x18ftypqt  "[:6],
    ],
)
def test_detect_rejects(head: bytes) -> None:
    assert detect(head) is None


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize("fmt", list(IMAGE_SAVES))
def test_every_image_format_hashes(fmt: str, tmp_path: Path) -> None:
    data = image_bytes(fmt)
    p = tmp_path / "x.dat"  # extension deliberately meaningless
    p.write_bytes(data)
    r = hash_file(p)
    assert r.error is None, r.error
    assert (r.media_type, r.format, r.width, r.height) == ("image", fmt, 320, 240)
    pdq = r.signal("pdq")
    assert pdq is not None and len(pdq.hash) == 64 and pdq.quality >= 50
    # Lossy or palette formats differ slightly; all must be near the lossless PNG hash.
    ref = hash_bytes(image_bytes("png"), signals=("pdq",)).signal("pdq")
    assert hamming_hex(pdq.hash, ref.hash) <= 31
    assert hash_bytes(data).to_dict()["signals"] == r.to_dict()["signals"]


def test_gif_first_frame(tmp_path: Path) -> None:
    frames = [photo_like(200, 150, seed=s) for s in (1, 7)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    first = hash_bytes(buf.getvalue(), signals=("pdq",)).signal("pdq").hash
    only_first = io.BytesIO()
    frames[0].save(only_first, "GIF")
    assert first == hash_bytes(only_first.getvalue(), signals=("pdq",)).signal("pdq").hash


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "RGBA"])
def test_modes_identical_to_threatexchange(mode: str, tmp_path: Path) -> None:
    p = tmp_path / f"m.{mode}.png"
    photo_like(300, 200).convert(mode).save(p)
    ref_hash, ref_q = pdq_from_file(p)
    r = hash_file(p, signals=("pdq",))
    assert (r.signal("pdq").hash, r.signal("pdq").quality) == (ref_hash, ref_q)


@pytest.mark.parametrize("mode", ["P", "CMYK", "I;16", "1", "I", "F"])
def test_other_modes_hash_the_picture(mode: str, tmp_path: Path) -> None:
    base = photo_like(300, 200)
    if mode == "I;16":
        grey = np.asarray(base.convert("L")).astype(np.uint16) * 257
        im = Image.fromarray(grey)
        assert im.mode == "I;16"
    else:
        im = base.convert(mode)
    rgb = to_pdq_rgb(im)
    assert rgb.shape == (200, 300, 3) and rgb.dtype == np.uint8
    h, q = pdq_from_image(im)
    target = pdq_from_image(base.convert("L" if mode in ("I;16", "I", "F", "1") else "RGB"))[0]
    limit = 64 if mode == "1" else 16  # bilevel dithering loses a lot
    assert hamming_hex(h, target) <= limit


def test_exif_orientation_not_applied(tmp_path: Path) -> None:
    """Like the reference, the stored pixels are hashed, whatever EXIF says."""
    im = photo_like(300, 200)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = tmp_path / "o.jpg"
    im.save(p, quality=95, exif=exif)
    assert hash_file(p, signals=("pdq",)).signal("pdq").hash == pdq_from_file(p)[0]


def test_fast_path_reduces_and_stays_close(tmp_path: Path) -> None:
    p = tmp_path / "big.jpg"
    photo_like(2400, 1600).save(p, quality=90)
    d = open_image(p.read_bytes(), "jpeg", min_side=384)
    assert d.width == 2400 and min(d.image.size) >= 384 and d.image.size[0] <= 1200
    png = tmp_path / "big.png"
    photo_like(2400, 1600).save(png)
    d2 = open_image(png, "png", min_side=384)
    assert 384 <= min(d2.image.size) < 768
    for f in (p, png):
        exact = hash_file(f, signals=("pdq",)).signal("pdq").hash
        fast = hash_file(f, signals=("pdq",), exact=False).signal("pdq").hash
        assert hamming_hex(exact, fast) <= 16


# ------------------------------------------------------------------------ bad inputs


def _err(r) -> str:
    assert r.error is not None, "expected an error"
    return r.error.code


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    r = hash_file(p)
    assert _err(r) == "empty_file"
    assert r.signal("md5").hash == "d41d8cd98f00b204e9800998ecf8427e"


def test_text_file_is_unsupported_but_crypto_hashed(tmp_path: Path) -> None:
    p = tmp_path / "notes.jpg"
    p.write_text("not an image\n" * 50)
    r = hash_file(p)
    assert _err(r) == "unsupported_type"
    assert {s.type for s in r.signals} == {"md5", "sha1", "sha256"}


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "gif", "tiff", "heic"])
def test_truncated_images(fmt: str) -> None:
    data = image_bytes(fmt)
    for cut in (len(data) // 2, 40):
        r = hash_bytes(data[:cut])
        assert _err(r) in ("corrupt_media", "unsupported_type"), (fmt, cut)
        assert r.signal("sha256") is not None


def test_corrupt_jpeg_body() -> None:
    data = bytearray(image_bytes("jpeg"))
    data[200:] = bytes(len(data) - 200)  # zeros after the headers
    r = hash_bytes(bytes(data))
    # libjpeg may "decode" garbage entropy data; what matters is no exception.
    assert r.error is None or r.error.code == "corrupt_media"


def test_random_garbage_with_magic() -> None:
    rng = np.random.default_rng(1)
    for magic in (b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"II*\x00"):
        r = hash_bytes(magic + rng.bytes(3000))
        assert _err(r) == "corrupt_media"


def test_file_too_large(tmp_path: Path) -> None:
    p = tmp_path / "a.png"
    p.write_bytes(image_bytes("png"))
    r = hash_file(p, limits=Limits(max_file_bytes=100))
    assert _err(r) == "file_too_large"
    assert r.signals == []
    assert _err(hash_bytes(p.read_bytes(), limits=Limits(max_file_bytes=100))) == "file_too_large"


def test_too_many_pixels_checked_before_decoding() -> None:
    r = hash_bytes(image_bytes("png"), limits=Limits(max_pixels=320 * 240 - 1))
    assert _err(r) == "too_many_pixels"
    assert r.signal("md5") is not None


def test_pillow_bomb_header() -> None:
    """A PNG whose header claims 200k x 200k pixels (40 G): refused from the header."""
    data = bytearray(image_bytes("png", Image.new("L", (8, 8))))
    # IHDR width/height live at bytes 16..24; the CRC is then wrong as well.
    data[16:24] = (200_000).to_bytes(4, "big") * 2
    r = hash_bytes(bytes(data))
    assert _err(r) in ("too_many_pixels", "corrupt_media")
    with pytest.raises(MediaError):
        open_image(bytes(data), "png")


def test_missing_and_directory(tmp_path: Path) -> None:
    assert _err(hash_file(tmp_path / "nope.jpg")) == "io_error"
    assert _err(hash_file(tmp_path)) == "io_error"


# ----------------------------------------------------------------------------- videos


def test_every_video_format(videos: dict[str, Path]) -> None:
    for kind, path in videos.items():
        r = hash_file(path)
        assert r.error is None, (kind, r.error)
        assert (r.media_type, r.format, r.width, r.height) == ("video", kind, 160, 120)
        v = r.signal("vpdq")
        assert [f.frame for f in v.frames] == list(range(12)), kind
        assert v.frames[1].timestamp == pytest.approx(0.1, abs=0.01)
        assert r.signal("pdq") is None  # PDQ applies to images only
        assert r.signal("sha1") is not None


def test_video_from_bytes_matches_file(videos: dict[str, Path]) -> None:
    p = videos["mp4"]
    assert hash_bytes(p.read_bytes()).to_dict()["signals"] == hash_file(p).to_dict()["signals"]


def test_truncated_and_corrupt_video(videos: dict[str, Path], tmp_path: Path) -> None:
    data = videos["mp4"].read_bytes()
    for cut in (64, len(data) // 3):
        r = hash_bytes(data[:cut])
        assert _err(r) in ("corrupt_media", "no_frames")
        assert r.signal("md5") is not None
    mkv = videos["mkv"].read_bytes()
    r = hash_bytes(mkv[:200])
    assert _err(r) in ("corrupt_media", "no_frames")


def test_zero_size_header_only_video() -> None:
    # An ftyp box and nothing else.
    r = hash_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2")
    assert _err(r) in ("corrupt_media", "no_frames")


def test_audio_only_file(tmp_path: Path) -> None:
    p = tmp_path / "audio.mkv"
    with av.open(str(p), "w", format="matroska") as out:
        s = out.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), dtype=np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        frame.pts = 0
        for pkt in s.encode(frame):
            out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    r = hash_file(p)
    assert r.media_type == "video"
    assert _err(r) == "no_frames"


def test_video_limits(videos: dict[str, Path]) -> None:
    p = videos["mp4"]
    assert _err(hash_file(p, limits=Limits(max_frames=5))) == "too_many_frames"
    assert _err(hash_file(p, limits=Limits(max_pixels=100))) == "too_many_pixels"
    assert _err(hash_file(p, limits=Limits(decode_timeout_s=0.0))) == "decode_timeout"
    assert _err(hash_file(p, limits=Limits(max_video_seconds=0.5))) == "too_many_frames"


def test_iter_frames_closes_on_early_stop(videos: dict[str, Path]) -> None:
    it = iter_frames(videos["webm"], pix_fmt="gray", max_side=64)
    first = next(it)
    assert first.pixels.shape == (48, 64)
    it.close()  # must not raise
