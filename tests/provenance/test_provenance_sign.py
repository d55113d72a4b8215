"""Signing generated images with C2PA and reading them back (real certificates, real c2pa).

A root CA -> intermediate -> ES256 signer chain is made with ``cryptography`` in tmp_path
(:func:`make_test_chain`); the images are benign rendered scenes.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from sentinelle.cli.demo_media import render_scene
from sentinelle.cli.main import app
from sentinelle.provenance import analyze_bytes
from sentinelle.provenance.errors import ProvenanceError
from sentinelle.provenance.sign import CertChain, make_test_chain, sign_bytes, sign_file


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> CertChain:
    return make_test_chain(tmp_path_factory.mktemp("pki"))


def _image(fmt: str, seed: int = 3) -> bytes:
    buf = io.BytesIO()
    render_scene(seed).convert("RGB").save(buf, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _sign(chain: CertChain, data: bytes, **kw) -> bytes:  # type: ignore[no-untyped-def]
    return sign_bytes(data, cert_pem=chain.chain.read_bytes(), key_pem=chain.key.read_bytes(), **kw)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_sign_round_trip(chain: CertChain, fmt: str) -> None:
    signed = _sign(chain, _image(fmt), software_agent="BenignDiffusion 1.0")
    r = analyze_bytes(signed, sources=["c2pa"])
    assert r.verdict == "ai_generated" and not r.tampered
    claim = next(e for e in r.evidence if e.indicates == "ai_generated")
    assert claim.details["action"] == "c2pa.created"
    assert claim.details["digital_source_type"] == "trainedAlgorithmicMedia"
    assert claim.details["software_agent"] == "BenignDiffusion 1.0"
    assert claim.details["signer"]["common_name"] == "Sentinelle Test Signer"
    assert "Sentinelle Test Signer" in claim.finding
    assert claim.details["claim_generator"].startswith("Sentinelle")
    # without our root in the trust anchors the claim is only moderate
    assert claim.strength == "moderate" and claim.forgeable
    assert r.confidence == pytest.approx(0.7)


def test_trust_anchors_make_the_claim_strong(chain: CertChain) -> None:
    signed = _sign(chain, _image("JPEG"))
    r = analyze_bytes(signed, trust_anchors_pem=chain.root_cert.read_text(), sources=["c2pa"])
    claim = next(e for e in r.evidence if e.indicates == "ai_generated")
    assert claim.strength == "strong" and claim.details["trusted"] is True
    assert not claim.forgeable
    assert r.confidence == pytest.approx(0.95)
    # a different root does not vouch for this signer
    other = make_test_chain(chain.root_cert.parent / "other", name="Other")
    r2 = analyze_bytes(signed, trust_anchors_pem=other.root_cert.read_text(), sources=["c2pa"])
    assert next(e for e in r2.evidence if e.indicates == "ai_generated").strength == "moderate"


def test_editing_a_signed_file_is_detected_as_tampering(chain: CertChain) -> None:
    signed = bytearray(_sign(chain, _image("JPEG")))
    sos = signed.rfind(b"\xff\xda")  # start of scan: the pixel data the data hash covers
    signed[sos + 400] ^= 0x55
    r = analyze_bytes(bytes(signed), sources=["c2pa"])
    assert r.tampered and r.verdict == "conflicting"
    tamper = next(e for e in r.evidence if e.indicates == "tampered")
    assert "assertion.dataHash.mismatch" in tamper.details["codes"]
    claim = next(e for e in r.evidence if e.indicates == "ai_generated")
    assert claim.strength == "weak"  # claims of a tampered manifest are demoted


def test_watermark_survives_with_the_manifest(chain: CertChain) -> None:
    signed = _sign(chain, _image("PNG"), watermark=True)
    r = analyze_bytes(signed, sources=["c2pa", "watermark"])
    assert r.verdict == "ai_generated"
    marks = [e for e in r.evidence if e.source == "watermark" and e.indicates == "ai_generated"]
    assert marks and marks[0].details["mark"] == "sdxl"
    # the mark is still there once the manifest is stripped by re-encoding
    stripped = io.BytesIO()
    Image.open(io.BytesIO(signed)).save(stripped, "PNG")
    r2 = analyze_bytes(stripped.getvalue(), sources=["c2pa", "watermark"])
    assert r2.verdict == "ai_generated"
    assert not [e for e in r2.evidence if e.source == "c2pa" and e.indicates != "none"]


def test_bad_inputs_have_codes(chain: CertChain, tmp_path: Path) -> None:
    data = _image("JPEG")
    other = make_test_chain(tmp_path / "x", name="X")
    cases = [
        (dict(cert_pem=b"nope", key_pem=chain.key.read_bytes()), "bad_certificate"),
        (dict(cert_pem=chain.chain.read_bytes(), key_pem=b"nope"), "bad_key"),
        (dict(cert_pem=chain.chain.read_bytes(), key_pem=other.key.read_bytes()), "bad_key"),
    ]
    for kw, code in cases:
        with pytest.raises(ProvenanceError) as e:
            sign_bytes(data, **kw)  # type: ignore[arg-type]
        assert e.value.code == code
    for bad_data, kw, code in [
        (b"plain text, not an image", {}, "unsupported_format"),
        (b"", {}, "empty_file"),
        (data, {"alg": "rot13"}, "bad_algorithm"),
        (data, {"alg": "ps256"}, "sign_failed"),  # EC key cannot make RSA-PSS signatures
        (data, {"software_agent": " "}, "sign_failed"),
    ]:
        with pytest.raises(ProvenanceError) as e:
            _sign(chain, bad_data, **kw)
        assert e.value.code == code, (kw, e.value.message)
    # a chain whose first certificate is not the key's (here: the root CA) is refused
    with pytest.raises(ProvenanceError) as e:
        sign_bytes(data, cert_pem=chain.root_cert.read_bytes(), key_pem=chain.key.read_bytes())
    assert e.value.code == "bad_key"


def test_sign_file_refuses_in_place(chain: CertChain, tmp_path: Path) -> None:
    src = tmp_path / "a.jpg"
    src.write_bytes(_image("JPEG"))
    with pytest.raises(ProvenanceError):
        sign_file(src, src, cert=chain.chain, key=chain.key)
    with pytest.raises(ProvenanceError) as e:
        sign_file(tmp_path / "missing.jpg", tmp_path / "b.jpg", cert=chain.chain, key=chain.key)
    assert e.value.code == "io_error"


def test_cli_sign_then_check(chain: CertChain, tmp_path: Path) -> None:
    src, out = tmp_path / "gen.jpg", tmp_path / "gen-signed.jpg"
    src.write_bytes(_image("JPEG"))
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "provenance",
            "sign",
            str(src),
            str(out),
            "--cert",
            str(chain.chain),
            "--key",
            str(chain.key),
            "--software-agent",
            "BenignDiffusion 2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > src.stat().st_size
    res = runner.invoke(
        app, ["provenance", str(out), "--json", "--trust-anchors", str(chain.root_cert)]
    )
    assert res.exit_code == 0, res.output
    import json

    rec = json.loads(res.stdout.strip().splitlines()[0])
    assert rec["verdict"] == "ai_generated" and rec["confidence"] >= 0.95
    assert any("BenignDiffusion 2" in e["finding"] for e in rec["evidence"])
    # a bad key file is a clean error with exit status 1
    bad = tmp_path / "bad.key"
    bad.write_text("nope")
    res = runner.invoke(
        app,
        ["provenance", "sign", str(src), str(tmp_path / "o.jpg"), "--cert", str(chain.chain),
         "--key", str(bad)],
    )  # fmt: skip
    assert res.exit_code == 1 and "bad_key" in res.output
    assert not (tmp_path / "o.jpg").exists()
