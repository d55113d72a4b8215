"""Operator configuration of provenance: ``--detector``/``--detector-meta`` on the CLI and
``scan``, and the ``SENTINELLE_PROVENANCE_DETECTOR(_META)`` / ``SENTINELLE_C2PA_TRUST_ANCHORS``
variables in the service (``/v1/provenance`` and ``/v1/scan``).

The detector is the tiny "brightness" ONNX model of ``test_provenance_detector.py`` (built
here with the ``onnx`` package): a bright grey image scores "synthetic", a dark one does not.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from test_provenance_detector import BASE, _model, _sidecar
from typer.testing import CliRunner

from sentinelle.cli.demo_media import render_scene
from sentinelle.cli.main import app as cli
from sentinelle.provenance import detector as det
from sentinelle.provenance.trust import ENV_VAR as TRUST_ENV
from sentinelle.service.app import create_app
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings

ENV_OFF = {det.ENV_MODEL: "", det.ENV_META: "", TRUST_ENV: ""}


def _png(level: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (level, level, level)).save(buf, "PNG")
    return buf.getvalue()


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.strip().splitlines()]


def _detector_items(record: dict) -> list[dict]:
    return [e for e in record["evidence"] if e["source"] == "detector"]


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    """``det.onnx`` with its default sidecar ``det.json`` next to it."""
    path = _model(tmp_path / "det.onnx", [1, 3, 32, 32])
    _sidecar(path, BASE)
    return path


@pytest.fixture()
def images(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, level in (("bright", 230), ("dark", 30)):
        out[name] = tmp_path / f"{name}.png"
        out[name].write_bytes(_png(level))
    return out


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_OFF:
        monkeypatch.delenv(name, raising=False)


# ------------------------------------------------------------------------------ resolution


def test_resolve_config_prefers_options_over_environment(model: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**BASE, "name": "from-env-meta"}))
    env = {det.ENV_MODEL: str(model), det.ENV_META: str(other)}
    assert det.resolve_config(env={}) is None
    assert det.resolve_config(env=env).name == "from-env-meta"
    # an explicit model ignores the environment's sidecar: its own sidecar describes it
    assert det.resolve_config(model, env=env).name == "brightness-test"
    assert det.resolve_config(model, other, env={}).name == "from-env-meta"
    # a sidecar given on the command line describes the environment's model
    explicit = tmp_path / "explicit.json"
    explicit.write_text(json.dumps({**BASE, "name": "explicit-meta"}))
    assert det.resolve_config(None, explicit, env=env).name == "explicit-meta"
    with pytest.raises(det.DetectorError) as e:
        det.resolve_config(None, explicit, env={})
    assert e.value.code == "detector_missing"


# ------------------------------------------------------------------------------ CLI


def test_cli_detector_option(model: Path, images: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["provenance", str(images["bright"]), str(images["dark"]), "--json"]
    res = runner.invoke(cli, args, env=ENV_OFF)
    assert res.exit_code == 0, res.output
    assert all(_detector_items(r) == [] for r in _lines(res.stdout))  # none configured

    res = runner.invoke(cli, [*args, "--detector", str(model)], env=ENV_OFF)
    assert res.exit_code == 0, res.output
    bright, dark = _lines(res.stdout)
    (b,) = _detector_items(bright)
    (d,) = _detector_items(dark)
    assert b["indicates"] == "ai_generated" and b["details"]["detector"] == "brightness-test"
    assert bright["verdict"] == "ai_generated"
    assert d["indicates"] == "none" and dark["verdict"] == "no_evidence"

    # --detector-meta: a sidecar elsewhere, with a threshold the bright image does not reach
    meta = tmp_path / "strict.toml"
    meta.write_text(
        'name = "strict"\ninput_size = [32, 32]\nmean = [0.5, 0.5, 0.5]\n'
        'std = [0.5, 0.5, 0.5]\nsynthetic_index = 1\nactivation = "softmax"\n'
        "threshold = 0.9999999\n"
    )
    res = runner.invoke(
        cli, [*args, "--detector", str(model), "--detector-meta", str(meta)], env=ENV_OFF
    )
    assert res.exit_code == 0, res.output
    (b,) = _detector_items(_lines(res.stdout)[0])
    assert b["details"]["detector"] == "strict" and b["indicates"] == "none"


def test_cli_detector_from_environment(model: Path, images: dict[str, Path]) -> None:
    env = {**ENV_OFF, det.ENV_MODEL: str(model)}
    res = CliRunner().invoke(cli, ["provenance", str(images["bright"]), "--json"], env=env)
    assert res.exit_code == 0, res.output
    (item,) = _detector_items(_lines(res.stdout)[0])
    assert item["indicates"] == "ai_generated"


def test_cli_detector_errors_stop_before_any_file(
    model: Path, images: dict[str, Path], tmp_path: Path
) -> None:
    runner = CliRunner()
    target = [str(images["bright"]), "--json"]
    res = runner.invoke(
        cli, ["provenance", *target, "--detector", str(tmp_path / "nope.onnx")], env=ENV_OFF
    )
    assert res.exit_code == 1 and "detector_missing" in res.output and '"verdict"' not in res.output
    res = runner.invoke(
        cli,
        ["provenance", *target, "--detector-meta", str(model.with_suffix(".json"))],
        env=ENV_OFF,
    )
    assert res.exit_code == 1 and "detector_missing" in res.output
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**BASE, "input_size": [64, 64]}))
    res = runner.invoke(
        cli,
        ["provenance", *target, "--detector", str(model), "--detector-meta", str(wrong)],
        env=ENV_OFF,
    )
    assert res.exit_code == 1 and "bad_detector_input" in res.output
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    garbage.with_suffix(".json").write_text(json.dumps(BASE))
    res = runner.invoke(cli, ["provenance", *target, "--detector", str(garbage)], env=ENV_OFF)
    assert res.exit_code == 1 and "detector_load_failed" in res.output
    # a broken detector that is not asked for does not matter
    env = {**ENV_OFF, det.ENV_MODEL: str(tmp_path / "nope.onnx")}
    res = runner.invoke(cli, ["provenance", *target, "--source", "metadata"], env=env)
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["provenance", *target], env=env)
    assert res.exit_code == 1 and "detector_missing" in res.output


def test_scan_detector_option(model: Path, images: dict[str, Path], tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "bright.png").write_bytes(images["bright"].read_bytes())
    env = {**ENV_OFF, "SENTINELLE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    out = tmp_path / "scan.jsonl"
    base = ["scan", str(inbox), "--jsonl", str(out), "-q", "--workers", "1"]
    res = CliRunner().invoke(cli, [*base, "--detector", str(model)], env=env)
    assert res.exit_code == 0, res.output
    (rec,) = _lines(out.read_text())
    (item,) = _detector_items(rec["provenance"])
    assert item["indicates"] == "ai_generated" and rec["config"] == "fast+trim+prov+det"
    res = CliRunner().invoke(cli, [*base, "--detector", str(tmp_path / "nope.onnx")], env=env)
    assert res.exit_code == 2 and "detector_missing" in res.output
    # --no-provenance does not even look at the detector
    res = CliRunner().invoke(
        cli, [*base, "--no-provenance", "--detector", str(tmp_path / "nope.onnx")], env=env
    )
    assert res.exit_code == 0, res.output


# ------------------------------------------------------------------------------ service


@pytest.fixture()
def svc(db_url: str):  # type: ignore[no-untyped-def]
    app = create_app(Settings(database_url=db_url, key_cache_s=0.0, rate_limit=0.0))
    _, key = create_key(app.state.sentinelle.engine, "scanner", ["scan"])
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {key}"}


def test_service_uses_detector_environment(  # type: ignore[no-untyped-def]
    svc, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, h = svc
    r = client.post("/v1/provenance", content=_png(230), headers=h)
    assert r.status_code == 200 and _detector_items(r.json()) == []
    monkeypatch.setenv(det.ENV_MODEL, str(model))
    r = client.post("/v1/provenance", content=_png(230), headers=h)
    assert r.status_code == 200, r.text
    (item,) = _detector_items(r.json())
    assert item["indicates"] == "ai_generated" and r.json()["verdict"] == "ai_generated"
    r = client.post("/v1/scan", content=_png(230), headers=h)
    assert r.status_code == 200, r.text
    (item,) = _detector_items(r.json()["provenance"])
    assert item["details"]["detector"] == "brightness-test"
    # the _META variable points at another sidecar
    meta = tmp_path / "renamed.json"
    meta.write_text(json.dumps({**BASE, "name": "renamed"}))
    monkeypatch.setenv(det.ENV_META, str(meta))
    r = client.post("/v1/provenance", content=_png(30), headers=h)
    (item,) = _detector_items(r.json())
    assert item["details"]["detector"] == "renamed" and item["indicates"] == "none"


def test_service_broken_detector_is_503_not_a_crash(  # type: ignore[no-untyped-def]
    svc, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, h = svc
    monkeypatch.setenv(det.ENV_MODEL, str(tmp_path / "gone.onnx"))
    r = client.post("/v1/provenance", content=_png(230), headers=h)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "detector_missing"
    assert "gone.onnx" not in r.json()["error"]["message"]  # no server paths to callers
    # a request that does not run the detector is unaffected
    r = client.post("/v1/provenance?source=metadata", content=_png(230), headers=h)
    assert r.status_code == 200, r.text
    # /v1/scan still answers: hashes and matches matter more than provenance
    r = client.post("/v1/scan", content=_png(230), headers=h)
    assert r.status_code == 200 and r.json()["provenance"] is None
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**BASE, "layout": "NHWC"}))
    monkeypatch.setenv(det.ENV_MODEL, str(model))
    monkeypatch.setenv(det.ENV_META, str(wrong))
    r = client.post("/v1/provenance", content=_png(230), headers=h)
    assert r.status_code == 503 and r.json()["error"]["code"] == "bad_detector_input"


def test_service_scan_uses_trust_anchor_environment(  # type: ignore[no-untyped-def]
    svc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentinelle.provenance.sign import make_test_chain, sign_bytes

    client, h = svc
    chain = make_test_chain(tmp_path / "pki")
    buf = io.BytesIO()
    render_scene(13).convert("RGB").save(buf, "JPEG", quality=90)
    signed = sign_bytes(
        buf.getvalue(), cert_pem=chain.chain.read_bytes(), key_pem=chain.key.read_bytes()
    )
    prov = client.post("/v1/scan", content=signed, headers=h).json()["provenance"]
    assert prov["verdict"] == "ai_generated" and prov["confidence"] == pytest.approx(0.7)
    monkeypatch.setenv(TRUST_ENV, str(chain.root_cert))
    prov = client.post("/v1/scan", content=signed, headers=h).json()["provenance"]
    assert prov["verdict"] == "ai_generated" and prov["confidence"] == pytest.approx(0.95)
    trusted = [e for e in prov["evidence"] if e["source"] == "c2pa" and e["strength"] == "strong"]
    assert trusted, prov["evidence"]


def test_service_detector_config_is_read_once_per_file_version(
    model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sidecar is parsed again only when the model, the sidecar or the variable changes."""
    import os

    from sentinelle.service.api import provenance as rp

    reads: list[str] = []
    real = det.config_from_env

    def counting(env=None):  # type: ignore[no-untyped-def]
        reads.append("read")
        return real(env)

    monkeypatch.setattr(det, "config_from_env", counting)
    monkeypatch.setenv(det.ENV_MODEL, str(model))
    first = rp.detector_config()
    assert first is not None and rp.detector_config() == first
    assert len(reads) == 1
    sidecar = model.with_suffix(".json")
    st = sidecar.stat()
    os.utime(sidecar, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert rp.detector_config() is not None and len(reads) == 2
    monkeypatch.delenv(det.ENV_MODEL)
    assert rp.detector_config() is None and len(reads) == 2
