"""Output image guard: check a generated image before it is shown.

::

    from sentinelle.guard import PromptGuard
    from sentinelle.guard.image import ImageGuard

    prompt = PromptGuard().check(text)
    result = ImageGuard().check(png_bytes, prompt_result=prompt)
    result.decision            # "allow" | "review" | "block"
    result.checks_not_run      # [{"check": "age", "reason": "..."}]

Checks, each listed in ``checks_run`` or, with the reason, in ``checks_not_run``:

``nsfw``
    explicit-content detection (:mod:`sentinelle.guard.nsfw`, NudeNet's ONNX model);
``faces``
    OpenCV Haar face detection (:mod:`sentinelle.guard.faces`);
``age``
    apparent age of each detected face, when the operator configured a model.

``SENTINELLE_GUARD_FACES`` (:attr:`GuardConfig.faces`) says when ``faces`` and ``age``
run: ``when_needed`` (default) only when explicit content was found or the
explicit-content check could not run -- the only cases where they matter, since the
decision below never acts on a face in a clean image -- so a clean image lists them in
``checks_not_run`` with the reason ``"not needed: no explicit content"``; ``always``
runs them on every image (the faces are then reported even on clean images); ``off``
never runs them.

**Decision** (``policy_id`` :data:`POLICY_ID`), most severe rule wins:

* explicit content together with any minor signal -> ``block``. Minor signals: the
  prompt result (a ``minor_*`` category at or above the prompt policy's minor
  threshold, 0.5) and
  faces whose apparent age is under ``SENTINELLE_GUARD_MINOR_AGE``;
* a blocked prompt -> ``block`` (the image should never have been generated);
* explicit content without a minor signal -> the operator's
  ``SENTINELLE_GUARD_IMAGE_ADULT`` (``review`` by default), but at least ``review`` when
  faces were found (or face detection could not run) and their apparent age could not
  be checked -- a minor could not be ruled out;
* the explicit-content check could not run -> at least ``review`` (never a silent allow);
* otherwise the prompt's own decision, else ``allow``.

The image is decoded in memory under the project's media limits (size, pixels,
decompression bombs -> :class:`~sentinelle.errors.MediaError`) and is never stored
or logged; only its SHA-256 goes into the result (for the attempt log).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ..errors import MediaError
from ..media.detect import detect
from ..media.image import open_image
from ..media.limits import DEFAULT_LIMITS, Limits
from .config import DECISIONS, GuardConfig, GuardInputError
from .faces import (
    MAX_FACES,
    AgeEstimator,
    Face,
    GuardModelError,
    age_estimator,
    crop,
    face_detector,
)
from .nsfw import Detection, NsfwDetector, NsfwUnavailable, nsfw_detector
from .policy import GuardPolicy

log = logging.getLogger("sentinelle.guard.image")

POLICY_ID = "image-guard/1"
MINOR_CATEGORIES = ("minor_sexual", "minor_nudity", "minor_present")
#: A prompt's minor category at or above this is a minor signal (the prompt policy's
#: own threshold: ambiguous words such as "girl" score 0.6 and count).
MINOR_SIGNAL_SCORE = GuardPolicy().minor_threshold
#: ``checks_not_run`` reason for faces/age skipped on a clean image (``when_needed``).
NOT_NEEDED = "not needed: no explicit content"
#: Images are decoded so their shorter side is about this (JPEG: DCT-domain scaling).
DECODE_MIN_SIDE = 640
#: ... and their longer side is then capped at this before the models see them.
ANALYSIS_MAX_SIDE = 1280


@dataclass
class ImageResult:
    """What :meth:`ImageGuard.check` found. ``to_dict()`` is the JSON the CLI and API print."""

    decision: str
    reasons: list[str]
    explicit: float  # best score among explicit labels, 0.0 when none or not run
    detections: list[Detection]
    faces: list[Face]
    minor_signals: list[dict[str, Any]]
    checks_run: list[str]
    checks_not_run: list[dict[str, str]]
    media: dict[str, Any]
    sha256: str
    prompt: dict[str, Any] | None = None
    policy_id: str = POLICY_ID

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reasons": list(self.reasons),
            "explicit": round(self.explicit, 4),
            "detections": [d.to_dict() for d in self.detections],
            "faces": [f.to_dict() for f in self.faces],
            "minor_signals": list(self.minor_signals),
            "checks_run": list(self.checks_run),
            "checks_not_run": list(self.checks_not_run),
            "media": dict(self.media),
            "sha256": self.sha256,
            "prompt": self.prompt,
            "policy_id": self.policy_id,
        }


def prompt_summary(prompt_result: Any) -> dict[str, Any] | None:
    """``decision``, ``categories``, ``policy_id`` and ``text`` (if any) of a prompt
    result given as a :class:`~sentinelle.guard.PromptResult` or its ``to_dict()``.

    Raises :class:`~sentinelle.errors.SentinelleError` ``bad_prompt_result`` when
    a dict does not have that shape (it may come from an HTTP client)."""
    if prompt_result is None:
        return None
    d = prompt_result.to_dict() if hasattr(prompt_result, "to_dict") else prompt_result
    if not isinstance(d, Mapping):
        raise GuardInputError("prompt_result must be an object", "bad_prompt_result")
    decision = d.get("decision")
    cats = d.get("categories")
    cats = {} if cats is None else cats
    if decision not in DECISIONS or not isinstance(cats, Mapping):
        raise GuardInputError(
            "prompt_result needs 'decision' (allow, review or block) and 'categories' "
            "(an object of scores)",
            "bad_prompt_result",
        )
    scores: dict[str, float] = {}
    for k, v in cats.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int | float):
            raise GuardInputError(
                "prompt_result categories must map names to numbers", "bad_prompt_result"
            )
        scores[k[:64]] = float(v)
    text = d.get("text")
    policy = d.get("policy_id")
    return {
        "decision": decision,
        "categories": scores,
        "policy_id": policy if isinstance(policy, str) else None,
        "text": text if isinstance(text, str) else None,
    }


def _max_decision(*ds: str) -> str:
    return max(ds, key=DECISIONS.index)


def decode_rgb(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode image bytes under ``limits`` into an RGB uint8 array (longer side capped
    at :data:`ANALYSIS_MAX_SIDE`) and the media facts. Raises :class:`MediaError`."""
    if not data:
        raise MediaError("empty file", "empty_file")
    if len(data) > limits.max_file_bytes:
        raise MediaError(
            f"file is {len(data)} bytes, over the limit of {limits.max_file_bytes}",
            "file_too_large",
        )
    kind = detect(data[:4096])
    if kind is None:
        raise MediaError("not a supported image format", "unsupported_type")
    if kind[0] != "image":
        raise MediaError(f"{kind[1]} is a video; the image guard checks images", "unsupported_type")
    decoded = open_image(data, kind[1], limits, min_side=DECODE_MIN_SIDE)
    im = decoded.image
    if im.mode != "RGB":
        im = im.convert("RGBA").convert("RGB") if im.mode in ("P", "PA") else im.convert("RGB")
    if max(im.size) > ANALYSIS_MAX_SIDE:
        im = im.copy()
        im.thumbnail((ANALYSIS_MAX_SIDE, ANALYSIS_MAX_SIDE), Image.Resampling.BILINEAR)
    media = {"format": decoded.format, "width": decoded.width, "height": decoded.height}
    return np.ascontiguousarray(np.asarray(im)), media


@dataclass
class ImageGuard:
    """Checks generated images. Models load lazily once per process and are shared.

    ``config`` defaults to :meth:`GuardConfig.from_env`; ``age`` plugs in any
    :class:`~sentinelle.guard.faces.AgeEstimator` (else the configured ONNX model)."""

    config: GuardConfig = field(default_factory=GuardConfig.from_env)
    limits: Limits = DEFAULT_LIMITS
    age: AgeEstimator | None = None

    def _nsfw(self) -> NsfwDetector:
        return nsfw_detector(self.config.nsfw_model, self.config.onnx_threads)

    def _age(self) -> AgeEstimator:
        if self.age is not None:
            return self.age
        if not self.config.age_model:
            raise GuardModelError(
                "no apparent-age model configured (SENTINELLE_GUARD_AGE_MODEL)",
            )
        return age_estimator(self.config.age_model, self.config.onnx_threads)

    def _faces_skipped(self, explicit: float | None) -> str | None:
        """Why the face and age checks are skipped for this image, or None to run them.

        ``explicit``: the best explicit score, None when that check did not run. In
        ``when_needed`` mode faces only matter when the image is explicit (a minor
        signal turns it into a block; unknown ages into a review) or when that could
        not be checked, so a clean image skips them (timings: bench/RESULTS.md)."""
        mode = self.config.faces
        if mode == "off":
            return "disabled (SENTINELLE_GUARD_FACES=off)"
        clean = explicit is not None and explicit < self.config.nsfw_threshold
        if mode == "when_needed" and clean:
            return NOT_NEEDED
        return None

    def check(self, data: bytes, *, prompt_result: Any = None) -> ImageResult:
        """Check one image (its bytes). ``prompt_result``: the prompt guard's result
        for the prompt that produced it, as a ``PromptResult`` or its dict."""
        prompt = prompt_summary(prompt_result)
        rgb, media = decode_rgb(data, self.limits)
        sha = hashlib.sha256(data).hexdigest()
        run: list[str] = []
        not_run: list[dict[str, str]] = []

        detections: list[Detection] = []
        explicit = 0.0
        try:
            detections = self._nsfw().detect(rgb)
            run.append("nsfw")
            explicit = max((d.score for d in detections if d.explicit), default=0.0)
        except NsfwUnavailable as e:
            not_run.append({"check": "nsfw", "reason": e.message})

        faces: list[Face] = []
        skip = self._faces_skipped(explicit if "nsfw" in run else None)
        if skip is None:
            try:
                faces = face_detector().detect(rgb)
                run.append("faces")
            except GuardModelError as e:
                not_run.append({"check": "faces", "reason": e.message})
        else:
            not_run.append({"check": "faces", "reason": skip})

        minors: list[dict[str, Any]] = []
        age_ran = False
        if skip is not None:
            not_run.append({"check": "age", "reason": skip})
        elif "faces" not in run:
            not_run.append({"check": "age", "reason": "needs the face detector"})
        else:
            try:
                estimator = self._age()
                shown = faces[:MAX_FACES]
                ages = estimator.estimate([crop(rgb, f) for f in shown]) if shown else []
                faces = [
                    Face(f.x, f.y, f.w, f.h, float(a)) for f, a in zip(shown, ages, strict=True)
                ] + faces[MAX_FACES:]
                run.append("age")
                age_ran = True
            except GuardModelError as e:
                not_run.append({"check": "age", "reason": e.message})
            for f in faces:
                if f.age is not None and f.age < self.config.minor_age:
                    minors.append({"source": "age", "age": round(f.age, 1)})

        if prompt is not None:
            hot = {
                k: v
                for k, v in prompt["categories"].items()
                if k in MINOR_CATEGORIES and v >= MINOR_SIGNAL_SCORE
            }
            if hot:
                minors.append({"source": "prompt", "categories": hot})

        decision, reasons = decide(
            self.config,
            explicit=explicit if "nsfw" in run else None,
            minors=minors,
            faces=len(faces) if "faces" in run else None,
            age_ran=age_ran,
            prompt=prompt,
        )
        return ImageResult(
            decision=decision,
            reasons=reasons,
            explicit=explicit,
            detections=detections,
            faces=faces,
            minor_signals=minors,
            checks_run=run,
            checks_not_run=not_run,
            media=media,
            sha256=sha,
            prompt=None if prompt is None else {k: v for k, v in prompt.items() if k != "text"},
        )


def decide(
    config: GuardConfig,
    *,
    explicit: float | None,
    minors: list[dict[str, Any]],
    faces: int | None,
    age_ran: bool,
    prompt: dict[str, Any] | None,
) -> tuple[str, list[str]]:
    """The image decision and its reasons (the policy of the module docstring).

    ``explicit``: best explicit-label score, None when the detector did not run;
    ``minors``: minor signals found; ``faces``: faces detected (None: the face
    detector did not run); ``age_ran``: whether
    apparent ages were estimated; ``prompt``: :func:`prompt_summary` or None."""
    decision, reasons = "allow", []
    is_explicit = explicit is not None and explicit >= config.nsfw_threshold
    if is_explicit and minors:
        decision = "block"
        reasons.append("explicit content with a minor signal")
    if prompt is not None and prompt["decision"] == "block":
        decision = "block"
        reasons.append("the prompt was blocked")
    if is_explicit and not minors:
        adult = config.image_adult
        reasons.append(f"explicit adult content (operator policy: {adult})")
        decision = _max_decision(decision, adult)
        if not age_ran and (faces is None or faces > 0):
            decision = _max_decision(decision, "review")
            reasons.append("a minor could not be ruled out (apparent age not checked)")
    if explicit is None:
        decision = _max_decision(decision, "review")
        reasons.append("explicit-content check not run")
    if prompt is not None and prompt["decision"] == "review":
        decision = _max_decision(decision, "review")
        reasons.append("the prompt needs review")
    return decision, reasons
