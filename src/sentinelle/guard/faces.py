"""Face detection (OpenCV Haar cascade) and the optional apparent-age estimator.

**Faces.** OpenCV's frontal-face Haar cascades ship inside ``opencv-python-headless``
(``cv2.data.haarcascades``), so no model download is needed. We use ``alt2``: on BSDS500
photos it fired on fewer non-faces (rocks, statues, animals...) than the ``default``
cascade (a hand check, not a benchmark in ``bench/``). It finds
upright, roughly frontal faces and misses profiles and stylised faces, which is why a
face count is *information* in the result, never a reason to allow.

**Apparent age.** No age model ships (the good ones carry restrictive licences), so the
operator may point ``SENTINELLE_GUARD_AGE_MODEL`` at an ONNX file with this contract:

* input: one float32 tensor ``[N, 3, S, S]``, RGB, values in ``[0, 1]`` (``S`` is read
  from the model's input shape; 224 when the shape is dynamic). Each face crop is
  enlarged by 25 % on every side and resized to ``S x S``.
* output (the first one): ``[N]`` or ``[N, 1]`` -- the apparent age in years; or
  ``[N, K]`` with ``K > 1`` -- a probability (or logit) for each age ``0 .. K-1``, whose
  expected value is taken.

Any other callable can be plugged in from Python: an :class:`AgeEstimator` is just
``estimate(faces: list[np.ndarray]) -> list[float]`` (RGB uint8 crops in, ages out).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import SentinelleError

#: Faces analysed at most per image (the largest ones); more are counted only.
MAX_FACES = 20
#: Images are scaled so their longer side is at most this before face detection.
DETECT_MAX_SIDE = 800
CROP_MARGIN = 0.25


class GuardModelError(SentinelleError):
    """A configured guard model cannot be loaded (code ``guard_model_unavailable``)."""

    code = "guard_model_unavailable"


@dataclass(frozen=True)
class Face:
    """A detected face: box in original-image pixels, apparent age when estimated."""

    x: int
    y: int
    w: int
    h: int
    age: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "box": [self.x, self.y, self.w, self.h],
            "age": None if self.age is None else round(self.age, 1),
        }


class AgeEstimator(Protocol):
    """Anything that maps RGB uint8 face crops to apparent ages in years."""

    def estimate(self, faces: list[np.ndarray]) -> list[float]: ...


# --------------------------------------------------------------------- faces
class FaceDetector:
    """Haar-cascade frontal-face detector. ``detect`` is thread-safe (OpenCV's
    ``CascadeClassifier`` is not, so each thread gets its own instance)."""

    CASCADE = "haarcascade_frontalface_alt2.xml"

    def __init__(self) -> None:
        import cv2

        self._cv2 = cv2
        self._path = str(Path(cv2.data.haarcascades) / self.CASCADE)
        if self._load() is None:
            raise GuardModelError(f"OpenCV face cascade {self.CASCADE} could not be loaded")
        self._local = threading.local()

    def _load(self):  # type: ignore[no-untyped-def]
        c = self._cv2.CascadeClassifier(self._path)
        return None if c.empty() else c

    def _cascade(self):  # type: ignore[no-untyped-def]
        c = getattr(self._local, "cascade", None)
        if c is None:
            c = self._local.cascade = self._load()
        return c

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces in an ``(h, w, 3)`` uint8 RGB image, largest first."""
        cv2 = self._cv2
        h, w = rgb.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            grey = cv2.resize(
                grey, (max(1, round(w * scale)), max(1, round(h * scale))), cv2.INTER_AREA
            )
        # Faces under 1/12 of the shorter side are too small to judge an age from;
        # skipping them also saves detection time.
        min_side = max(24, min(grey.shape[:2]) // 12)
        boxes = self._cascade().detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
        )
        faces = [
            Face(round(x / scale), round(y / scale), round(bw / scale), round(bh / scale))
            for (x, y, bw, bh) in (boxes if len(boxes) else [])
        ]
        faces.sort(key=lambda f: f.w * f.h, reverse=True)
        return faces


@lru_cache(maxsize=1)
def face_detector() -> FaceDetector:
    """The process-wide detector (the cascade file is parsed once)."""
    return FaceDetector()


def crop(rgb: np.ndarray, face: Face, margin: float = CROP_MARGIN) -> np.ndarray:
    """The face region enlarged by ``margin`` of its size on every side (clipped)."""
    h, w = rgb.shape[:2]
    mx, my = round(face.w * margin), round(face.h * margin)
    x0, y0 = max(0, face.x - mx), max(0, face.y - my)
    x1, y1 = min(w, face.x + face.w + mx), min(h, face.y + face.h + my)
    return rgb[y0:y1, x0:x1]


# ----------------------------------------------------------------------- age
class OnnxAgeEstimator:
    """Apparent-age model in ONNX (contract in the module docstring)."""

    def __init__(self, path: str | Path, *, threads: int = 0) -> None:
        import onnxruntime as ort

        p = Path(path)
        if not p.is_file():
            raise GuardModelError(f"age model file not found: {p}")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                str(p), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types
            raise GuardModelError(f"age model {p.name} cannot be loaded: {e}") from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        side = inp.shape[-1] if len(inp.shape) == 4 else None
        self.size = side if isinstance(side, int) and side > 0 else 224

    def estimate(self, faces: list[np.ndarray]) -> list[float]:
        import cv2

        if not faces:
            return []
        batch = np.stack(
            [cv2.resize(f, (self.size, self.size), interpolation=cv2.INTER_AREA) for f in faces]
        )
        x = (batch.astype(np.float32) / 255.0).transpose(0, 3, 1, 2)
        out = np.asarray(self.session.run(None, {self.input_name: x})[0], dtype=np.float64)
        out = out.reshape(len(faces), -1)
        if out.shape[1] == 1:
            return [float(v) for v in out[:, 0]]
        probs = out
        if (probs < 0).any() or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
            e = np.exp(probs - probs.max(axis=1, keepdims=True))  # logits -> softmax
            probs = e / e.sum(axis=1, keepdims=True)
        ages = np.arange(probs.shape[1], dtype=np.float64)
        return [float(v) for v in probs @ ages]


@lru_cache(maxsize=4)
def age_estimator(path: str, threads: int = 0) -> OnnxAgeEstimator:
    """A cached :class:`OnnxAgeEstimator` for ``path``."""
    return OnnxAgeEstimator(path, threads=threads)
