"""`sentinelle guard ...` and the /v1/guard routes: real app, real databases, benign images.

Blocking fixtures are the bare term-level phrases a filter must recognise.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from sentinelle.cli.main import app as cli_app
from sentinelle.guard.attempts import AttemptLog
from sentinelle.guard.config import GuardConfig
from sentinelle.service.app import create_app
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings

BLOCK = "nude child"  # term-level fixture
BENIGN = "a child eating cake"
PHOTO = "corpora/photos/bsds500/100007.jpg"
CONTRACT_KEYS = {"text", "decision", "categories", "evidence", "language", "policy_id"}


def _png(size: tuple[int, int] = (200, 120)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 140, 200)).save(buf, "PNG")
    return buf.getvalue()


# --------------------------------------------------------------------- HTTP
@pytest.fixture()
def svc(db_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SENTINELLE_GUARD_ESCALATE_BLOCKS", "2")
    app = create_app(Settings(database_url=db_url, key_cache_s=0.0, rate_limit=0.0))
    state = app.state.sentinelle
    _, scan_key = create_key(state.engine, "scanner", ["scan"])
    _, curate_key = create_key(state.engine, "curator", ["curate"])
    with TestClient(app) as client:
        yield SimpleNamespace(
            client=client,
            state=state,
            h={"Authorization": f"Bearer {scan_key}"},
            curate={"Authorization": f"Bearer {curate_key}"},
            log=AttemptLog(state.engine, GuardConfig()),
        )


def test_prompt_route_contract_and_logging(svc) -> None:  # type: ignore[no-untyped-def]
    r = svc.client.post("/v1/guard/prompt", json={"text": BENIGN}, headers=svc.h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == CONTRACT_KEYS and body["decision"] == "allow"
    assert svc.log.attempts() == []
    r = svc.client.post(
        "/v1/guard/prompt", json={"text": BLOCK, "account_id": "u-1"}, headers=svc.h
    )
    assert r.status_code == 200 and r.json()["decision"] == "block"
    assert "flag" not in r.text  # escalation state is not revealed to the caller
    [row] = svc.log.attempts()
    assert row["account_id"] == "u-1" and row["prompt_sha256"] == svc.log.prompt_digest(BLOCK)
    assert row["prompt_text"] is None
    svc.client.post("/v1/guard/prompt", json={"text": BLOCK, "account_id": "u-1"}, headers=svc.h)
    [flag] = svc.log.flags("u-1")  # ESCALATE_BLOCKS=2 from the environment
    assert flag["blocks"] == 2


def test_prompt_route_errors(svc) -> None:  # type: ignore[no-untyped-def]
    post = svc.client.post
    assert post("/v1/guard/prompt", json={"text": BENIGN}).status_code == 401
    r = post("/v1/guard/prompt", json={"text": BENIGN}, headers=svc.curate)
    assert r.status_code == 403
    r = post("/v1/guard/prompt", json={"text": "x" * 10_001}, headers=svc.h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "prompt_too_long"
    for bad in ({}, {"text": 5}, {"text": None}, [], {"text": "a", "account_id": "z" * 201}):
        r = post("/v1/guard/prompt", json=bad, headers=svc.h)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", bad
    r = post("/v1/guard/prompt", json={"text": "a", "account_id": "a\nb"}, headers=svc.h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_account_id"
    r = post(
        "/v1/guard/prompt",
        content=b"{not json",
        headers={**svc.h, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert svc.log.attempts() == []


def test_image_route_benign_photo(svc, shared: Path) -> None:  # type: ignore[no-untyped-def]
    data = (shared / PHOTO).read_bytes()
    r = svc.client.post(
        "/v1/guard/image",
        files={"file": ("x.jpg", data, "image/jpeg")},
        data={"prompt": BENIGN, "account_id": "u-2"},
        headers=svc.h,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] == "allow" and "nsfw" in body["checks_run"]
    assert body["prompt"]["decision"] == "allow"
    assert body["minor_signals"][0]["source"] == "prompt"
    assert BENIGN not in r.text  # the prompt text is not echoed back
    # Raw body works too.
    r = svc.client.post(
        "/v1/guard/image",
        content=data,
        headers={**svc.h, "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 200 and r.json()["prompt"] is None


def test_image_route_blocked_prompt_result_is_logged(svc) -> None:  # type: ignore[no-untyped-def]
    pr = svc.client.post("/v1/guard/prompt", json={"text": BLOCK}, headers=svc.h).json()
    r = svc.client.post(
        "/v1/guard/image",
        files={"file": ("g.png", _png(), "image/png")},
        data={"prompt_result": json.dumps(pr), "account_id": "u-3"},
        headers=svc.h,
    )
    assert r.status_code == 200 and r.json()["decision"] == "block"
    image_rows = [a for a in svc.log.attempts("u-3") if a["source"] == "image"]
    [row] = image_rows
    assert row["prompt_sha256"] == svc.log.prompt_digest(BLOCK) and len(row["media_sha256"]) == 64


def test_image_route_errors(svc) -> None:  # type: ignore[no-untyped-def]
    post = svc.client.post

    def up(data: bytes, **fields: str):  # type: ignore[no-untyped-def]
        return post(
            "/v1/guard/image",
            files={"file": ("f", data, "application/octet-stream")},
            data=fields,
            headers=svc.h,
        )

    cases = [
        (up(b"not an image"), 422, "unsupported_type"),
        (up(b""), 422, "empty_file"),
        (up(_png()[:100]), 422, "corrupt_media"),
        (up(_png(), prompt_result="{oops"), 422, "bad_prompt_result"),
        (up(_png(), prompt_result='{"decision": "nope"}'), 422, "bad_prompt_result"),
        (up(_png(), prompt="x" * 10_001), 422, "prompt_too_long"),
        (up(_png(), prompt="a", prompt_result="{}"), 422, "bad_request"),
        (up(_png(), account_id="x" * 201), 422, "bad_account_id"),
        (up(_png(), prompt="p" * 70_000), 422, "field_too_long"),
        (
            post(
                "/v1/guard/image", data={"prompt": "a"}, files={"other": ("o", b"1")}, headers=svc.h
            ),
            422,
            "missing_file",
        ),
        (
            post(
                "/v1/guard/image",
                content=b"--xx\r\nbroken",
                headers={**svc.h, "Content-Type": "multipart/form-data; boundary=xx"},
            ),
            400,
            "bad_multipart",
        ),
        (
            post(
                "/v1/guard/image",
                content=b"{}",
                headers={**svc.h, "Content-Type": "application/json"},
            ),
            415,
            "unsupported_media_type",
        ),
    ]
    for resp, status, code in cases:
        assert resp.status_code == status, (code, resp.text)
        assert resp.json()["error"]["code"] == code
    assert post("/v1/guard/image", files={"file": ("f", _png())}).status_code == 401


def test_image_upload_limit(db_url: str) -> None:
    app = create_app(Settings(database_url=db_url, rate_limit=0.0, max_upload_bytes=2000))
    _, key = create_key(app.state.sentinelle.engine, "s", ["scan"])
    with TestClient(app) as client:
        big = _png((600, 600)) + b"\x00" * 3000
        r = client.post(
            "/v1/guard/image",
            files={"file": ("f.png", big, "image/png")},
            headers={"X-API-Key": key},
        )
        assert r.status_code == 413
        assert r.json()["error"]["code"] in ("body_too_large", "file_too_large")


# ------------------------------------------------------------ /v1/scan?guard
VIDEO = "conformance/vpdq/videos/test-padded-dimensions.mp4"


def test_scan_guard_is_opt_in(svc, shared: Path) -> None:  # type: ignore[no-untyped-def]
    data = (shared / PHOTO).read_bytes()
    post = svc.client.post
    r = post("/v1/scan", content=data, headers=svc.h)
    assert r.status_code == 200, r.text
    assert r.json()["guard"] is None  # default: off
    r = post("/v1/scan?guard=false", files={"file": ("p.jpg", data)}, headers=svc.h)
    assert r.json()["guard"] is None
    r = post("/v1/scan?guard=true", content=data, headers=svc.h)
    assert r.status_code == 200, r.text
    body = r.json()
    g = body["guard"]
    assert g["decision"] == "allow" and g["prompt"] is None and g["policy_id"] == "image-guard/1"
    assert g["checks_run"] == ["nsfw"]  # clean image: faces not needed (default mode)
    assert {"check": "faces", "reason": "not needed: no explicit content"} in g["checks_not_run"]
    sha = next(s["hash"] for s in body["signals"] if s["type"] == "sha256")
    assert g["sha256"] == sha and g["media"]["width"] == 481
    assert body["matches"] == [] and svc.log.attempts() == []


def test_scan_guard_as_form_field(svc, shared: Path) -> None:  # type: ignore[no-untyped-def]
    data = (shared / PHOTO).read_bytes()

    def scan(url: str = "/v1/scan", **fields: str):  # type: ignore[no-untyped-def]
        return svc.client.post(url, files={"file": ("p.jpg", data)}, data=fields, headers=svc.h)

    for on in ("true", "1", "on", " TRUE "):
        r = scan(guard=on)
        assert r.status_code == 200 and r.json()["guard"]["decision"] == "allow", on
    for off in ("false", "0", ""):
        assert scan(guard=off).json()["guard"] is None, off
    assert scan("/v1/scan?guard=true", guard="false").json()["guard"] is not None
    r = scan(guard="perhaps")
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_guard_flag"
    r = svc.client.post("/v1/scan?guard=perhaps", content=data, headers=svc.h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_scan_guard_follows_the_guard_settings(  # type: ignore[no-untyped-def]
    svc, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTINELLE_GUARD_NSFW_MODEL", "off")
    monkeypatch.setenv("SENTINELLE_GUARD_FACES", "always")
    r = svc.client.post("/v1/scan?guard=1", content=(shared / PHOTO).read_bytes(), headers=svc.h)
    g = r.json()["guard"]
    assert g["decision"] == "review" and g["checks_run"] == ["faces"]  # never a silent allow
    assert g["checks_not_run"][0]["check"] == "nsfw"


def test_scan_guard_skips_video(svc, shared: Path) -> None:  # type: ignore[no-untyped-def]
    data = (shared / VIDEO).read_bytes()
    r = svc.client.post(
        "/v1/scan?guard=true", files={"file": ("v.mp4", data, "video/mp4")}, headers=svc.h
    )
    assert r.status_code == 200, r.text
    assert r.json()["media"]["media_type"] == "video"
    assert r.json()["guard"] == {"skipped": "video", "reason": "the image guard checks images only"}


def test_scan_guard_on_undecodable_known_file(svc) -> None:  # type: ignore[no-untyped-def]
    """A known file that cannot be decoded still gets its matches; the guard says why
    it could not judge it instead of failing the scan."""
    import hashlib

    from sentinelle.formats.entry import EntryIn

    junk = b"\x89PNG\r\n\x1a\n" + b"not really a picture" * 8
    svc.state.store.create_bank("known")
    svc.state.store.add_entries(
        "known", [EntryIn("sha256", hashlib.sha256(junk).hexdigest(), category="test")]
    )
    svc.state.matcher.refresh()
    r = svc.client.post("/v1/scan?guard=true", content=junk, headers=svc.h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [m["signal"] for m in body["matches"]] == ["sha256"] and body["error"]
    assert body["guard"]["error"]["code"] == "corrupt_media"
    r = svc.client.post("/v1/scan?guard=true", content=b"garbage bytes", headers=svc.h)
    assert r.status_code == 422  # unknown and undecodable: the scan's own error


def test_scan_guard_documented_in_openapi(svc) -> None:  # type: ignore[no-untyped-def]
    spec = svc.client.get("/openapi.json").json()
    [param] = [p for p in spec["paths"]["/v1/scan"]["post"]["parameters"] if p["name"] == "guard"]
    assert param["in"] == "query" and param["schema"]["default"] is False
    assert "off by default" in param["description"] and "null" in param["description"]


# ---------------------------------------------------------------------- CLI
@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    db = tmp_path / "cli.db"
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", f"sqlite:///{db}")
    runner = CliRunner()
    return lambda *args, input=None: runner.invoke(cli_app, ["guard", *args], input=input)


def test_cli_prompt_exit_codes_and_json(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("prompt", BENIGN)
    assert res.exit_code == 0 and res.stdout.startswith("allow")
    res = cli("prompt", "--json", BLOCK)
    assert res.exit_code == 4
    d = json.loads(res.stdout)
    assert set(d) == CONTRACT_KEYS and d["decision"] == "block" and d["text"] == BLOCK
    assert cli("prompt", "a nude woman").exit_code == 3  # adult nudity: review (default)
    assert cli("prompt").exit_code == 2
    assert cli("prompt", "x", "--file", "y").exit_code == 2
    res = cli("prompt", "x" * 10_001)
    assert res.exit_code == 1 and "prompt_too_long" in res.stderr


def test_cli_prompt_file_json_lines(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "prompts.txt"
    f.write_text(f"{BENIGN}\n\n{BLOCK}\r\na red car\n{'x' * 10_001}\n", encoding="utf-8")
    res = cli("prompt", "--file", str(f))
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [d.get("decision") for d in lines] == ["allow", "block", "allow", None]
    assert all(set(d) == CONTRACT_KEYS for d in lines[:3])
    assert lines[3]["error"]["code"] == "prompt_too_long"
    assert "1 block" in res.stderr
    res = cli("prompt", "--file", "-", input=f"{BLOCK}\n")
    assert json.loads(res.stdout)["decision"] == "block"
    res = cli("prompt", "--file", str(tmp_path / "missing.txt"))
    assert res.exit_code == 1 and "io_error" in res.stderr


def test_cli_account_logs_and_flags(cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SENTINELLE_GUARD_ESCALATE_BLOCKS", "2")
    assert cli("prompt", "--account", "acct", BENIGN).exit_code == 0
    res = cli("prompt", "--account", "acct", BLOCK)
    assert res.exit_code == 4 and "block logged" in res.stderr
    res = cli("prompt", "--account", "acct", BLOCK)
    assert "flagged" in res.stderr
    from sentinelle.store.db import open_engine

    eng = open_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        log = AttemptLog(eng, GuardConfig())
        assert len(log.attempts("acct")) == 2 and len(log.flags("acct")) == 1
    finally:
        eng.dispose()


def test_cli_image(cli, shared: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = cli("image", str(shared / PHOTO))
    assert res.exit_code == 0 and res.stdout.startswith("allow")
    assert "not run" in res.stdout and "age" in res.stdout
    res = cli("image", "--json", "--prompt", BLOCK, str(shared / PHOTO))
    assert res.exit_code == 4 and json.loads(res.stdout)["decision"] == "block"
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    res = cli("image", str(bad))
    assert res.exit_code == 1 and "corrupt_media" in res.stderr
    res = cli("image", str(tmp_path / "nope.png"))
    assert res.exit_code == 1 and "io_error" in res.stderr


def test_cli_image_without_nsfw(cli, monkeypatch: pytest.MonkeyPatch, shared: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SENTINELLE_GUARD_NSFW_MODEL", "off")
    res = cli("image", "--json", str(shared / PHOTO))
    assert res.exit_code == 3
    d = json.loads(res.stdout)
    assert d["decision"] == "review" and d["checks_not_run"][0]["check"] == "nsfw"


def test_cli_image_face_modes(cli, monkeypatch: pytest.MonkeyPatch, shared: Path) -> None:  # type: ignore[no-untyped-def]
    people = str(shared / "corpora/photos/bsds500/189003.jpg")  # faces to the camera
    res = cli("image", people)
    assert res.exit_code == 0 and "faces: not checked" in res.stdout
    assert "not needed: no explicit content" in res.stdout
    res = cli("image", "--json", "--faces", "always", people)
    d = json.loads(res.stdout)
    assert res.exit_code == 0 and "faces" in d["checks_run"] and d["faces"]
    monkeypatch.setenv("SENTINELLE_GUARD_FACES", "true")  # the older boolean spelling
    assert json.loads(cli("image", "--json", people).stdout)["faces"]
    assert (
        "faces"
        not in json.loads(cli("image", "--json", "--faces", "off", people).stdout)["checks_run"]
    )
    res = cli("image", "--faces", "sometimes", people)
    assert res.exit_code == 1 and "bad_guard_config" in res.stderr
    monkeypatch.setenv("SENTINELLE_GUARD_FACES", "maybe")
    res = cli("image", people)
    assert res.exit_code == 1 and "bad_guard_config" in res.stderr
