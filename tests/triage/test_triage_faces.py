"""Triage faces on benign photos (BSDS500 portraits), with the real dlib models.

Needs the ``faces`` extra (in ``dev``); without it every model test skips with one reason.
The Haar fallback and the input checks run either way.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sentinelle.errors import MediaError
from sentinelle.triage import faces as F
from sentinelle.triage.face_clusters import FaceRef, cluster_faces

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "photos" / "bsds500"
# Photos with clear faces (found by eye and by the detector) and photos without any.
ONE_FACE = "181018.jpg"  # one woman, face ~90 px
THREE_KIDS = "368037.jpg"  # three children
OTHER_PERSON = "302022.jpg"  # one man
NO_FACE = ("100007.jpg", "135069.jpg")  # landscape; a bird in the sky

REASON = F.unavailable_reason()
needs_models = pytest.mark.skipif(REASON is not None, reason=f"faces extra: {REASON}")
needs_age = pytest.mark.skipif(
    REASON is not None or F.age_unavailable_reason() is not None,
    reason=f"age model: {REASON or F.age_unavailable_reason()}",
)


def _photo(name: str) -> bytes:
    p = PHOTOS / name
    if not p.is_file():
        pytest.skip(f"shared corpus photo {p} missing")
    return p.read_bytes()


def _jpeg(im: Image.Image, q: int = 90) -> bytes:
    b = io.BytesIO()
    im.save(b, "JPEG", quality=q)
    return b.getvalue()


@needs_models
def test_detects_embeds_and_is_deterministic() -> None:
    data = _photo(ONE_FACE)
    faces = F.detect_faces(data)
    assert len(faces) == 1
    f = faces[0]
    x, y, w, h = f.box
    assert f.detector == "hog" and f.score > 1.0
    assert 80 <= x <= 110 and 60 <= y <= 95 and 80 <= w <= 100 and w == pytest.approx(h, abs=2)
    assert f.embedding is not None and f.embedding.shape == (128,)
    assert f.embedding.dtype == np.float32
    again = F.detect_faces(data)
    assert again == faces and np.array_equal(again[0].embedding, f.embedding)
    # the same pixels as an array, as a PIL image and from a path give the same faces
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    for src in (rgb, Image.fromarray(rgb), PHOTOS / ONE_FACE):
        g = F.detect_faces(src)
        assert g == faces and np.array_equal(g[0].embedding, f.embedding)


@needs_models
def test_several_faces_largest_first_and_no_face_photos() -> None:
    faces = F.detect_faces(_photo(THREE_KIDS))
    assert len(faces) == 3
    areas = [w * h for _, _, w, h in (f.box for f in faces)]
    assert areas == sorted(areas, reverse=True)
    assert F.detect_faces(_photo(THREE_KIDS), max_faces=2) == faces[:2]
    for name in NO_FACE:
        assert F.detect_faces(_photo(name)) == []
    assert F.detect_faces(np.full((300, 400, 3), 128, np.uint8)) == []
    assert F.detect_faces(np.zeros((5, 5), np.uint8)) == []  # tiny greyscale


@needs_models
def test_copies_of_a_photo_link_and_other_people_do_not() -> None:
    src = Image.open(io.BytesIO(_photo(ONE_FACE))).convert("RGB")
    w, h = src.size
    copies = {
        "orig.jpg": _photo(ONE_FACE),
        "crop.jpg": _jpeg(src.crop((30, 20, w - 30, h - 20))),
        "small.jpg": _jpeg(src.resize((w * 7 // 10, h * 7 // 10), Image.Resampling.LANCZOS)),
        "q40.jpg": _jpeg(src, 40),
    }
    refs = [
        FaceRef(name, i, f.embedding, series_id="S-a" if name != "q40.jpg" else "S-b")
        for name, data in copies.items()
        for i, f in enumerate(F.detect_faces(data))
    ]
    refs += [
        FaceRef(f"{n}", i, f.embedding, series_id="S-c")
        for n in (OTHER_PERSON, THREE_KIDS)
        for i, f in enumerate(F.detect_faces(_photo(n)))
    ]
    assert len(refs) == 4 + 1 + 3
    res = cluster_faces(refs)
    assert len(res.clusters) == 1
    assert res.clusters[0].files == sorted(copies)
    assert res.clusters[0].diameter < 0.3
    assert len(res.file_links) == 6  # every pair of the four copies, nothing else
    assert [(s.series_a, s.series_b) for s in res.series_links] == [("S-a", "S-b")]


@needs_models
def test_crop_of_the_face_maps_boxes_back_and_large_images_are_scaled() -> None:
    src = Image.open(io.BytesIO(_photo(ONE_FACE))).convert("RGB")
    big = src.resize((src.width * 4, src.height * 4), Image.Resampling.LANCZOS)
    f_small = F.detect_faces(_jpeg(src))[0]
    f_big = F.detect_faces(_jpeg(big))[0]  # decoded at reduced scale, boxes in big pixels
    assert np.allclose(np.array(f_big.box) / 4, f_small.box, atol=8)  # ~10 % of the face
    assert float(np.linalg.norm(f_big.embedding - f_small.embedding)) < 0.25


@needs_models
def test_corrupt_and_hostile_input_are_structured_errors(tmp_path: Path) -> None:
    data = _photo(ONE_FACE)
    cases = {
        "truncated": data[: len(data) // 3],
        "garbage": b"\xff\xd8\xff" + bytes(range(256)) * 4,
        "text": b"not an image at all",
        "empty": b"",
    }
    for name, blob in cases.items():
        with pytest.raises(MediaError) as e:
            F.detect_faces(blob)
        assert e.value.code in {"corrupt_media", "unsupported_type"}, name
    with pytest.raises(MediaError) as e:
        F.detect_faces(tmp_path / "missing.jpg")
    assert e.value.code == "io_error"
    with pytest.raises(MediaError):
        F.detect_faces(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(MediaError):
        F.detect_faces(np.zeros((10, 10, 2), np.uint8))
    # a decompression bomb header: refused before decoding
    bomb = io.BytesIO()
    Image.new("L", (12_000, 12_000)).save(bomb, "PNG")
    with pytest.raises(MediaError) as e:
        F.detect_faces(bomb.getvalue())
    assert e.value.code == "too_many_pixels"


@needs_models
def test_model_files_are_checked_and_68_point_model_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = F.verified_model(F.FACE_MODELS_PACKAGE, "shape_predictor_5_face_landmarks.dat")
    assert "site-packages" in str(path) or "dist-packages" in str(path)  # read in place
    repo = Path(__file__).resolve().parents[2]
    tracked = subprocess.run(
        ["git", "ls-files", "*.dat", "*.onnx"], cwd=repo, capture_output=True, text=True
    )
    if tracked.returncode == 0:  # no model file is part of the repository
        names = {Path(n).name for n in tracked.stdout.split()}
        assert not names & (set(F.MODEL_SHA256) | F.FORBIDDEN_MODELS)
    with pytest.raises(F.FaceModelError, match="non-commercial"):
        F.verified_model(F.FACE_MODELS_PACKAGE, "shape_predictor_68_face_landmarks.dat")
    F.verified_model.cache_clear()
    monkeypatch.setitem(F.MODEL_SHA256, "shape_predictor_5_face_landmarks.dat", "0" * 64)
    try:
        with pytest.raises(F.FaceModelError) as e:
            F.verified_model(F.FACE_MODELS_PACKAGE, "shape_predictor_5_face_landmarks.dat")
        assert e.value.code == "face_model_unavailable" and "expected 000" in e.value.message
        assert F.unavailable_reason() is not None
    finally:
        F.verified_model.cache_clear()
    with pytest.raises(F.FaceModelError, match="not installed"):
        F.verified_model("no_such_face_package", "age-v1.onnx")


@needs_age
def test_apparent_age_raises_priority_and_never_clears() -> None:
    kids = F.detect_faces(_photo(THREE_KIDS))
    adult = F.detect_faces(_photo(OTHER_PERSON))
    assert all(f.apparent_age is not None for f in kids + adult)
    assert max(f.apparent_age for f in kids) < 15  # type: ignore[type-var]
    assert adult[0].apparent_age > 21  # type: ignore[operator]
    up, why = F.age_raises_priority(kids)
    assert up and why is not None and "never clears" in why
    # an adult-looking face is "no cue", not a reason to lower anything
    assert F.age_raises_priority(adult) == (False, None)
    assert F.age_raises_priority([]) == (False, None)
    assert F.detect_faces(_photo(THREE_KIDS), with_age=False)[0].apparent_age is None
    # the same model through the prompt guard's AgeEstimator protocol (crops in, ages out)
    from sentinelle.guard.faces import AgeEstimator

    model = F.age_model()
    assert isinstance(model, F.ApparentAgeModel)
    est: AgeEstimator = model
    rgb = np.asarray(Image.open(io.BytesIO(_photo(THREE_KIDS))).convert("RGB"))
    crops = []
    for f in kids:
        x, y, w, h = f.box
        m = w // 4
        crops.append(rgb[max(0, y - m) : y + h + m, max(0, x - m) : x + w + m])
    ages = est.estimate(crops)
    # crops are aligned on their own landmarks, so ages differ a little from the
    # whole-image chips (7.0, 7.5, 18.4 vs 7.1, 7.4, 7.0 here): still all under the cue
    assert len(ages) == 3 and max(ages) < F.AGE_RAISE_BELOW


def test_haar_fallback_finds_faces_without_embeddings() -> None:
    p = PHOTOS / ONE_FACE
    if not p.is_file():
        pytest.skip(f"shared corpus photo {p} missing")
    faces = F.detect_faces(p.read_bytes(), detector="haar")
    assert faces and all(f.detector == "haar" and f.embedding is None for f in faces)
    assert all(f.apparent_age is None for f in faces)
    assert F.detect_faces(np.full((200, 200, 3), 90, np.uint8), detector="haar") == []


def test_face_round_trips_through_json() -> None:
    f = F.Face((1, 2, 3, 4), np.arange(128, dtype=np.float32) / 128, 7.25, 1.5, "hog")
    g = F.Face.from_dict(f.to_dict())
    assert (g.box, g.score, g.detector) == (f.box, f.score, f.detector)
    assert np.allclose(g.embedding, f.embedding, atol=1e-6)  # type: ignore[arg-type]
    assert g.apparent_age == pytest.approx(7.2, abs=0.06)  # kept to 0.1 year
