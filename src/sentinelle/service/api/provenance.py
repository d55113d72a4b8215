"""``POST /v1/provenance``: the provenance verdict of an uploaded file (scope ``scan``).

Upload as multipart (field ``file``) or a raw body, like ``/v1/scan``; the body is
limited to ``SENTINELLE_MAX_UPLOAD_BYTES`` (413 above it) and read into memory only
(never written or logged). The answer is the ``sentinelle provenance --json`` record
without ``path``::

    {"verdict": "ai_edited", "confidence": 0.7, "tampered": false,
     "explanation": [...], "evidence": [{"source", "finding", "strength", "indicates",
     "forgeable", "strippable", "details"}], "error": null}

Corrupt, truncated or unsupported media is *analysed* (200, ``no_evidence`` with an
``indicates="error"`` item): provenance evidence such as a C2PA manifest can survive in a
file whose pixels do not decode. Only an empty upload is refused (422 ``empty_file``).
The operator configures both routes through the environment, read on every request (so
a change needs no restart):

* ``SENTINELLE_C2PA_TRUST_ANCHORS``: a PEM file of trusted C2PA roots (re-read when it
  changes); without it every signer is untrusted and signed claims are only *moderate*.
* ``SENTINELLE_PROVENANCE_DETECTOR`` (+ ``SENTINELLE_PROVENANCE_DETECTOR_META``): the
  operator's ONNX detector and its sidecar (see docs/PROVENANCE_DETECTORS.md); the model is
  loaded once per file version, in a worker thread.

A configuration that cannot be used (unreadable PEM, missing model, a sidecar that does not
fit the model) is the operator's fault, not the caller's: ``/v1/provenance`` answers 503
with its stable code (``bad_trust_anchors``, ``detector_missing``, ``bad_detector_input``...)
and logs why; ``/v1/scan`` still answers, with ``provenance: null``. ``/v1/scan`` fills its
``provenance`` field with :func:`provenance_body`.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from ...errors import SentinelleError
from ...provenance.detector import DetectorError
from ...provenance.evidence import DetectorConfig
from ...provenance.trust import ENV_VAR, load_trust_anchors
from ..auth import ApiKeyInfo, api_error
from ..deps import StateDep, body_limit, require_scope
from ..uploads import UPLOAD_OPENAPI, read_upload

log = logging.getLogger("sentinelle.service.provenance")

router = APIRouter(prefix="/v1", tags=["provenance"])
body_limit("/v1/provenance", "upload")

Scan = Annotated[ApiKeyInfo, Depends(require_scope("scan"))]

_trust_lock = threading.Lock()
_trust_cache: dict[str, Any] = {"key": None, "pem": None}
_detector_cache: dict[str, Any] = {"key": None, "config": None}


def trust_pem() -> str | None:
    """The operator's trust anchors (cached; reloaded when the path or mtime changes)."""
    path = (os.environ.get(ENV_VAR) or "").strip()
    if not path:
        return None
    try:
        key = (path, os.stat(path).st_mtime_ns)
    except OSError:
        key = (path, None)
    with _trust_lock:
        if _trust_cache["key"] != key:
            _trust_cache["pem"] = load_trust_anchors(path)
            _trust_cache["key"] = key
        return _trust_cache["pem"]


def detector_config() -> DetectorConfig | None:
    """The operator's detector from ``SENTINELLE_PROVENANCE_DETECTOR`` (None when unset).

    The model is loaded here (once per model file version, see
    :func:`~sentinelle.provenance.detector.get_detector`) so that a broken configuration
    raises :class:`~sentinelle.provenance.detector.DetectorError` instead of turning into
    an error item in every answer. Blocking: call it from a worker thread.
    """
    from ...provenance.detector import ENV_META, ENV_MODEL, config_from_env, get_detector

    model = (os.environ.get(ENV_MODEL) or "").strip()
    if not model:
        return None
    meta = (os.environ.get(ENV_META) or "").strip()
    # Re-read only when a path or a file's mtime changed (model, explicit or default sidecar).
    watched = (
        [model, meta]
        if meta
        else [model, *(str(Path(model).with_suffix(s)) for s in (".json", ".toml"))]
    )
    key = (model, meta, tuple(_mtime(p) for p in watched))
    with _trust_lock:
        if _detector_cache["key"] == key:
            return _detector_cache["config"]
    config = config_from_env()
    if config is not None:
        get_detector(config)
    with _trust_lock:
        _detector_cache.update(key=key, config=config)
    return config


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def provenance_config(
    sources: list[str] | None = None,
) -> tuple[str | None, DetectorConfig | None]:
    """Trust anchors and detector from the environment (the detector only when it runs)."""
    wants_detector = sources is None or "detector" in sources
    return trust_pem(), detector_config() if wants_detector else None


def provenance_body(data: bytes, max_bytes: int | None = None) -> dict[str, Any]:
    """The provenance record of ``data`` (no ``path``); never raises on bad media."""
    from ...provenance import analyze_bytes

    kwargs = {"max_bytes": max_bytes} if max_bytes else {}
    pem, detector = provenance_config()
    record = analyze_bytes(data, trust_anchors_pem=pem, detector=detector, **kwargs).to_dict()
    record.pop("path", None)
    return record


@router.post(
    "/provenance",
    openapi_extra=UPLOAD_OPENAPI,
    summary="Provenance verdict of an uploaded file",
)
async def provenance_upload(
    request: Request,
    state: StateDep,
    who: Scan,
    source: Annotated[
        list[str] | None,
        Query(description="run only these sources: c2pa, metadata, watermark, camera, detector"),
    ] = None,
) -> dict[str, Any]:
    """Weigh every piece of provenance evidence in the upload: verdict (`ai_generated`,
    `ai_edited`, `camera_signed`, `no_evidence`, `conflicting`), confidence, evidence."""
    from ...provenance import analyze_bytes
    from ...provenance.sources import source_names

    if source:
        bad = [s for s in source if s not in source_names()]
        if bad:
            raise api_error(
                422, "unknown_source", f"unknown provenance source {', '.join(bad)[:200]}"
            )
    data = await read_upload(request, state.settings.max_upload_bytes)
    if not data:
        raise api_error(422, "empty_file", "the upload is empty")
    try:
        pem, detector = await run_in_threadpool(provenance_config, source)
    except SentinelleError as e:  # operator misconfiguration, not the caller's fault
        what = "detector is" if isinstance(e, DetectorError) else "trust anchors are"
        log.error("provenance configuration unusable: %s", e.message)
        raise api_error(503, e.code, f"the provenance {what} misconfigured") from None
    result = await run_in_threadpool(
        analyze_bytes,
        data,
        trust_anchors_pem=pem,
        detector=detector,
        sources=source,
        max_bytes=state.settings.max_upload_bytes,
    )
    record = result.to_dict()
    record.pop("path", None)
    return record
