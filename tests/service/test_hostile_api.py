"""Hostile input against the HTTP API: never a 5xx, always a clear 4xx.

Two layers:

* **schemathesis** generates requests from the app's own OpenAPI spec -- valid
  ones and deliberately invalid ones (wrong types, missing fields, odd
  strings) -- for every operation, with a key that has every scope, and asserts
  that no answer is a server error and that every ``/v1`` error has the
  ``{"error": {"code", "message"}}`` shape. The number of examples is bounded
  (``FUZZ_EXAMPLES`` per operation) so the run takes well under two minutes.
* **explicit cases** for what a fuzzer rarely produces: oversized uploads
  (declared and streamed), truncated JPEG and MP4 files, mislabelled uploads,
  empty bodies, malformed JSON and bad hashes.

Everything runs in process against the real app on a real SQLite file
(``TestClient``); nothing is mocked.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from PIL import Image

from sentinelle.service.app import create_app
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FUZZ_EXAMPLES = int(os.environ.get("SENTINELLE_FUZZ_EXAMPLES", "12"))
UPLOAD_LIMIT = 256 * 1024


def make_settings(db_url: str) -> Settings:
    return Settings(
        database_url=db_url,
        max_upload_bytes=UPLOAD_LIMIT,
        max_json_bytes=256 * 1024,
        max_import_bytes=1024 * 1024,
        rate_limit=0.0,  # let the fuzzer through; rate limits are tested elsewhere
        ready_max_lag_s=3600.0,
        threads=4,
    )


@pytest.fixture(scope="module")
def app_and_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    db = tmp_path_factory.mktemp("hostile") / "api.db"
    app = create_app(make_settings(f"sqlite:///{db}"))
    state = app.state.sentinelle
    _rec, token = create_key(state.engine, "fuzzer", ["admin"])
    # A bank with one entry, so lookups and entry routes have something to find.
    state.store.create_bank("fuzzbank")
    from sentinelle.formats.entry import EntryIn

    state.store.add_entries("fuzzbank", [EntryIn(signal_type="pdq", hash="a" * 64)])
    state.matcher.refresh()
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield app, token
        del client


@pytest.fixture()
def client(app_and_key: tuple[object, str]) -> Iterator[TestClient]:
    app, token = app_and_key
    with TestClient(app, raise_server_exceptions=False) as c:  # type: ignore[arg-type]
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def assert_error(r, status: int | tuple[int, ...], code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    """``r`` is a structured client error with a readable message."""
    statuses = (status,) if isinstance(status, int) else status
    assert r.status_code in statuses, (r.status_code, r.text[:500])
    body = r.json()
    err = body["error"]
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and len(err["message"]) >= 5
    if code is not None:
        assert err["code"] == code, err
    return err


# ------------------------------------------------------------------ schemathesis
def _fuzz_operation(op, mode, token: str, failures: list[str]) -> int:  # type: ignore[no-untyped-def]
    """Run ``FUZZ_EXAMPLES`` generated requests for one operation; return how many."""
    seen = [0]

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report, do not minimise
    )
    def run(case) -> None:  # type: ignore[no-untyped-def]
        seen[0] += 1
        headers = dict(case.headers or {})
        headers["Authorization"] = f"Bearer {token}"
        where = f"{mode.value} {case.method} {case.formatted_path}"
        try:
            response = case.call(headers=headers)
        except Exception as e:  # noqa: BLE001 - the app raised: a 500 in production
            failures.append(f"{where} -> exception {type(e).__name__}: {str(e)[:200]}")
            return
        if response.status_code >= 500:
            failures.append(f"{where} -> {response.status_code}: {response.text[:300]}")
        elif response.status_code >= 400 and case.path.startswith("/v1"):
            try:
                err = json.loads(response.text)["error"]
                ok = bool(err["code"]) and bool(err["message"])
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                failures.append(f"{where} -> unstructured error body: {response.text[:300]}")

    run()
    return seen[0]


def test_fuzz_openapi_no_server_errors(app_and_key: tuple[object, str]) -> None:
    """Every operation of the OpenAPI spec, valid and invalid generated requests."""
    app, token = app_and_key
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    ops = 0
    sent = 0
    for result in schema.get_all_operations():
        op = result.ok()
        ops += 1
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            # Unsatisfiable: no invalid request can be expressed for this operation
            with contextlib.suppress(hypothesis.errors.Unsatisfiable):
                sent += _fuzz_operation(op, mode, token, failures)
    assert ops >= 20, f"only {ops} operations in the spec"
    assert sent >= ops * 2, sent
    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:20])


# ------------------------------------------------------------------ uploads
def jpeg_bytes(size: tuple[int, int] = (320, 240)) -> bytes:
    """A benign rendered gradient image as JPEG."""
    w, h = size
    img = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def png_bytes() -> bytes:
    img = Image.radial_gradient("L").convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("route", ["/v1/hash", "/v1/match", "/v1/scan"])
def test_oversized_upload_declared_is_413(client: TestClient, route: str) -> None:
    data = os.urandom(UPLOAD_LIMIT + 1)
    r = client.post(route, content=data, headers={"Content-Type": "application/octet-stream"})
    err = assert_error(r, 413)
    assert str(UPLOAD_LIMIT) in err["message"]


def test_oversized_upload_streamed_without_length_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"\xff" * (64 * 1024)

    r = client.post("/v1/scan", content=chunks(), headers={"Content-Type": "image/jpeg"})
    assert_error(r, 413)


def test_oversized_multipart_is_413(client: TestClient) -> None:
    r = client.post("/v1/match", files={"file": ("big.jpg", os.urandom(UPLOAD_LIMIT + 10))})
    assert_error(r, 413)


def test_oversized_json_is_413(client: TestClient) -> None:
    body = json.dumps({"hashes": [{"type": "md5", "hash": "0" * 32}] * 20_000}).encode()
    assert len(body) > 256 * 1024
    r = client.post("/v1/match/hashes", content=body, headers={"Content-Type": "application/json"})
    assert_error(r, 413)


def test_truncated_jpeg_is_422(client: TestClient) -> None:
    src = sorted((SHARED / "corpora/photos/bsds500").glob("*.jpg"))[0].read_bytes()
    for cut in (len(src) // 2, 200, 3):
        r = client.post("/v1/scan", files={"file": ("photo.jpg", src[:cut], "image/jpeg")})
        err = assert_error(r, 422)
        assert err["code"] != "internal_error"


def test_truncated_mp4_is_422(client: TestClient) -> None:
    videos = sorted(
        (SHARED / "conformance/vpdq/videos").glob("*.mp4"), key=lambda p: p.stat().st_size
    )
    assert videos, "no conformance videos"
    src = videos[0].read_bytes()
    for cut in (min(len(src) // 3, UPLOAD_LIMIT // 2), 64):
        r = client.post("/v1/hash", content=src[:cut], headers={"Content-Type": "video/mp4"})
        assert_error(r, 422)


def test_mislabelled_upload_is_hashed_as_what_it_is(client: TestClient) -> None:
    # PNG bytes named .mp4 with a video content type: detected from the bytes.
    r = client.post("/v1/hash", files={"file": ("clip.mp4", png_bytes(), "video/mp4")})
    assert r.status_code == 200, r.text
    assert r.json()["media_type"] == "image"
    r = client.post("/v1/match", content=jpeg_bytes(), headers={"Content-Type": "video/mp4"})
    assert r.status_code == 200, r.text


def test_non_media_named_as_image_is_422(client: TestClient) -> None:
    r = client.post(
        "/v1/scan", files={"file": ("photo.jpg", b"%PDF-1.4 not an image " * 50, "image/jpeg")}
    )
    assert_error(r, 422)


def test_wrong_content_type_is_415(client: TestClient) -> None:
    r = client.post("/v1/scan", content=jpeg_bytes(), headers={"Content-Type": "text/plain"})
    assert_error(r, 415)


@pytest.mark.parametrize("route", ["/v1/hash", "/v1/match", "/v1/scan"])
def test_empty_body_is_4xx(client: TestClient, route: str) -> None:
    r = client.post(route, content=b"", headers={"Content-Type": "application/octet-stream"})
    assert_error(r, (400, 422))
    r = client.post(route, files={"file": ("empty.jpg", b"", "image/jpeg")})
    assert_error(r, (400, 422))


def test_multipart_without_file_part_or_boundary(client: TestClient) -> None:
    r = client.post("/v1/scan", data={"notfile": "x"}, files={"other": ("a.txt", b"abc")})
    assert_error(r, 422, "missing_file")
    r = client.post("/v1/scan", content=b"--x\r\n", headers={"Content-Type": "multipart/form-data"})
    assert_error(r, 400)
    r = client.post(
        "/v1/scan",
        content=b'--abc\r\nContent-Disposition: form-data; name="file"\r\n\r\nxx',
        headers={"Content-Type": "multipart/form-data; boundary=zzz"},
    )
    assert_error(r, (400, 422))


# ------------------------------------------------------------------ JSON and hashes
@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b'{"hashes": [}',
        b"\xff\xfe\x00garbage",
        b"null",
        b"[]",
        b'{"hashes": "abc"}',
        b'{"hashes": [{"type": "pdq"}]}',
        b'{"hashes": [{"type": 5, "hash": []}]}',
        b"",
    ],
)
def test_malformed_json_is_422(client: TestClient, raw: bytes) -> None:
    r = client.post("/v1/match/hashes", content=raw, headers={"Content-Type": "application/json"})
    assert_error(r, (400, 422))


def test_malformed_json_on_bank_routes(client: TestClient) -> None:
    for path in ("/v1/banks", "/v1/banks/fuzzbank/entries"):
        r = client.post(path, content=b'{"name": ', headers={"Content-Type": "application/json"})
        assert_error(r, (400, 422))
    r = client.post("/v1/banks", json={"name": "x", "surprise": 1})
    assert_error(r, 422)


@pytest.mark.parametrize(
    ("htype", "value", "needle"),
    [
        ("pdq", "ab" * 31, "pdq"),  # wrong length
        ("pdq", "zz" * 32, "hex"),  # not hex
        ("md5", "0" * 31, "md5"),
        ("sha256", "g" * 64, "hex"),
        ("pdq", "", "pdq"),
        ("pdq", "0x" + "a" * 62, ""),
        ("nope", "a" * 64, "type"),  # unknown type
    ],
)
def test_bad_hashes_are_422_with_position(
    client: TestClient, htype: str, value: str, needle: str
) -> None:
    good = {"type": "pdq", "hash": "a" * 64}
    r = client.post("/v1/match/hashes", json={"hashes": [good, {"type": htype, "hash": value}]})
    err = assert_error(r, 422, "invalid_hash")
    assert "hashes[1]" in err["message"]
    assert needle.lower() in err["message"].lower()
    assert err["errors"][0]["index"] == 1


def test_good_hash_list_still_matches(client: TestClient, app_and_key) -> None:  # type: ignore[no-untyped-def]
    # A bank of its own: the fuzzer may have changed or deleted "fuzzbank".
    state = app_and_key[0].state.sentinelle  # type: ignore[attr-defined]
    from sentinelle.formats.entry import EntryIn

    state.store.create_bank("goodbank")
    state.store.add_entries("goodbank", [EntryIn(signal_type="pdq", hash="b" * 64)])
    state.matcher.refresh()
    r = client.post("/v1/match/hashes", json={"hashes": [{"type": "PDQ", "hash": "B" * 64}]})
    assert r.status_code == 200, r.text
    assert "goodbank" in {m["bank"] for m in r.json()["results"][0]["matches"]}


def test_bad_hashes_on_bank_and_hma_routes(client: TestClient) -> None:
    r = client.post("/v1/banks/fuzzbank/entries", json={"signal_type": "pdq", "hash": "xyz"})
    assert_error(r, (400, 422))
    r = client.post("/v1/banks/fuzzbank/entries", json={"signal_type": "tlsh", "hash": "a" * 64})
    assert_error(r, (400, 422))
    for params in (
        {"signal": "nothex", "signal_type": "pdq"},
        {"signal": "a" * 64, "signal_type": "unknown"},
        {"signal": "a" * 63, "signal_type": "pdq"},
    ):
        r = client.get("/m/raw_lookup", params=params)
        assert 400 <= r.status_code < 500, (params, r.status_code, r.text)


def test_too_many_hashes_is_422(client: TestClient) -> None:
    r = client.post(
        "/v1/match/hashes",
        json={"hashes": [{"type": "md5", "hash": "0" * 32}] * 10_001},
        headers={},
    )
    assert_error(r, (413, 422))


def test_no_or_bad_key_is_401(client: TestClient) -> None:
    for auth in ({}, {"Authorization": "Bearer snt_1_" + "A" * 43}, {"X-API-Key": "\x00junk"}):
        with TestClient(client.app, raise_server_exceptions=False) as anon:
            r = anon.post(
                "/v1/match/hashes",
                json={"hashes": [{"type": "pdq", "hash": "a" * 64}]},
                headers=auth,
            )
        assert_error(r, 401)


def test_out_of_range_ids_are_404_on_both_databases(db_url: str) -> None:
    """Regression: ids past 64 bits used to overflow the driver (SQLite: 500,
    PostgreSQL: 503) on /v1/entries/{id}, /v1/jobs/{id} and HMA content routes."""
    app = create_app(make_settings(db_url), start_background=False)
    state = app.state.sentinelle
    _rec, token = create_key(state.engine, "ids", ["admin"])
    state.store.create_bank("idbank")
    huge = str(2**64 + 5)
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        for method, path in (
            ("GET", f"/v1/entries/{huge}"),
            ("DELETE", f"/v1/entries/{huge}"),
            ("PATCH", f"/v1/entries/{huge}"),
            ("POST", f"/v1/entries/-{huge}/disable"),
            ("POST", f"/v1/entries/{huge}/enable"),
            ("GET", f"/v1/jobs/{huge}"),
        ):
            r = c.request(method, path, json={} if method == "PATCH" else None)
            assert_error(r, 404)
        for method in ("GET", "DELETE"):
            r = c.request(method, f"/c/bank/idbank/content/{huge}")
            assert r.status_code == 404, r.text
