"""`sentinelle bank ...` through Typer's CliRunner, on a temporary SQLite database."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from sentinelle.banks import BankStore
from sentinelle.cli.bank_cmd import register
from sentinelle.store.db import open_engine

RNG = np.random.default_rng(11)


def rhex(nbytes: int) -> str:
    return RNG.integers(0, 256, nbytes, dtype=np.uint8).tobytes().hex()


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", url)
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        res = runner.invoke(app, ["bank", *args])
        assert res.exit_code == code, (args, res.exit_code, res.output, res.exception)
        return res.output

    run.url = url  # type: ignore[attr-defined]
    return run


def store_of(cli) -> BankStore:  # type: ignore[no-untyped-def]
    return BankStore(open_engine(cli.url))


def test_create_list_show_threshold_delete(cli) -> None:  # type: ignore[no-untyped-def]
    assert "created bank 'ncmec'" in cli(
        "create", "ncmec", "--description", "NCMEC list", "--pdq-threshold", "28"
    )
    assert "already exists" in cli("create", "ncmec", code=1)
    out = cli("list")
    assert "ncmec" in out and "NCMEC list" in out and "28" in out
    cli("threshold", "ncmec", "vpdq", "20")
    assert "bad_threshold" in cli("threshold", "ncmec", "md5", "3", code=1)
    assert "bad_signal_type" in cli("threshold", "ncmec", "photodna", "3", code=1)
    shown = cli("show", "ncmec")
    assert "pdq=28" in shown and "vpdq=20" in shown and "entries: 0" in shown
    assert "unknown_bank" in cli("show", "nope", code=1)
    cli("create", "bad", "--pdq-threshold", "999", code=2)
    assert "deleted bank 'ncmec'" in cli("delete", "ncmec", "--yes")
    assert "ncmec" not in cli("list")


def test_import_export_and_rejections(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("create", "b")
    rows = [f"pdq,{rhex(32)},A1" for _ in range(3)] + [f"md5,{rhex(16)},B2"]
    good = tmp_path / "in.csv"
    good.write_text("signal_type,hash,category\n" + "\n".join(rows) + "\n")
    out = cli("import", "b", str(good), "--format", "csv")
    assert "4 added, 0 duplicates" in out and "4 total" in out
    assert "0 added, 4 duplicates" in cli("import", "b", str(good), "--format", "csv")

    bad = tmp_path / "bad.txt"
    bad.write_text(f"pdq {rhex(32)}\npdq nothex\nurl http://x\n")
    out = cli("import", "b", str(bad), "--format", "threatexchange", code=1)
    assert "import rejected" in out and "line 2:" in out and "line 3:" in out
    assert store_of(cli).get_bank("b").total == 4  # nothing written
    assert "cannot read" in cli("import", "b", str(tmp_path / "none.csv"), code=1)
    cli("import", "b", str(good), "--format", "yaml", code=2)
    assert "unknown_bank" in cli("import", "zz", str(good), code=1)

    # export to stdout and to a file, in every format
    te = cli("export", "b", "--format", "threatexchange")
    assert te.count("pdq ") == 3 and te.count("video_md5 ") == 1
    target = tmp_path / "b.json"
    cli("export", "b", "--format", "vics", "--out", str(target))
    media = json.loads(target.read_text())["value"][0]["Media"]
    assert len(media) == 4 and not (tmp_path / "b.json.tmp").exists()
    cli("create", "copy")
    assert "4 added" in cli("import", "copy", str(target), "--format", "vics")
    for fmt in ("csv", "pdq-list", "md5-list"):
        path = tmp_path / f"b.{fmt}"
        cli("export", "b", "--format", fmt, "--out", str(path))
        assert path.stat().st_size > 0
    assert "io_error" in cli("export", "b", "--out", str(tmp_path / "no" / "dir" / "x"), code=1)


def test_entry_commands(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("create", "b")
    lst = tmp_path / "l.txt"
    hashes = [rhex(32) for _ in range(3)]
    lst.write_text("\n".join(hashes) + "\n")
    cli("import", "b", str(lst), "--format", "pdq-list")
    store = store_of(cli)
    ids = sorted(e.id for e in store.iter_entries("b"))
    assert "until 2099-01-01" in cli(
        "entry-disable", str(ids[0]), "--until", "2099-01-01T00:00:00Z"
    )
    cli("entry-disable", str(ids[1]))
    assert len(store.load_signal("pdq")) == 1
    cli("entry-enable", str(ids[0]))
    assert len(store.load_signal("pdq")) == 2
    cli("entry-disable", str(ids[0]), "--until", "not a date", code=2)
    cli("entry-delete", str(ids[2]), "--reason", "false positive")
    assert "unknown_entry" in cli("entry-delete", str(ids[2]), code=1)
    assert "unknown_entry" in cli("entry-enable", "999999", code=1)
    out = cli("import", "b", str(lst), "--format", "pdq-list")
    assert "0 added" in out and "1 skipped" in out


def test_add_media_images_and_failures(cli, shared: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("sentinelle.signals.hasher")
    cli("create", "known")
    src = shared / "conformance" / "pdq" / "bridge-mods"
    images = sorted(src.glob("*.jpg"))[:2]
    out = cli(
        "add-media",
        "known",
        *map(str, images),
        "--augment",
        "--category",
        "A1",
        "--source-org",
        "test",
    )
    assert "enrolled 2 file(s)" in out and "0 failed" in out
    store = store_of(cli)
    entries = list(store.iter_entries("known"))
    assert {e.signal_type for e in entries} == {"md5", "sha256", "pdq"}
    assert {e.category for e in entries} == {"A1"}
    pdq = [e for e in entries if e.signal_type == "pdq"]
    assert any(e.variant != "plain" for e in pdq)  # central crops from --augment
    assert len({e.media_ref for e in entries}) == 2
    # enrolling again adds nothing
    assert "0 entries added" in cli("add-media", "known", *map(str, images))
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"definitely not an image")
    out = cli("add-media", "known", str(junk), str(tmp_path / "missing.png"), code=1)
    assert "could not enroll" in out and "2 failed" in out
    assert "unknown_bank" in cli("add-media", "nope", str(images[0]), code=1)


@pytest.mark.slow
def test_add_media_video_enrolls_vpdq_frames(cli, shared: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("sentinelle.signals.hasher")
    cli("create", "videos")
    clip = shared / "conformance" / "vpdq" / "videos" / "doorknob-hd-no-bar.mp4"
    assert "enrolled 1 file(s)" in cli("add-media", "videos", str(clip))
    info = store_of(cli).get_bank("videos")
    assert info.counts["md5"] == 1 and info.counts["sha256"] == 1 and info.counts["vpdq"] >= 1
    loaded = store_of(cli).load_signal("vpdq")
    assert len(set(loaded.media_refs)) == 1
    assert all(v.startswith("frame") for v in loaded.variants)
