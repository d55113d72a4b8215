"""C2PA reading, verdict weighing and hostile input, on the c2pa-rs fixtures in ../shared.

Everything is real: the shared C2PA test files, the native c2pa library, and (for hostile
input) truncated, bit-flipped and forged copies of those files written to tmp_path.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from sentinelle.provenance import Evidence, analyze_bytes, analyze_file
from sentinelle.provenance.c2pa_reader import collect as c2pa_collect
from sentinelle.provenance.errors import ProvenanceError
from sentinelle.provenance.evidence import VERDICTS, SourceContext
from sentinelle.provenance.sources import (
    collect_all,
    register_source,
    run_source,
    source_names,
    unregister_source,
)
from sentinelle.provenance.trust import parse_trust_anchors, trust_anchors_from_env
from sentinelle.provenance.verdict import weigh

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "provenance" / "c2pa-rs-fixtures"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared fixtures missing")


def fx(name: str) -> Path:
    return FIXTURES / f"sdk_tests_fixtures_{name}"


def c2pa_items(path: Path, **ctx) -> list[Evidence]:  # type: ignore[no-untyped-def]
    data = path.read_bytes()
    return c2pa_collect(data, SourceContext(**ctx).bind(data))


# ----------------------------------------------------------------- fixture verdicts


def test_ocsp_is_ai_edited_with_firefly_in_the_ingredient() -> None:
    r = analyze_file(fx("ocsp.jpg"))
    assert r.verdict == "ai_edited" and not r.tampered
    assert 0.6 <= r.confidence < 0.9  # signer not in our (empty) trust anchors
    ai = [e for e in r.evidence if e.source == "c2pa" and e.indicates == "ai_edited"]
    types = {e.details["digital_source_type"] for e in ai}
    assert types == {"compositeWithTrainedAlgorithmicMedia", "trainedAlgorithmicMedia"}
    # the generator's own claim sits in a componentOf ingredient: AI part -> ai_edited
    firefly = [e for e in ai if e.details["role"] == "component"]
    assert firefly and firefly[0].details["software_agent"] == "Adobe Firefly"
    assert firefly[0].details["signer"]["issuer"] == "Adobe Inc."
    assert all(e.strength == "moderate" and e.forgeable for e in ai)
    assert r.explanation and "compositeWithTrainedAlgorithmicMedia" in r.explanation[0]


@pytest.mark.parametrize(
    ("name", "code"),
    [("XCA.jpg", "assertion.dataHash.mismatch"), ("E-sig-CA.jpg", "claimSignature.mismatch")],
)
def test_tampered_fixtures_are_flagged_not_trusted(name: str, code: str) -> None:
    r = analyze_file(fx(name))
    assert r.tampered is True
    assert r.verdict == "conflicting"
    tamper = [e for e in r.evidence if e.indicates == "tampered"]
    assert len(tamper) == 1 and tamper[0].strength == "strong"
    assert tamper[0].details["codes"] == [code]
    assert tamper[0].details["role"] == "active"
    # credential problems are reported apart from tampering
    summary = next(e for e in r.evidence if e.finding.startswith("C2PA manifest store"))
    assert summary.details["validation_state"] == "Invalid"
    assert summary.details["credential_codes"] == ["signingCredential.untrusted"]
    assert code not in summary.details["credential_codes"]
    assert "tampered" in r.explanation[0]


def test_edited_claim_label_is_tampering() -> None:
    r = analyze_file(fx("adobe-20220124-E-clm-CAICAI.jpg"))
    assert r.tampered and r.verdict == "conflicting"
    tamper = next(e for e in r.evidence if e.indicates == "tampered")
    assert tamper.details["codes"] == ["assertion.hashedURI.mismatch"]


@pytest.mark.parametrize(
    ("name", "code", "path"),
    [
        ("CIE-sig-CA.jpg", "claimSignature.mismatch", ["componentOf"]),
        ("CACAE-uri-CA.jpg", "assertion.hashedURI.mismatch", ["componentOf", "componentOf"]),
    ],
)
def test_tampered_ingredient_marks_the_file_tampered(name: str, code: str, path: list) -> None:
    """The active manifest is intact but an ingredient's signature/URI fails: tampered."""
    r = analyze_file(fx(name))
    assert r.tampered is True and r.verdict == "conflicting"
    tamper = [e for e in r.evidence if e.indicates == "tampered"]
    assert len(tamper) == 1 and tamper[0].strength == "strong"
    assert tamper[0].details["role"] == "component" and tamper[0].details["codes"] == [code]
    assert tamper[0].details["path"] == path
    assert r.explanation[0].startswith("tampered: ") and "ingredient" in r.explanation[0]
    assert "own manifest is intact" in r.explanation[1]
    summary = next(e for e in r.evidence if e.finding.startswith("C2PA manifest store"))
    assert summary.details["validation_state"] == "Valid"  # c2pa-rs itself calls it valid


@pytest.mark.parametrize(
    "name",
    [
        "no_manifest.jpg",
        "earth_apollo17.jpg",
        "IMG_0003.jpg",
        "P1000827.jpg",
        "sample1.png",
        "sample1.webp",
        "sample1.gif",
        "sample1.heic",
        "sample1.avif",
        "test.tiff",
        "thumbnail.jpg",
    ],
)
def test_files_without_manifest_have_no_evidence(name: str) -> None:
    r = analyze_file(fx(name))
    assert r.verdict == "no_evidence" and r.error is None and not r.tampered
    c2pa = [e for e in r.evidence if e.source == "c2pa"]
    assert [e.finding for e in c2pa] == ["no C2PA manifest"]
    assert not [e for e in r.evidence if e.indicates in ("ai_generated", "ai_edited")]


def test_algorithmic_media_is_not_generative_ai() -> None:
    items = c2pa_items(fx("C.jpg"))
    claim = next(e for e in items if e.details.get("digital_source_type"))
    assert claim.details["digital_source_type"] == "algorithmicMedia"
    assert claim.indicates == "none" and "not generative AI" in claim.finding
    assert weigh(items).verdict == "no_evidence"


def test_digital_capture_is_camera_signed_with_untrusted_confidence() -> None:
    r = analyze_file(FIXTURES / "cli_tests_fixtures_C_with_CAWG_data.jpg", sources=["c2pa"])
    assert r.verdict == "camera_signed"
    cam = next(e for e in r.evidence if e.indicates == "camera")
    assert cam.details["digital_source_type"] == "digitalCapture"
    assert cam.details["trusted"] is False and cam.forgeable is True
    assert r.confidence == pytest.approx(0.6)


@pytest.mark.parametrize("name", ["cloud.jpg", "cloudx.jpg", "libpng-test_with_url.png"])
def test_remote_manifests_are_reported_not_fetched(name: str) -> None:
    items = c2pa_items(fx(name))
    assert len(items) == 1
    item = items[0]
    assert item.indicates == "none", item  # not an error
    assert item.details["fetched"] is False
    assert item.details["remote_url"].startswith("http")
    assert "remotely" in item.finding


def test_unsupported_and_unreadable_are_error_items() -> None:
    svg = c2pa_items(fx("sample1.svg"))
    assert svg[0].indicates == "error" and svg[0].details["code"] == "c2pa_unsupported_format"
    for name in ("no_alg.jpg", "prerelease.jpg", "tiff_poc.tiff"):
        item = c2pa_items(fx(name))[0]
        assert item.indicates == "error" and item.details["code"] == "c2pa_malformed", name
        r = analyze_file(fx(name))
        assert r.verdict == "no_evidence" and r.confidence == pytest.approx(0.5)


def test_every_fixture_gets_a_verdict() -> None:
    verdicts = {}
    for p in sorted(FIXTURES.iterdir()):
        r = analyze_file(p)
        assert r.verdict in VERDICTS
        assert 0.0 <= r.confidence <= 1.0
        verdicts[p.name] = r.verdict
        assert r.to_dict()["path"] == str(p)
    assert len(verdicts) == 50
    assert sum(v == "conflicting" for v in verdicts.values()) == 5
    # the empty fixture is a file-level error
    empty = analyze_file(fx("exp-test1.png"))
    assert empty.error == {"code": "empty_file", "message": "file is empty"}


# ----------------------------------------------------------------- hostile input


def _no_crash(data: bytes) -> None:
    r = analyze_bytes(data, sources=["c2pa"])
    assert r.verdict in VERDICTS
    assert r.verdict not in ("ai_generated", "ai_edited", "camera_signed") or not r.tampered


def test_truncated_manifests_never_crash() -> None:
    data = fx("CA.jpg").read_bytes()
    jumbf = data.find(b"jumb")
    assert jumbf > 0
    cuts = sorted({jumbf - 8, jumbf + 4, jumbf + 100, jumbf + 2000, len(data) // 2, 3, 100})
    for cut in cuts:
        r = analyze_bytes(data[:cut], sources=["c2pa"])
        assert r.verdict == "no_evidence", cut
        assert not r.tampered


def test_bit_flipped_manifests_never_crash() -> None:
    data = fx("CA.jpg").read_bytes()
    start = data.find(b"jumb")
    end = start + 20_000
    rng = random.Random(5)
    for _ in range(60):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(start, end)] ^= 1 << rng.randrange(8)
        _no_crash(bytes(buf))


def test_garbage_and_unsupported_formats() -> None:
    rng = random.Random(7)
    for n in (1, 17, 4096, 200_000):
        r = analyze_bytes(rng.randbytes(n))
        assert r.verdict == "no_evidence" and r.error is None
        assert any(e.indicates == "error" for e in r.evidence)
    r = analyze_bytes(b"%PDF-1.4 not really\n" * 50)
    assert r.verdict == "no_evidence"
    # a JPEG header followed by garbage
    r = analyze_bytes(b"\xff\xd8\xff\xe0" + bytes(5000))
    assert r.verdict == "no_evidence"


def test_huge_declared_jumbf_box() -> None:
    """An APP11 JUMBF segment whose box claims 4 GiB: read as malformed, never allocated."""
    box = struct.pack(">I4s", 0xFFFFFFF0, b"jumb") + struct.pack(">I4s", 0xFFFFFF00, b"jumd")
    payload = b"JP" + struct.pack(">HI", 1, 1) + box + b"c2pa\x00" + bytes(64)
    app11 = b"\xff\xeb" + struct.pack(">H", len(payload) + 2) + payload
    src = fx("no_manifest.jpg").read_bytes()
    forged = src[:2] + app11 + src[2:]
    r = analyze_bytes(forged, sources=["c2pa"])
    assert r.verdict == "no_evidence"


def test_size_cap_protects_the_native_reader() -> None:
    data = fx("CA.jpg").read_bytes()
    items = c2pa_collect(data, SourceContext(max_bytes=1000).bind(data))
    assert items[0].indicates == "error" and items[0].details["code"] == "too_large"
    r = analyze_bytes(data, max_bytes=1000)
    assert r.error is not None and r.error["code"] == "file_too_large"


def test_missing_and_directory_paths(tmp_path: Path) -> None:
    r = analyze_file(tmp_path / "nope.jpg")
    assert r.verdict == "no_evidence" and r.error and r.error["code"] == "io_error"
    r = analyze_file(tmp_path)
    assert r.error and r.error["code"] == "io_error"


# ----------------------------------------------------------------- weighing rules


def ev(indicates: str, strength: str, source: str = "metadata", **details) -> Evidence:  # type: ignore[no-untyped-def]
    return Evidence(source, f"{indicates} {strength}", strength, indicates, True, True, details)  # type: ignore[arg-type]


def test_weighing_rules() -> None:
    assert weigh([]).verdict == "no_evidence"
    assert weigh([ev("ai_generated", "moderate")]).verdict == "ai_generated"
    assert weigh([ev("ai_generated", "moderate")]).confidence == pytest.approx(0.7)
    # weak hints alone never decide
    assert weigh([ev("ai_generated", "weak"), ev("camera", "weak")]).verdict == "no_evidence"
    # agreement between independent sources raises confidence
    two = weigh([ev("ai_generated", "moderate"), ev("ai_generated", "strong", "watermark")])
    assert two.verdict == "ai_generated" and two.confidence == pytest.approx(1.0, abs=0.02)
    # equal strong AI and camera evidence conflicts
    both = weigh([ev("ai_generated", "strong", "watermark"), ev("camera", "strong", "c2pa")])
    assert both.verdict == "conflicting" and not both.tampered
    # stronger side wins, with a penalty and the counter-evidence named
    mixed = weigh([ev("ai_generated", "moderate"), ev("camera", "strong", "c2pa", trusted=True)])
    assert mixed.verdict == "camera_signed" and mixed.confidence == pytest.approx(0.6)
    assert any(line.startswith("against:") for line in mixed.explanation)
    # EXIF-style camera hints are never camera_signed
    assert weigh([ev("camera", "moderate", "camera")]).verdict == "no_evidence"
    # C2PA edit claims beat generator claims of equal strength
    edit = weigh([ev("ai_generated", "moderate"), ev("ai_edited", "moderate", "c2pa")])
    assert edit.verdict == "ai_edited"
    # a strong tamper overrides everything
    t = weigh([ev("ai_generated", "strong", "c2pa"), ev("tampered", "strong", "c2pa")])
    assert t.verdict == "conflicting" and t.tampered


def test_evidence_rejects_unknown_labels() -> None:
    with pytest.raises(ValueError, match="strength"):
        Evidence("x", "y", "huge", "none", False, False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="indicates"):
        Evidence("x", "y", "weak", "alien", False, False)  # type: ignore[arg-type]


# ----------------------------------------------------------------- sources and trust


def test_a_failing_source_becomes_an_error_item() -> None:
    def broken(data: bytes, ctx: SourceContext) -> list[Evidence]:
        raise RuntimeError("boom")

    register_source("test_broken", broken)
    try:
        data = fx("ocsp.jpg").read_bytes()
        items = run_source("test_broken", data, SourceContext().bind(data))
        assert items[0].indicates == "error" and items[0].details["code"] == "source_failed"
        r = analyze_bytes(data, sources=["c2pa", "test_broken"])
        assert r.verdict == "ai_edited"  # the other source still counts
    finally:
        unregister_source("test_broken")
    assert "test_broken" not in source_names()
    with pytest.raises(ProvenanceError) as e:
        collect_all(data, SourceContext().bind(data), ["c2pa", "nope"])
    assert e.value.code == "unknown_source"


def test_trust_anchor_parsing(tmp_path: Path) -> None:
    for bad in (
        b"",
        b"not a pem",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ):
        with pytest.raises(ProvenanceError) as e:
            parse_trust_anchors(bad)
        assert e.value.code == "bad_trust_anchors"
    assert trust_anchors_from_env({}) is None
    with pytest.raises(ProvenanceError):
        trust_anchors_from_env({"SENTINELLE_C2PA_TRUST_ANCHORS": str(tmp_path / "missing.pem")})
