"""`sentinelle provenance`, `POST /v1/provenance`, and the provenance column of scan / /v1/scan.

Real app (``create_app``) on SQLite and PostgreSQL (``db_url``), real C2PA fixtures from
../shared, real scans in worker processes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sentinelle.cli.demo_media import render_scene
from sentinelle.cli.main import app as cli
from sentinelle.service.app import create_app
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "provenance" / "c2pa-rs-fixtures"
OCSP = FIXTURES / "sdk_tests_fixtures_ocsp.jpg"
XCA = FIXTURES / "sdk_tests_fixtures_XCA.jpg"
PLAIN = FIXTURES / "sdk_tests_fixtures_no_manifest.jpg"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared fixtures missing")

RECORD_KEYS = {"path", "verdict", "confidence", "evidence", "error", "tampered", "explanation"}
EVIDENCE_KEYS = {"source", "finding", "strength", "indicates", "forgeable", "strippable", "details"}


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.strip().splitlines()]


# ------------------------------------------------------------------------------ CLI


def test_cli_json_one_object_per_file(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli, ["provenance", str(OCSP), str(XCA), str(tmp_path / "missing.jpg"), "--json"]
    )
    assert res.exit_code == 1, res.output  # one file could not be read; all still printed
    recs = _lines(res.stdout)
    assert [r["path"] for r in recs] == [str(OCSP), str(XCA), str(tmp_path / "missing.jpg")]
    assert all(set(r) == RECORD_KEYS for r in recs)
    assert [r["verdict"] for r in recs] == ["ai_edited", "conflicting", "no_evidence"]
    assert recs[1]["tampered"] is True
    assert recs[2]["error"]["code"] == "io_error" and recs[2]["evidence"] == []
    assert all(set(e) == EVIDENCE_KEYS for r in recs for e in r["evidence"])


def test_cli_exit_status_reports_unreadable_files(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["provenance", "/nonexistent"])
    assert res.exit_code == 1
    assert "/nonexistent: no_evidence" in res.stdout and "io_error" in res.stdout
    assert "1 file(s) could not be analysed" in res.stderr
    # the unreadable file first: every later file is still analysed and printed
    (tmp_path / "empty.jpg").write_bytes(b"")
    res = runner.invoke(
        cli,
        ["provenance", "check", "--json", "/nonexistent", str(tmp_path / "empty.jpg"), str(OCSP)],
    )
    assert res.exit_code == 1
    recs = _lines(res.stdout)
    assert [r["error"] and r["error"]["code"] for r in recs] == ["io_error", "empty_file", None]
    assert recs[2]["verdict"] == "ai_edited"
    assert "2 file(s) could not be analysed" in res.stderr
    # every file readable: 0
    res = runner.invoke(cli, ["provenance", "--json", str(OCSP), str(PLAIN)])
    assert res.exit_code == 0, res.output
    assert len(_lines(res.stdout)) == 2


def test_cli_check_subcommand_and_text_output(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jpg").write_bytes(OCSP.read_bytes())
    (tmp_path / "d" / "b.jpg").write_bytes(PLAIN.read_bytes())
    res = CliRunner().invoke(cli, ["provenance", "check", str(tmp_path / "d")])
    assert res.exit_code == 0, res.output
    assert "a.jpg: ai_edited (confidence 0.70)" in res.stdout
    assert "b.jpg: no_evidence" in res.stdout
    assert "compositeWithTrainedAlgorithmicMedia" in res.stdout
    assert "(forgeable, strippable)" in res.stdout


def test_cli_bad_options() -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["provenance", str(OCSP), "--source", "tarot"])
    assert res.exit_code == 2 and "unknown source" in res.output
    res = runner.invoke(cli, ["provenance", str(OCSP), "--trust-anchors", str(PLAIN)])
    assert res.exit_code == 1 and "bad_trust_anchors" in res.output
    res = runner.invoke(cli, ["provenance", str(OCSP), "--json", "--source", "c2pa"])
    assert res.exit_code == 0
    assert {e["source"] for e in _lines(res.stdout)[0]["evidence"]} == {"c2pa"}


def test_scan_records_and_report_carry_provenance(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    for p in (OCSP, XCA, PLAIN):
        (inbox / p.name).write_bytes(p.read_bytes())
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    out, html = tmp_path / "scan.jsonl", tmp_path / "scan.html"
    args = ["scan", str(inbox), "--jsonl", str(out), "--html", str(html), "-q", "--workers", "1"]
    res = CliRunner().invoke(cli, args, env={"SENTINELLE_DATABASE_URL": db})
    assert res.exit_code == 0, res.output
    recs = {Path(r["path"]).name: r for r in _lines(out.read_text())}
    assert recs[OCSP.name]["provenance"]["verdict"] == "ai_edited"
    assert recs[XCA.name]["provenance"]["tampered"] is True
    assert recs[PLAIN.name]["provenance"]["verdict"] == "no_evidence"
    assert "prov" in recs[OCSP.name]["config"]
    page = html.read_text()
    assert "<th>Provenance</th>" in page and "prov-ai_edited" in page and "tampered: 1" in page
    # --no-provenance: no column data, and a rescan because the config changed
    out2 = tmp_path / "scan2.jsonl"
    args2 = ["scan", str(inbox), "--jsonl", str(out2), "-q", "--workers", "1", "--no-provenance"]
    res = CliRunner().invoke(cli, args2, env={"SENTINELLE_DATABASE_URL": db})
    assert res.exit_code == 0, res.output
    assert all("provenance" not in r for r in _lines(out2.read_text()))


# ------------------------------------------------------------------------------ API


@pytest.fixture()
def svc(db_url: str):  # type: ignore[no-untyped-def]
    app = create_app(
        Settings(database_url=db_url, key_cache_s=0.0, rate_limit=0.0, max_upload_bytes=300_000)
    )
    state = app.state.sentinelle
    _, scan_key = create_key(state.engine, "scanner", ["scan"])
    _, curate_key = create_key(state.engine, "curator", ["curate"])
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {scan_key}"}, {"X-API-Key": curate_key}


def _err(resp) -> str:  # type: ignore[no-untyped-def]
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return body["error"]["code"]


def test_api_provenance_upload(svc) -> None:  # type: ignore[no-untyped-def]
    client, h, _ = svc
    r = client.post("/v1/provenance", files={"file": ("x.jpg", OCSP.read_bytes())}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == RECORD_KEYS - {"path"}
    assert body["verdict"] == "ai_edited" and body["error"] is None
    r = client.post("/v1/provenance", content=XCA.read_bytes(), headers=h)
    assert r.status_code == 200 and r.json()["tampered"] is True
    r = client.post("/v1/provenance?source=c2pa", content=PLAIN.read_bytes(), headers=h)
    assert {e["source"] for e in r.json()["evidence"]} == {"c2pa"}


def test_api_provenance_errors(svc) -> None:  # type: ignore[no-untyped-def]
    client, h, curate = svc
    assert client.post("/v1/provenance", content=PLAIN.read_bytes()).status_code == 401
    r = client.post("/v1/provenance", content=PLAIN.read_bytes(), headers=curate)
    assert r.status_code == 403
    r = client.post("/v1/provenance", content=b"", headers=h)
    assert r.status_code == 422 and _err(r) == "empty_file"
    r = client.post("/v1/provenance", content=bytes(400_000), headers=h)
    assert r.status_code == 413
    r = client.post("/v1/provenance?source=tarot", content=PLAIN.read_bytes(), headers=h)
    assert r.status_code == 422 and _err(r) == "unknown_source"
    # garbage and truncated manifests are analysed, not refused
    for junk in (b"\x00garbage" * 100, OCSP.read_bytes()[:5000]):
        r = client.post("/v1/provenance", content=junk, headers=h)
        assert r.status_code == 200 and r.json()["verdict"] == "no_evidence"


def test_api_scan_fills_provenance(svc) -> None:  # type: ignore[no-untyped-def]
    client, h, _ = svc
    buf = io.BytesIO()
    render_scene(11).convert("RGB").save(buf, "JPEG", quality=90)
    r = client.post("/v1/scan", content=buf.getvalue(), headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["provenance"]["verdict"] == "no_evidence"
    r = client.post("/v1/scan", files={"file": ("o.jpg", OCSP.read_bytes())}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["provenance"]["verdict"] == "ai_edited"


def test_api_trust_anchors_from_env(svc, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sentinelle.provenance.sign import make_test_chain, sign_bytes

    client, h, _ = svc
    chain = make_test_chain(tmp_path / "pki")
    buf = io.BytesIO()
    render_scene(12).convert("RGB").save(buf, "JPEG", quality=90)
    signed = sign_bytes(
        buf.getvalue(), cert_pem=chain.chain.read_bytes(), key_pem=chain.key.read_bytes()
    )
    r = client.post("/v1/provenance?source=c2pa", content=signed, headers=h)
    assert r.json()["confidence"] == pytest.approx(0.7)
    monkeypatch.setenv("SENTINELLE_C2PA_TRUST_ANCHORS", str(chain.root_cert))
    r = client.post("/v1/provenance?source=c2pa", content=signed, headers=h)
    assert r.json()["verdict"] == "ai_generated" and r.json()["confidence"] == pytest.approx(0.95)
    bad = tmp_path / "bad.pem"
    bad.write_text("nope")
    monkeypatch.setenv("SENTINELLE_C2PA_TRUST_ANCHORS", str(bad))
    r = client.post("/v1/provenance", content=signed, headers=h)
    assert r.status_code == 503 and _err(r) == "bad_trust_anchors"


def test_scan_provenance_full_adds_the_watermark_decoder(tmp_path: Path) -> None:
    from sentinelle.provenance.watermark import embed_sdxl

    inbox = tmp_path / "in"
    inbox.mkdir()
    embed_sdxl(render_scene(21).convert("RGB")).save(inbox / "marked.png")
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    verdicts = {}
    for flag in ("--provenance", "--provenance-full"):
        out = tmp_path / f"{flag}.jsonl"
        args = ["scan", str(inbox), "--jsonl", str(out), "-q", "--workers", "1", flag]
        res = CliRunner().invoke(cli, args, env={"SENTINELLE_DATABASE_URL": db})
        assert res.exit_code == 0, res.output
        rec = _lines(out.read_text())[0]
        verdicts[flag] = (rec["provenance"]["verdict"], rec["config"])
    assert verdicts["--provenance"] == ("no_evidence", "fast+trim+prov")
    assert verdicts["--provenance-full"] == ("ai_generated", "fast+trim+prov-full")
