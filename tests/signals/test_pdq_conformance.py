"""PDQ conformance against Meta's reference outputs (shared/conformance/pdq)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

from sentinelle.signals.hashcodec import hamming_hex
from sentinelle.signals.hasher import hash_bytes, hash_file
from sentinelle.signals.pdq import DIHEDRAL_NAMES, pdq_from_image, transpose


def _tsv(path: Path) -> dict[str, tuple[str, int]]:
    rows = path.read_text().splitlines()[1:]
    return {f: (h, int(q)) for f, h, q in (r.split("\t") for r in rows if r.strip())}


@pytest.fixture(scope="module")
def bridge_mods(shared: Path) -> tuple[Path, dict[str, tuple[str, int]]]:
    d = shared / "conformance/pdq/bridge-mods"
    return d, _tsv(d / "expected.tsv")


@pytest.fixture(scope="module")
def dihedral(shared: Path) -> tuple[Path, dict[str, tuple[str, int]]]:
    d = shared / "conformance/pdq/dihedral"
    return d, _tsv(d / "hashes.tsv")


def test_bridge_mods_exact_equal_expected(bridge_mods) -> None:
    d, expected = bridge_mods
    assert len(expected) == 12
    for name, (hex_hash, quality) in expected.items():
        r = hash_file(d / name, signals=("pdq",))
        assert r.error is None
        sig = r.signal("pdq")
        assert (sig.hash, sig.quality) == (hex_hash, quality), name
        # ...and identical to python-threatexchange on the same file.
        assert pdq_from_file(d / name) == (hex_hash, quality)
        assert hash_bytes((d / name).read_bytes(), signals=("pdq",)).signal("pdq") == sig


def test_bridge_mods_fast_path_close(bridge_mods) -> None:
    d, expected = bridge_mods
    dists = []
    for name, (hex_hash, _q) in expected.items():
        fast = hash_file(d / name, signals=("pdq",), exact=False).signal("pdq")
        dists.append(hamming_hex(fast.hash, hex_hash))
        assert fast.quality >= 50
    assert max(dists) <= 8, dists
    assert sum(dists) / len(dists) <= 4, dists


def test_dihedral_order_matches_reference_files(dihedral) -> None:
    d, expected = dihedral
    r = hash_file(d / "bridge-1-original.jpg", signals=("pdq", "pdq-dihedral"))
    views = r.signal("pdq-dihedral").hashes
    assert [v.variant for v in views] == list(DIHEDRAL_NAMES)
    assert views[0].hash == r.signal("pdq").hash == expected["bridge-1-original.jpg"][0]
    # File i holds orientation i (order of DIHEDRAL_NAMES).
    files = sorted(expected)
    for view, fname in zip(views, files, strict=True):
        file_hash = expected[fname][0]
        assert hamming_hex(view.hash, file_hash) <= 31, (view.variant, fname)
        # and it is the nearest of the 8 views
        assert min(views, key=lambda v, h=file_hash: hamming_hex(v.hash, h)) is view
        # each file's own PDQ (ours) equals the reference value
        assert hash_file(d / fname, signals=("pdq",)).signal("pdq").hash == file_hash


def test_dihedral_names_match_pillow_transforms(dihedral) -> None:
    d, _ = dihedral
    im = Image.open(d / "bridge-1-original.jpg")
    im.load()
    views = hash_file(d / "bridge-1-original.jpg", signals=("pdq-dihedral",))
    views = views.signal("pdq-dihedral").hashes
    for v in views:
        h, _ = pdq_from_image(transpose(im, v.variant))
        assert hamming_hex(h, v.hash) <= 10, v.variant


def test_dihedral_query_variants(dihedral) -> None:
    d, expected = dihedral
    r = hash_file(d / "bridge-4-rotate-270.jpg", query_variants=("dihedral",), exact=False)
    assert [q.variant for q in r.query_variants] == list(DIHEDRAL_NAMES)
    original = expected["bridge-1-original.jpg"][0]
    best = min(r.query_variants, key=lambda q: hamming_hex(q.hash, original))
    # rotating the 270-rotated file by 90 gives the original back
    assert best.variant == "rotate90" and hamming_hex(best.hash, original) <= 31
