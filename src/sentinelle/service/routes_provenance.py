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
Trust anchors come from ``SENTINELLE_C2PA_TRUST_ANCHORS`` (a PEM file path, re-read when
it changes). ``/v1/scan`` fills its ``provenance`` field with :func:`provenance_body`.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from ..errors import SentinelleError
from ..provenance.trust import ENV_VAR, load_trust_anchors
from .auth import ApiKeyInfo, api_error
from .deps import body_limit, require_scope, state_dep
from .state import ServiceState
from .uploads import UPLOAD_OPENAPI, read_upload

log = logging.getLogger("sentinelle.service.provenance")

router = APIRouter(prefix="/v1", tags=["provenance"])
body_limit("/v1/provenance", "upload")

Scan = Annotated[ApiKeyInfo, Depends(require_scope("scan"))]
StateDep = Annotated[ServiceState, Depends(state_dep)]

_trust_lock = threading.Lock()
_trust_cache: dict[str, Any] = {"key": None, "pem": None}


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


def provenance_body(data: bytes, max_bytes: int | None = None) -> dict[str, Any]:
    """The provenance record of ``data`` (no ``path``); never raises on bad media."""
    from ..provenance import analyze_bytes

    kwargs = {"max_bytes": max_bytes} if max_bytes else {}
    record = analyze_bytes(data, trust_anchors_pem=trust_pem(), **kwargs).to_dict()
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
    from ..provenance import analyze_bytes
    from ..provenance.sources import source_names

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
        pem = trust_pem()
    except SentinelleError as e:  # operator misconfiguration, not the caller's fault
        log.error("provenance trust anchors unusable: %s", e.message)
        raise api_error(503, e.code, "provenance trust anchors are misconfigured") from None
    result = await run_in_threadpool(
        analyze_bytes,
        data,
        trust_anchors_pem=pem,
        sources=source,
        max_bytes=state.settings.max_upload_bytes,
    )
    record = result.to_dict()
    record.pop("path", None)
    return record
