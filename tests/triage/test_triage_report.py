"""The self-contained HTML triage report (issue 12): content, protection, hostility."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import update
from triage_cases import CASE, TriageWorld, build_case

from sentinelle.store.db import open_engine
from sentinelle.triage import store
from sentinelle.triage.report_html import SCRIPT_FILE, render_report, write_report
from sentinelle.triage.tables import triage_files


@pytest.fixture()
def world(sqlite_url: str, tmp_path: Path) -> TriageWorld:
    eng = open_engine(sqlite_url)
    yield build_case(eng, tmp_path)
    eng.dispose()


def decode(uri: str) -> Image.Image:
    assert uri.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def detail(im: Image.Image) -> float:
    """Mean absolute difference of neighbouring pixels (fine detail)."""
    a = np.asarray(im.convert("L"), dtype=np.float32)
    return float(np.abs(np.diff(a, axis=1)).mean())


def sharp_map(html: str) -> dict[str, str]:
    m = re.search(r'<script type="application/json" id="sharp">(.*?)</script>', html, re.S)
    assert m
    return json.loads(m.group(1))


def test_report_is_self_contained_and_locked_down(world: TriageWorld) -> None:
    html = render_report(world.engine, CASE)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert "default-src 'none'" in csp and "img-src data:" in csp
    # the one inline script is the one pinned by hash
    script = SCRIPT_FILE.read_text()
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp and f"<script>{script}</script>" in html
    # nothing is fetched: no external src/href, every image a data: URI
    assert not re.search(r'(src|href)="(https?:)?//', html)
    srcs = re.findall(r'<img[^>]* src="([^"]+)"', html)
    assert srcs and all(s.startswith("data:image/jpeg;base64,") for s in srcs)


def test_shown_thumbnails_are_blurred_grayscale_and_sharp_ones_hidden(world: TriageWorld) -> None:
    html = render_report(world.engine, CASE)
    sharp = sharp_map(html)
    keys = [store.get_group(world.engine, g).key for g in world.group_ids]
    assert set(sharp) == set(keys[:4])  # new groups only; known material is not shown
    shown = dict(re.findall(r'<img data-group="([^"]+)" src="([^"]+)"', html))
    for k in keys[:4]:
        blurred, clear = decode(shown[k]), decode(sharp[k])
        assert blurred.mode == "L"  # grayscale
        assert clear.mode == "RGB"
        assert detail(blurred) < detail(clear) / 3  # fine detail gone
        assert shown[k] != sharp[k] and f'src="{sharp[k]}"' not in html
    assert keys[4] not in shown
    assert "known: not shown" in html


def test_no_sharp_thumbnail_when_not_revealable(world: TriageWorld) -> None:
    html = render_report(world.engine, CASE, revealable=False)
    assert sharp_map(html) == {} and '<button type="button" data-reveal=' not in html
    assert "holds no sharp previews" in html
    assert len(re.findall(r"<img data-group=", html)) >= 4


def test_queue_series_reasons_weights_and_victims(world: TriageWorld) -> None:
    store.set_series_name(world.engine, world.case.id, "S-lake", "Lake house")
    html = render_report(world.engine, CASE)
    # priority queue in rank order with tiers and reasons
    ranks = [
        int(r) for r in re.findall(r'<tr id="g-[^"]+" class="group[^"]*">\s*<td>(\d+)</td>', html)
    ]
    assert ranks == [1, 2, 3, 4, 5]
    assert "possible real victim" in html and "AI-generated or AI-edited" in html
    assert "EXIF camera Canon EOS 5D, serial 1234" in html and "[camera +3.00]" in html
    assert "camera = 3.0" in html  # the weights are shown
    # series view: the named series, its two groups and the cue linking them
    sec = html[html.index('<section id="series">') : html.index('<section id="errors">')]
    assert "Lake house" in sec and "S-lake" in sec and "name from VICS/ICSE" in sec
    assert sec.count('class="tile"') == 2 and "same camera serial 1234" in sec
    assert "device × 1" in sec
    # known material: category and an unidentified victim (from the bank entry)
    assert "category 1" in html and "victim NOT identified" in html
    assert re.search(
        r'<div class="n">1</div><div class="l">known groups, victim not identified', html
    )
    # every copy's path, archive members included; the per-file error
    assert f"{world.zip_path}!/DCIM/IMG_0001.jpg" in html
    assert "broken.jpg" in html and "decode_error" in html


def test_hostile_file_names_are_escaped(world: TriageWorld) -> None:
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>.jpg'
    with world.engine.begin() as c:
        c.execute(
            update(triage_files)
            .where(triage_files.c.media_id == world.media_ids[2])
            .values(path=str(world.root / evil))
        )
    html = render_report(world.engine, CASE)
    assert "<script>alert(1)" not in html and "onerror=alert(2)>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_missing_media_file_gives_a_note_not_a_crash(world: TriageWorld) -> None:
    (world.root / "photo3.jpg").unlink()
    (world.root / "photo4.jpg").write_bytes(b"not an image at all")
    html = render_report(world.engine, CASE)
    assert "no preview (file not readable)" in html
    assert "no preview (unsupported_type)" in html


def test_thumbnail_limit_and_atomic_write(world: TriageWorld, tmp_path: Path) -> None:
    html = render_report(world.engine, CASE, max_thumbnails=1)
    assert len(sharp_map(html)) == 1 and "over the 1 thumbnail limit" in html
    html = render_report(world.engine, CASE, max_rows=2)
    assert len(re.findall(r'<tr id="g-', html)) == 2 and "3 more groups" in html
    # the victim counts still cover every known group
    assert re.search(
        r'<div class="n">1</div><div class="l">known groups, victim not identified', html
    )
    out = write_report(world.engine, CASE, tmp_path / "out" / "report.html")
    assert out.read_text().startswith("<!doctype html>")
    assert not list((tmp_path / "out").glob(".*.tmp"))
    with pytest.raises(store.TriageError, match="no triage case"):
        render_report(world.engine, "missing")
