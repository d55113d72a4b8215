"""Tests for sentinelle.signals.augment: central crops for augmented enrollment."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

from sentinelle.signals.augment import DEFAULT_CROP_PERCENTS, central_crops, crop_box
from sentinelle.signals.hashcodec import hamming_hex, pdq_bits_to_hex

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
BSDS = SHARED / "corpora" / "photos" / "bsds500"


def pdq(img: Image.Image) -> str:
    bits, _quality = pdqhash.compute(np.asarray(img.convert("RGB")))
    return pdq_bits_to_hex(bits)


def test_names_sizes_and_centring() -> None:
    img = Image.new("RGB", (1000, 800))
    crops = central_crops(img)
    assert [n for n, _ in crops] == [f"crop{p}" for p in DEFAULT_CROP_PERCENTS]
    sizes = dict((n, c.size) for n, c in crops)
    assert sizes["crop10"] == (900, 720)
    assert crop_box((1000, 800), 10) == (50, 40, 950, 760)


def test_mode_preserved_and_content_is_central() -> None:
    arr = np.zeros((200, 200), dtype=np.uint8)
    arr[:10, :] = 255  # a white band at the top edge only
    img = Image.fromarray(arr, "L")
    for name, crop in central_crops(img, (15,)):
        assert name == "crop15" and crop.mode == "L"
        assert np.asarray(crop)[0].max() == 0  # 15 rows removed from the top: band gone


def test_tiny_images_give_fewer_views() -> None:
    assert central_crops(Image.new("RGB", (10, 10))) == []
    assert central_crops(Image.new("RGB", (1, 1))) == []
    for side in range(16, 40):
        crops = central_crops(Image.new("RGB", (side, 300)))
        assert all(min(c.size) >= 16 and c.size != (side, 300) for _, c in crops)
    assert central_crops(Image.new("RGB", (17, 17))) == []  # every crop < 16 px or a no-op


@pytest.mark.parametrize("bad", [-1, 100, 150])
def test_bad_percent_rejected(bad: float) -> None:
    with pytest.raises(ValueError):
        crop_box((100, 100), bad)


def test_cropped_copies_match_enrolled_crops() -> None:
    """The point of augmentation: a 10%-cropped, re-encoded copy is far from the
    plain hash but close to the enrolled crop10 hash."""
    far_from_plain = 0
    photos = sorted(BSDS.glob("*.jpg"))[:12]
    for p in photos:
        img = Image.open(p).convert("RGB")
        enrolled = {name: pdq(c) for name, c in central_crops(img)}
        enrolled["plain"] = pdq(img)
        copy = img.crop(crop_box(img.size, 10))
        buf = io.BytesIO()
        copy.save(buf, "JPEG", quality=80)
        q = pdq(Image.open(io.BytesIO(buf.getvalue())))
        far_from_plain += hamming_hex(q, enrolled["plain"]) > 31
        assert min(hamming_hex(q, h) for h in enrolled.values()) <= 31, p.name
    assert far_from_plain >= len(photos) // 2
