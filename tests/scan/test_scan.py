"""End-to-end scanning: real files, a real SQLite bank, real worker processes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

from sentinelle.banks import BankStore
from sentinelle.cli.demo_media import TRANSFORMS, render_scene
from sentinelle.cli.main import app
from sentinelle.cli.scan_cmd import run_scan
from sentinelle.formats.enroll import entries_from_paths
from sentinelle.formats.entry import EntryIn
from sentinelle.scan.records import read_records
from sentinelle.store.db import open_engine


def _save(img: Image.Image, path: Path, fmt: str = "PNG") -> Path:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, fmt)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A bank of 4 rendered scenes and an inbox of altered copies, unrelated images and junk."""
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", url)
    originals = tmp_path / "originals"
    inbox = tmp_path / "inbox"
    originals.mkdir()
    (inbox / "sub").mkdir(parents=True)
    scenes = {i: render_scene(i, (480, 360)) for i in range(4)}
    for i, img in scenes.items():
        _save(img, originals / f"o{i}.jpg", "JPEG")
    store = BankStore(open_engine(url))
    store.create_bank("known")
    entries, failed = entries_from_paths(sorted(originals.iterdir()), augment=True, category="A1")
    assert not failed
    store.add_entries("known", entries)
    _save(TRANSFORMS["resized"](scenes[0]), inbox / "resized.png")
    _save(TRANSFORMS["border"](scenes[1]), inbox / "sub" / "border.webp", "WEBP")
    _save(TRANSFORMS["rotated90"](scenes[2]), inbox / "rotated.jpg", "JPEG")
    (inbox / "exact-copy.bin").write_bytes((originals / "o3.jpg").read_bytes())
    for j in range(3):
        _save(render_scene(100 + j, (480, 360)), inbox / f"other{j}.jpg", "JPEG")
    (inbox / "junk.jpg").write_bytes(b"not an image at all")
    (inbox / "empty.png").write_bytes(b"")
    (inbox / "truncated.jpg").write_bytes((originals / "o0.jpg").read_bytes()[:600])
    return url, store, originals, inbox


def _by_name(jsonl: Path) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in read_records(jsonl)}


def test_scan_matches_transforms_and_reports_errors(world, tmp_path: Path) -> None:
    url, store, originals, inbox = world
    out = tmp_path / "scan.jsonl"
    summary = run_scan(
        [inbox], out, html=tmp_path / "r.html", dihedral=True, workers=2, show_progress=False
    )
    recs = _by_name(out)
    assert len(recs) == 10 == summary.files  # nothing silently skipped
    m = recs["resized.png"]["matches"]
    assert any(x["signal"] == "pdq" and x["bank"] == "known" and x["category"] == "A1" for x in m)
    border = recs["border.webp"]["matches"]
    assert border and min(x["distance"] for x in border) <= 31
    assert any(x["variant"].startswith("trimmed") for x in border)
    assert any(
        x["variant"] == "rotate270" or x["variant"] == "rotate90"
        for x in recs["rotated.jpg"]["matches"]
    )
    exact = recs["exact-copy.bin"]["matches"]
    assert {x["signal"] for x in exact} >= {"md5", "sha256", "pdq"}
    for j in range(3):
        assert recs[f"other{j}.jpg"]["matches"] == []
        assert recs[f"other{j}.jpg"]["error"] is None
    for bad in ("junk.jpg", "empty.png", "truncated.jpg"):
        err = recs[bad]["error"]
        assert err and err["code"] and err["message"], bad
        assert recs[bad]["matches"] == []
    # the crypto hashes come from the original bytes even for undecodable files
    junk_md5 = [s for s in recs["junk.jpg"]["signals"] if s["type"] == "md5"]
    assert junk_md5 and len(junk_md5[0]["hash"]) == 32
    assert summary.errors == 3 and summary.matched == 4
    assert summary.per_bank["known"] == 4


def test_rotation_needs_dihedral(world, tmp_path: Path) -> None:
    _, _, _, inbox = world
    out = tmp_path / "plain.jsonl"
    run_scan([inbox / "rotated.jpg"], out, workers=1, show_progress=False)
    (rec,) = read_records(out)
    assert [m for m in rec["matches"] if m["signal"] == "pdq"] == []


def test_scan_is_resumable_and_rematches_when_banks_change(world, tmp_path: Path) -> None:
    url, store, originals, inbox = world
    out = tmp_path / "scan.jsonl"
    first = run_scan([inbox], out, workers=2, show_progress=False)
    assert first.hashed == 10
    again = run_scan([inbox], out, workers=2, show_progress=False)
    assert again.hashed == 3  # only the three error files are retried
    assert again.unchanged == 7 and again.rematched == 0
    assert len(list(read_records(out))) == 10
    # a changed file is hashed again
    _save(render_scene(777, (300, 200)), inbox / "other0.jpg", "JPEG")
    third = run_scan([inbox], out, workers=1, show_progress=False)
    assert third.hashed == 4
    # the banks change: unchanged files are re-matched without being hashed
    other1 = next(
        iter(
            _by_name(out)["other1.jpg"]["signals"][i]
            for i in range(4)
            if _by_name(out)["other1.jpg"]["signals"][i]["type"] == "pdq"
        )
    )
    store.add_entries("known", [EntryIn(signal_type="pdq", hash=other1["hash"])])
    fourth = run_scan([inbox], out, workers=1, show_progress=False)
    assert fourth.rematched == 7
    assert _by_name(out)["other1.jpg"]["matches"]


def test_interrupted_scan_resumes_from_partial(world, tmp_path: Path) -> None:
    _, _, _, inbox = world
    out = tmp_path / "scan.jsonl"
    run_scan([inbox], out, workers=1, show_progress=False)
    lines = out.read_text().splitlines()
    # simulate a crash: only the partial file with 5 records and a torn line remains
    out.unlink()
    partial = out.with_name(out.name + ".partial")
    partial.write_text("\n".join(lines[:5]) + "\n" + lines[5][:20])
    ok_in_partial = sum(1 for line in lines[:5] if json.loads(line)["error"] is None)
    resumed = run_scan([inbox], out, workers=1, show_progress=False)
    assert resumed.unchanged == ok_in_partial
    assert resumed.hashed == 10 - ok_in_partial
    assert not partial.exists() and len(list(read_records(out))) == 10


def test_html_report_hides_media_unless_asked(world, tmp_path: Path) -> None:
    _, _, _, inbox = world
    out = tmp_path / "scan.jsonl"
    html = tmp_path / "report.html"
    run_scan([inbox], out, html=html, workers=2, show_progress=False)
    text = html.read_text()
    assert "files scanned" in text and "known" in text
    assert "<img" not in text and "data:image" not in text
    assert "junk.jpg" in text and "truncated.jpg" in text
    html2 = tmp_path / "report-thumbs.html"
    run_scan([inbox], out, html=html2, workers=2, show_progress=False, thumbnails=True)
    text2 = html2.read_text()
    assert 'class="thumb"' in text2 and "blur(" in text2 and "grayscale(1)" in text2
    assert "data:image/jpeg;base64," in text2


def test_scan_cli(world, tmp_path: Path) -> None:
    url, _, _, inbox = world
    out = tmp_path / "cli.jsonl"
    res = CliRunner().invoke(
        app,
        [
            "scan",
            str(inbox),
            "--jsonl",
            str(out),
            "--html",
            str(tmp_path / "c.html"),
            "--bank",
            "known",
            "--dihedral",
            "--workers",
            "2",
            "--quiet",
        ],
        env={"SENTINELLE_DATABASE_URL": url},
    )
    assert res.exit_code == 0, res.output
    recs = _by_name(out)
    assert len(recs) == 10
    assert any(m["variant"].startswith("rotate") for m in recs["rotated.jpg"]["matches"])
    bad = CliRunner().invoke(
        app,
        ["scan", str(inbox), "--jsonl", str(out), "--bank", "nope"],
        env={"SENTINELLE_DATABASE_URL": url},
    )
    assert bad.exit_code == 2 and "unknown bank" in bad.output


def test_scan_of_missing_path_yields_error_record(world, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    s = run_scan([tmp_path / "does-not-exist"], out, workers=1, show_progress=False)
    (rec,) = read_records(out)
    assert s.errors == 1 and rec["error"]["code"] == "not_found"


def test_decompression_bomb_is_an_error_not_a_crash(world, tmp_path: Path) -> None:
    from sentinelle.media.limits import Limits

    _, _, _, inbox = world
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    Image.new("L", (6000, 6000)).save(bomb / "big.png", optimize=True)
    out = tmp_path / "b.jsonl"
    run_scan([bomb], out, workers=1, show_progress=False, limits=Limits(max_pixels=10_000_000))
    (rec,) = read_records(out)
    assert rec["error"]["code"] == "too_many_pixels"


def test_grayscale_and_mirror_copies(world, tmp_path: Path) -> None:
    _, _, originals, _ = world
    src = Image.open(originals / "o2.jpg")
    d = tmp_path / "more"
    d.mkdir()
    _save(ImageOps.grayscale(src), d / "gray.png")
    _save(ImageOps.mirror(src), d / "mirror.png")
    out = tmp_path / "m.jsonl"
    run_scan([d], out, workers=1, dihedral=True, show_progress=False)
    recs = _by_name(out)
    assert recs["gray.png"]["matches"]
    assert any(
        m["variant"] == "flipx" or m["variant"] == "flipy" for m in recs["mirror.png"]["matches"]
    )


def test_fast_path_near_miss_is_rehashed_exactly(world, tmp_path: Path) -> None:
    """A fast-path hash near a threshold is re-checked with the reference hash."""
    import numpy as np

    from sentinelle.signals.hasher import hash_file

    _, store, _, _ = world
    d = tmp_path / "big"
    d.mkdir()
    big = _save(render_scene(42, (1600, 1200)), d / "big.jpg", "JPEG")
    exact = hash_file(big, signals=("pdq",)).signal("pdq").hash
    v = int(exact, 16)
    for b in np.random.default_rng(5).choice(256, 24, replace=False):
        v ^= 1 << int(b)
    store.add_entries("known", [EntryIn(signal_type="pdq", hash=f"{v:064x}")])
    out = tmp_path / "v.jsonl"
    s = run_scan([d], out, workers=1, show_progress=False)
    (rec,) = read_records(out)
    assert s.verified_exact == 1 and rec["pdq_path"] == "exact-verified"
    (m,) = [x for x in rec["matches"] if x["entry_hash"] == f"{v:064x}"]
    assert m["distance"] == 24  # the reference hash decided, not the fast one
    # the re-hash skips provenance: the first pass's record is kept
    assert rec["provenance"] is not None and rec["provenance"]["verdict"] == "no_evidence"
