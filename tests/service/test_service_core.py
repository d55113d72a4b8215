"""The service core: auth, limits, media routes, hash-list matching, sync, ready, metrics, logs.

Real app (``create_app``), real databases (SQLite file and PostgreSQL via ``db_url``),
real benign rendered images; no mocks.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from starlette.requests import Request

from sentinelle.cli.demo_media import render_scene
from sentinelle.formats.enroll import entries_from_paths
from sentinelle.formats.entry import EntryIn
from sentinelle.service.app import create_app
from sentinelle.service.auth import authenticate
from sentinelle.service.keys import create_key, revoke_key, rotate_key
from sentinelle.service.logging import ACCESS_LOGGER, JsonFormatter
from sentinelle.service.settings import Settings, SettingsError


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


KNOWN_SEEDS = (1000, 1001, 1002)


def _service(db_url: str, tmp_path: Path, **settings):  # type: ignore[no-untyped-def]
    base = dict(database_url=db_url, key_cache_s=0.0, sync_interval_s=0.1, rate_limit=0.0)
    base.update(settings)
    app = create_app(Settings(**base))
    state = app.state.sentinelle
    state.store.create_bank("known")
    originals = []
    for seed in KNOWN_SEEDS:
        p = tmp_path / f"scene-{seed}.jpg"
        p.write_bytes(_jpeg(render_scene(seed)))
        originals.append(p)
    entries, failed = entries_from_paths(originals, category="test")
    assert not failed
    state.store.add_entries("known", entries)
    state.matcher.refresh()
    _, scan_key = create_key(state.engine, "scanner", ["scan"])
    _, admin_key = create_key(state.engine, "admin", ["admin"])
    return app, state, originals, scan_key, admin_key


@pytest.fixture()
def svc(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    app, state, originals, scan_key, admin_key = _service(db_url, tmp_path)
    with TestClient(app) as client:
        yield SimpleNamespace(
            app=app,
            state=state,
            client=client,
            originals=originals,
            scan=scan_key,
            admin=admin_key,
            h={"Authorization": f"Bearer {scan_key}"},
        )


@pytest.fixture()
def lite(sqlite_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """SQLite-only variant for tests about HTTP mechanics rather than the database."""
    app, state, originals, scan_key, admin_key = _service(
        sqlite_url, tmp_path, max_upload_bytes=200_000, max_json_bytes=20_000
    )
    with TestClient(app) as client:
        yield SimpleNamespace(
            app=app,
            state=state,
            client=client,
            originals=originals,
            scan=scan_key,
            admin=admin_key,
            h={"Authorization": f"Bearer {scan_key}"},
        )


def _err(resp) -> str:  # type: ignore[no-untyped-def]
    body = resp.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"]
    return body["error"]["code"]


# ------------------------------------------------------------------ authentication
def test_every_route_but_health_needs_a_key(svc) -> None:  # type: ignore[no-untyped-def]
    c = svc.client
    assert c.get("/v1/health").json() == {"status": "ok"}
    for method, path in [
        ("post", "/v1/hash"),
        ("post", "/v1/match"),
        ("post", "/v1/scan"),
        ("post", "/v1/scan/url"),
        ("post", "/v1/match/hashes"),
        ("get", "/v1/ready"),
        ("get", "/metrics"),
    ]:
        r = getattr(c, method)(path)
        assert r.status_code == 401, (path, r.text)
        assert _err(r) == "missing_key"
        assert r.headers["www-authenticate"] == "Bearer"
    # every route the app has (also other modules'), except health and docs, is guarded
    for route in svc.app.routes:
        path = getattr(route, "path", "")
        if path in ("/v1/health", "/openapi.json", "/docs", "/docs/oauth2-redirect"):
            continue
        if "{" in path or not path.startswith(("/v1", "/metrics", "/c/", "/h/", "/m/")):
            continue
        for method in sorted(getattr(route, "methods", ()) - {"HEAD", "OPTIONS"}):
            r = c.request(method, path)
            assert r.status_code in (401, 404, 405), (method, path, r.status_code)


def test_bad_keys_are_refused(svc) -> None:  # type: ignore[no-untyped-def]
    c, body = svc.client, {"hashes": []}
    for hdr in (
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"X-API-Key": "snt_1_" + "A" * 43},  # well-formed, wrong secret
        {"X-API-Key": "snt_999999_" + "A" * 43},  # no such key
    ):
        r = c.post("/v1/match/hashes", json=body, headers=hdr)
        assert r.status_code == 401, hdr
        assert _err(r) in ("invalid_key", "missing_key")
    assert c.post("/v1/match/hashes", json=body, headers={"X-API-Key": svc.scan}).status_code == 200
    assert c.post("/v1/match/hashes", json=body, headers=svc.h).status_code == 200


def test_scopes_revocation_and_rotation(svc) -> None:  # type: ignore[no-untyped-def]
    c, eng, body = svc.client, svc.state.engine, {"hashes": []}
    cur_rec, curate = create_key(eng, "curator", ["curate"])
    r = c.post("/v1/match/hashes", json=body, headers={"X-API-Key": curate})
    assert r.status_code == 403 and _err(r) == "insufficient_scope"
    assert c.get("/metrics", headers=svc.h).status_code == 403  # scan key: no metrics
    assert c.get("/metrics", headers={"X-API-Key": svc.admin}).status_code == 200  # admin: all
    assert c.get("/v1/ready", headers={"X-API-Key": curate}).status_code == 200  # any key

    rec, key = create_key(eng, "to-rotate", ["scan"])
    assert c.post("/v1/match/hashes", json=body, headers={"X-API-Key": key}).status_code == 200
    new_rec, new_key = rotate_key(eng, rec.id)
    assert new_rec.scopes == rec.scopes and new_rec.id != rec.id
    assert c.post("/v1/match/hashes", json=body, headers={"X-API-Key": key}).status_code == 401
    assert c.post("/v1/match/hashes", json=body, headers={"X-API-Key": new_key}).status_code == 200
    revoke_key(eng, new_rec.id)
    r = c.post("/v1/match/hashes", json=body, headers={"X-API-Key": new_key})
    assert r.status_code == 401 and _err(r) == "invalid_key"


def test_revocation_reaches_cached_keys_within_the_cache_time(
    sqlite_url: str, tmp_path: Path
) -> None:
    app, state, _, scan_key, _ = _service(sqlite_url, tmp_path, key_cache_s=0.3)
    with TestClient(app) as c:
        h = {"X-API-Key": scan_key}
        assert c.post("/v1/match/hashes", json={"hashes": []}, headers=h).status_code == 200
        revoke_key(state.engine, int(scan_key.split("_")[1]))
        time.sleep(0.4)
        assert c.post("/v1/match/hashes", json={"hashes": []}, headers=h).status_code == 401


def test_rate_limit_gives_429_with_retry_after(lite) -> None:  # type: ignore[no-untyped-def]
    _, slow = create_key(lite.state.engine, "slow", ["scan"], rate_limit=0.5)  # burst 1
    h = {"X-API-Key": slow}
    codes = [lite.client.post("/v1/match/hashes", json={"hashes": []}, headers=h) for _ in range(3)]
    assert codes[0].status_code == 200
    limited = [r for r in codes if r.status_code == 429]
    assert limited, [r.status_code for r in codes]
    assert _err(limited[0]) == "rate_limited"
    assert int(limited[0].headers["retry-after"]) >= 1
    # other keys are not affected
    assert (
        lite.client.post("/v1/match/hashes", json={"hashes": []}, headers=lite.h).status_code == 200
    )


def test_hma_allow_list_is_off_by_default_and_admits_listed_addresses(lite) -> None:  # type: ignore[no-untyped-def]
    from fastapi import HTTPException

    def req(ip: str) -> Request:
        return Request(
            {
                "type": "http",
                "method": "GET",
                "path": "/m/lookup",
                "headers": [],
                "client": (ip, 5555),
                "query_string": b"",
            }
        )

    st = lite.state
    with pytest.raises(HTTPException) as e:
        authenticate(st, req("10.1.2.3"), "scan", allow_list=True)
    assert e.value.status_code == 401
    st.settings = st.settings.with_(hma_allowlist=("10.1.0.0/16", "::1"))
    try:
        who = authenticate(st, req("10.1.2.3"), "scan", allow_list=True)
        assert who.source == "allowlist" and who.id == 0
        assert authenticate(st, req("::1"), "scan", allow_list=True).source == "allowlist"
        assert (
            authenticate(st, req("::ffff:10.1.9.9"), "scan", allow_list=True).source == "allowlist"
        )
        for ip in ("10.2.0.1", "127.0.0.1"):
            with pytest.raises(HTTPException):
                authenticate(st, req(ip), "scan", allow_list=True)
        with pytest.raises(HTTPException):  # only routes that opt in
            authenticate(st, req("10.1.2.3"), "scan", allow_list=False)
        with pytest.raises(HTTPException):  # admin never comes from the allow-list
            authenticate(st, req("10.1.2.3"), "admin", allow_list=True)
    finally:
        st.settings = st.settings.with_(hma_allowlist=())
    with pytest.raises(SettingsError):
        Settings(hma_allowlist=("not-an-ip",))


# ------------------------------------------------------------------ media routes
def test_hash_upload_returns_the_hash_record(svc) -> None:  # type: ignore[no-untyped-def]
    data = svc.originals[0].read_bytes()
    r = svc.client.post("/v1/hash", files={"file": ("x.jpg", data, "image/jpeg")}, headers=svc.h)
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["path"] is None and rec["size"] == len(data) and rec["error"] is None
    assert rec["media_type"] == "image" and rec["format"] == "jpeg"
    sig = {s["type"]: s for s in rec["signals"]}
    assert sig["md5"]["hash"] == hashlib.md5(data).hexdigest()
    from sentinelle.signals.hasher import hash_file

    assert sig["pdq"]["hash"] == hash_file(svc.originals[0]).signal("pdq").hash  # reference
    r = svc.client.post("/v1/hash?signal=md5", content=data, headers=svc.h)  # raw body
    assert [s["type"] for s in r.json()["signals"]] == ["md5"]
    r = svc.client.post("/v1/hash?signal=bogus", content=data, headers=svc.h)
    assert r.status_code == 422 and _err(r) == "bad_signal_type"


def test_match_and_scan_find_altered_copies(svc) -> None:  # type: ignore[no-untyped-def]
    img = render_scene(KNOWN_SEEDS[0])
    resized = _png(img.resize((320, 240)))
    r = svc.client.post("/v1/match", files={"file": ("a.png", resized, "image/png")}, headers=svc.h)
    assert r.status_code == 200, r.text
    ms = r.json()["matches"]
    assert ms and all(m["bank"] == "known" and m["signal"] == "pdq" for m in ms)
    assert min(m["distance"] for m in ms) <= 31
    # a mirrored copy matches only with dihedral=true
    mirrored = _png(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    r = svc.client.post("/v1/match", content=mirrored, headers=svc.h)
    assert r.json()["matches"] == []
    r = svc.client.post("/v1/match?dihedral=true", content=mirrored, headers=svc.h)
    assert [m["variant"][:4] for m in r.json()["matches"]] == ["flip"]
    # exact copy: md5/sha256 and pdq
    r = svc.client.post("/v1/scan", content=svc.originals[1].read_bytes(), headers=svc.h)
    body = r.json()
    assert r.status_code == 200
    assert {m["signal"] for m in body["matches"]} == {"md5", "sha256", "pdq"}
    assert body["quarantine"] in (False, True)
    assert body["provenance"]["verdict"] == "no_evidence"  # a rendered scene, no manifest
    assert body["guard"] is None
    # an unrelated scene matches nothing
    other = _jpeg(render_scene(5000))
    r = svc.client.post("/v1/scan", files={"file": ("b.jpg", other)}, headers=svc.h)
    assert r.status_code == 200 and r.json()["matches"] == []
    assert r.json()["quarantine"] is False


def test_match_hash_list(svc) -> None:  # type: ignore[no-untyped-def]
    from sentinelle.signals.hasher import hash_file

    res = hash_file(svc.originals[2])
    pdq, md5 = res.signal("pdq").hash, res.signal("md5").hash
    near = format(int(pdq, 16) ^ 0b1011, "064x")  # 3 bits away
    body = {
        "hashes": [
            {"type": "pdq", "hash": near.upper()},
            {"type": "md5", "hash": md5},
            {"type": "pdq", "hash": "0" * 64},
            {"type": "sha1", "hash": "a" * 40},
        ]
    }
    r = svc.client.post("/v1/match/hashes", json=body, headers=svc.h)
    assert r.status_code == 200, r.text
    out = r.json()["results"]
    assert [x["hash"] for x in out][:2] == [near, md5]
    assert out[0]["matches"][0]["distance"] == 3 and out[0]["matches"][0]["bank"] == "known"
    assert out[1]["matches"][0]["signal"] == "md5"
    assert out[2]["matches"] == [] and out[3]["matches"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"hashes": [{"type": "pdq", "hash": "0" * 63}]},
        {"hashes": [{"type": "pdq", "hash": "g" * 64}]},
        {"hashes": [{"type": "md5", "hash": "0" * 64}]},
        {"hashes": [{"type": "photodna", "hash": "0" * 64}]},
    ],
)
def test_bad_hashes_get_422_with_positions(lite, body) -> None:  # type: ignore[no-untyped-def]
    good = {"type": "md5", "hash": "0" * 32}
    body = {"hashes": [good, *body["hashes"], good]}
    r = lite.client.post("/v1/match/hashes", json=body, headers=lite.h)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_hash" and [e["index"] for e in err["errors"]] == [1]


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[]", b'{"hashes": "x"}', b'{"hashes": [{"type": 1}]}', b"", b"\xff\xfe"],
)
def test_malformed_json_gets_4xx(lite, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    r = lite.client.post(
        "/v1/match/hashes", content=raw, headers={**lite.h, "content-type": "application/json"}
    )
    assert 400 <= r.status_code < 500, r.text
    _err(r)


def test_bad_uploads_get_structured_4xx(lite) -> None:  # type: ignore[no-untyped-def]
    c, h = lite.client, lite.h
    good = lite.originals[0].read_bytes()
    cases = [
        (dict(content=b""), 422, "empty_file"),
        (dict(content=good[:700]), 422, "corrupt_media"),
        (
            dict(content=b"plain text, not an image", headers={"content-type": "image/png"}),
            422,
            "unsupported_type",
        ),
        (dict(content=good, headers={"content-type": "text/plain"}), 415, None),
        (dict(files={"other": ("x.jpg", good)}), 422, "missing_file"),
        (
            dict(content=b"--xx\r\ngarbage", headers={"content-type": "multipart/form-data"}),
            400,
            "bad_multipart",
        ),
        (
            dict(
                content=b"--b\r\nno headers end",
                headers={"content-type": "multipart/form-data; boundary=b"},
            ),
            None,
            None,
        ),
    ]
    for path in ("/v1/hash", "/v1/match", "/v1/scan"):
        for case, status, code in cases:
            kw = dict(case)
            extra = kw.pop("headers", {})
            r = c.post(path, headers={**h, **extra}, **kw)
            assert 400 <= r.status_code < 500, (path, case, r.status_code, r.text)
            if status:
                assert r.status_code == status, (path, r.text)
            got = _err(r)
            if code:
                assert got == code, (path, r.text)
    # a PNG uploaded as "image/jpeg" (mislabelled) is hashed as what it is
    png = _png(render_scene(7, size=(200, 150)))
    r = c.post("/v1/hash", content=png, headers={**h, "content-type": "image/jpeg"})
    assert r.status_code == 200 and r.json()["format"] == "png"


def test_size_limits_413(lite) -> None:  # type: ignore[no-untyped-def]
    c, h = lite.client, lite.h  # limits: upload 200 kB, JSON 20 kB
    big = b"\xff\xd8\xff" + b"\0" * 250_000
    r = c.post("/v1/match", content=big, headers=h)
    assert r.status_code == 413 and _err(r) in ("body_too_large", "file_too_large")
    r = c.post("/v1/scan", files={"file": ("big.jpg", big)}, headers=h)
    assert r.status_code == 413

    def chunks():  # no Content-Length: cut off while streaming
        for _ in range(30):
            yield b"\0" * 10_000

    r = c.post("/v1/match", content=chunks(), headers=h)
    assert r.status_code == 413 and _err(r) in ("body_too_large", "file_too_large")
    many = {"hashes": [{"type": "md5", "hash": "0" * 32}] * 1000}  # ~40 kB of JSON
    r = c.post("/v1/match/hashes", json=many, headers=h)
    assert r.status_code == 413 and _err(r) == "body_too_large"
    r = c.post(
        "/v1/match/hashes", content=chunks(), headers={**h, "content-type": "application/json"}
    )
    assert r.status_code == 413
    assert c.post("/v1/match/hashes", json={"hashes": []}, headers=h).status_code == 200


# ------------------------------------------------------------------ sync / ready / metrics
def test_bank_changes_reach_the_index_without_restart(svc) -> None:  # type: ignore[no-untyped-def]
    pdq = "f" * 60 + "0000"
    body = {"hashes": [{"type": "pdq", "hash": pdq}]}
    assert (
        svc.client.post("/v1/match/hashes", json=body, headers=svc.h).json()["results"][0][
            "matches"
        ]
        == []
    )
    svc.state.store.add_entries(
        "known", [EntryIn(signal_type="pdq", hash=pdq)]
    )  # like another instance
    deadline = time.monotonic() + 5
    found = []
    while time.monotonic() < deadline and not found:
        time.sleep(0.1)
        r = svc.client.post("/v1/match/hashes", json=body, headers=svc.h)
        found = r.json()["results"][0]["matches"]
    assert found and found[0]["distance"] == 0


def test_ready_reflects_index_freshness(sqlite_url: str, tmp_path: Path) -> None:
    app, state, _, _, admin = _service(sqlite_url, tmp_path, ready_max_lag_s=0.3)
    h = {"X-API-Key": admin}
    with TestClient(app) as c:  # background sync running
        time.sleep(0.4)
        r = c.get("/v1/ready", headers=h)
        assert r.status_code == 200 and r.json()["status"] == "ready"
    app2 = create_app(
        Settings(database_url=sqlite_url, ready_max_lag_s=0.2, key_cache_s=0),
        start_background=False,
    )
    with TestClient(app2) as c:  # no sync thread: the index goes stale
        time.sleep(0.3)
        r = c.get("/v1/ready", headers=h)
        assert r.status_code == 503 and _err(r) == "not_ready"


def test_metrics(svc) -> None:  # type: ignore[no-untyped-def]
    c = svc.client
    c.post("/v1/scan", content=svc.originals[0].read_bytes(), headers=svc.h)
    c.get("/v1/does-not-exist/12345", headers=svc.h)
    r = c.get("/metrics", headers={"Authorization": f"Bearer {svc.admin}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'sentinelle_requests_total{method="POST",route="/v1/scan",status="200"} 1.0' in text
    assert 'route="unmatched"' in text and "12345" not in text  # bounded labels
    assert "sentinelle_request_seconds_bucket" in text
    assert 'sentinelle_matches_total{signal="pdq"}' in text
    assert 'sentinelle_index_entries{index="pdq"} 3.0' in text
    assert "sentinelle_index_sync_lag_seconds" in text


# ------------------------------------------------------------------ logs and request ids
def test_json_access_logs_carry_request_ids_and_no_media(lite, caplog) -> None:  # type: ignore[no-untyped-def]
    c, h = lite.client, lite.h
    marker = b"SECRET-MEDIA-MARKER-8d1f"
    img = _png(render_scene(42, size=(200, 150)))
    payload = img + marker  # trailing bytes after IEND: still a valid PNG
    md5 = hashlib.md5(payload).hexdigest()
    with caplog.at_level(logging.DEBUG):
        r = c.post(
            "/v1/scan?dihedral=true",
            files={"file": ("private-holiday-name.png", payload, "image/png")},
            headers={**h, "X-Request-ID": "req-abc.123"},
        )
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == "req-abc.123"
        r2 = c.get("/v1/health", headers={"X-Request-ID": "bad id with spaces\n"})
        generated = r2.headers["x-request-id"]
        assert generated != "bad id with spaces\n" and len(generated) == 32
        c.post("/v1/match", content=b"garbage" + marker, headers=h)
    fmt = JsonFormatter()
    records = [rec for rec in caplog.records if rec.name != "httpx"]  # the test's own client
    lines = [fmt.format(rec) for rec in records]
    access = [
        json.loads(line)
        for line, rec in zip(lines, records, strict=True)
        if rec.name == ACCESS_LOGGER
    ]
    scan = next(a for a in access if a["request_id"] == "req-abc.123")
    assert scan["route"] == "/v1/scan" and scan["method"] == "POST" and scan["status"] == 200
    assert scan["key_id"] == int(lite.scan.split("_")[1]) and scan["duration_ms"] >= 0
    assert any(a["request_id"] == generated and a["key_id"] is None for a in access)
    everything = "\n".join(lines) + "\n".join(str(rec.__dict__) for rec in records)
    for secret in ("SECRET-MEDIA-MARKER", "private-holiday-name", md5, lite.scan, "dihedral"):
        assert secret not in everything, secret


# ------------------------------------------------------------------ openapi / settings
def test_openapi_and_docs(lite) -> None:  # type: ignore[no-untyped-def]
    spec = lite.client.get("/openapi.json").json()
    for p in ("/v1/hash", "/v1/match", "/v1/scan", "/v1/match/hashes", "/v1/health"):
        assert p in spec["paths"]
    assert "multipart/form-data" in spec["paths"]["/v1/scan"]["post"]["requestBody"]["content"]
    assert lite.client.get("/docs").status_code == 200


def test_settings_from_env() -> None:
    s = Settings.from_env(
        {
            "SENTINELLE_DATABASE_URL": "sqlite:///x.db",
            "SENTINELLE_MAX_UPLOAD_BYTES": "1000",
            "SENTINELLE_FETCH_ENABLED": "yes",
            "SENTINELLE_FETCH_ALLOWED_HOSTS": "Example.org, *.cdn.example.net",
            "SENTINELLE_HMA_ALLOWLIST": "10.0.0.0/8",
            "SENTINELLE_RATE_LIMIT": "5",
        }
    )
    assert s.database_url == "sqlite:///x.db" and s.max_upload_bytes == 1000
    assert s.fetch_enabled and s.fetch_allowed_hosts == ("example.org", "*.cdn.example.net")
    assert s.fetch_limit == 1000 and s.burst == 10 and len(s.hma_networks) == 1
    d = Settings.from_env({})
    assert not d.fetch_enabled and d.hma_allowlist == () and d.max_upload_bytes == 50 * 1024**2
    for bad in (
        {"SENTINELLE_MAX_UPLOAD_BYTES": "lots"},
        {"SENTINELLE_FETCH_ENABLED": "maybe"},
        {"SENTINELLE_RATE_LIMIT": "-1"},
        {"SENTINELLE_HMA_ALLOWLIST": "10.0.0.0/99"},
    ):
        with pytest.raises(SettingsError):
            Settings.from_env(bad)
