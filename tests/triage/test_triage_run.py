"""End to end on real files and archives: hashing once, resume, groups, banks, series,
priority order, per-file errors for hostile input, CSV and the CLI."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from triage_seized import (
    build_seized,
    device_exif,
    enroll_known,
    rendered,
    save_ai_png,
    save_jpeg,
    transform,
)

from sentinelle.banks import BankStore
from sentinelle.index.matcher import Matcher
from sentinelle.store.db import open_engine
from sentinelle.triage import store
from sentinelle.triage.csv_out import write_csv
from sentinelle.triage.run import run_triage
from sentinelle.triage.series import SeriesOptions

PHOTOS = Path(__file__).resolve().parents[2].parent / "shared/corpora/photos/bsds500"
NO_SCENE = SeriesOptions(scene="none")


def _photos(n: int, start: int = 0) -> list[Path]:
    return sorted(PHOTOS.glob("*.jpg"))[start : start + n]


def _files_by_rel(engine, case_id: int, root: Path) -> dict[str, store.File]:
    return {f.path[len(str(root)) + 1 :]: f for f in store.iter_files(engine, case_id)}


def test_small_case_groups_matches_series_and_priority(tmp_path: Path, db_url: str) -> None:
    import random

    rng = random.Random(3)
    root = tmp_path / "seized"
    known, series_src, single = _photos(3), _photos(1, 10)[0], _photos(1, 20)[0]
    for i, p in enumerate(known):  # known: exact copy + resized copy in a zip
        (root / "dl").mkdir(parents=True, exist_ok=True)
        (root / "dl" / f"k{i}.jpg").write_bytes(p.read_bytes())
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        for i, p in enumerate(known):
            im = transform(Image.open(p).convert("RGB"), "resize", rng)
            jb = io.BytesIO()
            im.save(jb, "JPEG", quality=70)
            z.writestr(f"k{i}_small.jpg", jb.getvalue())
    (root / "known.zip").write_bytes(b.getvalue())
    # a series: 3 shots of one scene, one device, a burst
    im = Image.open(series_src).convert("RGB")
    w, h = im.size
    for k in range(3):
        x = int(w * 0.2 * k)
        shot = im.crop((x, 0, x + int(w * 0.6), int(h * 0.6))).resize((w, h))
        ex = device_exif("Canon", "Canon EOS 80D", "SN42", f"2024:03:01 14:1{k}:00")
        save_jpeg(shot, root / "DCIM" / f"IMG_{k}.jpg", 92, ex)
    save_jpeg(Image.open(single).convert("RGB"), root / "misc" / "s.jpg", 85)
    save_ai_png(rendered(5), root / "gen" / "a.png", 5)
    (root / "misc" / "empty.jpg").write_bytes(b"")
    (root / "misc" / "notes.txt").write_text("not media")

    engine = open_engine(db_url)
    try:

        class _Sz:
            known_sources = known

        enroll_known(engine, _Sz())  # type: ignore[arg-type]
        s = run_triage(
            engine,
            "case-a",
            [root],
            workers=2,
            matcher=Matcher(BankStore(engine)),
            series_options=NO_SCENE,
        )
        cid = s.case.id
        assert s.hashing.files == 3 + 3 + 3 + 1 + 1 + 2 + 1  # files, members, archive marker
        assert s.hashing.error_codes == {"empty_file": 1, "unsupported_type": 1}
        groups = store.list_groups(engine, cid)
        known_groups = [g for g in groups if g.status == "known"]
        assert len(known_groups) == 3
        for g in known_groups:
            paths = sorted(f.path for f in store.group_files(engine, g.id))
            assert len(paths) == 2 and any("known.zip!/" in p for p in paths)
            assert g.bank_category == "B2" and g.matches and g.matches[0]["bank"] == "known-bank"
            assert g.tier == "known"
        tiers = {g.tier for g in groups}
        assert tiers == {"camera_new", "unknown_new", "ai_new", "known"}
        # priority: camera-new (the series) > unknown > ai > known, ranks 1..n
        assert [g.rank for g in groups] == list(range(1, len(groups) + 1))
        order = [g.tier for g in groups]
        assert order == sorted(order, key=["camera_new", "unknown_new", "ai_new", "known"].index)
        cam = [g for g in groups if g.tier == "camera_new"]
        assert len(cam) == 3 and len({g.series_id for g in cam}) == 1 and cam[0].series_id
        (series,) = store.list_series(engine, cid)
        assert series.key.startswith("S-") and series.cues.get("device_serial")
        links = store.series_links(engine, series.id)
        assert {lk.cue for lk in links} >= {"device_serial", "time_burst"}
        assert any(r["cue"] == "camera_exif" for r in cam[0].reasons)
        ai = [g for g in groups if g.tier == "ai_new"]
        assert len(ai) == 1 and any(r["cue"] == "ai_flag" for r in ai[0].reasons)
        assert s.weights["tier.camera_new"] > s.weights["tier.unknown_new"]
        # CSV: one row per copy, formulas neutralised
        out = tmp_path / "case.csv"
        n = write_csv(engine, cid, out)
        rows = list(csv.DictReader(out.open()))
        assert n == len(rows) == sum(g.n_files for g in groups)
        assert rows[0]["tier"] == "camera_new" and rows[-1]["tier"] == "known"

        # rerun: nothing hashed again, same keys, same series id
        s2 = run_triage(
            engine,
            "case-a",
            [root],
            workers=2,
            matcher=Matcher(BankStore(engine)),
            series_options=NO_SCENE,
        )
        assert s2.hashing.hashed == 0
        # the archive is skipped whole (its 3 members and marker are not even read)
        assert s2.hashing.skipped == s.hashing.files - 4 and s2.hashing.archives == 1
        assert [g.key for g in store.list_groups(engine, cid)] == [g.key for g in groups]
        assert store.list_series(engine, cid)[0].key == series.key
        # a new shot of the same series joins it and keeps its key and name
        store.set_series_name(engine, cid, series.key, "Imported name")
        shot = im.crop((0, int(h * 0.3), int(w * 0.6), h)).resize((w, h))
        ex = device_exif("Canon", "Canon EOS 80D", "SN42", "2024:03:01 14:20:00")
        save_jpeg(shot, root / "DCIM" / "IMG_9.jpg", 92, ex)
        s3 = run_triage(engine, "case-a", [root], workers=2, series_options=NO_SCENE)
        assert s3.hashing.hashed == 1
        (again,) = store.list_series(engine, cid)
        assert again.key == series.key and again.name == "Imported name" and again.n_groups == 4
    finally:
        engine.dispose()


def test_hostile_inputs_are_per_file_errors(tmp_path: Path) -> None:
    root = tmp_path / "seized"
    root.mkdir()
    jpg = io.BytesIO()
    Image.new("RGB", (80, 80), (10, 200, 30)).save(jpg, "JPEG")
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("../../../escape.jpg", jpg.getvalue())
        z.writestr("bomb.bmp", b"\0" * (40 * 1024**2))
        z.writestr("ok.jpg", jpg.getvalue())
    (root / "hostile.zip").write_bytes(b.getvalue())
    (root / "broken.zip").write_bytes(b"PK\x03\x04" + os.urandom(300))
    (root / "loop1").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop1")
    (root / "zero.png").write_bytes(b"")
    (root / "huge.jpg").write_bytes(jpg.getvalue() + b"\0" * (3 * 1024**2))
    (root / "trunc.jpg").write_bytes(jpg.getvalue()[:200])
    from sentinelle.media.limits import Limits
    from sentinelle.triage.hashing import HashOptions
    from sentinelle.triage.sources import SourceLimits

    engine = open_engine(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        before = {p for p in tmp_path.rglob("*")}
        s = run_triage(
            engine,
            "hostile",
            [root],
            workers=1,
            hash_options=HashOptions(limits=Limits(max_file_bytes=2 * 1024**2)),
            source_limits=SourceLimits(max_member_bytes=4 * 1024**2),
            series_options=NO_SCENE,
        )
        after = {p for p in tmp_path.rglob("*")}
        assert after - before <= {tmp_path / n for n in ("h.db-wal", "h.db-shm")}
        assert not (tmp_path.parent / "escape.jpg").exists()
        errs = {
            f.path[len(str(root)) + 1 :]: f.error_code for f in store.file_errors(engine, s.case.id)
        }
        assert errs["hostile.zip!/%2E%2E/%2E%2E/%2E%2E/escape.jpg"] == "unsafe_member_name"
        assert errs["hostile.zip!/bomb.bmp"] == "zip_bomb"
        assert errs["broken.zip"] == "corrupt_archive"
        assert errs["loop1"] == errs["loop2"] == "io_error"
        assert errs["zero.png"] == "empty_file"
        assert errs["huge.jpg"] == "file_too_large"
        assert errs["trunc.jpg"] == "corrupt_media"
        assert "hostile.zip!/ok.jpg" not in errs
        # the flagged member is still hashed (evidence), in the same group as ok.jpg
        files = _files_by_rel(engine, s.case.id, root)
        esc = files["hostile.zip!/%2E%2E/%2E%2E/%2E%2E/escape.jpg"]
        assert esc.media_id is not None and esc.media_id == files["hostile.zip!/ok.jpg"].media_id
    finally:
        engine.dispose()


@pytest.mark.slow
def test_synthetic_folder_near_duplicates(tmp_path: Path) -> None:
    """A small seized folder: near-duplicate groups are right pairwise."""
    import itertools

    sz = build_seized(
        tmp_path / "s", n_known=6, n_series=2, shots_per_series=3, n_singles=6, n_ai=2, copies=2
    )
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    try:
        enroll_known(engine, sz)
        s = run_triage(
            engine,
            "syn",
            [tmp_path / "s"],
            workers=2,
            matcher=Matcher(BankStore(engine)),
            series_options=NO_SCENE,
        )
        label = {}
        for g in store.list_groups(engine, s.case.id):
            for f in store.group_files(engine, g.id):
                label[f.path[len(str(tmp_path / "s")) + 1 :]] = g.key
        assert set(label) == set(sz.truth)
        tp = fp = fn = 0
        for a, b in itertools.combinations(sorted(label), 2):
            t = sz.truth[a]["visual"] == sz.truth[b]["visual"]
            p = label[a] == label[b]
            tp += t and p
            fp += p and not t
            fn += t and not p
        assert fp == 0
        assert tp / (tp + fn) >= 0.8
        assert s.grouping.known == 6
    finally:
        engine.dispose()


def test_cli_triage_writes_case_and_csv(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from sentinelle.cli.main import app

    root = tmp_path / "src"
    root.mkdir()
    for p in _photos(2, 40):
        (root / p.name).write_bytes(p.read_bytes())
        (root / f"copy_{p.name}").write_bytes(p.read_bytes())
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    out = tmp_path / "t.csv"
    r = CliRunner().invoke(
        app,
        [
            "triage",
            str(root),
            "--case",
            "cli-case",
            "--csv",
            str(out),
            "--workers",
            "1",
            "--scene",
            "none",
            "--weight",
            "copies=2",
        ],
    )
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 and len({row["group"] for row in rows}) == 2
    assert all("copies +2" in row["reasons"] for row in rows)
    engine = open_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        case = store.get_case(engine, "cli-case")
        assert case is not None and case.settings["weights"]["copies"] == 2.0
    finally:
        engine.dispose()
    bad = CliRunner().invoke(app, ["triage", str(root), "--case", "x", "--weight", "nope=1"])
    assert bad.exit_code != 0


@pytest.mark.slow
def test_videos_group_by_vpdq(tmp_path: Path) -> None:
    videos = Path(__file__).resolve().parents[2].parent / "shared/conformance/vpdq/videos"
    root = tmp_path / "v"
    root.mkdir()
    names = ("chair-22-sd-grey-bar.mp4", "chair-orig-22-sd-bar.mp4", "doorknob-hd-no-bar.mp4")
    for n in names:
        (root / n).write_bytes((videos / n).read_bytes())
    engine = open_engine(f"sqlite:///{tmp_path / 'v.db'}")
    try:
        s = run_triage(engine, "video", [root], workers=2, series_options=NO_SCENE)
        groups = store.list_groups(engine, s.case.id)
        by = {Path(f.path).name: g.key for g in groups for f in store.group_files(engine, g.id)}
        assert by[names[0]] == by[names[1]] != by[names[2]]
        assert {g.media_type for g in groups} == {"video"}
        assert all(any(r["cue"] == "video" for r in g.reasons) for g in groups)
    finally:
        engine.dispose()


def test_scene_cue_links_shots_other_cues_leave_apart(tmp_path: Path) -> None:
    """Three shots of one scene, same phone model but no serial and days apart (the
    device cue alone, 0.4, does not link): ORB keypoints link them; an unrelated photo
    of the same model stays out."""
    root = tmp_path / "scene"
    im = Image.open(_photos(1, 30)[0]).convert("RGB")
    w, h = im.size
    for k in range(3):
        x = int(w * 0.2 * k)
        shot = im.crop((x, 0, x + int(w * 0.6), int(h * 0.6))).resize((w, h))
        ex = device_exif("Apple", "iPhone 12", None, f"2024:0{k + 1}:01 10:00:00")
        save_jpeg(shot, root / f"IMG_{k}.jpg", 90, ex)
    other = Image.open(_photos(1, 60)[0]).convert("RGB")
    save_jpeg(
        other,
        root / "other.jpg",
        90,
        device_exif("Apple", "iPhone 12", None, "2024:05:01 10:00:00"),
    )
    engine = open_engine(f"sqlite:///{tmp_path / 'sc.db'}")
    try:
        s = run_triage(
            engine, "scene", [root], workers=1, series_options=SeriesOptions(scene="orb")
        )
        (series,) = store.list_series(engine, s.case.id)
        members = {
            Path(f.path).name
            for g in store.series_groups(engine, series.id)
            for f in store.group_files(engine, g.id)
        }
        assert members == {"IMG_0.jpg", "IMG_1.jpg", "IMG_2.jpg"}
        cues = {lk.cue for lk in store.series_links(engine, series.id)}
        assert {"scene", "device_model"} <= cues
        assert series.cues["scene"] >= 2
    finally:
        engine.dispose()
