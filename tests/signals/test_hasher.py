"""Public hashing API (hash_file / hash_bytes / enrollment_hashes) and `sentinelle hash`."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
import typer
from PIL import Image, ImageOps
from typer.testing import CliRunner

from sentinelle.cli import hash_cmd
from sentinelle.errors import MediaError
from sentinelle.signals.hashcodec import hamming_hex
from sentinelle.signals.hasher import enrollment_hashes, hash_bytes, hash_file
from sentinelle.signals.pdq import DIHEDRAL_NAMES

BRIDGE_HASH = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


@pytest.fixture(scope="module")
def bridge(shared: Path) -> Path:
    return shared / "conformance/pdq/bridge-mods/aaa-orig.jpg"


@pytest.fixture(scope="module")
def letterboxed(bridge: Path, tmp_path_factory) -> Path:
    """The bridge photo padded with wide black bars (a typical re-upload)."""
    im = Image.open(bridge).convert("RGB")
    padded = ImageOps.expand(im, border=(0, 300, 0, 300), fill=(0, 0, 0))
    p = tmp_path_factory.mktemp("lb") / "letterboxed.png"
    padded.save(p)
    return p


def test_default_signals_and_crypto_values(bridge: Path) -> None:
    r = hash_file(bridge)
    data = bridge.read_bytes()
    assert r.error is None and r.size == len(data)
    assert [s.type for s in r.signals] == ["pdq", "md5", "sha1", "sha256"]
    assert r.signal("md5").hash == hashlib.md5(data).hexdigest()
    assert r.signal("sha1").hash == hashlib.sha1(data).hexdigest()
    assert r.signal("sha256").hash == hashlib.sha256(data).hexdigest()
    assert r.signal("pdq").hash == BRIDGE_HASH
    assert r.query_variants == []


def test_signal_selection(bridge: Path) -> None:
    r = hash_file(bridge, signals=("sha256", "vpdq"))  # vpdq does not apply to images
    assert [s.type for s in r.signals] == ["sha256"]
    assert r.error is None
    r = hash_file(bridge, signals=("pdq-dihedral",))
    assert [s.type for s in r.signals] == ["pdq-dihedral"]
    assert r.signal("pdq-dihedral").hashes[0].hash == BRIDGE_HASH


def test_unknown_options_are_programming_errors(bridge: Path) -> None:
    with pytest.raises(ValueError):
        hash_file(bridge, signals=("phash",))
    with pytest.raises(ValueError):
        hash_bytes(b"x", query_variants=("rotated",))


def test_hash_bytes_equals_hash_file(bridge: Path) -> None:
    a = hash_file(bridge, query_variants=("dihedral",))
    b = hash_bytes(bridge.read_bytes(), name="upload-1", query_variants=("dihedral",))
    assert b.path == "upload-1"
    assert a.to_dict()["signals"] == b.to_dict()["signals"]
    assert a.query_variants == b.query_variants


def test_query_variants_plain_and_dihedral(bridge: Path) -> None:
    r = hash_file(bridge, query_variants=("dihedral",))
    assert [q.variant for q in r.query_variants] == list(DIHEDRAL_NAMES)
    assert r.query_variants[0].hash == BRIDGE_HASH
    # "trimmed" on an image without borders adds nothing beyond plain
    r = hash_file(bridge, query_variants=("trimmed",))
    assert [q.variant for q in r.query_variants] == ["plain"]


def test_trimmed_variant_recovers_letterboxed_copy(letterboxed: Path) -> None:
    r = hash_file(letterboxed, query_variants=("trimmed",))
    names = [q.variant for q in r.query_variants]
    assert names == ["plain", "trimmed"]
    plain, trimmed = r.query_variants
    assert hamming_hex(plain.hash, BRIDGE_HASH) > 31  # bars break plain PDQ
    assert hamming_hex(trimmed.hash, BRIDGE_HASH) <= 31
    both = hash_file(letterboxed, query_variants=("trimmed", "dihedral"), exact=False)
    names = [q.variant for q in both.query_variants]
    assert names[:8] == list(DIHEDRAL_NAMES)
    assert names[8:] == ["trimmed"] + [f"trimmed+{n}" for n in DIHEDRAL_NAMES[1:]]


def test_query_variants_absent_for_video_and_errors(shared: Path, tmp_path: Path) -> None:
    clip = shared / "conformance/vpdq/videos/test-padded-dimensions.mp4"
    r = hash_file(clip, signals=("md5",), query_variants=("dihedral",))
    assert r.media_type == "video" and r.query_variants == [] and r.error is None
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    r = hash_file(bad, query_variants=("dihedral",))
    assert r.error.code == "corrupt_media" and r.query_variants == []


def test_enrollment_hashes(bridge: Path) -> None:
    plain = enrollment_hashes(bridge)
    assert [(v.variant, v.hash) for v in plain] == [("plain", BRIDGE_HASH)]
    aug = enrollment_hashes(bridge.read_bytes(), augment=True)
    assert [v.variant for v in aug] == ["plain", "crop5", "crop10", "crop15"]
    assert all(v.quality >= 50 for v in aug)
    # a 10% central crop of the photo is near the crop10 enrolled hash
    im = Image.open(bridge)
    w, h = im.size
    buf = io.BytesIO()
    im.crop((w // 20, h // 20, w - w // 20, h - h // 20)).save(buf, "JPEG", quality=90)
    q = hash_bytes(buf.getvalue(), signals=("pdq",)).signal("pdq").hash
    assert hamming_hex(q, aug[2].hash) <= 16


def test_enrollment_hashes_errors(shared: Path, tmp_path: Path) -> None:
    with pytest.raises(MediaError) as e:
        enrollment_hashes(shared / "conformance/vpdq/videos/test-padded-dimensions.mp4")
    assert e.value.code == "unsupported_type"
    with pytest.raises(MediaError) as e:
        enrollment_hashes(tmp_path / "missing.jpg")
    assert e.value.code == "io_error"
    with pytest.raises(MediaError) as e:
        enrollment_hashes(b"")
    assert e.value.code == "empty_file"
    with pytest.raises(MediaError) as e:
        enrollment_hashes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    assert e.value.code == "corrupt_media"


# ---------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    app = typer.Typer()
    hash_cmd.register(app)

    @app.command("noop")  # a second command so "hash" stays a named subcommand
    def _noop() -> None:
        pass

    return app


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_cli_directory_and_missing_path(cli, shared: Path, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("hello")
    d = shared / "conformance/pdq/dihedral"
    res = CliRunner().invoke(
        cli, ["hash", str(d), str(tmp_path), str(tmp_path / "gone.jpg"), "--signal", "pdq"]
    )
    assert res.exit_code == 0, res.output
    recs = _lines(res.output)
    assert len(recs) == 9 + 1 + 1  # 8 photos + hashes.tsv, notes.txt, the missing path
    expected = dict(
        line.split("\t")[:2] for line in (d / "hashes.tsv").read_text().splitlines()[1:]
    )
    for rec in recs[:8]:
        assert set(rec) >= {"path", "signals", "error"} and rec["error"] is None
        assert rec["signals"] == [
            {"type": "pdq", "hash": expected[Path(rec["path"]).name], "quality": 100}
        ]
    for rec in recs[8:10]:
        assert rec["error"]["code"] == "unsupported_type"
        assert rec["signals"] == []  # only pdq was asked for
    assert recs[9]["path"].endswith("notes.txt")
    assert recs[10]["error"]["code"] == "io_error"


def test_cli_default_signals_and_video(cli, shared: Path) -> None:
    clip = shared / "conformance/vpdq/videos/test-padded-dimensions.mp4"
    img = shared / "conformance/pdq/bridge-mods/square-128x128.jpg"
    res = CliRunner().invoke(cli, ["hash", str(img), str(clip)])
    assert res.exit_code == 0, res.output
    image_rec, video_rec = _lines(res.output)
    assert [s["type"] for s in image_rec["signals"]] == ["pdq", "md5", "sha1", "sha256"]
    assert [s["type"] for s in video_rec["signals"]] == ["vpdq", "md5", "sha1", "sha256"]
    frames = video_rec["signals"][0]["frames"]
    assert len(frames) == 150
    assert set(frames[0]) == {"frame", "hash", "quality", "timestamp"}


def test_cli_rejects_unknown_signal(cli, bridge: Path) -> None:
    res = CliRunner().invoke(cli, ["hash", str(bridge), "--signal", "phash"])
    assert res.exit_code != 0
