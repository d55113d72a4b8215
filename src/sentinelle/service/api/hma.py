"""HMA compatibility: the routes of Meta's Hasher-Matcher-Actioner (OpenMediaMatch)
that ROOST's Coop and other HMA clients call, with HMA's request and response
shapes, so such a client can be pointed at Sentinelle unchanged.

Covered (see ``docs/HMA_COMPAT.md`` for the differences)::

    GET  /c/banks                       [{"name", "matching_enabled_ratio"}]
    POST /c/banks                       {"name", "enabled_ratio"?, "enabled"?} -> 201 bank
    GET|PUT|DELETE /c/bank/<name>
    POST /c/bank/<name>/content         ?url= or multipart (field "photo"/"video")
                                        -> {"id", "signals": {type: hash}}
    POST /c/bank/<name>/signal          {"pdq": "<hex>", ...} -> {"id", "signals"}
    GET|PUT|DELETE /c/bank/<name>/content/<id>
    GET  /c/signal_type, /c/content_type (the /c/exchanges routes live in api/exchanges.py)
    GET  /h/hash?url=  POST /h/hash     {"pdq": "<hex>"} or {"video_md5": "<hex>"}
    GET  /m/raw_lookup?signal=&signal_type=[&include_distance=&banks=]
                                        {"matches": [id, ...]} or
                                        {"matches": [{"bank_content_id", "distance"}]}
    GET  /m/lookup?signal=&signal_type= {"BANK": [{"bank_content_id", "distance"}]}
    GET  /m/lookup?url=   POST /m/lookup  {"pdq": {"BANK": [...]}}
    GET  /m/index/status                {"pdq": {"present", "built_to", "size"}, ...}

Model mapping. An HMA *content* is one banked item with one hash per signal
type; Sentinelle stores one entry per hash. A content added here becomes one
entry per signal, grouped by ``media_ref = "hma:<uuid>"``; its id is the id of
its first entry, and lookups report the id of the entry that matched (the same
id for single-signal content, the common case). HMA's ``video_md5`` is our
``md5`` of the file bytes (reported as ``video_md5``); ``sha1``/``sha256`` are
accepted as extensions. ``disable_until_ts`` maps to ``enabled`` /
``disabled_until``. Banks have no sampling ratio: ``enabled_ratio > 0`` means
enabled and is reported as ``1.0``.

Auth: a key with ``scan`` (``/h``, ``/m``) or ``curate`` (``/c``); deleting a
bank needs ``admin`` as everywhere. A caller without a key is admitted when its
address is on ``SENTINELLE_HMA_ALLOWLIST`` (off by default).
Errors: HMA clients read ``{"message": ...}``; ours add the usual
``{"error": {"code", "message"}}`` next to it.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from ...banks import StoredEntry
from ...errors import BankError, BankImportError, InvalidHashError
from ...formats.entry import EntryIn, normalize_signal_hash
from ...index.matcher import Match
from ...signals.hasher import hash_bytes
from ...signals.signal_types import by_hma_name, find_signal_type, get_signal_type
from ...signals.types import HashSignal
from ...store.models import BankEntry
from ..deps import ApiKeyInfo, StateDep, body_limit, require_scope
from ..state import ServiceState
from ..uploads import PartEnd, PartStart, iter_multipart, multipart_boundary
from .curation import actor_of

router = APIRouter(tags=["hma-compat"])
for _path in (r"/h/hash", r"/m/lookup", r"/c/bank/[^/]+/content"):
    body_limit(_path, "upload")

Scan = Annotated[ApiKeyInfo, Depends(require_scope("scan", allow_list=True))]
Curate = Annotated[ApiKeyInfo, Depends(require_scope("curate", allow_list=True))]
Admin = Annotated[ApiKeyInfo, Depends(require_scope("admin", allow_list=True))]
State = StateDep

# HMA's names of each signal type are ``SignalType.hma_names`` (the first is written:
# md5 is ``video_md5``); :func:`_ours` reads them.
#: The signal types an HMA deployment enables by default (``/c/signal_type``).
HMA_ENABLED = ("pdq", "video_md5")
#: Signal types HMA computes per content type (its defaults).
CONTENT_SIGNALS = {"photo": ("pdq",), "video": ("video_md5",)}
MEDIA_TO_CONTENT = {"image": "photo", "video": "video"}  # our media type -> HMA content type
HMA_GROUP_PREFIX = "hma:"
MAX_UPLOAD_FIELDS = 16
MAX_FIELD_BYTES = 16 * 1024  # content_id (4096 chars) and note (255) fit with room
FIVE_YEARS_S = 5 * 365 * 24 * 3600
ENABLED_TS, DISABLED_TS = 1, 0


def hma_error(status: int, message: str, code: str = "hma_error") -> HTTPException:
    """An error HMA clients understand (``message``) that is also ours (``error``)."""
    return HTTPException(
        status_code=status,
        detail={"message": message, "error": {"code": code, "message": message}},
    )


def _bool_arg(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    low = str(value).strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise hma_error(400, "invalid boolean parameter - prefer true/false", "bad_parameter")


def _bank_json(b: Any) -> dict[str, Any]:
    return {"name": b.name, "matching_enabled_ratio": 1.0 if b.enabled else 0.0}


def _get_bank(state: ServiceState, name: str) -> Any:
    try:
        return state.store.get_bank(name)
    except BankError:
        raise hma_error(404, f"bank '{name}' not found", "unknown_bank") from None


def _parse_ratio(value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        ratio = float(value)
    except (TypeError, ValueError):
        raise hma_error(400, f"Invalid float: '{value}'", "bad_parameter") from None
    if not 0.0 <= ratio <= 1.0:
        raise hma_error(400, "enabled_ratio must be between 0.0 and 1.0", "bad_parameter")
    return ratio


def _parse_enabled(data: dict[str, Any]) -> bool | None:
    """``enabled_ratio`` (preferred) or ``enabled`` -> enabled, or None if neither."""
    if data.get("enabled_ratio") is not None:
        return _parse_ratio(data["enabled_ratio"]) > 0.0
    if data.get("enabled") is not None:
        v = data["enabled"]
        return v if isinstance(v, bool) else _bool_arg(str(v))
    return None


async def _json_object(request: Request, required: bool = True) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise hma_error(400, "this endpoint expects a json object payload", "bad_json")
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise hma_error(400, "the body is not valid JSON", "bad_json") from None
    if not isinstance(data, dict):
        raise hma_error(400, "this endpoint expects a json object payload", "bad_json")
    return data


# ------------------------------------------------------------------- signals
def _ours(hma_type: str) -> str | None:
    """Our name of the signal type HMA calls ``hma_type`` (None: HMA has no such type)."""
    st = by_hma_name(hma_type)
    return None if st is None else st.name


def _hma_name(signal_type: str) -> str | None:
    st = find_signal_type(signal_type)
    return st.hma_names[0] if st is not None and st.hma_names else None


def _normalize(hma_type: str, value: Any) -> tuple[str, str]:
    """HMA ``(signal_type, signal)`` -> our normalized ``(signal_type, hex)``; 400 if bad."""
    ours = _ours(str(hma_type))
    if ours is None:
        raise hma_error(400, f"No such SignalType '{hma_type}'", "bad_signal_type")
    if not isinstance(value, str):
        raise hma_error(400, f"Invalid {hma_type} signal: not a string", "invalid_hash")
    try:
        return normalize_signal_hash(ours, value)
    except InvalidHashError as e:
        raise hma_error(400, f"invalid signal: {e.message}", "invalid_hash") from None


def _matches(state: ServiceState, sig: str, hexhash: str) -> list[Match]:
    if get_signal_type(sig).index == "pdq":
        return state.matcher.match_pdq([hexhash])[0]
    return state.matcher.match_exact(sig, hexhash)


def _by_bank(matches: list[Match], banks: set[str] | None) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for m in matches:
        if banks is not None and m.bank not in banks:
            continue
        out.setdefault(m.bank, []).append(
            {"bank_content_id": m.entry_id, "distance": str(m.distance)}
        )
    return out


def _banks_arg(value: str | None) -> set[str] | None:
    if not value:
        return None
    return {b.strip() for b in value.split(",") if b.strip()} or None


# -------------------------------------------------------------------- media
def _content_type_of(name: str) -> str:
    if name not in CONTENT_SIGNALS:
        raise hma_error(400, f"no such content_type: '{name}'", "bad_content_type")
    return name


def _selected_types(content_type: str, types: str | None) -> tuple[str, ...]:
    allowed = CONTENT_SIGNALS[content_type]
    if types is None:
        return allowed
    chosen = tuple(t.strip() for t in types.split(",") if t.strip())
    for t in chosen:
        if t not in allowed:
            raise hma_error(
                400, f"signal type '{t}' doesn't exist or is disabled", "bad_signal_type"
            )
    if not chosen:
        raise hma_error(400, "empty signal type selection", "bad_signal_type")
    return chosen


async def _hash_media(
    state: ServiceState, data: bytes, content_type: str, types: str | None
) -> dict[str, str]:
    """HMA's ``{signal_type: hash}`` for ``data`` declared as ``content_type``."""
    wanted = _selected_types(content_type, types)
    signals = ("pdq", "md5") if content_type == "photo" else ("md5",)
    r = await run_in_threadpool(
        hash_bytes, data, signals=signals, limits=state.settings.media_limits
    )
    actual = MEDIA_TO_CONTENT.get(r.media_type or "", r.media_type)
    if actual is not None and actual != content_type:
        raise hma_error(
            422,
            f"the upload is a {actual} ({r.format}), not a {content_type}",
            "media_type_mismatch",
        )
    if r.error is not None:
        status = 413 if r.error.code == "file_too_large" else 422
        raise hma_error(status, r.error.message, r.error.code)
    got = {s.type: s.hash for s in r.signals if isinstance(s, HashSignal)}
    out: dict[str, str] = {}
    for t in wanted:
        ours = _ours(t)
        if ours in got:
            out[t] = got[ours]
    if not out:
        raise hma_error(422, "no signal could be computed from the upload", "no_signal")
    return out


async def _read_form_upload(
    request: Request, state: ServiceState
) -> tuple[str, bytes, dict[str, str]]:
    """HMA multipart: exactly one file, in a part named after its content type
    (``photo`` / ``video``); returns ``(content_type, bytes, other text fields)``.

    Streamed with :func:`.uploads.iter_multipart`: the file is held in memory
    under ``max_upload_bytes`` and never spooled to disk. A file part is one with
    a file name, as in HMA (Flask); text parts are kept (up to
    :data:`MAX_UPLOAD_FIELDS` of :data:`MAX_FIELD_BYTES` each)."""
    try:
        boundary = multipart_boundary(request)
    except HTTPException:
        raise hma_error(400, "Missing multipart/form-data file upload", "bad_upload") from None
    limit = state.settings.max_upload_bytes
    content_type: str | None = None
    data = bytearray()
    fields: dict[str, str] = {}
    field: tuple[str, bytearray] | None = None  # the text part being read
    in_file = False
    try:
        async for event in iter_multipart(request, boundary):
            if isinstance(event, PartStart):
                if event.filename is not None:
                    if content_type is not None:
                        raise hma_error(400, "Only one file allowed per request", "bad_upload")
                    content_type, in_file = _content_type_of(event.name), True
                else:
                    if len(fields) >= MAX_UPLOAD_FIELDS:
                        raise hma_error(400, "Too many form fields", "bad_upload")
                    field = (event.name, bytearray())
            elif isinstance(event, PartEnd):
                if field is not None:
                    fields[field[0]] = field[1].decode("utf-8", "replace")
                in_file, field = False, None
            elif in_file:
                data += event
                if len(data) > limit:
                    raise hma_error(
                        413, f"upload is over the limit of {limit} bytes", "file_too_large"
                    )
            elif field is not None:
                field[1].extend(event)
                if len(field[1]) > MAX_FIELD_BYTES:
                    raise hma_error(400, f"form field {field[0]!r} is too long", "bad_field")
    except HTTPException as e:  # bad_multipart from the parser -> HMA's error shape
        err = e.detail.get("error") if isinstance(e.detail, dict) else None
        if err is None or "message" in e.detail:
            raise
        raise hma_error(e.status_code, err["message"], err["code"]) from None
    if content_type is None:
        raise hma_error(400, "Missing multipart/form-data file upload", "bad_upload")
    return content_type, bytes(data), fields


async def _fetch(state: ServiceState, url: str) -> bytes:
    from ..fetch import FetchError, fetch_media

    s = state.settings
    if not s.fetch_enabled:
        raise hma_error(403, "fetching media by URL is disabled", "fetch_disabled")
    try:
        return await run_in_threadpool(
            fetch_media,
            url,
            allowed_hosts=s.fetch_allowed_hosts,
            max_bytes=s.fetch_limit,
            timeout_s=s.fetch_timeout_s,
        )
    except FetchError as e:
        raise hma_error(e.status, e.message, e.code) from None


def _guess_content_type(data: bytes, hint: str | None) -> str:
    if hint:
        return _content_type_of(hint)
    from ...media.detect import HEAD_BYTES, detect

    found = detect(data[:HEAD_BYTES])
    if found is None:
        raise hma_error(
            400,
            "unsupported url content; if you know the expected type, "
            "provide it with the content_type query param",
            "unsupported_type",
        )
    return _content_type_of(MEDIA_TO_CONTENT.get(found[0], found[0]))


# -------------------------------------------------------------- /h hashing
@router.get("/h/hash", summary="HMA: hash media fetched by URL")
async def h_hash_get(
    request: Request, state: State, who: Scan, url: str | None = None
) -> dict[str, str]:
    if not url:
        raise hma_error(400, "url is required", "bad_parameter")
    data = await _fetch(state, url)
    q = request.query_params
    ctype = _guess_content_type(data, q.get("content_type"))
    return await _hash_media(state, data, ctype, q.get("types"))


@router.post("/h/hash", summary="HMA: hash an uploaded file (field photo or video)")
async def h_hash_post(request: Request, state: State, who: Scan) -> dict[str, str]:
    ctype, data, _ = await _read_form_upload(request, state)
    return await _hash_media(state, data, ctype, request.query_params.get("types"))


# ------------------------------------------------------------- /m matching
@router.get("/m/raw_lookup", summary="HMA: look a hash up (content ids)")
async def m_raw_lookup(
    state: State,
    who: Scan,
    signal: str | None = None,
    signal_type: str | None = None,
    include_distance: str | None = None,
    banks: str | None = None,
) -> dict[str, Any]:
    if signal is None:
        raise hma_error(400, "signal is required", "bad_parameter")
    if signal_type is None:
        raise hma_error(400, "signal_type is required", "bad_parameter")
    with_distance = _bool_arg(include_distance)
    sig, h = _normalize(signal_type, signal)
    wanted = _banks_arg(banks)
    found: dict[int, int] = {}
    for m in _matches(state, sig, h):
        if wanted is None or m.bank in wanted:
            found[m.entry_id] = min(m.distance, found.get(m.entry_id, m.distance))
    if with_distance:
        return {"matches": [{"bank_content_id": i, "distance": str(d)} for i, d in found.items()]}
    return {"matches": list(found)}


def _lookup_hashes(
    state: ServiceState, hashes: dict[str, str], banks: set[str] | None
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    out = {}
    for hma_type, value in hashes.items():
        sig, h = _normalize(hma_type, value)
        out[hma_type] = _by_bank(_matches(state, sig, h), banks)
    return out


@router.get("/m/lookup", summary="HMA: look up a hash (or media by URL), grouped by bank")
async def m_lookup_get(request: Request, state: State, who: Scan) -> dict[str, Any]:
    q = request.query_params
    banks = _banks_arg(q.get("banks"))
    if q.get("url"):
        data = await _fetch(state, q["url"])
        ctype = _guess_content_type(data, q.get("content_type"))
        hashes = await _hash_media(state, data, ctype, q.get("types"))
        resp = _lookup_hashes(state, hashes, banks)
        st = q.get("signal_type")
        return resp.get(st, {}) if st else resp
    signal, signal_type = q.get("signal"), q.get("signal_type")
    if not signal or not signal_type:
        raise hma_error(
            400, "Either url or both signal and signal_type are required", "bad_parameter"
        )
    sig, h = _normalize(signal_type, signal)
    return _by_bank(_matches(state, sig, h), banks)


@router.post("/m/lookup", summary="HMA: look up an uploaded file, grouped by signal and bank")
async def m_lookup_post(request: Request, state: State, who: Scan) -> dict[str, Any]:
    ctype, data, _ = await _read_form_upload(request, state)
    q = request.query_params
    hashes = await _hash_media(state, data, ctype, q.get("types"))
    return _lookup_hashes(state, hashes, _banks_arg(q.get("banks")))


@router.get("/m/index/status", summary="HMA: index status per signal type")
def m_index_status(
    state: State, who: Scan, signal_type: str | None = None
) -> dict[str, dict[str, Any]]:
    names = list(HMA_ENABLED)
    if signal_type is not None:
        if _ours(signal_type) is None:
            raise hma_error(400, f"No such signal type '{signal_type}'", "bad_signal_type")
        names = [signal_type]
    sizes: dict[str, int] = {}
    for b in state.store.list_banks():
        if b.enabled:
            for st, n in b.counts.items():
                sizes[st] = sizes.get(st, 0) + n
    lag = state.sync.lag_s()
    built_to = -1 if lag is None else int(time.time() - lag)
    return {
        n: {"present": lag is not None, "built_to": built_to, "size": sizes.get(_ours(n) or n, 0)}
        for n in names
    }


# ------------------------------------------------------------- /c curation
@router.get("/c/banks", summary="HMA: list banks")
def c_banks(state: State, who: Curate) -> list[dict[str, Any]]:
    return [_bank_json(b) for b in state.store.list_banks()]


@router.post("/c/banks", status_code=201, summary="HMA: create a bank")
async def c_bank_create(request: Request, state: State, who: Curate) -> dict[str, Any]:
    data = await _json_object(request)
    name = data.get("name")
    if name is None:
        raise hma_error(400, "name is required", "bad_parameter")
    if not isinstance(name, str):
        raise hma_error(400, "name must be a string", "bad_bank_name")
    enabled = _parse_enabled(data)
    store, actor = state.store, actor_of(who)
    try:
        store.create_bank(name, actor=actor)
        if enabled is False:
            store.set_bank_enabled(name, False, actor=actor)
    except BankError as e:
        if e.code == "bank_exists":
            raise hma_error(403, "Bank already exists", e.code) from None
        raise hma_error(400, e.message, e.code) from None
    return _bank_json(store.get_bank(name))


@router.get("/c/bank/{bank_name}", summary="HMA: one bank")
def c_bank_get(bank_name: str, state: State, who: Curate) -> dict[str, Any]:
    return _bank_json(_get_bank(state, bank_name))


@router.put("/c/bank/{bank_name}", summary="HMA: rename / enable / disable a bank")
async def c_bank_update(
    bank_name: str, request: Request, state: State, who: Curate
) -> dict[str, Any]:
    bank = _get_bank(state, bank_name)
    data = await _json_object(request)
    enabled = _parse_enabled(data)
    new_name = data.get("name")
    if new_name is not None and not isinstance(new_name, str):
        raise hma_error(400, "name must be a string", "bad_bank_name")
    store, actor = state.store, actor_of(who)
    try:
        if new_name is not None and new_name != bank.name:
            store.rename_bank(bank.name, new_name, actor=actor)
            bank_name = new_name
        if enabled is not None and enabled != bank.enabled:
            store.set_bank_enabled(bank_name, enabled, actor=actor)
    except BankError as e:
        if e.code == "bank_exists":
            raise hma_error(403, "Bank name already exists", e.code) from None
        raise hma_error(400, e.message, e.code) from None
    return _bank_json(store.get_bank(bank_name))


@router.delete("/c/bank/{bank_name}", summary="HMA: delete a bank (admin)")
def c_bank_delete(bank_name: str, state: State, who: Admin) -> dict[str, str]:
    try:
        state.store.delete_bank(bank_name, actor=actor_of(who))
    except BankError as e:
        if e.code != "unknown_bank":  # HMA: deleting a missing bank succeeds
            raise hma_error(400, e.message, e.code) from None
    return {"message": "Done"}


# ---- content
def _group(state: ServiceState, entry: StoredEntry) -> list[StoredEntry]:
    """All entries of the HMA content ``entry`` belongs to (itself if ungrouped)."""
    ref = entry.media_ref
    if not ref or not ref.startswith(HMA_GROUP_PREFIX):
        return [entry]
    E = BankEntry.__table__
    with state.engine.connect() as conn:
        ids = conn.execute(
            select(E.c.id)
            .where(E.c.bank_id == entry.bank_id, E.c.media_ref == ref)
            .order_by(E.c.id)
        ).scalars()
        out = [state.store.get_entry(int(i)) for i in ids]
    return [e for e in out if e is not None] or [entry]


def _content(state: ServiceState, bank_name: str, content_id: int) -> list[StoredEntry]:
    bank = _get_bank(state, bank_name)
    e = state.store.get_entry(content_id) if abs(content_id) <= 2**63 - 1 else None
    if e is None or e.bank_id != bank.id:
        raise hma_error(404, f"content '{content_id}' not found", "unknown_entry")
    return _group(state, e)


def _disable_until_ts(entries: list[StoredEntry]) -> int:
    e = entries[0]
    if not e.enabled:
        return DISABLED_TS
    until = e.disabled_until
    if until is not None:
        if until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        if until > datetime.now(UTC):
            return int(until.timestamp())
    return ENABLED_TS


def _content_json(
    state: ServiceState, bank_name: str, entries: list[StoredEntry], signals: bool
) -> dict[str, Any]:
    bank = _get_bank(state, bank_name)
    first = entries[0]
    d: dict[str, Any] = {
        "id": first.id,
        "disable_until_ts": _disable_until_ts(entries),
        "collab_metadata": {},
        "original_media_uri": None,
        "bank": _bank_json(bank),
        "metadata": {"content_id": first.external_id} if first.external_id else None,
        "note": first.note,
    }
    if signals:
        d["signals"] = {
            name: e.hash for e in entries if (name := _hma_name(e.signal_type)) is not None
        }
    return d


def _existing_id(state: ServiceState, bank_id: int, sig: str, h: str) -> int | None:
    E = BankEntry.__table__
    with state.engine.connect() as conn:
        v = conn.execute(
            select(E.c.id).where(
                E.c.bank_id == bank_id,
                E.c.signal_type == sig,
                E.c.hash == h,
                E.c.variant == "plain",
            )
        ).scalar()
    return None if v is None else int(v)


def _add_signals(
    state: ServiceState,
    bank_name: str,
    signals: Any,
    *,
    content_id: str | None = None,
    note: str | None = None,
    actor: str = "system",
) -> dict[str, Any]:
    """Bank one content (``{hma_signal_type: hash}``); returns HMA's ``{"id", "signals"}``."""
    bank = _get_bank(state, bank_name)
    if not isinstance(signals, dict) or not signals:
        raise hma_error(400, "No signals given", "bad_parameter")
    norm: dict[str, tuple[str, str]] = {}
    for name, val in signals.items():
        if _ours(name) is None:
            raise hma_error(400, f"No such signal type {name}", "bad_signal_type")
        try:
            norm[name] = _normalize(name, val)
        except HTTPException:
            raise hma_error(400, f"Invalid {name} signal", "invalid_hash") from None
    group = f"{HMA_GROUP_PREFIX}{uuid.uuid4().hex}"
    entries = [
        EntryIn(
            signal_type=sig,
            hash=h,
            media_ref=group,
            external_id=content_id or None,
            note=note or None,
            source_org="hma-api",
        )
        for sig, h in dict.fromkeys(norm.values())
    ]
    try:
        report = state.store.add_entries(bank.name, entries, actor=actor)
    except (BankImportError, BankError) as e:
        raise hma_error(400, e.message, e.code) from None
    if report.skipped_tombstoned:
        raise hma_error(
            400,
            "this hash was deleted from the bank (tombstoned) and is not re-added",
            "tombstoned",
        )
    ids = [_existing_id(state, bank.id, e.signal_type, e.hash) for e in entries]
    first = min((i for i in ids if i is not None), default=None)
    if first is None:  # pragma: no cover - deleted concurrently
        raise hma_error(409, "the content was removed while being added", "conflict")
    return {"id": first, "signals": {name: h for name, (_, h) in norm.items()}}


def _check_text(value: Any, what: str, max_len: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len or "\x00" in value:
        raise hma_error(400, f"{what} must be text of at most {max_len} characters", "bad_field")
    return value


@router.post("/c/bank/{bank_name}/content", summary="HMA: bank media (by URL or upload)")
async def c_content_add(
    bank_name: str, request: Request, state: State, who: Curate
) -> dict[str, Any]:
    _get_bank(state, bank_name)
    q = request.query_params
    if q.get("url"):
        body = await _json_object(request, required=False)
        meta = body.get("metadata") or {}
        if not isinstance(meta, dict):
            raise hma_error(400, "metadata should be a json object", "bad_field")
        unexpected = set(meta) - {"content_id", "content_uri", "json", "collab"}
        if unexpected:
            raise hma_error(
                400,
                f"metadata contains unexpected keys: {', '.join(sorted(unexpected))}",
                "bad_field",
            )
        content_id, note = meta.get("content_id"), body.get("note")
        data = await _fetch(state, q["url"])
        ctype = _guess_content_type(data, q.get("content_type"))
    elif request.headers.get("content-type", "").startswith("multipart/form-data"):
        ctype, data, fields = await _read_form_upload(request, state)
        content_id, note = fields.get("content_id"), fields.get("note")
    else:
        raise hma_error(
            400, "Neither `url` nor multipart file upload was received", "bad_parameter"
        )
    content_id = _check_text(content_id, "content_id", 4096)
    note = _check_text(note, "note", 255)
    hashes = await _hash_media(state, data, ctype, q.get("types"))
    return _add_signals(
        state, bank_name, hashes, content_id=content_id, note=note, actor=actor_of(who)
    )


@router.post("/c/bank/{bank_name}/signal", summary="HMA: bank hashes directly")
async def c_signal_add(
    bank_name: str, request: Request, state: State, who: Curate
) -> dict[str, Any]:
    _get_bank(state, bank_name)
    data = await _json_object(request)
    return _add_signals(state, bank_name, data, actor=actor_of(who))


@router.get("/c/bank/{bank_name}/content/{content_id}", summary="HMA: one banked content")
def c_content_get(
    bank_name: str,
    content_id: int,
    state: State,
    who: Curate,
    include_signals: str | None = None,
) -> dict[str, Any]:
    entries = _content(state, bank_name, content_id)
    return _content_json(state, bank_name, entries, _bool_arg(include_signals))


@router.put("/c/bank/{bank_name}/content/{content_id}", summary="HMA: disable until a time")
async def c_content_update(
    bank_name: str, content_id: int, request: Request, state: State, who: Curate
) -> dict[str, Any]:
    entries = _content(state, bank_name, content_id)
    data = await _json_object(request)
    if "disable_until_ts" in data:
        raw = data["disable_until_ts"]
        try:
            if isinstance(raw, bool) or isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            ts = int(raw)
        except (TypeError, ValueError):
            raise hma_error(400, f"Invalid int: '{raw}'", "bad_parameter") from None
        if ts < 0:
            raise hma_error(400, "disable_until_ts must be a non-negative integer", "bad_field")
        if ts > time.time() + FIVE_YEARS_S:
            raise hma_error(
                400, "disable_until_ts must be less than 5 years in the future", "bad_field"
            )
        actor = actor_of(who)
        for e in entries:
            if ts == DISABLED_TS:
                state.store.update_entry(e.id, actor=actor, enabled=False, disabled_until=None)
            elif ts == ENABLED_TS:
                state.store.update_entry(e.id, actor=actor, enabled=True, disabled_until=None)
            else:
                until = datetime.fromtimestamp(ts, UTC)
                past = until <= datetime.now(UTC)
                state.store.update_entry(
                    e.id, actor=actor, enabled=True, disabled_until=None if past else until
                )
        entries = _content(state, bank_name, content_id)
    return _content_json(state, bank_name, entries, False)


@router.delete("/c/bank/{bank_name}/content/{content_id}", summary="HMA: remove a content")
def c_content_delete(bank_name: str, content_id: int, state: State, who: Curate) -> dict[str, int]:
    entries = _content(state, bank_name, content_id)
    n = 0
    for e in entries:
        try:
            state.store.delete_entry(e.id, "deleted through the HMA API", actor=actor_of(who))
            n += 1
        except BankError:
            pass  # already gone
    return {"deleted": n}


# ---- static configuration HMA clients read
@router.get("/c/signal_type", summary="HMA: signal types")
def c_signal_types(who: Curate) -> list[dict[str, Any]]:
    return [{"name": n, "enabled_ratio": 1.0} for n in HMA_ENABLED]


@router.get("/c/content_type", summary="HMA: content types")
def c_content_types(who: Curate) -> list[dict[str, Any]]:
    return [{"name": n, "enabled": True} for n in CONTENT_SIGNALS]
