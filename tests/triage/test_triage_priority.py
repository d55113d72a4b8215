"""Priority: tiers never overlap whatever the bonuses; every term is a stated reason."""

from __future__ import annotations

import pytest

from sentinelle.triage.priority import DEFAULT_WEIGHTS, _Evidence, _read, score, weights_from


def _ev(*records: tuple[str | None, dict | None]) -> _Evidence:
    ev = _Evidence()
    for verdict, prov in records:
        _read(ev, verdict, prov)
    return ev


EXIF = {
    "verdict": "no_evidence",
    "evidence": [
        {
            "source": "camera",
            "indicates": "camera",
            "strength": "weak",
            "finding": "EXIF capture fields of a Canon",
            "details": {"rule": "exif_capture"},
        },
        {
            "source": "camera",
            "indicates": "camera",
            "strength": "weak",
            "finding": "non-standard quantisation tables",
            "details": {},
        },
    ],
}
AI = {
    "verdict": "ai_generated",
    "confidence": 0.7,
    "evidence": [
        {
            "source": "metadata.a1111",
            "indicates": "ai_generated",
            "strength": "moderate",
            "finding": "A1111 parameters",
        }
    ],
}
WEAK_AI = {
    "verdict": "no_evidence",
    "evidence": [
        {"source": "detector", "indicates": "ai_generated", "strength": "weak", "finding": "p=0.6"}
    ],
}


def _score(status: str, ev: _Evidence, **kw):
    args = {"n_files": 1, "n_media": 1, "series_size": 1, "faces": 0, "media_type": "image"}
    args.update(kw)
    return score(status, None, ev, weights_from(None), **args)


def test_tiers_and_reasons() -> None:
    cam = _score("new", _ev(("no_evidence", EXIF)))
    assert cam[0] == "camera_new"
    assert {r["cue"] for r in cam[2]} >= {"tier.camera_new", "camera_exif", "camera_qtables"}
    assert _score("new", _ev(("no_evidence", None)))[0] == "unknown_new"
    hint = _score("new", _ev(("no_evidence", EXIF), ("no_evidence", WEAK_AI)))
    assert hint[0] == "unknown_new"  # camera evidence but a generator hint: not first
    assert any(r["cue"] == "generator_hint" for r in hint[2])
    ai = _score("new", _ev(("ai_generated", AI)))
    assert ai[0] == "ai_new" and any(r["cue"] == "ai_flag" for r in ai[2])
    assert _score("known", _ev(("no_evidence", EXIF)))[0] == "known"
    assert _score("new", _ev(("conflicting", {"verdict": "conflicting"})))[0] == "unknown_new"


def test_bonuses_never_cross_a_tier() -> None:
    huge = {"n_files": 500, "n_media": 50, "series_size": 40, "faces": 9, "media_type": "video"}
    lowest_camera = _score("new", _ev(("no_evidence", EXIF)))[1]
    best_unknown = _score("new", _ev(("no_evidence", None)), age_cue="apparent age 12", **huge)
    best_ai = _score("new", _ev(("ai_generated", AI)), **huge)[1]
    best_known = _score(
        "known", _ev(), matches=[{"victim_identified": False, "series": "S1"}], **huge
    )
    assert lowest_camera > best_unknown[1] > best_ai > best_known[1]
    best_camera = _score("new", _ev(("no_evidence", EXIF)), age_cue="apparent age 12", **huge)
    assert any(r["cue"] == "bonus_cap" for r in best_camera[2])
    assert best_camera[1] == DEFAULT_WEIGHTS["tier.camera_new"] + DEFAULT_WEIGHTS["bonus_cap"]
    for _tier, total, reasons in (best_camera, best_unknown, best_known):
        assert sum(r["weight"] for r in reasons) == pytest.approx(total)
    assert any(r["cue"] == "victim_unidentified" and "S1" in r["detail"] for r in best_known[2])


def test_weights_are_configurable_and_checked() -> None:
    w = weights_from({"copies": 5})
    assert w["copies"] == 5.0 and w["tier.known"] == DEFAULT_WEIGHTS["tier.known"]
    with pytest.raises(ValueError):
        weights_from({"bogus": 1})
