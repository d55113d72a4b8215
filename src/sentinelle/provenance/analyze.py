"""Entry points: analyse one file or one buffer and return a :class:`ProvenanceResult`.

::

    from sentinelle.provenance import analyze_file
    analyze_file("a.jpg").to_dict()
    # {"path": "a.jpg", "verdict": "ai_edited", "confidence": 0.7, "evidence": [...], ...}

A file that cannot be read at all (missing, a directory, over the size cap, empty) gets
verdict ``no_evidence``, confidence 0 and ``error = {"code", "message"}``; everything else
(corrupt or unsupported media, malformed manifests) is analysed and any source that cannot
read it contributes an ``indicates="error"`` evidence item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..media.detect import HEAD_BYTES, detect
from .evidence import DetectorConfig, ProvenanceResult, SourceContext
from .sources import collect_all
from .verdict import decide

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""Files larger than this are not analysed (native parsers only see capped input)."""


def media_type_of(data: bytes) -> str | None:
    """``image/jpeg``-style type from magic bytes, or None."""
    found = detect(data[:HEAD_BYTES])
    return f"{found[0]}/{found[1]}" if found else None


def _failed(path: str | None, code: str, message: str) -> ProvenanceResult:
    return ProvenanceResult(
        path=path,
        verdict="no_evidence",
        confidence=0.0,
        evidence=[],
        error={"code": code, "message": message},
        explanation=[f"file not analysed: {message}"],
    )


def analyze_bytes(
    data: bytes,
    *,
    path: str | None = None,
    trust_anchors_pem: str | None = None,
    detector: DetectorConfig | None = None,
    sources: Iterable[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    options: dict[str, Any] | None = None,
    decoder: Callable[[], Image.Image] | None = None,
) -> ProvenanceResult:
    """Run every source on ``data`` and weigh the evidence.

    ``sources`` restricts which sources run (names from
    :func:`sentinelle.provenance.sources.source_names`); ``trust_anchors_pem`` is the
    operator's PEM bundle (see :mod:`.trust`); ``detector`` configures the ONNX source.
    ``decoder`` returns ``data``'s full-resolution image when a source needs pixels, so
    a caller that decoded the file already shares that decode
    (:meth:`sentinelle.media.shared.SharedImage.full_image`; ``scan`` does).
    """
    if not data:
        return _failed(path, "empty_file", "file is empty")
    if len(data) > max_bytes:
        return _failed(
            path, "file_too_large", f"file is {len(data)} bytes, over the limit of {max_bytes}"
        )
    ctx = SourceContext(
        path=path,
        media_type=media_type_of(data),
        trust_anchors_pem=trust_anchors_pem,
        detector=detector,
        max_bytes=max_bytes,
        options=dict(options or {}),
    ).bind(data, decoder)
    evidence = collect_all(data, ctx, sources)
    return decide(path, evidence)


def analyze_file(
    path: str | Path,
    *,
    trust_anchors_pem: str | None = None,
    detector: DetectorConfig | None = None,
    sources: Iterable[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    options: dict[str, Any] | None = None,
) -> ProvenanceResult:
    """Read ``path`` (size-capped) and analyse it; see :func:`analyze_bytes`."""
    p = Path(path)
    shown = str(path)
    try:
        size = p.stat().st_size
        if not p.is_file():
            return _failed(shown, "io_error", "not a regular file")
        if size > max_bytes:
            return _failed(
                shown, "file_too_large", f"file is {size} bytes, over the limit of {max_bytes}"
            )
        data = p.read_bytes()
    except OSError as e:
        return _failed(shown, "io_error", f"cannot read file: {e.strerror or e}")
    return analyze_bytes(
        data,
        path=shown,
        trust_anchors_pem=trust_anchors_pem,
        detector=detector,
        sources=sources,
        max_bytes=max_bytes,
        options=options,
    )
