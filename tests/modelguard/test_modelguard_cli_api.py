"""The model guard from the command line, over HTTP (streamed uploads) and as a stream."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from modelguard_files import (
    dangerous_pickle,
    pickle_state_dict,
    raw_safetensors,
    torch_zip,
    write_gguf,
    write_lora,
)
from typer.testing import CliRunner

from sentinelle.cli.main import app as cli_app
from sentinelle.modelguard import scan_model
from sentinelle.modelguard.errors import ModelFileError
from sentinelle.modelguard.scan import default_judge
from sentinelle.modelguard.upload import StreamScanner
from sentinelle.service.app import create_app
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings

FLAGGED = {"child": 45, "nude": 40, "smile": 20}  # term-level tags
BENIGN = {"red fox": 40, "forest": 30}


@pytest.fixture()
def models(tmp_path: Path) -> SimpleNamespace:
    return SimpleNamespace(
        benign=write_lora(tmp_path / "fox.safetensors", BENIGN, seed=1),
        flagged=write_lora(tmp_path / "flag.safetensors", FLAGGED, images=50, seed=2),
        gguf=write_gguf(tmp_path / "m.gguf"),
        ckpt=torch_zip(tmp_path / "m.ckpt", pickle_state_dict(["a.weight"])),
        evil=torch_zip(tmp_path / "evil.ckpt", dangerous_pickle()),
        plain=tmp_path / "plain.pt",
        broken=raw_safetensors(tmp_path / "broken.safetensors", {"a": 1}, length=10**9),
    )


def _stream(path: Path, chunk: int) -> dict:
    s = StreamScanner()
    data = path.read_bytes()
    for at in range(0, len(data), chunk):
        s.feed(data[at : at + chunk])
    return s.finish(default_judge()).to_dict()


@pytest.mark.parametrize("chunk", [7, 4096, 1 << 20])
def test_stream_scanner_equals_the_file_scan(models, chunk):
    models.plain.write_bytes(pickle_state_dict(["a.weight"], {"name": "fox"}))
    for p in (models.benign, models.flagged, models.gguf, models.ckpt, models.evil, models.plain):
        want, got = scan_model(p, read_sidecars=False).to_dict(), _stream(p, chunk)
        for k in ("format", "size", "decision", "signals", "tensor_count", "tensors", "reasons"):
            assert got[k] == want[k], (p.name, k)


def test_stream_scanner_errors_early_and_on_truncation(models):
    s = StreamScanner()
    with pytest.raises(ModelFileError) as e:
        s.feed(models.broken.read_bytes()[:64])
    assert e.value.code == "header_too_large" or e.value.code == "header_beyond_file"
    data = models.benign.read_bytes()
    s = StreamScanner()
    s.feed(data[:-5])
    with pytest.raises(ModelFileError) as e:
        s.finish(default_judge())
    assert e.value.code == "truncated_tensors"
    with pytest.raises(ModelFileError) as e:
        StreamScanner().finish(default_judge())
    assert e.value.code == "empty_file"
    s, data = StreamScanner(prefix_limit=1000), models.gguf.read_bytes()
    with pytest.raises(ModelFileError) as e:  # metadata larger than the prefix cap
        for at in range(0, len(data), 500):
            s.feed(data[at : at + 500])
    assert e.value.code == "gguf_absurd_count"


# ------------------------------------------------------------------ CLI
def test_cli_scan_lines_json_and_exit_codes(models):
    run = CliRunner().invoke
    r = run(cli_app, ["model", "scan", str(models.benign)])
    assert r.exit_code == 0 and "allow" in r.output and "fox.safetensors" in r.output
    r = run(cli_app, ["model", "scan", "--json", str(models.benign), str(models.flagged)])
    assert r.exit_code == 4
    lines = [json.loads(x) for x in r.output.splitlines()]
    assert [d["decision"] for d in lines] == ["allow", "block"]
    assert lines[0]["tensors"] is None and lines[0]["signals"][1]["type"] == "tensor_sha256"
    ev = {e["text"]: e for e in lines[1]["evidence"]}
    assert ev["child"]["count"] == 45 and ev["child"]["field"] == "ss_tag_frequency"
    r = run(cli_app, ["model", "scan", "--json", "--tensors", str(models.benign)])
    assert len(json.loads(r.output)["tensors"]) == 9
    r = run(cli_app, ["model", "scan", "--json", "--no-hash", str(models.benign)])
    assert json.loads(r.output)["signals"] == []
    r = run(cli_app, ["model", "scan", str(models.broken)])
    assert r.exit_code == 1 and "header_beyond_file" in r.output
    r = run(cli_app, ["model", "scan", str(models.evil)])
    assert r.exit_code == 4
    r = run(cli_app, ["model", "scan", "--json", str(models.benign.parent)])
    decisions = {Path(json.loads(x)["path"]).name: json.loads(x)["decision"]
                 for x in r.output.splitlines()}  # fmt: skip
    assert decisions["flag.safetensors"] == "block" and decisions["m.gguf"] == "allow"
    assert r.exit_code == 4


# ------------------------------------------------------------------ HTTP
@pytest.fixture()
def svc(sqlite_url: str):
    app = create_app(Settings(database_url=sqlite_url, key_cache_s=0.0, rate_limit=0.0,
                              max_import_bytes=1_000_000))  # fmt: skip
    _, key = create_key(app.state.sentinelle.engine, "scanner", ["scan"])
    with TestClient(app) as client:
        yield SimpleNamespace(client=client, h={"Authorization": f"Bearer {key}"})


def test_api_raw_and_multipart_uploads(svc, models):
    raw = models.flagged.read_bytes()
    r = svc.client.post("/v1/model/scan", content=raw, headers=svc.h)
    assert r.status_code == 200, r.text
    d = r.json()
    want = scan_model(models.flagged, read_sidecars=False).to_dict()
    assert d["path"] is None and d["decision"] == "block" and d["signals"] == want["signals"]
    assert d["tensors"] is None
    r = svc.client.post(
        "/v1/model/scan?tensors=true",
        files={"file": ("x.safetensors", models.benign.read_bytes())},
        headers=svc.h,
    )
    assert r.status_code == 200 and r.json()["decision"] == "allow"
    assert len(r.json()["tensors"]) == 9
    r = svc.client.post("/v1/model/scan?hash=false", content=raw, headers=svc.h)
    assert [s["type"] for s in r.json()["signals"]] == ["file_sha256"]
    r = svc.client.post("/v1/model/scan", content=models.evil.read_bytes(), headers=svc.h)
    assert r.json()["decision"] == "block" and r.json()["pickle"]["risk"] == "dangerous"


def test_api_errors(svc, models):
    post = svc.client.post
    r = post("/v1/model/scan", content=models.broken.read_bytes(), headers=svc.h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "header_beyond_file"
    assert r.json()["error"]["format"] == "safetensors"
    r = post("/v1/model/scan", content=b"", headers=svc.h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "empty_file"
    r = post("/v1/model/scan", content=b"hello, not a model at all", headers=svc.h)
    assert r.json()["error"]["code"] == "unsupported_model"
    r = post("/v1/model/scan", content=b"x" * 2_000_000, headers=svc.h)
    assert r.status_code == 413
    r = post("/v1/model/scan", content=models.benign.read_bytes())
    assert r.status_code == 401
    r = post("/v1/model/scan", content=b"{}", headers={**svc.h, "Content-Type": "text/plain"})
    assert r.status_code == 415
    r = post("/v1/model/scan", files={"other": ("x", b"abc")}, headers=svc.h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "missing_file"


def test_api_documented_in_openapi(svc):
    spec = svc.client.get("/openapi.json").json()
    op = spec["paths"]["/v1/model/scan"]["post"]
    assert "multipart/form-data" in op["requestBody"]["content"]
