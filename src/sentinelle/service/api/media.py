"""Media routes: hash, match, scan, match a hash list (HMA's hashing and matching roles).

=========================  ========  ===============================================
route                      scope     does
=========================  ========  ===============================================
``POST /v1/hash``          scan      hash an upload (the ``sentinelle hash`` record)
``POST /v1/match``         scan      hash an upload and match it against the banks
``POST /v1/scan``          scan      hash + match + actions (quarantine, webhooks)
``POST /v1/scan/url``      scan      the same for media fetched by URL (off by default)
``POST /v1/match/hashes``  scan      match hashes given by the caller
=========================  ========  ===============================================

Uploads are read into memory (:mod:`sentinelle.service.uploads`) and hashed from
memory (:func:`sentinelle.signals.hasher.hash_bytes`); they are never written in the clear
or logged. The one upload ever kept is a ``/v1/scan`` upload with an ``account_id``
that matched: it is stored encrypted for the review case (master key configured).
Media that cannot be decoded gets 422 (413 when too large) with the
hasher's error code -- except when its cryptographic hash matches a bank entry:
then the answer is 200 with those matches and the decode ``error`` alongside,
because a known file must be reported even when it cannot be decoded.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ...errors import InvalidHashError
from ...index.matcher import Match
from ...signals.hashcodec import normalize_hash
from ...signals.hasher import DEFAULT_SIGNALS, hash_bytes
from ...signals.signal_types import get_signal_type, signal_types
from ...signals.types import CRYPTO_SIGNALS, SIGNAL_TYPES, HashResult, HashSignal
from ..auth import ApiKeyInfo, api_error
from ..deps import StateDep, body_limit, require_scope
from ..state import ServiceState
from ..uploads import UPLOAD_OPENAPI, read_upload

log = logging.getLogger("sentinelle.service.media")

router = APIRouter(prefix="/v1", tags=["media"])

for _p in ("/v1/hash", "/v1/match", "/v1/scan"):
    body_limit(_p, "upload")

MAX_HASHES = 10_000


def match_hash_types() -> tuple[str, ...]:
    """Types ``/v1/match/hashes`` takes: every type matched hash by hash (not vPDQ frames,
    which only match as a whole video)."""
    return tuple(st.name for st in signal_types() if st.index != "vpdq")


Scan = Annotated[ApiKeyInfo, Depends(require_scope("scan"))]


# ------------------------------------------------------------------ helpers
def _media(r: HashResult) -> dict[str, Any]:
    return {
        "size": r.size,
        "media_type": r.media_type,
        "format": r.format,
        "width": r.width,
        "height": r.height,
    }


def _error_response(r: HashResult) -> Exception:
    assert r.error is not None
    status = 413 if r.error.code == "file_too_large" else 422
    return api_error(status, r.error.code, r.error.message)


async def _hash_upload(
    request: Request,
    state: ServiceState,
    *,
    signals: tuple[str, ...] = DEFAULT_SIGNALS,
    exact: bool = True,
    query_variants: tuple[str, ...] = (),
    data: bytes | None = None,
) -> HashResult:
    if data is None:
        data = await read_upload(request, state.settings.max_upload_bytes)
    return await run_in_threadpool(
        hash_bytes,
        data,
        signals=signals,
        exact=exact,
        query_variants=query_variants,
        limits=state.settings.media_limits,
    )


async def _hash_and_match(
    request: Request, state: ServiceState, variants: tuple[str, ...], data: bytes | None = None
) -> tuple[HashResult, list[Match]]:
    """Hash on the fast path and match with one index search; a near miss
    (``Matcher.match_fast`` returns None) is re-hashed with the reference path, so
    matching never depends on the fast path's few bits of drift."""
    if data is None:
        data = await read_upload(request, state.settings.max_upload_bytes)
    r = await _hash_upload(request, state, exact=False, query_variants=variants, data=data)
    matches = await run_in_threadpool(_match, state, r, True)
    if matches is None:
        r = await _hash_upload(request, state, exact=True, query_variants=variants, data=data)
        matches = await run_in_threadpool(_match, state, r, False)
    assert matches is not None
    state.metrics.count_matches(matches)
    return r, matches


def _match(state: ServiceState, r: HashResult, fast: bool) -> list[Match] | None:
    """Matches of ``r``; None when a fast-path result must be re-hashed exactly."""
    if r.error is None:
        return state.matcher.match_fast(r) if fast else state.matcher.match(r)
    # undecodable: the crypto hashes of the bytes may still be known
    return [
        m
        for s in r.signals
        if isinstance(s, HashSignal) and s.type in CRYPTO_SIGNALS
        for m in state.matcher.match_exact(s.type, s.hash)
    ]


def _provenance(data: bytes) -> dict[str, Any] | None:
    """The provenance record (``/v1/provenance`` body) of a scanned upload, or None."""
    from .provenance import provenance_body

    try:
        return provenance_body(data)
    except Exception:  # noqa: BLE001 - provenance must never break a scan
        log.exception("provenance analysis failed")
        return None


def _account_id(request: Request) -> str | None:
    """The platform account an upload came from: the ``account_id`` form field
    (multipart uploads) or query parameter. 422 ``bad_account_id`` when malformed."""
    fields = getattr(request.state, "form_fields", None) or {}
    raw = fields.get("account_id") or request.query_params.get("account_id")
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    if len(raw) > 256 or not raw.isprintable():
        raise api_error(422, "bad_account_id", "account_id: at most 256 printable characters")
    return raw


def _file_for_review(
    account_id: str,
    state: ServiceState,
    matches: list[Match],
    data: bytes,
    r: HashResult,
    provenance: dict[str, Any] | None,
) -> dict[str, Any]:
    """File the matches in the account's review case, with the upload encrypted
    (:func:`sentinelle.review.filing.file_scan`). Never fails the scan: problems
    are reported in ``review.error`` / ``review.media_error``."""
    from ...review.filing import file_scan, mime_type

    return file_scan(
        state.engine,
        account_id=account_id,
        matches=matches,
        data=data,
        media_type=mime_type(r.media_type, r.format),
        provenance=provenance,
    ).to_dict()


GUARD_DESCRIPTION = (
    "also run the generation guard's image check (explicit content, faces, apparent age) "
    "and return its result in `guard`; off by default (`guard` is then null). Also "
    'accepted as a `guard` multipart form field. Videos get {"skipped": "video"}.'
)


def _guard_wanted(request: Request, query_flag: bool) -> bool:
    """``guard=true`` as a query parameter or form field (422 ``bad_guard_flag``)."""
    from ..routes_guard import scan_guard_wanted

    return scan_guard_wanted(request, query_flag)


def _guard(
    request: Request, state: ServiceState, data: bytes, media_type: str | None
) -> dict[str, Any]:
    """The image guard's record of a scanned upload (:func:`routes_guard.scan_guard`)."""
    from ..routes_guard import scan_guard

    return scan_guard(request, state, data, media_type)


def _variants(dihedral: bool) -> tuple[str, ...]:
    return ("trimmed", "dihedral") if dihedral else ("trimmed",)


def _match_body(r: HashResult, matches: list[Match]) -> dict[str, Any]:
    return {
        "media": _media(r),
        "signals": [s.to_dict() for s in r.signals],
        "matches": [m.to_dict() for m in matches],
        "error": r.error.to_dict() if r.error else None,
    }


def _actions(state: ServiceState, matches: list[Match], context: dict[str, Any]) -> dict[str, Any]:
    """Run the per-bank actions (:func:`sentinelle.actions.dispatch.on_matches`) on matches.

    If the dispatcher fails, the scan still answers; ``quarantine`` is then true
    whenever there was a match (fail closed), with ``actions.error`` set.
    """
    if not matches:
        return {"quarantine": False, "actions": None}
    from ...actions.dispatch import on_matches

    try:
        out = on_matches(state, matches, context=context)
    except Exception as e:  # noqa: BLE001 - the match result must still reach the caller
        log.error("actions failed", extra={"fields": {"error": type(e).__name__}})
        return {"quarantine": True, "actions": {"error": "actions_failed"}}
    return {
        "quarantine": bool(out.quarantine),
        "actions": {
            "webhooks_queued": out.webhooks_queued,
            "paused_entries": list(out.paused_entries),
            "alerts": list(out.alerts),
        },
    }


# ------------------------------------------------------------------ routes
@router.post("/hash", openapi_extra=UPLOAD_OPENAPI, summary="Hash an uploaded file")
async def hash_upload(
    request: Request,
    state: StateDep,
    who: Scan,
    signal: Annotated[
        list[str] | None,
        Query(description=f"signals to compute (repeat); any of {', '.join(SIGNAL_TYPES)}"),
    ] = None,
) -> dict[str, Any]:
    """Reference-exact hashes of the upload, as ``sentinelle hash`` prints them
    (``path`` is always null: file names are not kept)."""
    chosen = tuple(dict.fromkeys(signal)) if signal else DEFAULT_SIGNALS
    bad = [s for s in chosen if s not in SIGNAL_TYPES]
    if bad:
        raise api_error(
            422, "bad_signal_type", f"unknown signal {bad[0]!r}; choose from {list(SIGNAL_TYPES)}"
        )
    r = await _hash_upload(request, state, signals=chosen, exact=True)
    if r.error is not None:
        raise _error_response(r)
    out = r.to_dict()
    out["path"] = None
    out["width"], out["height"] = r.width, r.height
    return out


@router.post("/match", openapi_extra=UPLOAD_OPENAPI, summary="Match an uploaded file")
async def match_upload(
    request: Request,
    state: StateDep,
    who: Scan,
    dihedral: Annotated[bool, Query(description="also match rotated/mirrored copies")] = False,
) -> dict[str, Any]:
    r, matches = await _hash_and_match(request, state, _variants(dihedral))
    if r.error is not None and not matches:
        raise _error_response(r)
    return _match_body(r, matches)


async def _scan(
    request: Request,
    state: ServiceState,
    who: ApiKeyInfo,
    dihedral: bool,
    data: bytes | None,
    guard: bool = False,
) -> dict[str, Any]:
    if data is None:
        data = await read_upload(request, state.settings.max_upload_bytes)
    account_id = _account_id(request)
    guard = _guard_wanted(request, guard)
    r, matches = await _hash_and_match(request, state, _variants(dihedral), data=data)
    if r.error is not None and not matches:
        raise _error_response(r)
    context = {
        "route": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
        "key_id": who.id,
        "key_name": who.name,
        "instance": state.instance_id,
        "media": _media(r),
        "signals": [s.to_dict() for s in r.signals if isinstance(s, HashSignal)],
    }
    acts = await run_in_threadpool(_actions, state, matches, context)
    body = _match_body(r, matches)
    body.update(acts)
    body["provenance"] = await run_in_threadpool(_provenance, data)
    body["guard"] = (
        await run_in_threadpool(_guard, request, state, data, r.media_type) if guard else None
    )
    if account_id is not None:  # matches become items of the account's review case
        body["review"] = (
            await run_in_threadpool(
                _file_for_review, account_id, state, matches, data, r, body["provenance"]
            )
            if matches
            else None
        )
    return body


@router.post("/scan", openapi_extra=UPLOAD_OPENAPI, summary="Scan an uploaded file")
async def scan_upload(
    request: Request,
    state: StateDep,
    who: Scan,
    dihedral: Annotated[bool, Query(description="also match rotated/mirrored copies")] = False,
    guard: Annotated[bool, Query(description=GUARD_DESCRIPTION)] = False,
) -> dict[str, Any]:
    """Hash + match + the matched banks' actions. ``quarantine`` is true when a
    matched bank is configured to quarantine; ``provenance`` is the
    ``/v1/provenance`` record (null if it could not run); ``guard`` is null unless
    asked for with ``guard=true`` (query parameter or multipart form field): then it
    is the ``/v1/guard/image`` result for the upload without a prompt,
    ``{"skipped": "video", "reason"}`` for a video, or ``{"error": {"code",
    "message"}}`` when the image guard cannot judge the bytes. With an ``account_id``
    (multipart form field or query parameter), each match becomes an item of that
    account's review case and ``review`` gives ``{"case_id", "item_ids",
    "provenance_item_id", "media_preserved", "media_error", "error"}`` (null without
    matches). The upload is kept, encrypted,
    for the reviewers only when it matched and a master key is configured
    (``media_preserved``; ``media_error`` is ``no_master_key`` without one)."""
    return await _scan(request, state, who, dihedral, None, guard)


class ScanUrlRequest(BaseModel):
    url: str = Field(max_length=2048, description="http(s) URL on an allowed host")
    dihedral: bool = False


@router.post("/scan/url", summary="Scan media fetched by URL (off by default)")
async def scan_url(
    request: Request, body: ScanUrlRequest, state: StateDep, who: Scan
) -> dict[str, Any]:
    """Fetch the media (only when ``SENTINELLE_FETCH_ENABLED`` and the host is on
    ``SENTINELLE_FETCH_ALLOWED_HOSTS``; private and loopback addresses are always
    refused) and scan it like an upload."""
    from ..fetch import FetchError, fetch_media

    s = state.settings
    if not s.fetch_enabled:
        raise api_error(403, "fetch_disabled", "fetching media by URL is disabled")
    try:
        data = await run_in_threadpool(
            fetch_media,
            body.url,
            allowed_hosts=s.fetch_allowed_hosts,
            max_bytes=s.fetch_limit,
            timeout_s=s.fetch_timeout_s,
        )
    except FetchError as e:
        raise api_error(e.status, e.code, e.message) from None
    return await _scan(request, state, who, body.dihedral, data)


class HashQuery(BaseModel):
    type: str = Field(max_length=16, description=f"one of {', '.join(match_hash_types())}")
    hash: str = Field(max_length=128, description="lowercase or uppercase hex")


class HashListRequest(BaseModel):
    hashes: list[HashQuery] = Field(max_length=MAX_HASHES)


def _match_hash_list(state: ServiceState, items: list[tuple[str, str]]) -> list[list[Match]]:
    out: list[list[Match]] = [[] for _ in items]
    pdq_pos = [i for i, (t, _) in enumerate(items) if get_signal_type(t).index == "pdq"]
    if pdq_pos:
        res = state.matcher.match_pdq([items[i][1] for i in pdq_pos])
        for i, ms in zip(pdq_pos, res, strict=True):
            out[i] = ms
    for i, (t, h) in enumerate(items):
        if get_signal_type(t).index == "exact":
            out[i] = state.matcher.match_exact(t, h)
    for ms in out:
        state.metrics.count_matches(ms)
    return out


@router.post("/match/hashes", summary="Match a list of hashes")
async def match_hashes(body: HashListRequest, state: StateDep, who: Scan) -> dict[str, Any]:
    """Match up to 10,000 hashes (``pdq``, ``md5``, ``sha1``, ``sha256``). Every hash is
    validated first; any bad one rejects the request with 422 listing each position."""
    items: list[tuple[str, str]] = []
    errors: list[dict[str, Any]] = []
    for i, q in enumerate(body.hashes):
        t = q.type.strip().lower()
        allowed = match_hash_types()
        if t not in allowed:
            errors.append({"index": i, "message": f"type must be one of {list(allowed)}"})
            continue
        try:
            items.append((t, normalize_hash(t, q.hash)))
        except InvalidHashError as e:
            errors.append({"index": i, "message": e.message})
    if errors:
        shown = "; ".join(f"hashes[{e['index']}]: {e['message']}" for e in errors[:5])
        raise api_error(
            422, "invalid_hash", f"{len(errors)} invalid hash(es): {shown}", errors=errors[:1000]
        )
    results = _match_hash_list(state, items)
    return {
        "results": [
            {"type": t, "hash": h, "matches": [m.to_dict() for m in ms]}
            for (t, h), ms in zip(items, results, strict=True)
        ]
    }
