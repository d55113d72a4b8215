"""Provenance data model: evidence items, per-file results and the context sources read.

Every evidence *source* (C2PA reader, generator metadata, invisible watermarks, camera
traits, a learned detector) is a plain function::

    def collect(data: bytes, ctx: SourceContext) -> list[Evidence]: ...

It receives the file's bytes and a :class:`SourceContext`, and returns zero or more
:class:`Evidence` items. A source never raises for bad media: it returns an item with
``indicates="error"`` instead (the registry in :mod:`sentinelle.provenance.sources` also
catches anything that escapes and turns it into such an item).

:mod:`sentinelle.provenance.verdict` then weighs all items into one
:class:`ProvenanceResult` (verdict + confidence + explanation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

Strength = Literal["strong", "moderate", "weak"]
Indicates = Literal["ai_generated", "ai_edited", "camera", "tampered", "none", "error"]
Verdict = Literal["ai_generated", "ai_edited", "camera_signed", "no_evidence", "conflicting"]

STRENGTHS: tuple[str, ...] = ("strong", "moderate", "weak")
INDICATES: tuple[str, ...] = ("ai_generated", "ai_edited", "camera", "tampered", "none", "error")
VERDICTS: tuple[str, ...] = (
    "ai_generated",
    "ai_edited",
    "camera_signed",
    "no_evidence",
    "conflicting",
)


@dataclass(frozen=True)
class Evidence:
    """One finding of one source.

    Attributes:
        source: which source found it: ``"c2pa"``, ``"metadata"``, ``"watermark"``,
            ``"camera"``, ``"detector"`` (a dotted suffix is allowed, e.g.
            ``"metadata.a1111"``).
        finding: one human sentence, e.g. ``"C2PA action c2pa.created with
            digitalSourceType trainedAlgorithmicMedia (softwareAgent: DALL-E)"``.
        strength: how much the finding weighs: ``"strong"`` (a valid signature, a
            watermark well above threshold), ``"moderate"`` (generator metadata),
            ``"weak"`` (EXIF camera fields, quantisation tables).
        indicates: what it points to: ``"ai_generated"``, ``"ai_edited"``, ``"camera"``,
            ``"tampered"`` (a signed manifest whose hashes/signature do not match),
            ``"none"`` (informational, e.g. "no C2PA manifest"), ``"error"`` (the source
            could not read the file; ``details["code"]`` holds a stable error code).
        forgeable: can someone without a private key write this (plain metadata: yes;
            a valid C2PA signature from a trusted signer: no).
        strippable: does it disappear with a metadata strip or re-encode.
        details: small JSON-able dict (never media bytes, never prompt text beyond what
            the source needs to show; generator prompts are reduced to their length).
    """

    source: str
    finding: str
    strength: Strength
    indicates: Indicates
    forgeable: bool
    strippable: bool
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.strength not in STRENGTHS:
            raise ValueError(f"strength must be one of {STRENGTHS}, not {self.strength!r}")
        if self.indicates not in INDICATES:
            raise ValueError(f"indicates must be one of {INDICATES}, not {self.indicates!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def error(cls, source: str, code: str, message: str, **details: Any) -> Evidence:
        """An ``indicates="error"`` item: the source could not read the file."""
        return cls(
            source=source,
            finding=message,
            strength="weak",
            indicates="error",
            forgeable=False,
            strippable=False,
            details={"code": code, **details},
        )


@dataclass
class ProvenanceResult:
    """The provenance verdict for one file.

    ``verdict`` is one of ``ai_generated``, ``ai_edited``, ``camera_signed``,
    ``no_evidence``, ``conflicting``; ``confidence`` is 0..1 (how sure the verdict is,
    not a probability of being synthetic). ``tampered`` is True when a signed manifest
    failed its integrity checks (the verdict is then never a confident ai_*/camera_signed).
    ``explanation`` lists, in order, the reasons the verdict was chosen. ``error`` is
    ``{"code", "message"}`` when the file itself could not be read (missing, too large...).
    """

    path: str | None
    verdict: Verdict
    confidence: float
    evidence: list[Evidence] = field(default_factory=list)
    error: dict[str, str] | None = None
    tampered: bool = False
    explanation: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "verdict": self.verdict,
            "confidence": round(float(self.confidence), 3),
            "tampered": self.tampered,
            "explanation": list(self.explanation),
            "evidence": [e.to_dict() for e in self.evidence],
            "error": self.error,
        }


@dataclass(frozen=True)
class DetectorConfig:
    """An operator-supplied ONNX detector (used by :mod:`sentinelle.provenance.detector`).

    ``model_path``: the .onnx file; ``input_size``: (height, width) fed to the model;
    ``mean``/``std``: per-channel normalisation on 0..1 RGB; ``layout``: "NCHW" or
    "NHWC"; ``output``: name or index of the output holding the score; ``synthetic_index``:
    which element of that output is "synthetic"; ``activation``: "none", "sigmoid" or
    "softmax" applied to the output before reading it; ``threshold``: score at which the
    detector calls an image synthetic; ``name``: shown in evidence.
    """

    model_path: Path
    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    layout: str = "NCHW"
    output: str | int = 0
    synthetic_index: int = 0
    activation: str = "none"
    threshold: float = 0.5
    name: str = "detector"
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class SourceContext:
    """What a source may need besides the bytes. Built once per file by the analyzer.

    Attributes:
        path: the file's path when it came from disk (None for uploads); for display only,
            sources must read ``data``, never the path.
        media_type: detected MIME type (``image/jpeg``, ``image/png``...) or None.
        trust_anchors_pem: operator-supplied PEM bundle of trusted C2PA roots (None: no
            signer is "trusted", validity is still checked).
        detector: the operator's ONNX detector config, or None (the detector source then
            falls back to ``SENTINELLE_PROVENANCE_DETECTOR``, and is skipped when unset).
        max_bytes: size cap; sources must not hand larger data to native code.
        max_pixels: decompression-bomb cap used by :meth:`image`.
        options: free-form settings for sources (e.g. ``{"watermark": False}``).

    :meth:`image` decodes the image lazily with :func:`sentinelle.media.image.open_image`
    (once, cached, bomb-checked), or takes it from the ``decoder`` given to :meth:`bind`
    (``scan`` passes the decode it already made for hashing:
    :meth:`sentinelle.media.shared.SharedImage.full_image`); it returns None when the
    bytes are not a decodable image (``image_error`` then says why). :meth:`header_image`
    is for sources that read only headers (EXIF, XMP, text, JPEG tables): it decodes no
    pixels where the format puts all of those before the pixel data (JPEG). ``shared``
    holds values several sources derive from the same file (e.g. the parsed metadata
    fields), computed by the first one that needs them; :meth:`bind` clears it.
    """

    path: str | None = None
    media_type: str | None = None
    trust_anchors_pem: str | None = None
    detector: DetectorConfig | None = None
    max_bytes: int = 256 * 1024 * 1024
    max_pixels: int = 100_000_000
    options: dict[str, Any] = field(default_factory=dict)
    _data: bytes | None = field(default=None, repr=False)
    _image: Image.Image | None = field(default=None, repr=False)
    _image_done: bool = field(default=False, repr=False)
    _decoder: Callable[[], Image.Image] | None = field(default=None, repr=False)
    _headers: Image.Image | None = field(default=None, repr=False)
    _headers_done: bool = field(default=False, repr=False)
    image_error: str | None = None
    shared: dict[str, Any] = field(default_factory=dict, repr=False)

    def bind(self, data: bytes, decoder: Callable[[], Image.Image] | None = None) -> SourceContext:
        """Attach the file bytes (done by the analyzer) so :meth:`image` can decode them.

        ``decoder``: returns these bytes' full-resolution image, decoded already or
        now (raising :class:`~sentinelle.errors.MediaError` when it cannot); used by
        :meth:`image` instead of a decode of its own.
        """
        self._data = data
        self._image = None
        self._image_done = False
        self._decoder = decoder
        self._headers = None
        self._headers_done = False
        self.image_error = None
        self.shared = {}
        return self

    def header_image(self) -> Image.Image | None:
        """An image object carrying the file's headers (``info``, EXIF, JPEG tables).

        JPEG: opened, not decoded (every APPn/COM/DQT segment comes before the scan
        data, so nothing is missing); the same object :meth:`image` would give for
        those. Other formats: :meth:`image` (a PNG's text chunks may follow its pixel
        data and are read by the decode). None when the bytes do not open.
        """
        kind, _, fmt = (self.media_type or "").partition("/")
        if kind != "image" or fmt != "jpeg" or self._data is None:
            return self.image()
        if self._image_done and self._image is not None:
            return self._image
        if not self._headers_done:
            self._headers_done = True
            import io
            import warnings

            from PIL import Image as PILImage

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._headers = PILImage.open(io.BytesIO(self._data), formats=["JPEG"])
            except Exception:  # noqa: BLE001 - not a JPEG Pillow can open: as image() says
                return self.image()
        return self._headers

    def image(self) -> Image.Image | None:
        """The decoded image (first frame, loaded), or None when it cannot be decoded.

        The returned image is shared between sources: do not modify it in place
        (``.copy()`` / ``.convert()`` first).
        """
        if self._image_done:
            return self._image
        self._image_done = True
        if self._data is None:
            self.image_error = "no data bound"
            return None
        from ..errors import MediaError
        from ..media.image import open_image
        from ..media.limits import DEFAULT_LIMITS

        kind, _, fmt = (self.media_type or "").partition("/")
        if kind != "image":
            self.image_error = f"not a supported image type ({self.media_type or 'unknown'})"
            return None
        limits = replace(DEFAULT_LIMITS, max_pixels=self.max_pixels)
        try:  # the shared safe decoder: magic-byte format only, bomb check before load()
            if self._decoder is not None:
                self._image = self._decoder()
            else:
                self._image = open_image(self._data, fmt, limits).image
        except MediaError as e:
            self.image_error = f"{e.code}: {e.message}"[:300]
        return self._image
