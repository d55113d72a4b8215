"""The ONNX detector plug-in, with tiny models built here by the ``onnx`` package.

The test model computes ``s = k * (mean(x) - c)`` over its (normalised) input and returns
the logits ``[-s, s]``: bright images score "synthetic", dark ones do not, so loading,
preprocessing, layout, calibration and thresholds can all be checked against numbers we
compute by hand.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from sentinelle.provenance import detector as det
from sentinelle.provenance.evidence import SourceContext

K, C = 4.0, 0.0


def _model(path: Path, shape: list, *, outputs: int = 2, name: str = "logits") -> Path:
    """Write ``[-s, s]`` (or ``[s]`` for one output) with s = K * (mean(x) - C)."""
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m4"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["m4", "shape11"], ["m"]),
        helper.make_node("Sub", ["m", "c"], ["d"]),
        helper.make_node("Mul", ["d", "k"], ["s"]),
    ]
    if outputs == 2:
        nodes += [
            helper.make_node("Neg", ["s"], ["ns"]),
            helper.make_node("Concat", ["ns", "s"], [name], axis=1),
        ]
    else:
        nodes += [helper.make_node("Identity", ["s"], [name])]
    graph = helper.make_graph(
        nodes,
        "brightness",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, outputs])],
        initializer=[
            helper.make_tensor("shape11", TensorProto.INT64, [2], [1, 1]),
            helper.make_tensor("c", TensorProto.FLOAT, [1], [C]),
            helper.make_tensor("k", TensorProto.FLOAT, [1], [K]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _sidecar(model: Path, meta: dict, suffix: str = ".json") -> Path:
    path = model.with_suffix(suffix)
    if suffix == ".json":
        path.write_text(json.dumps(meta))
    else:
        lines = []
        for key, value in meta.items():
            if isinstance(value, dict):
                continue
            lines.append(f"{key} = {json.dumps(value)}")
        for key, value in meta.items():
            if isinstance(value, dict):
                lines.append(f"[{key}]")
                lines += [f"{k} = {json.dumps(v)}" for k, v in value.items()]
        path.write_text("\n".join(lines) + "\n")
    return path


BASE = {
    "name": "brightness-test",
    "input_size": [32, 32],
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "layout": "NCHW",
    "synthetic_index": 1,
    "activation": "softmax",
    "threshold": 0.5,
}


def _grey(level: int, size=(64, 48)) -> Image.Image:
    return Image.new("RGB", size, (level, level, level))


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _expected_softmax(level: int, temperature: float = 1.0) -> float:
    s = K * ((level / 255.0 - 0.5) / 0.5 - C)
    return 1.0 / (1.0 + math.exp(-2.0 * s / temperature))


def _collect(img_bytes: bytes, config) -> list:
    ctx = SourceContext(media_type="image/png", detector=config).bind(img_bytes)
    return det.collect(img_bytes, ctx)


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    return _model(tmp_path / "det.onnx", [1, 3, 32, 32])


def test_bright_is_flagged_dark_is_not(model: Path) -> None:
    _sidecar(model, BASE)
    config = det.load_config(model)
    (bright,) = _collect(_png(_grey(230)), config)
    assert bright.indicates == "ai_generated" and bright.strength == "moderate"
    assert bright.details["score"] == pytest.approx(_expected_softmax(230), abs=1e-3)
    assert bright.details["detector"] == "brightness-test"
    assert not bright.strippable
    (dark,) = _collect(_png(_grey(30)), config)
    assert dark.indicates == "none" and dark.strength == "weak"
    assert dark.details["score"] == pytest.approx(_expected_softmax(30), abs=1e-3)


def test_temperature_and_platt_calibration(model: Path) -> None:
    _sidecar(model, {**BASE, "calibration": {"method": "temperature", "temperature": 4.0}})
    d = det.get_detector(det.load_config(model))
    score = d.score(_grey(160))
    assert score.probability == pytest.approx(_expected_softmax(160, 4.0), abs=1e-4)
    assert score.probability < _expected_softmax(160)  # softened towards 0.5

    _sidecar(model, {**BASE, "calibration": {"method": "platt", "a": 0.5, "b": -1.0}})
    d = det.Detector(det.load_config(model))
    score = d.score(_grey(200))
    s = K * ((200 / 255.0 - 0.5) / 0.5)
    assert score.raw == pytest.approx(s, abs=1e-4)
    assert score.probability == pytest.approx(1 / (1 + math.exp(-(0.5 * s - 1.0))), abs=1e-4)


def test_nhwc_bgr_center_crop_and_toml_sidecar(tmp_path: Path) -> None:
    model = _model(tmp_path / "nhwc.onnx", [1, 32, 32, 3], outputs=1, name="score")
    meta = {
        **BASE,
        "layout": "NHWC",
        "channel_order": "BGR",
        "resize": "center_crop",
        "synthetic_index": 0,
        "activation": "sigmoid",
        "output": "score",
    }
    _sidecar(model, meta, ".toml")
    d = det.Detector(det.load_config(model))
    # left half black, right half white, wide: centre crop keeps a 50/50 square
    img = Image.new("RGB", (300, 100), (0, 0, 0))
    img.paste((255, 255, 255), (150, 0, 300, 100))
    x = d.preprocess(img)
    assert x.shape == (1, 32, 32, 3) and x.dtype == np.float32
    assert float(x.mean()) == pytest.approx(0.0, abs=0.05)
    # channel order: a pure red image puts +1 in the last (BGR) channel
    red = d.preprocess(Image.new("RGB", (40, 40), (255, 0, 0)))
    assert red[0, 0, 0].tolist() == pytest.approx([-1.0, -1.0, 1.0])
    assert 0.4 < d.score(img).probability < 0.6


def test_env_configuration(model: Path, tmp_path: Path) -> None:
    meta = _sidecar(model, BASE).rename(tmp_path / "elsewhere.json")
    assert det.config_from_env({}) is None
    cfg = det.config_from_env({det.ENV_MODEL: str(model), det.ENV_META: str(meta)})
    assert cfg is not None and cfg.input_size == (32, 32) and cfg.synthetic_index == 1
    with pytest.raises(det.DetectorError) as e:
        det.config_from_env({det.ENV_MODEL: str(model)})  # no sidecar next to it
    assert e.value.code == "detector_missing"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"input_size": [0, 32]}, "input_size"),
        ({"input_size": "big"}, "input_size"),
        ({"std": [0.5, 0.0, 0.5]}, "std"),
        ({"mean": [0.5, 0.5]}, "mean"),
        ({"layout": "CHW"}, "layout"),
        ({"activation": "relu"}, "activation"),
        ({"synthetic_index": -1}, "synthetic_index"),
        ({"threshold": 1.5}, "threshold"),
        ({"channel_order": "GRB"}, "channel_order"),
        ({"calibration": {"method": "isotonic"}}, "calibration"),
        ({"calibration": {"method": "temperature", "temperature": 0}}, "temperature"),
        ({"calibration": {"method": "platt", "a": "x", "b": 1}}, "platt"),
    ],
)
def test_bad_metadata_is_a_structured_error(model: Path, change: dict, fragment: str) -> None:
    _sidecar(model, {**BASE, **change})
    with pytest.raises(det.DetectorError) as e:
        det.load_config(model)
    assert e.value.code == "bad_detector_metadata"
    assert fragment in e.value.message


def test_unparseable_sidecar(model: Path) -> None:
    model.with_suffix(".json").write_text("{not json")
    with pytest.raises(det.DetectorError) as e:
        det.load_config(model)
    assert e.value.code == "bad_detector_metadata"
    model.with_suffix(".json").write_text("[1, 2]")
    with pytest.raises(det.DetectorError, match="object"):
        det.load_config(model)


def test_wrong_input_shape_is_refused_at_load(model: Path) -> None:
    _sidecar(model, {**BASE, "input_size": [64, 64]})
    with pytest.raises(det.DetectorError) as e:
        det.Detector(det.load_config(model))
    assert e.value.code == "bad_detector_input"
    _sidecar(model, {**BASE, "layout": "NHWC"})
    with pytest.raises(det.DetectorError, match="NHWC"):
        det.Detector(det.load_config(model))


def test_output_selection_errors(model: Path) -> None:
    _sidecar(model, {**BASE, "output": "nope"})
    with pytest.raises(det.DetectorError) as e:
        det.Detector(det.load_config(model))
    assert e.value.code == "bad_detector_output"
    _sidecar(model, {**BASE, "synthetic_index": 5})
    d = det.Detector(det.load_config(model))
    with pytest.raises(det.DetectorError) as e:
        d.score(_grey(100))
    assert e.value.code == "bad_detector_output"
    _sidecar(model, {**BASE, "activation": "none"})  # logits are not probabilities
    items = _collect(_png(_grey(250)), det.load_config(model))
    assert [i.details["code"] for i in items] == ["bad_detector_output"]


def test_missing_and_corrupt_model_files(tmp_path: Path) -> None:
    with pytest.raises(det.DetectorError) as e:
        det.load_config(tmp_path / "absent.onnx")
    assert e.value.code == "detector_missing"
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not an onnx model")
    _sidecar(bad, BASE)
    config = det.load_config(bad)
    (item,) = _collect(_png(_grey(100)), config)
    assert item.indicates == "error" and item.details["code"] == "detector_load_failed"
    bad.unlink()
    (item,) = _collect(_png(_grey(100)), config)
    assert item.details["code"] == "detector_missing"


def test_no_detector_means_no_evidence_and_corrupt_image_is_error(
    model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(det.ENV_MODEL, raising=False)
    assert _collect(_png(_grey(100)), None) == []
    _sidecar(model, BASE)
    config = det.load_config(model)
    (item,) = _collect(_png(_grey(100))[:50], config)
    assert item.indicates == "error" and item.details["code"] == "undecodable_image"
    pdf = b"%PDF-1.4 not an image"
    assert (
        det.collect(pdf, SourceContext(media_type="application/pdf", detector=config).bind(pdf))
        == []
    )
    monkeypatch.setenv(det.ENV_MODEL, str(model))
    (item,) = _collect(_png(_grey(230)), None)  # picked up from the environment
    assert item.indicates == "ai_generated"


def test_cache_reloads_when_the_model_changes(model: Path) -> None:
    _sidecar(model, BASE)
    config = det.load_config(model)
    first = det.get_detector(config)
    assert det.get_detector(config) is first
    _model(model, [1, 3, 32, 32])  # rewritten
    os.utime(model, ns=(1, 1))  # new mtime even on a coarse clock
    assert det.get_detector(config) is not first
