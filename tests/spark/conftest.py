"""Spark in local mode, one session for the whole run (starting one costs seconds)."""

from __future__ import annotations

import io
import os
import shutil
import sys
from pathlib import Path

import pytest
from PIL import Image

if os.environ.get("SENTINELLE_TEST_JAVA") == "off":  # scripts/setup-test-deps could not install
    pytest.skip(
        os.environ.get("SENTINELLE_TEST_SKIP_REASON")
        or "no Java runtime (SENTINELLE_TEST_JAVA=off)",
        allow_module_level=True,
    )

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
PHOTOS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "photos" / "bsds500"


@pytest.fixture(scope="session")
def spark():
    from sentinelle.spark.session import make_session

    s = make_session(
        "local[2]",
        "sentinelle-tests",
        {
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.driver.memory": "1g",
            "spark.sql.execution.arrow.maxRecordsPerBatch": "4",
        },
    )
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


def _save(img: Image.Image, path: Path, fmt: str = "PNG") -> Path:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, fmt)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory):
    """A bank of 4 rendered scenes (+ 2 photos) and an inbox of altered copies, photos, junk."""
    from sentinelle.banks import BankStore
    from sentinelle.cli.demo_media import TRANSFORMS, render_scene
    from sentinelle.formats.enroll import entries_from_paths
    from sentinelle.store.db import open_engine

    tmp = tmp_path_factory.mktemp("spark-world")
    url = f"sqlite:///{tmp / 'bank.db'}"
    originals, inbox = tmp / "originals", tmp / "inbox"
    originals.mkdir()
    (inbox / "sub").mkdir(parents=True)
    scenes = {i: render_scene(i, (480, 360)) for i in range(4)}
    for i, img in scenes.items():
        _save(img, originals / f"o{i}.jpg", "JPEG")
    photos = sorted(PHOTOS.glob("*.jpg"))
    if len(photos) < 40:
        pytest.fail(f"shared photo corpus not found at {PHOTOS}")
    for p in photos[:2]:
        shutil.copy(p, originals / p.name)
    store = BankStore(open_engine(url))
    store.create_bank("known")
    store.create_bank("strict")
    entries, failed = entries_from_paths(sorted(originals.iterdir()), augment=True, category="A1")
    assert not failed
    store.add_entries("known", entries)
    store.set_threshold("strict", "pdq", 10)
    strict, _ = entries_from_paths([originals / "o1.jpg"])
    store.add_entries("strict", strict)
    _save(TRANSFORMS["resized"](scenes[0]), inbox / "resized.png")
    _save(TRANSFORMS["border"](scenes[1]), inbox / "sub" / "border.webp", "WEBP")
    (inbox / "exact-copy.bin").write_bytes((originals / "o3.jpg").read_bytes())
    for p in photos[:2]:  # a banked photo, recompressed smaller
        Image.open(p).resize((400, 266)).save(inbox / f"re-{p.name}", quality=80)
    for p in photos[2:30]:
        shutil.copy(p, inbox / p.name)
    (inbox / "junk.jpg").write_bytes(b"not an image at all")
    (inbox / "empty.png").write_bytes(b"")
    (inbox / "truncated.jpg").write_bytes((originals / "o0.jpg").read_bytes()[:600])
    (inbox / "bad-header.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + bytes((i * 37) % 256 for i in range(300))
    )
    return {"url": url, "store": store, "originals": originals, "inbox": inbox}
