"""The C2PA source skips the native reader only for files that cannot hold a manifest."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

import sentinelle.provenance.c2pa_reader as reader
from sentinelle.cli.demo_media import render_scene
from sentinelle.provenance.evidence import SourceContext

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "provenance" / "c2pa-rs-fixtures"


def _items(data: bytes, monkeypatch: pytest.MonkeyPatch | None = None) -> list[dict]:
    if monkeypatch is not None:
        monkeypatch.setattr(reader, "_surely_unsigned", lambda data, media_type: False)
    items = reader.collect(data, SourceContext().bind(data))
    if monkeypatch is not None:
        monkeypatch.undo()
    return [e.to_dict() for e in items]


def _rendered(fmt: str, seed: int) -> bytes:
    buf = io.BytesIO()
    kw = {"quality": 90} if fmt == "JPEG" else {}
    render_scene(seed, (640, 480)).save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_unsigned_files_get_what_the_reader_says(fmt: str, monkeypatch) -> None:
    for seed in range(3):
        data = _rendered(fmt, seed)
        assert reader._surely_unsigned(data, None)
        assert _items(data) == _items(data, monkeypatch)


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared fixtures missing")
def test_the_reader_is_asked_whenever_a_manifest_may_be_there(monkeypatch) -> None:
    for p in sorted(FIXTURES.iterdir()):
        data = p.read_bytes()
        shortcut = reader._surely_unsigned(data, None)
        items = _items(data)
        assert items == _items(data, monkeypatch), p.name
        if shortcut:  # only files the reader finds nothing in
            assert [i["finding"] for i in items] == ["no C2PA manifest"], p.name
    signed = (FIXTURES / "sdk_tests_fixtures_C.jpg").read_bytes()
    assert not reader._surely_unsigned(signed, "image/jpeg")
    assert not reader._surely_unsigned(b"\xff\xd8 xmp dcterms:provenance", "image/jpeg")
    assert not reader._surely_unsigned(b"no marks here", "image/webp")  # reader decides


def test_random_bytes_with_a_stray_mark_still_go_to_the_reader() -> None:
    rnd = random.Random(1)
    body = bytes(rnd.randrange(256) for _ in range(4096))
    assert not reader._surely_unsigned(body + b"jumb" + body, "image/jpeg")
    assert reader._surely_unsigned(body.replace(b"c2pa", b"").replace(b"jumb", b""), "image/png")


def test_a_jpeg_is_searched_up_to_its_scan_data_only_when_it_has_one_scan() -> None:
    base = _rendered("JPEG", 5)
    end = reader._jpeg_header_end(base)
    assert end is not None and base[end - 14 : end - 12] == b"\xff\xda"
    header_mark = base[:2] + b"\xff\xeb\x00\x06jumb" + base[2:]  # an APP11 JUMBF segment
    assert reader._jpeg_header_end(header_mark) is not None
    assert not reader._surely_unsigned(header_mark, "image/jpeg")
    prog = io.BytesIO()
    render_scene(5, (640, 480)).save(prog, "JPEG", quality=90, progressive=True)
    data = prog.getvalue()
    assert reader._jpeg_header_end(data) is None  # progressive: searched everywhere
    assert not reader._surely_unsigned(data[:-2] + b"jumb" + data[-2:], "image/jpeg")
