"""Multipart uploads never touch disk: the HMA routes, bank imports and console forms.

Starlette's ``request.form()`` spools any part over 1 MiB to a temporary file
(``tempfile.SpooledTemporaryFile``), which would write uploaded media in the
clear. Every multipart body is instead streamed in memory
(:func:`sentinelle.service.uploads.iter_multipart`), and framework-parsed forms
refuse file parts. Each test runs with the temporary directory pointed at:

* ``empty``: an empty folder, which must stay empty;
* ``missing``: a folder that does not exist, so that any temporary file at all
  (even an unnamed ``O_TMPFILE`` one, invisible in a listing) fails the request.
"""

from __future__ import annotations

import io
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from sentinelle.service.app import create_app
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings
from sentinelle.signals.hasher import hash_bytes

MiB = 1024 * 1024


@pytest.fixture(params=["empty", "missing"])
def tmpdir_guard(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """Point the temp dir (``tempfile.tempdir`` and ``TMPDIR``) at an empty or a
    missing folder for the test; check afterwards that nothing was left there."""
    target = tmp_path / "tmpdir"
    if request.param == "empty":
        target.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setattr(tempfile, "tempdir", str(target))
    mp.setenv("TMPDIR", str(target))
    try:
        yield target
    finally:
        mp.undo()
    if request.param == "empty":
        assert list(target.iterdir()) == []
    else:
        assert not target.exists()


def _noise_png(seed: int, side: int = 720) -> bytes:
    """A benign random-noise PNG: incompressible, so well over 1 MiB."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _pdq_of(data: bytes) -> str:
    (s,) = hash_bytes(data, signals=("pdq",)).signals
    return s.hash  # type: ignore[union-attr]


class Svc:
    def __init__(self, client: TestClient) -> None:
        self.c = client
        engine = client.app.state.sentinelle.engine  # type: ignore[attr-defined]
        self.tokens = {s: create_key(engine, f"k-{s}", [s])[1] for s in ("scan", "curate")}

    def post(self, url: str, who: str = "curate", **kw):  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {self.tokens[who]}", **kw.pop("headers", {})}
        return self.c.post(url, headers=headers, **kw)


@pytest.fixture()
def svc(db_url: str, tmp_path: Path, tmpdir_guard: Path) -> Iterator[Svc]:
    spool = tmp_path / "spool"  # bank imports' own private spool, away from the temp dir
    settings = Settings(
        database_url=db_url,
        rate_limit=0,
        max_upload_bytes=4 * MiB,
        extra={"spool_dir": str(spool), "import_sync_max_bytes": 4 * MiB},
    )
    app = create_app(settings, start_background=False)
    with TestClient(app) as client:
        yield Svc(client)


def _hma_message(r) -> str:  # type: ignore[no-untyped-def]
    body = r.json()
    assert body["message"] == body["error"]["message"] and body["message"]
    return body["message"]


def test_hma_large_upload_is_hashed_in_memory(svc: Svc) -> None:
    photo = _noise_png(1)
    assert len(photo) > MiB
    r = svc.post("/h/hash", who="scan", files={"photo": ("big.png", photo, "image/png")})
    assert r.status_code == 200, r.text
    assert r.json() == {"pdq": _pdq_of(photo)}

    assert svc.post("/c/banks", json={"name": "BIG"}).status_code == 201
    r = svc.post(
        "/c/bank/BIG/content",
        files={"photo": ("big.png", photo, "image/png")},
        data={"content_id": "item-1", "note": "large upload"},
    )
    assert r.status_code == 200, r.text
    added = r.json()
    assert added["signals"] == {"pdq": _pdq_of(photo)}
    r = svc.c.get(
        f"/c/bank/BIG/content/{added['id']}",
        headers={"Authorization": f"Bearer {svc.tokens['curate']}"},
    )
    assert r.json()["metadata"] == {"content_id": "item-1"}

    svc.c.app.state.sentinelle.matcher.refresh()  # type: ignore[attr-defined]
    r = svc.post("/m/lookup", who="scan", files={"photo": ("q.png", photo)})
    assert r.status_code == 200, r.text
    assert [m["bank_content_id"] for m in r.json()["pdq"]["BIG"]] == [added["id"]]


def test_hma_hostile_multipart_gets_hma_errors(svc: Svc) -> None:
    photo = _noise_png(2, side=64)
    # over max_upload_bytes (4 MiB), while streaming
    big = _noise_png(3, side=1400)
    assert len(big) > 4 * MiB
    r = svc.post("/h/hash", who="scan", files={"photo": ("b.png", big)})
    assert r.status_code == 413  # the body limit answers first; the route also checks
    assert r.json()["error"]["code"] in ("body_too_large", "file_too_large")
    # truncated: no closing boundary -> the half-received file is never hashed
    body = b'--zz\r\nContent-Disposition: form-data; name="photo"; filename="a"\r\n\r\n' + photo
    r = svc.post(
        "/h/hash",
        who="scan",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=zz"},
    )
    assert r.status_code == 400 and "closing boundary" in _hma_message(r)
    assert r.json()["error"]["code"] == "bad_multipart"
    # missing boundary, too many text fields, an oversized text field, text only
    r = svc.post(
        "/h/hash", who="scan", content=photo, headers={"Content-Type": "multipart/form-data"}
    )
    assert r.status_code == 400 and _hma_message(r)
    fields = {f"f{i}": "x" for i in range(17)}
    r = svc.post("/h/hash", who="scan", data=fields, files={"photo": ("a", photo)})
    assert r.status_code == 400 and "fields" in _hma_message(r)
    r = svc.post("/h/hash", who="scan", data={"note": "x" * 20_000}, files={"photo": ("a", photo)})
    assert r.status_code == 400 and "too long" in _hma_message(r)
    text_only = b'--zz\r\nContent-Disposition: form-data; name="photo"\r\n\r\nx\r\n--zz--\r\n'
    r = svc.post(
        "/h/hash",
        who="scan",
        content=text_only,
        headers={"Content-Type": "multipart/form-data; boundary=zz"},
    )
    assert r.status_code == 400 and "Missing" in _hma_message(r)


def test_bank_import_multipart_streams_to_its_spool_only(svc: Svc, tmp_path: Path) -> None:
    rng = random.Random(7)
    lines = ["signal_type,hash,category"]
    lines += [f"sha256,{rng.getrandbits(256):064x},c" for _ in range(16_000)]
    data = ("\n".join(lines) + "\n").encode()
    assert len(data) > MiB
    assert svc.post("/v1/banks", json={"name": "B"}).status_code == 201
    r = svc.post("/v1/banks/B/import", params={"format": "csv"}, files={"file": ("b.csv", data)})
    assert r.status_code == 200, r.text
    assert r.json()["report"]["added"] == 16_000
    assert list((tmp_path / "spool").iterdir()) == []  # the spool file is gone too
    # two files, or none: refused before anything is imported
    r = svc.post(
        "/v1/banks/B/import",
        params={"format": "csv"},
        files=[("file", ("a.csv", data[:100])), ("file", ("b.csv", data[:100]))],
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_upload"
    text_only = b'--zz\r\nContent-Disposition: form-data; name="file"\r\n\r\nx\r\n--zz--\r\n'
    r = svc.post(
        "/v1/banks/B/import",
        params={"format": "csv"},
        content=text_only,
        headers={"Content-Type": "multipart/form-data; boundary=zz"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_upload"
    assert list((tmp_path / "spool").iterdir()) == []


def test_console_form_refuses_file_parts(svc: Svc) -> None:
    r = svc.c.post(
        "/console/login",
        data={"username": "a", "password": "b"},
        files={"avatar": ("a.png", _noise_png(4))},
    )
    assert r.status_code == 400
    assert "files" in r.json()["error"]["message"]  # refused as a file, before any spooling


def test_scan_truncated_multipart_is_400(svc: Svc) -> None:
    body = b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
    body += _noise_png(5, side=64)
    r = svc.post(
        "/v1/scan",
        who="scan",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=zz"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_multipart"
