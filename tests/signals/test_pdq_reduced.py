"""PDQ of a reduced decode computed as the reference computes it on the full image."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

from sentinelle.cli.demo_media import render_scene
from sentinelle.signals.hashcodec import hamming_hex, pdq_bits_to_hex
from sentinelle.signals.hasher import hash_file
from sentinelle.signals.pdq import dihedral_from_array, dihedral_from_reduced, pdq_from_reduced

BSDS = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "photos" / "bsds500"


def _reference(im: Image.Image) -> tuple[str, int]:
    bits, quality = pdqhash.compute(np.asarray(im.convert("RGB")))
    return pdq_bits_to_hex(bits), int(quality)


@pytest.mark.parametrize("size", [(481, 321), (640, 480), (333, 517)])
def test_full_size_input_gives_the_reference_hash(size: tuple[int, int]) -> None:
    im = render_scene(7, size)
    ours, q = pdq_from_reduced(im.convert("L"), *size)
    ref, ref_q = _reference(im.convert("L"))
    assert hamming_hex(ours, ref) <= 2 and abs(q - ref_q) <= 1


def _jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=92)
    return buf.getvalue()


@pytest.mark.skipif(not BSDS.is_dir(), reason="../shared corpora missing")
def test_a_one_eighth_decode_hashes_close_to_the_full_image() -> None:
    """4 MP photos at 1/8: the reference code on those pixels drifts ~20 bits; this ~2."""
    ours, naive = [], []
    for p in sorted(BSDS.glob("*.jpg"))[::60][:6]:
        src = Image.open(p).convert("RGB")
        s = (4e6 / (src.width * src.height)) ** 0.5
        data = _jpeg(src.resize((round(src.width * s), round(src.height * s)), Image.LANCZOS))
        full = Image.open(io.BytesIO(data))
        full.load()
        exact, _ = _reference(full)
        small = Image.open(io.BytesIO(data))
        small.draft("RGB", (small.width // 8, small.height // 8))
        small.load()
        assert max(small.size) * 8 >= max(full.size) > max(small.size) * 7
        ours.append(hamming_hex(pdq_from_reduced(small, *full.size)[0], exact))
        naive.append(hamming_hex(_reference(small)[0], exact))
    assert max(ours) <= 10 and np.mean(ours) <= 4, ours
    assert np.mean(ours) < np.mean(naive) / 2, (ours, naive)


def test_the_scan_path_hashes_a_12mp_jpeg_at_one_eighth(tmp_path: Path) -> None:
    p = tmp_path / "big.jpg"
    p.write_bytes(_jpeg(render_scene(4, (4000, 3000))))
    fast = hash_file(p, signals=("pdq",), exact=False).signal("pdq")
    exact = hash_file(p, signals=("pdq",), exact=True).signal("pdq")
    assert fast is not None and exact is not None
    assert hamming_hex(fast.hash, exact.hash) <= 8
    assert abs(fast.quality - exact.quality) <= 5


def test_dihedral_hashes_of_full_size_input_are_the_reference_ones() -> None:
    im = render_scene(3, (400, 300)).convert("L")
    ours = dihedral_from_reduced(im, *im.size)
    ref = dihedral_from_array(np.asarray(im.convert("RGB")))
    assert [v.variant for v in ours] == [v.variant for v in ref]
    assert [hamming_hex(a.hash, b.hash) for a, b in zip(ours, ref, strict=True)] == [0] * 8


def test_the_scan_path_dihedral_views_stay_close_to_the_exact_ones(tmp_path: Path) -> None:
    p = tmp_path / "big.jpg"
    p.write_bytes(_jpeg(render_scene(6, (2400, 1800))))
    fast = hash_file(p, signals=("pdq",), exact=False, query_variants=("dihedral",))
    exact = hash_file(p, signals=("pdq",), exact=True, query_variants=("dihedral",))
    dists = [
        hamming_hex(a.hash, b.hash)
        for a, b in zip(fast.query_variants, exact.query_variants, strict=True)
    ]
    assert len(dists) == 8 and max(dists) <= 12, dists
