"""Output image guard: real models (NudeNet ONNX, OpenCV Haar) on benign images only.

Benign inputs: BSDS500 photos from ``../shared`` and images rendered with Pillow. The
explicit-content *decision* is exercised through :func:`decide` (a pure function of
the detector's score) -- never with explicit imagery.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sentinelle.errors import MediaError
from sentinelle.guard import PromptGuard
from sentinelle.guard.config import GuardConfig, GuardConfigError, GuardInputError
from sentinelle.guard.image import (
    NOT_NEEDED,
    ImageGuard,
    decide,
    decode_rgb,
    prompt_summary,
)
from sentinelle.guard.nsfw import EXPLICIT_LABELS, LABELS, nsfw_detector
from sentinelle.media.limits import Limits

BSDS = "corpora/photos/bsds500"
FACES_PHOTO = "189003.jpg"  # two women in traditional dress, faces to the camera
ONE_FACE_PHOTO = "181018.jpg"  # a portrait
NO_FACE_PHOTO = "100007.jpg"  # landscape


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _rendered(mode: str = "RGB", size: tuple[int, int] = (320, 240)) -> bytes:
    im = Image.new("RGB", size, (40, 90, 160))
    d = ImageDraw.Draw(im)
    d.ellipse([40, 40, 200, 200], fill=(240, 200, 40))
    d.rectangle([180, 120, 300, 220], fill=(30, 160, 60))
    return _png(im.convert(mode))


def _photo(shared: Path, name: str) -> bytes:
    return (shared / BSDS / name).read_bytes()


def _age_model(tmp_path: Path, *, age: float | None = None, peak: int | None = None) -> Path:
    """A tiny real ONNX model following the age-estimator contract: constant apparent
    age ``age`` ([N] output) or a distribution over 0..100 peaked at ``peak``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 64, 64])
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
    ]
    inits = [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])]
    if age is not None:
        nodes.append(helper.make_node("Add", ["z", "age"], ["out"]))
        inits.append(helper.make_tensor("age", TensorProto.FLOAT, [], [age]))
        out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N"])
    else:
        logits = np.full(101, -20.0, dtype=np.float32)
        logits[peak] = 20.0
        nodes += [
            helper.make_node("Unsqueeze", ["z", "axis1"], ["z2"]),
            helper.make_node("Add", ["z2", "logits"], ["out"]),
        ]
        inits += [
            helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
            helper.make_tensor("logits", TensorProto.FLOAT, [1, 101], logits.tolist()),
        ]
        out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 101])
    graph = helper.make_graph(nodes, "age", [x], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / f"age-{age}-{peak}.onnx"
    onnx.save(model, str(path))
    return path


# ------------------------------------------------------------------ real models
def test_benign_photo_allowed_and_checks_listed(shared: Path) -> None:
    r = ImageGuard(GuardConfig(faces="always")).check(_photo(shared, NO_FACE_PHOTO))
    assert r.decision == "allow", r.to_dict()
    assert r.checks_run == ["nsfw", "faces"]
    [not_run] = r.checks_not_run
    assert not_run["check"] == "age" and "SENTINELLE_GUARD_AGE_MODEL" in not_run["reason"]
    assert r.explicit < 0.2
    d = r.to_dict()
    assert d["media"] == {"format": "jpeg", "width": 481, "height": 321}
    assert len(d["sha256"]) == 64 and d["policy_id"] == "image-guard/1"


def test_benign_bsds_photos_never_blocked(shared: Path) -> None:
    """No false block or explicit score on a sample of everyday photos."""
    g = ImageGuard(GuardConfig())
    for p in sorted((shared / BSDS).glob("*.jpg"))[:25]:
        r = g.check(p.read_bytes())
        assert r.decision == "allow", (p.name, r.to_dict())


def test_faces_found_in_photo_with_people(shared: Path) -> None:
    g = ImageGuard(GuardConfig(faces="always"))
    r = g.check(_photo(shared, FACES_PHOTO))
    assert len(r.faces) >= 1
    for f in r.faces:
        assert 0 <= f.x < 481 and 0 <= f.y < 321 and f.w >= 24 and f.age is None
    assert g.check(_photo(shared, ONE_FACE_PHOTO)).faces


def test_detections_equal_nudenet_reference(shared: Path) -> None:
    """Our direct ONNX path gives NudeNet's own detections on the same pixels."""
    cv2 = pytest.importorskip("cv2")
    nudenet = pytest.importorskip("nudenet")
    ref = nudenet.NudeDetector()
    ours = nsfw_detector("auto")
    seen = 0
    for name in (FACES_PHOTO, ONE_FACE_PHOTO, "101087.jpg", "106024.jpg", NO_FACE_PHOTO):
        path = shared / BSDS / name
        rgb = cv2.imread(str(path))[:, :, ::-1].copy()
        a = sorted((d.label, round(d.score, 4), d.box) for d in ours.detect(rgb))
        b = sorted(
            (d["class"], round(d["score"], 4), tuple(d["box"])) for d in ref.detect(str(path))
        )
        assert a == b, name
        seen += len(a)
    assert seen > 0  # the model did find (benign) parts such as faces
    assert set(LABELS) > EXPLICIT_LABELS


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "LA", "I;16", "CMYK"])
def test_rendered_images_of_every_mode(mode: str) -> None:
    data = (
        _rendered(mode) if mode != "CMYK" else _jpeg(Image.new("CMYK", (200, 100), (0, 80, 0, 0)))
    )
    r = ImageGuard(GuardConfig()).check(data)
    assert r.decision == "allow" and r.faces == [] and "nsfw" in r.checks_run


def _jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG")
    return buf.getvalue()


def test_large_image_is_reduced_before_models() -> None:
    big = Image.new("RGB", (4000, 3000), (200, 200, 200))
    rgb, media = decode_rgb(_jpeg(big))
    assert max(rgb.shape[:2]) <= 1280 and media["width"] == 4000


# ----------------------------------------------------- unavailable detectors
def test_nsfw_disabled_means_review_with_reason(shared: Path) -> None:
    cfg = GuardConfig(nsfw_model="off")
    r = ImageGuard(cfg).check(_photo(shared, NO_FACE_PHOTO))
    assert r.decision == "review"
    assert "nsfw" not in r.checks_run
    reason = next(c["reason"] for c in r.checks_not_run if c["check"] == "nsfw")
    assert "disabled" in reason
    assert "explicit-content check not run" in r.reasons


def test_nsfw_model_missing_file(tmp_path: Path) -> None:
    r = ImageGuard(GuardConfig(nsfw_model=str(tmp_path / "nope.onnx"))).check(_rendered())
    assert r.decision == "review"
    assert any(c["check"] == "nsfw" and "not found" in c["reason"] for c in r.checks_not_run)


def test_nsfw_model_not_onnx(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    r = ImageGuard(GuardConfig(nsfw_model=str(bad))).check(_rendered())
    assert r.decision == "review"
    assert any(c["check"] == "nsfw" and "cannot be loaded" in c["reason"] for c in r.checks_not_run)


def test_faces_disabled_is_listed() -> None:
    r = ImageGuard(GuardConfig(faces="off")).check(_rendered())
    not_run = {c["check"]: c["reason"] for c in r.checks_not_run}
    assert "disabled" in not_run["faces"] and "disabled" in not_run["age"]


# ------------------------------------------------------------ face mode
def _stand_in_nsfw_model(tmp_path: Path, label: str, score: float) -> Path:
    """A tiny real ONNX model with NudeNet's input and output shapes that reports one
    ``label`` region at ``score`` on any image: it lets the explicit-content path run
    end to end on benign pictures (no explicit imagery is ever used)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from sentinelle.guard.nsfw import LABELS

    rows = np.zeros((1, 4 + len(LABELS), 2100), dtype=np.float32)
    rows[0, :4, 0] = (160.0, 160.0, 120.0, 120.0)  # centre box in the 320 x 320 input
    rows[0, 4 + LABELS.index(label), 0] = score
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 320, 320])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, list(rows.shape))
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["z", "rows"], ["out"]),
    ]
    inits = [
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("rows", TensorProto.FLOAT, list(rows.shape), rows.ravel().tolist()),
    ]
    graph = helper.make_graph(nodes, "stand_in", [x], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / f"stand-in-{label}-{score}.onnx"
    onnx.save(model, str(path))
    return path


class _CountingAge:
    """An age estimator that records how often it was asked."""

    def __init__(self, age: float) -> None:
        self.age, self.calls = age, 0

    def estimate(self, faces: list[np.ndarray]) -> list[float]:
        self.calls += 1
        return [self.age] * len(faces)


def test_default_face_mode_is_when_needed() -> None:
    assert GuardConfig().faces == "when_needed"
    assert GuardConfig.from_env({}).faces == "when_needed"


def test_when_needed_skips_faces_and_age_on_clean_image(shared: Path) -> None:
    age = _CountingAge(9.0)
    r = ImageGuard(GuardConfig(), age=age).check(_photo(shared, FACES_PHOTO))
    assert r.decision == "allow" and r.checks_run == ["nsfw"]
    assert r.checks_not_run == [
        {"check": "faces", "reason": NOT_NEEDED},
        {"check": "age", "reason": NOT_NEEDED},
    ]
    assert NOT_NEEDED == "not needed: no explicit content"
    assert r.faces == [] and r.minor_signals == [] and age.calls == 0
    # the same photo in "always" mode does have faces: the skip is what saved the work
    assert ImageGuard(GuardConfig(faces="always")).check(_photo(shared, FACES_PHOTO)).faces


def test_when_needed_runs_faces_when_explicit_check_cannot_run(shared: Path) -> None:
    r = ImageGuard(GuardConfig(nsfw_model="off")).check(_photo(shared, FACES_PHOTO))
    assert r.checks_run == ["faces"] and r.faces
    assert r.decision == "review" and "explicit-content check not run" in r.reasons


def test_when_needed_runs_faces_and_age_on_explicit_image(shared: Path, tmp_path: Path) -> None:
    model = str(_stand_in_nsfw_model(tmp_path, "BUTTOCKS_EXPOSED", 0.9))
    # faces found, apparent age unknown: a minor cannot be ruled out -> review
    r = ImageGuard(GuardConfig(nsfw_model=model, image_adult="allow")).check(
        _photo(shared, FACES_PHOTO)
    )
    assert r.explicit == pytest.approx(0.9, abs=1e-4)
    assert r.checks_run == ["nsfw", "faces"] and r.faces
    assert r.decision == "review"
    assert "a minor could not be ruled out (apparent age not checked)" in r.reasons
    # with an age estimator: a child's apparent age on explicit content -> block
    age = _CountingAge(9.0)
    r = ImageGuard(GuardConfig(nsfw_model=model), age=age).check(_photo(shared, FACES_PHOTO))
    assert r.checks_run == ["nsfw", "faces", "age"] and age.calls == 1
    assert r.decision == "block" and {"source": "age", "age": 9.0} in r.minor_signals
    # and adult apparent ages leave it to the operator's adult policy
    r = ImageGuard(GuardConfig(nsfw_model=model, image_adult="allow"), age=_CountingAge(30.0))
    assert r.check(_photo(shared, FACES_PHOTO)).decision == "allow"


def test_when_needed_below_threshold_still_skips(shared: Path, tmp_path: Path) -> None:
    """A non-explicit label, or an explicit one under the threshold, is a clean image."""
    for label, score in (("FACE_FEMALE", 0.95), ("BUTTOCKS_EXPOSED", 0.3)):
        model = str(_stand_in_nsfw_model(tmp_path, label, score))
        r = ImageGuard(GuardConfig(nsfw_model=model)).check(_photo(shared, FACES_PHOTO))
        assert r.checks_run == ["nsfw"] and r.decision == "allow", (label, r.to_dict())
        assert {"check": "faces", "reason": NOT_NEEDED} in r.checks_not_run


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        ("when_needed", "when_needed"),
        (" When-Needed ", "when_needed"),
        ("always", "always"),
        ("off", "off"),
        ("true", "always"),
        ("1", "always"),
        ("yes", "always"),
        ("false", "off"),
        ("0", "off"),
        ("", "when_needed"),
    ],
)
def test_face_mode_from_env(raw: str, mode: str) -> None:
    assert GuardConfig.from_env({"SENTINELLE_GUARD_FACES": raw}).faces == mode


def test_face_mode_bool_and_bad_values() -> None:
    assert GuardConfig(faces=True).faces == "always"  # type: ignore[arg-type]
    assert GuardConfig(faces=False).faces == "off"  # type: ignore[arg-type]
    for bad in ("sometimes", "2"):
        with pytest.raises(GuardConfigError) as ei:
            GuardConfig.from_env({"SENTINELLE_GUARD_FACES": bad})
        assert ei.value.code == "bad_guard_config" and "SENTINELLE_GUARD_FACES" in str(ei.value)
    with pytest.raises(GuardConfigError):
        GuardConfig(faces="sometimes")


# ------------------------------------------------------------ age estimator
def test_age_model_constant_minor_age(shared: Path, tmp_path: Path) -> None:
    cfg = GuardConfig(faces="always", age_model=str(_age_model(tmp_path, age=9.0)))
    r = ImageGuard(cfg).check(_photo(shared, FACES_PHOTO))
    assert "age" in r.checks_run and r.faces
    assert all(f.age == pytest.approx(9.0) for f in r.faces)
    assert {"source": "age", "age": 9.0} in r.minor_signals
    assert r.decision == "allow"  # a child's face in a benign image is not a reason to act


def test_age_model_distribution_output(shared: Path, tmp_path: Path) -> None:
    cfg = GuardConfig(faces="always", age_model=str(_age_model(tmp_path, peak=35)))
    r = ImageGuard(cfg).check(_photo(shared, FACES_PHOTO))
    assert r.faces and all(f.age == pytest.approx(35.0, abs=0.01) for f in r.faces)
    assert r.minor_signals == []


def test_age_model_missing_is_reported(tmp_path: Path, shared: Path) -> None:
    cfg = GuardConfig(faces="always", age_model=str(tmp_path / "missing.onnx"))
    r = ImageGuard(cfg).check(_photo(shared, FACES_PHOTO))
    assert any(c["check"] == "age" and "not found" in c["reason"] for c in r.checks_not_run)


def test_pluggable_age_estimator(shared: Path) -> None:
    class Fixed:
        def estimate(self, faces: list[np.ndarray]) -> list[float]:
            assert all(f.ndim == 3 and f.shape[2] == 3 for f in faces)
            return [15.0] * len(faces)

    r = ImageGuard(GuardConfig(faces="always"), age=Fixed()).check(_photo(shared, ONE_FACE_PHOTO))
    assert r.faces and r.faces[0].age == 15.0 and r.minor_signals[0]["source"] == "age"


# ------------------------------------------------------------------ decision
@pytest.mark.parametrize(
    ("explicit", "minors", "faces", "age_ran", "prompt", "adult", "expected"),
    [
        (0.9, [{"source": "age"}], 1, True, None, "allow", "block"),
        (0.9, [{"source": "prompt"}], 0, False, None, "allow", "block"),
        (0.9, [], 0, False, None, "allow", "allow"),  # no faces: adult policy
        (0.9, [], 2, False, None, "allow", "review"),  # faces, age unknown
        (0.9, [], None, False, None, "allow", "review"),  # face detector did not run
        (0.9, [], 2, True, None, "allow", "allow"),  # faces all adults
        (0.9, [], 2, True, None, "block", "block"),
        (0.9, [], 0, False, None, "review", "review"),
        (0.1, [{"source": "prompt"}], 1, False, None, "block", "allow"),  # not explicit
        (None, [], 0, False, None, "allow", "review"),  # detector did not run
        (None, [{"source": "prompt"}], 0, False, None, "allow", "review"),
        (0.0, [], 0, False, {"decision": "block"}, "allow", "block"),
        (0.0, [], 0, False, {"decision": "review"}, "allow", "review"),
        (0.0, [], 0, False, {"decision": "allow"}, "allow", "allow"),
    ],
)
def test_decision_policy(explicit, minors, faces, age_ran, prompt, adult, expected) -> None:
    decision, reasons = decide(
        GuardConfig(image_adult=adult),
        explicit=explicit,
        minors=minors,
        faces=faces,
        age_ran=age_ran,
        prompt=prompt,
    )
    assert decision == expected
    if decision != "allow":
        assert reasons  # every review or block says why
    elif explicit is not None and explicit >= GuardConfig().nsfw_threshold:
        # allowed only by the operator's adult policy, which is named as the reason
        assert reasons == ["explicit adult content (operator policy: allow)"]
    else:
        assert reasons == []


def test_prompt_result_feeds_minor_signal(shared: Path) -> None:
    pr = PromptGuard().check("a girl at the beach")
    r = ImageGuard(GuardConfig()).check(_photo(shared, NO_FACE_PHOTO), prompt_result=pr)
    assert r.prompt is not None and r.prompt["decision"] == pr.decision
    assert "text" not in r.prompt  # the prompt text is not echoed
    assert pr.categories["minor_present"] >= 0.5  # "girl" is a (weak) minor signal
    assert r.minor_signals and r.minor_signals[0]["source"] == "prompt"
    assert r.decision == pr.decision  # benign image: the prompt's decision stands


def test_prompt_result_as_dict_and_bad_shapes() -> None:
    good = {"decision": "block", "categories": {"minor_sexual": 1.0}}
    assert prompt_summary(good)["decision"] == "block"
    r = ImageGuard(GuardConfig()).check(_rendered(), prompt_result=good)
    assert r.decision == "block" and "the prompt was blocked" in r.reasons
    for bad in (
        [],
        {"decision": "maybe", "categories": {}},
        {"decision": "allow", "categories": []},
        {"decision": "allow", "categories": {"x": "high"}},
        {"decision": "allow", "categories": {"x": True}},
    ):
        with pytest.raises(GuardInputError) as ei:
            prompt_summary(bad)
        assert ei.value.code == "bad_prompt_result"


# ------------------------------------------------------------- hostile input
def _png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width x height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"hello, not an image at all", "unsupported_type"),
        (_rendered()[:200], "corrupt_media"),
        (_png_bomb(60_000, 60_000), "too_many_pixels"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64, "unsupported_type"),
    ],
)
def test_hostile_bytes_structured_errors(data: bytes, code: str) -> None:
    with pytest.raises(MediaError) as ei:
        ImageGuard(GuardConfig()).check(data)
    assert ei.value.code == code


def test_file_size_limit() -> None:
    g = ImageGuard(GuardConfig(), limits=Limits(max_file_bytes=1000))
    with pytest.raises(MediaError) as ei:
        g.check(_rendered())
    assert ei.value.code == "file_too_large"
