"""The evidence contract, checked on every kind of file the sources know.

Corpus: the 50 shared C2PA fixtures (valid, tampered, remote, unsupported, no manifest), plus
files written here from benign images: an SDXL-watermarked photo, a PNG carrying
AUTOMATIC1111 generator metadata, a C2PA-signed render (analysed with its root trusted), an
unmarked photo, and a black image the test ONNX detector flags.

Each evidence item must carry exactly the contract fields with valid values (``strength``,
``indicates``, boolean ``forgeable``/``strippable``), and the two flags must be the ones the
docs promise for its source. ``sentinelle provenance FILE... --json`` must print one object
per file with exactly ``path``, ``verdict``, ``confidence``, ``evidence``, ``error`` plus the
documented extras ``tampered`` and ``explanation``, and agree with the Python API.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin
from test_provenance_detector import BASE, _model, _sidecar
from typer.testing import CliRunner

from sentinelle.cli.demo_media import render_scene
from sentinelle.cli.main import app as cli
from sentinelle.provenance import analyze_file
from sentinelle.provenance.detector import load_config
from sentinelle.provenance.evidence import INDICATES, STRENGTHS, VERDICTS
from sentinelle.provenance.sign import make_test_chain, sign_bytes
from sentinelle.provenance.sources import source_names
from sentinelle.provenance.watermark import embed_sdxl

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "provenance" / "c2pa-rs-fixtures"
KODAK = SHARED / "corpora" / "photos" / "kodak24"
BSDS = SHARED / "corpora" / "photos" / "bsds500"

pytestmark = pytest.mark.skipif(
    not (FIXTURES.is_dir() and KODAK.is_dir() and BSDS.is_dir()), reason="../shared missing"
)

CONTRACT_KEYS = {"path", "verdict", "confidence", "evidence", "error"}
DOCUMENTED_EXTRAS = {"tampered", "explanation"}
EVIDENCE_KEYS = {"source", "finding", "strength", "indicates", "forgeable", "strippable", "details"}
CLAIMS = {"ai_generated", "ai_edited", "camera"}

# (forgeable, strippable) that each source's claims must carry (docs/PROVENANCE*.md).
# C2PA claims are strippable; they are forgeable unless the signer is trusted ("strong").
FLAGS = {
    "metadata": (True, True),  # anyone can write a text chunk; any re-save drops it
    "watermark": (True, True),  # public algorithm; re-encoding or resizing erases it
    "camera": (True, True),  # EXIF and quantisation tables are copied or rewritten freely
    "detector": (True, False),  # adversarial noise moves the score; nothing to strip
}


def _a1111_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        "a red bicycle by a wall\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, "
        "Size: 512x512, Model: v1-5-pruned",
    )
    buf = io.BytesIO()
    render_scene(3).convert("RGB").save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Our own files (in ``made/``), the detector model and the trusted root."""
    base = tmp_path_factory.mktemp("contract")
    made = base / "made"
    made.mkdir()
    embed_sdxl(Image.open(KODAK / "kodim03.png").convert("RGB")).save(made / "sdxl_marked.png")
    (made / "a1111.png").write_bytes(_a1111_png())
    (made / "unmarked_photo.jpg").write_bytes(sorted(BSDS.glob("*.jpg"))[0].read_bytes())
    chain = make_test_chain(base / "pki")
    jpeg = io.BytesIO()
    render_scene(4).convert("RGB").save(jpeg, "JPEG", quality=92)
    (made / "signed.jpg").write_bytes(
        sign_bytes(
            jpeg.getvalue(), cert_pem=chain.chain.read_bytes(), key_pem=chain.key.read_bytes()
        )
    )
    Image.new("RGB", (300, 200), (3, 3, 3)).save(made / "black.png")
    model = _model(base / "det.onnx", [1, 3, 32, 32])
    # read the "dark" logit, with a threshold only near-black images reach (mean level < 18)
    _sidecar(model, {**BASE, "synthetic_index": 0, "threshold": 0.999})
    return {"made": made, "model": model, "root": chain.root_cert}


def _check_item(item: dict, where: str) -> None:
    assert set(item) == EVIDENCE_KEYS, (where, item)
    assert item["source"].split(".")[0] in source_names(), (where, item["source"])
    assert isinstance(item["finding"], str) and item["finding"].strip(), where
    assert item["strength"] in STRENGTHS, (where, item)
    assert item["indicates"] in INDICATES, (where, item)
    assert type(item["forgeable"]) is bool and type(item["strippable"]) is bool, (where, item)
    assert isinstance(item["details"], dict), where
    flags = (item["forgeable"], item["strippable"])
    if item["indicates"] == "error":
        assert item["strength"] == "weak" and flags == (False, False), (where, item)
        assert re.fullmatch(r"[a-z0-9_]+", item["details"].get("code", "")), (where, item)
        return
    if item["indicates"] == "tampered":
        assert item["source"] == "c2pa" and not item["forgeable"], (where, item)
    if item["indicates"] not in CLAIMS:
        return
    source = item["source"].split(".")[0]
    if source == "c2pa":
        assert item["strippable"], (where, item)
        assert item["forgeable"] == (item["strength"] != "strong"), (where, item)
    else:
        assert flags == FLAGS[source], (where, item)


def _check_record(rec: dict) -> None:
    where = rec["path"]
    assert set(rec) == CONTRACT_KEYS | DOCUMENTED_EXTRAS, where
    assert rec["verdict"] in VERDICTS, where
    assert isinstance(rec["confidence"], float | int) and 0.0 <= rec["confidence"] <= 1.0
    assert type(rec["tampered"]) is bool
    assert rec["explanation"] and all(isinstance(s, str) for s in rec["explanation"]), where
    assert rec["error"] is None or set(rec["error"]) == {"code", "message"}, where
    for item in rec["evidence"]:
        _check_item(item, where)


def test_cli_json_over_every_kind_of_file(corpus: dict) -> None:
    made: Path = corpus["made"]  # type: ignore[assignment]
    args = ["provenance", str(FIXTURES), str(made), "--json", "--trust-anchors",
            str(corpus["root"]), "--detector", str(corpus["model"])]  # fmt: skip
    res = CliRunner().invoke(cli, args, env={"SENTINELLE_PROVENANCE_DETECTOR": ""})
    lines = res.stdout.strip().splitlines()
    recs = {Path(r["path"]).name: r for r in map(json.loads, lines)}
    # exit 1 exactly when some file could not be analysed (every record still printed)
    assert res.exit_code == (1 if any(r["error"] for r in recs.values()) else 0), res.output
    expected = {p.name for p in FIXTURES.iterdir()} | {p.name for p in made.iterdir()}
    assert len(lines) == len(recs) == len(expected) and set(recs) == expected
    for rec in recs.values():
        _check_record(rec)

    # every source and every kind of claim was exercised, so the checks above meant something
    seen = {
        (e["source"].split(".")[0], e["indicates"]) for r in recs.values() for e in r["evidence"]
    }
    for pair in [("c2pa", "ai_edited"), ("c2pa", "ai_generated"), ("c2pa", "camera"),
                 ("c2pa", "tampered"), ("c2pa", "error"), ("metadata", "ai_generated"),
                 ("watermark", "ai_generated"), ("camera", "camera"),
                 ("detector", "ai_generated"), ("detector", "none")]:  # fmt: skip
        assert pair in seen, pair

    def verdict(name: str) -> str:
        return recs[name]["verdict"]

    assert verdict("sdk_tests_fixtures_ocsp.jpg") == "ai_edited"
    assert recs["sdk_tests_fixtures_XCA.jpg"]["tampered"] is True
    assert recs["sdk_tests_fixtures_E-sig-CA.jpg"]["tampered"] is True
    assert verdict("sdk_tests_fixtures_no_manifest.jpg") == "no_evidence"
    assert verdict("sdxl_marked.png") == verdict("a1111.png") == "ai_generated"
    assert verdict("black.png") == "ai_generated"  # the detector, alone
    assert verdict("unmarked_photo.jpg") == "no_evidence"
    signed = [e for e in recs["signed.jpg"]["evidence"] if e["indicates"] == "ai_generated"]
    assert signed and signed[0]["strength"] == "strong" and signed[0]["forgeable"] is False
    photo = recs["unmarked_photo.jpg"]["evidence"]
    assert not any(e["indicates"] in CLAIMS - {"camera"} for e in photo)

    # the Python API gives the very same records
    config = load_config(corpus["model"])
    pem = Path(corpus["root"]).read_text()
    for name in ("sdk_tests_fixtures_XCA.jpg", "sdxl_marked.png", "a1111.png", "signed.jpg"):
        path = recs[name]["path"]
        assert analyze_file(path, trust_anchors_pem=pem, detector=config).to_dict() == recs[name]


def test_unreadable_file_keeps_the_contract(tmp_path: Path) -> None:
    for target in (tmp_path / "missing.jpg", tmp_path / "empty.jpg"):
        if target.name == "empty.jpg":
            target.write_bytes(b"")
        res = CliRunner().invoke(cli, ["provenance", str(target), "--json"])
        assert res.exit_code == 1, res.output  # the record is printed, the run fails
        (rec,) = [json.loads(line) for line in res.stdout.strip().splitlines()]
        _check_record(rec)
        assert rec["evidence"] == [] and rec["confidence"] == 0.0 and rec["error"]["code"]


def test_the_extras_are_documented() -> None:
    """``tampered`` and ``explanation`` are documented extras, in the record example too."""
    doc = (ROOT / "docs" / "PROVENANCE.md").read_text()
    record = doc[doc.index("## The record") :]
    for key in sorted(CONTRACT_KEYS | DOCUMENTED_EXTRAS):
        assert f'"{key}"' in record[: record.index("```", record.index("```json") + 7)], key
    for key in DOCUMENTED_EXTRAS:
        assert f"* `{key}`" in record or f"`{key}`:" in record, key
