"""The scan path decodes each image once: hashing, trimming and provenance share it.

Decodes are counted by wrapping the decoder that :class:`sentinelle.media.shared.SharedImage`
calls. Provenance records made from the shared decode must equal those made the old way
(provenance reading the file itself, its metadata source decoding the pixels in full).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

import sentinelle.media.shared as shared_mod
from sentinelle.cli.demo_media import render_scene
from sentinelle.media.limits import DEFAULT_LIMITS
from sentinelle.media.shared import SharedImage
from sentinelle.provenance.evidence import SourceContext
from sentinelle.scan.runner import ScanOptions, _hash_worker, _provenance_of
from sentinelle.signals.hashcodec import hamming_hex
from sentinelle.signals.hasher import hash_file_shared

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "provenance" / "c2pa-rs-fixtures"
DEFAULT_SOURCES = ScanOptions().provenance_sources


@pytest.fixture()
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int | None, tuple[int, int]]]:
    """(min_side, decoded size) of every pixel decode SharedImage makes."""
    seen: list[tuple[int | None, tuple[int, int]]] = []
    real = shared_mod.open_image

    def counting(source, fmt, limits=DEFAULT_LIMITS, *, min_side=None):
        out = real(source, fmt, limits, min_side=min_side)
        seen.append((min_side, out.image.size))
        return out

    monkeypatch.setattr(shared_mod, "open_image", counting)
    return seen


def _photo(path: Path, size: tuple[int, int], fmt: str = "JPEG", seed: int = 3) -> Path:
    img = render_scene(seed, size)
    exif = Image.Exif()
    exif[0x0131] = "Midjourney v6"  # Software: the metadata source reports it
    img.save(path, fmt, **({"quality": 90, "exif": exif} if fmt == "JPEG" else {}))
    return path


def _screenshot(path: Path, size: tuple[int, int]) -> Path:
    """A photo pasted, at 70%, on a flat canvas under a title bar (what trimming is for)."""
    w, h = size
    canvas = Image.new("RGB", size, (236, 236, 240))
    canvas.paste(Image.new("RGB", (w, h // 16), (40, 60, 110)), (0, 0))
    inner = render_scene(11, (int(w * 0.7), int(h * 0.7)))
    canvas.paste(inner, ((w - inner.width) // 2 + 37, h // 16 + (h - h // 16 - inner.height) // 2))
    canvas.save(path, "JPEG", quality=90)
    return path


def test_default_scan_decodes_a_jpeg_once_and_provenance_decodes_nothing(
    tmp_path: Path, decodes
) -> None:
    p = _photo(tmp_path / "a.jpg", (2400, 1800))
    res = _hash_worker(str(p), False, ("trimmed",), DEFAULT_LIMITS, True, None, DEFAULT_SOURCES)
    assert res.error is None and res.signal("pdq") is not None
    assert res.provenance is not None and res.provenance["verdict"]
    assert any("Midjourney" in str(e) for e in res.provenance["evidence"])
    assert len(decodes) == 1  # the reduced decode hashing made; provenance read headers only
    assert decodes[0][0] is not None and max(decodes[0][1]) < 2400


def test_a_png_is_decoded_once_for_hash_reduce_and_stealth_metadata(
    tmp_path: Path, decodes
) -> None:
    p = _photo(tmp_path / "a.png", (1600, 1200), "PNG")
    res = _hash_worker(str(p), False, ("trimmed",), DEFAULT_LIMITS, True, None, DEFAULT_SOURCES)
    assert res.error is None and res.provenance is not None
    assert decodes == [(360, (534, 400))]  # one full decode, box-reduced; shared with provenance


def test_shared_image_reuses_its_full_decode() -> None:
    buf = io.BytesIO()
    render_scene(5, (1200, 900)).save(buf, "PNG")
    media = SharedImage(buf.getvalue(), "png")
    small = media.decode(360)
    assert media.decodes == 1 and small.full is not None and small.image.size == (600, 450)
    assert media.full_image() is small.full and media.decode(None).image is small.full
    assert media.decode(200).image.size == (300, 225) and media.decodes == 1
    jpeg = io.BytesIO()
    render_scene(5, (1200, 900)).save(jpeg, "JPEG")
    media = SharedImage(jpeg.getvalue(), "jpeg")
    assert media.decode(360).full is None  # a DCT-scaled decode has no full image
    assert media.full_image().size == (1200, 900) and media.decodes == 2
    assert media.decode(None).image is media.full_image() and media.decodes == 2


def _old_provenance(path: Path, sources) -> dict:
    """Provenance as before the shared decode: the file read again, pixels decoded in full."""
    orig = SourceContext.header_image
    SourceContext.header_image = SourceContext.image  # type: ignore[method-assign]
    try:
        return _provenance_of(str(path), DEFAULT_LIMITS, None, sources)
    finally:
        SourceContext.header_image = orig  # type: ignore[method-assign]


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared fixtures missing")
@pytest.mark.parametrize("sources", [DEFAULT_SOURCES, None], ids=["scan default", "all"])
def test_provenance_records_are_unchanged_by_the_shared_decode(tmp_path: Path, sources) -> None:
    files = sorted(FIXTURES.iterdir())
    if sources is None:  # every source, the pixel-level watermark decoder too: a sample
        files = files[::5]
    files += [_photo(tmp_path / "p.jpg", (900, 600)), _photo(tmp_path / "p.png", (300, 200), "PNG")]
    for p in files:
        _, media = hash_file_shared(p, exact=False, query_variants=("trimmed",))
        shared = _provenance_of(str(p), DEFAULT_LIMITS, None, sources, None, media)
        assert shared == _old_provenance(p, sources), p.name


def test_trimmed_view_of_a_very_small_decode_is_placed_on_a_finer_one(
    tmp_path: Path, decodes
) -> None:
    """A 12 MP screenshot decodes at 1/8 (480 px): its border is cut on a 1/2 decode."""
    p = _screenshot(tmp_path / "shot.jpg", (3840, 2880))
    fast, _ = hash_file_shared(p, signals=("pdq",), exact=False, query_variants=("trimmed",))
    assert [d[1] for d in decodes] == [(480, 360), (1920, 1440)]
    exact, _ = hash_file_shared(p, signals=("pdq",), exact=True, query_variants=("trimmed",))
    (ft,) = [v for v in fast.query_variants if v.variant == "trimmed"]
    (et,) = [v for v in exact.query_variants if v.variant == "trimmed"]
    assert hamming_hex(ft.hash, et.hash) <= 8
    decodes.clear()
    plain = _photo(tmp_path / "plain.jpg", (3840, 2880))
    hash_file_shared(plain, signals=("pdq",), exact=False, query_variants=("trimmed",))
    assert len(decodes) == 1  # no border: no second decode
