"""Explicit-content detection with NudeNet's bundled ONNX detector, run directly.

NudeNet (extra ``sentinelle[nsfw]``, AGPL-3.0) ships ``320n.onnx``, a YOLOv8-nano
detector with 18 body-part classes. We load that file with onnxruntime ourselves
instead of using ``nudenet.NudeDetector`` because its reader decodes the raw bytes
with ``cv2.imdecode`` -- bypassing Sentinelle's decode limits (pixel bombs, format
allow-list) -- and its post-processing is a Python loop over 2,100 candidate boxes.
Here the caller hands us already-decoded RGB pixels, and post-processing is
vectorised.

Pre-processing reproduces NudeNet's exactly: pad the image to a square (bottom and
right, black), resize to 320 x 320 (bilinear), scale to ``[0, 1]``, NCHW, channels in
**BGR** order -- NudeNet's reader converts ``RGBA2BGR`` on an already-BGR image and
then lets ``blobFromImage`` swap again, so its model is fed BGR; we feed the same, and
our detections equal ``NudeDetector.detect``'s on the same pixels (checked on 200
BSDS500 photos, identical labels and scores; see ``tests/guard/test_guard_image.py``). The
output ``[1, 4 + 18, 2100]`` holds per candidate a centre-format box and 18 class
scores; candidates scoring >= 0.2 go through non-maximum suppression (IoU 0.45).

Only *exposed* genitalia, anus, female breast and buttocks are "explicit"
(:data:`EXPLICIT_LABELS`); covered parts, faces, feet, belly and armpits are
reported but never count.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .faces import GuardModelError

LABELS = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
EXPLICIT_LABELS = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "ANUS_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "BUTTOCKS_EXPOSED",
    }
)
MODEL_FILE = "320n.onnx"
MIN_SCORE = 0.2
NMS_IOU = 0.45


class NsfwUnavailable(GuardModelError):
    """The explicit-content detector cannot run; ``reason`` says why, for the result."""

    code = "nsfw_unavailable"


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: tuple[int, int, int, int]  # x, y, w, h in original-image pixels

    @property
    def explicit(self) -> bool:
        return self.label in EXPLICIT_LABELS

    def to_dict(self) -> dict[str, object]:
        return {"label": self.label, "score": round(self.score, 4), "box": list(self.box)}


def bundled_model_path() -> Path:
    """Path of NudeNet's ``320n.onnx`` (found without importing nudenet)."""
    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.submodule_search_locations:
        raise NsfwUnavailable("nsfw extra not installed (pip install 'sentinelle[nsfw]')")
    for loc in spec.submodule_search_locations:
        p = Path(loc) / MODEL_FILE
        if p.is_file():
            return p
    raise NsfwUnavailable(f"nudenet is installed but its model {MODEL_FILE} is missing")


class NsfwDetector:
    """onnxruntime session over a NudeNet-compatible detector; ``detect`` is thread-safe."""

    def __init__(self, path: str | Path, *, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError:  # pragma: no cover - a core dependency
            raise NsfwUnavailable("onnxruntime is not installed") from None
        p = Path(path)
        if not p.is_file():
            raise NsfwUnavailable(f"explicit-content model file not found: {p}")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                str(p), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types
            raise NsfwUnavailable(
                f"explicit-content model {p.name} cannot be loaded: {e}"
            ) from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        side = inp.shape[-1] if len(inp.shape) == 4 else None
        self.size = side if isinstance(side, int) and side > 0 else 320
        self.name = p.name

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Detections in an ``(h, w, 3)`` uint8 RGB image, best first."""
        import cv2

        h, w = rgb.shape[:2]
        side = max(h, w)
        padded = np.zeros((side, side, 3), dtype=np.uint8)
        padded[:h, :w] = rgb[:, :, ::-1]  # BGR, as NudeNet feeds its model
        x = cv2.resize(padded, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        blob = (x.astype(np.float32) / 255.0).transpose(2, 0, 1)[np.newaxis]
        out = np.asarray(self.session.run(None, {self.input_name: blob})[0])
        return self._postprocess(out, side, w, h)

    def _postprocess(self, out: np.ndarray, side: int, w: int, h: int) -> list[Detection]:
        import cv2

        rows = np.squeeze(out, axis=0).T  # (candidates, 4 + classes)
        if rows.ndim != 2 or rows.shape[1] != 4 + len(LABELS):
            raise NsfwUnavailable(f"model output shape {out.shape} is not NudeNet's")
        scores = rows[:, 4:]
        cls = scores.argmax(axis=1)
        best = scores[np.arange(len(rows)), cls]
        keep = best >= MIN_SCORE
        if not keep.any():
            return []
        rows, cls, best = rows[keep], cls[keep], best[keep]
        f = side / self.size
        cx, cy, bw, bh = (rows[:, i] * f for i in range(4))
        x0 = np.clip(cx - bw / 2, 0, w)
        y0 = np.clip(cy - bh / 2, 0, h)
        bw = np.minimum(bw, w - x0)
        bh = np.minimum(bh, h - y0)
        boxes = np.stack([x0, y0, bw, bh], axis=1)
        idx = cv2.dnn.NMSBoxes(boxes.tolist(), best.tolist(), 0.25, NMS_IOU)
        dets = [
            Detection(
                LABELS[int(cls[i])],
                float(best[i]),
                tuple(int(v) for v in boxes[i]),  # type: ignore[arg-type]
            )
            for i in np.asarray(idx).reshape(-1)
        ]
        dets.sort(key=lambda d: d.score, reverse=True)
        return dets


@lru_cache(maxsize=4)
def nsfw_detector(model: str, threads: int = 0) -> NsfwDetector:
    """A cached detector: ``model`` is ``"auto"`` (NudeNet's bundled file) or a path.

    Raises :class:`NsfwUnavailable` (not cached: a later install is picked up)."""
    if model == "off":
        raise NsfwUnavailable(
            "explicit-content detector disabled (SENTINELLE_GUARD_NSFW_MODEL=off)"
        )
    path = bundled_model_path() if model == "auto" else Path(model)
    return NsfwDetector(path, threads=threads)
