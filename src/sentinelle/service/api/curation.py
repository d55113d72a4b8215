"""Bank management API (``/v1/banks``, ``/v1/entries``, ``/v1/jobs``).

Every route needs a key: reading and writing banks needs the ``curate`` scope,
deleting a whole bank ``admin``. All work goes through :class:`BankStore`, so
every change lands in the change log and reaches every instance's matcher
within the sync interval, without a rebuild.

Status codes: 404 unknown bank / entry / job, 409 duplicate bank name, 400 bad
parameters, 413 upload too large, 422 invalid body or rejected import (every bad
line listed). Bodies of errors are ``{"error": {"code", "message", ...}}``.

Bulk import: ``POST /v1/banks/{name}/import?format=csv`` with the file as the
raw body (``curl --data-binary @bank.csv``) or as a multipart file field. Small
uploads are imported at once (200 + report); bigger ones (over
``settings.extra["import_sync_max_bytes"]``, default 1 MiB) become a
``bank_import`` job (202 + job id; poll ``GET /v1/jobs/{id}``). See
:mod:`sentinelle.service.api.bank_import`.
"""

from __future__ import annotations

import io
import logging
import queue as queue_mod
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from ...banks import BankInfo, StoredEntry, check_threshold
from ...errors import BankError, BankImportError, SentinelleError
from ...formats import FORMATS
from ...formats.entry import MAX_TEXT_FIELD, EntryIn, to_utc
from ...jobs import queue as jobs
from ...signals.signal_types import find_signal_type, signal_type_names
from ...store.models import BankEntry
from ..deps import ApiKeyInfo, StateDep, api_error, body_limit
from ..deps import require_scope as _require_scope
from ..state import ServiceState
from ..uploads import PartEnd, PartStart, iter_multipart, multipart_boundary
from . import bank_import as imports

log = logging.getLogger("sentinelle.service")
router = APIRouter(prefix="/v1", tags=["banks"])
body_limit(r"/v1/banks/[^/]+/import", "import")  # bulk uploads: settings.max_import_bytes
MAX_IMPORT_PARTS = 16  # a multipart import: one file part, a few text parts at most

MAX_ENTRIES_PER_REQUEST = 10_000
MAX_PAGE = 1000
EXPORT_CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "vics": "application/json",
    "icse": "text/csv; charset=utf-8",
    "pdq-list": "text/plain; charset=utf-8",
    "md5-list": "text/plain; charset=utf-8",
    "threatexchange": "text/plain; charset=utf-8",
}

Curate = Annotated[ApiKeyInfo, Depends(_require_scope("curate"))]
Admin = Annotated[ApiKeyInfo, Depends(_require_scope("admin"))]
State = StateDep

_STATUS_BY_CODE = {
    "unknown_bank": 404,
    "unknown_entry": 404,
    "bank_exists": 409,
    "import_rejected": 422,
    "invalid_hash": 422,
}


def to_http(err: SentinelleError) -> Exception:
    """Map a store error to an HTTP error (never a 5xx for bad input)."""
    if isinstance(err, BankImportError):
        if err.message.startswith("unknown format"):
            return api_error(400, "unknown_format", err.message)
        d = imports.truncated_error(err)
        return api_error(
            422, err.code, err.message, errors=d["errors"], errors_total=d["errors_total"]
        )
    return api_error(_STATUS_BY_CODE.get(err.code, 400), err.code, err.message)


# ------------------------------------------------------------------ views
def actor_of(who: ApiKeyInfo) -> str:
    """The audit actor for an API caller (see :attr:`ApiKeyInfo.actor`)."""
    return who.actor


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else (to_utc(dt) or dt).isoformat()


def bank_view(b: BankInfo) -> dict[str, Any]:
    return {
        "id": b.id,
        "name": b.name,
        "description": b.description,
        "enabled": b.enabled,
        "created_at": _iso(b.created_at),
        "thresholds": dict(b.thresholds),
        "counts": dict(b.counts),
        "total": b.total,
    }


def entry_view(e: StoredEntry, bank_name: str | None = None) -> dict[str, Any]:
    return {
        "id": e.id,
        "bank_id": e.bank_id,
        "bank": bank_name,
        "signal_type": e.signal_type,
        "hash": e.hash,
        "variant": e.variant,
        "media_ref": e.media_ref,
        "source_org": e.source_org,
        "external_id": e.external_id,
        "category": e.category,
        "note": e.note,
        "added_at": _iso(e.added_at),
        "enabled": e.enabled,
        "disabled_until": _iso(e.disabled_until),
        "active": e.is_active(),
        "series": e.series,
        "victim_identified": e.victim_identified,
        "offender_identified": e.offender_identified,
        "is_distributed": e.is_distributed,
    }


def _bank_names(state: ServiceState) -> dict[int, str]:
    return {b.id: b.name for b in state.store.list_banks()}


MAX_ROW_ID = 2**63 - 1  # ids beyond a 64-bit integer cannot exist (and overflow the driver)


def _entry_or_404(state: ServiceState, entry_id: int) -> StoredEntry:
    e = state.store.get_entry(entry_id) if abs(entry_id) <= MAX_ROW_ID else None
    if e is None:
        raise api_error(404, "unknown_entry", f"no entry with id {entry_id}")
    return e


def _bank_or_404(state: ServiceState, name: str) -> BankInfo:
    try:
        return state.store.get_bank(name)
    except BankError as e:
        raise to_http(e) from None


# ----------------------------------------------------------------- bodies
Text = Annotated[str, Field(max_length=MAX_TEXT_FIELD)]


class BankCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=MAX_TEXT_FIELD * 4)] = ""
    thresholds: dict[str, int] | None = Field(
        None, description="max Hamming distance per signal type, e.g. {'pdq': 31}"
    )


class BankPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: Annotated[str, Field(max_length=MAX_TEXT_FIELD * 4)] | None = None
    enabled: bool | None = None
    thresholds: dict[str, int] | None = None


class EntryBody(BaseModel):
    """One hash to add, with optional provenance metadata."""

    model_config = ConfigDict(extra="forbid")
    signal_type: Annotated[str, Field(description=f"one of {', '.join(signal_type_names())}")]
    hash: Annotated[str, Field(max_length=128)]
    variant: Annotated[str, Field(min_length=1, max_length=64)] = "plain"
    media_ref: Text | None = None
    source_org: Text | None = None
    external_id: Text | None = None
    category: Text | None = None
    note: Text | None = None
    enabled: bool = True
    disabled_until: datetime | None = None
    series: Text | None = None
    victim_identified: bool | None = None
    offender_identified: bool | None = None
    is_distributed: bool | None = None

    def to_entry(self, line: int) -> EntryIn:
        # The body's fields are a subset of EntryIn's (extra="forbid" keeps it so).
        return EntryIn(**self.model_dump(), line=line)


class EntriesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entries: Annotated[list[EntryBody], Field(min_length=1, max_length=MAX_ENTRIES_PER_REQUEST)]


class EntryPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    media_ref: Text | None = None
    source_org: Text | None = None
    external_id: Text | None = None
    category: Text | None = None
    note: Text | None = None
    enabled: bool | None = None
    disabled_until: datetime | None = None
    series: Text | None = None
    victim_identified: bool | None = None
    offender_identified: bool | None = None
    is_distributed: bool | None = None


class DisableBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    until: datetime | None = Field(None, description="re-enable automatically at this time")


# ------------------------------------------------------------------ banks
@router.post("/banks", status_code=201, summary="Create a bank")
def create_bank(body: BankCreate, state: State, who: Curate) -> dict[str, Any]:
    try:
        return bank_view(
            state.store.create_bank(
                body.name, body.description, body.thresholds, actor=actor_of(who)
            )
        )
    except BankError as e:
        raise to_http(e) from None


@router.get("/banks", summary="List banks with entry counts")
def list_banks(state: State, who: Curate) -> dict[str, Any]:
    return {"banks": [bank_view(b) for b in state.store.list_banks()]}


@router.get("/banks/{name}", summary="One bank")
def get_bank(name: str, state: State, who: Curate) -> dict[str, Any]:
    return bank_view(_bank_or_404(state, name))


@router.patch("/banks/{name}", summary="Change description, enabled state or thresholds")
def patch_bank(name: str, body: BankPatch, state: State, who: Curate) -> dict[str, Any]:
    bank = _bank_or_404(state, name)
    store, actor = state.store, actor_of(who)
    try:
        for st, d in (body.thresholds or {}).items():
            check_threshold(st, d)
        if body.description is not None and body.description != bank.description:
            store.set_bank_description(name, body.description, actor=actor)
        # Only real changes are written: each bank-level change makes every
        # instance's matcher reload its bank table.
        for st, d in (body.thresholds or {}).items():
            if bank.thresholds.get(st) != d:
                store.set_threshold(name, st, d, actor=actor)
        if body.enabled is not None and body.enabled != bank.enabled:
            store.set_bank_enabled(name, body.enabled, actor=actor)
        return bank_view(store.get_bank(name))
    except BankError as e:
        raise to_http(e) from None


@router.delete("/banks/{name}", summary="Delete a bank and all its entries (admin)")
def delete_bank(name: str, state: State, who: Admin) -> dict[str, Any]:
    try:
        state.store.delete_bank(name, actor=actor_of(who))
    except BankError as e:
        raise to_http(e) from None
    return {"deleted": name}


# ---------------------------------------------------------------- entries
def _ids_of(
    state: ServiceState, bank_id: int, keys: list[tuple[str, str, str]]
) -> list[int | None]:
    """Entry ids for ``(signal_type, hash, variant)`` keys in a bank (None if absent)."""
    E = BankEntry.__table__
    found: dict[tuple[str, str, str], int] = {}
    wanted = list(dict.fromkeys(keys))
    with state.engine.connect() as conn:
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            rows = conn.execute(
                select(E.c.id, E.c.signal_type, E.c.hash, E.c.variant).where(
                    E.c.bank_id == bank_id, E.c.hash.in_([h for _, h, _ in part])
                )
            )
            for r in rows:
                found[(r.signal_type, r.hash, r.variant)] = int(r.id)
    return [found.get(k) for k in keys]


@router.post("/banks/{name}/entries", status_code=201, summary="Add one or many hashes")
def add_entries(
    name: str,
    state: State,
    who: Curate,
    body: Annotated[EntryBody | EntriesBody, Body()],
) -> dict[str, Any]:
    bank = _bank_or_404(state, name)
    items = body.entries if isinstance(body, EntriesBody) else [body]
    entries = [it.to_entry(i) for i, it in enumerate(items, start=1)]
    try:
        report = state.store.add_entries(name, entries, actor=actor_of(who))
    except (BankError, BankImportError) as e:
        raise to_http(e) from None
    keys = [
        (e.signal_type.strip().lower(), e.hash.strip().lower(), e.variant.strip()) for e in entries
    ]
    return {"report": report.to_dict(), "ids": _ids_of(state, bank.id, keys)}


@router.get("/banks/{name}/entries", summary="List entries (cursor pagination by id)")
def list_entries(
    name: str,
    state: State,
    who: Curate,
    signal_type: Annotated[str | None, Query(description="only this signal type")] = None,
    after: Annotated[int, Query(ge=0, description="cursor: entries with id > after")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    bank = _bank_or_404(state, name)
    if signal_type is not None and find_signal_type(signal_type) is None:
        raise api_error(
            400,
            "bad_signal_type",
            f"unknown signal type {signal_type!r} "
            f"(expected one of {', '.join(signal_type_names())})",
        )
    out: list[dict[str, Any]] = []
    more = False
    try:
        for e in state.store.iter_entries(name, signal_type, batch=limit + 1, after=after):
            if len(out) == limit:
                more = True
                break
            out.append(entry_view(e, bank.name))
    except BankError as e:
        raise to_http(e) from None
    return {"entries": out, "next_cursor": out[-1]["id"] if more else None}


@router.get("/entries/{entry_id}", summary="One entry")
def get_entry(entry_id: int, state: State, who: Curate) -> dict[str, Any]:
    e = _entry_or_404(state, entry_id)
    return entry_view(e, _bank_names(state).get(e.bank_id))


def _update(state: ServiceState, who: ApiKeyInfo, entry_id: int, **fields: Any) -> dict[str, Any]:
    _entry_or_404(state, entry_id)
    try:
        e = state.store.update_entry(entry_id, actor=actor_of(who), **fields)
    except BankError as err:
        raise to_http(err) from None
    return entry_view(e, _bank_names(state).get(e.bank_id))


@router.patch("/entries/{entry_id}", summary="Change metadata, enabled, disabled_until")
def patch_entry(entry_id: int, body: EntryPatch, state: State, who: Curate) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True)
    if fields.get("enabled", True) is None:
        raise api_error(422, "bad_field", "enabled must be true or false")
    if not fields:
        return get_entry(entry_id, state, who)
    return _update(state, who, entry_id, **fields)


@router.post("/entries/{entry_id}/disable", summary="Disable (optionally until a time)")
def disable_entry(
    entry_id: int, state: State, who: Curate, body: DisableBody | None = None
) -> dict[str, Any]:
    until = body.until if body is not None else None
    if until is None:
        return _update(state, who, entry_id, enabled=False, disabled_until=None)
    return _update(state, who, entry_id, enabled=True, disabled_until=until)


@router.post("/entries/{entry_id}/enable", summary="Enable")
def enable_entry(entry_id: int, state: State, who: Curate) -> dict[str, Any]:
    return _update(state, who, entry_id, enabled=True, disabled_until=None)


@router.delete("/entries/{entry_id}", summary="Delete and tombstone (re-imports skip it)")
def delete_entry(
    entry_id: int,
    state: State,
    who: Curate,
    reason: Annotated[str, Query(max_length=MAX_TEXT_FIELD)] = "",
) -> dict[str, Any]:
    _entry_or_404(state, entry_id)
    try:
        state.store.delete_entry(entry_id, reason, actor=actor_of(who))
    except BankError as e:
        raise to_http(e) from None
    return {"deleted": entry_id}


# ------------------------------------------------------------ import/export
def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise api_error(
            400, "unknown_format", f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})"
        )
    return fmt


async def _upload_chunks(request: Request) -> AsyncIterator[bytes]:
    """The upload: the one file part of a multipart body, or the raw body.

    A multipart body is streamed (:func:`.uploads.iter_multipart`): the file part's
    bytes go straight to the import spool, never via a framework temporary file;
    text parts are dropped."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        files = parts = 0
        in_file = False
        async for event in iter_multipart(request, multipart_boundary(request)):
            if isinstance(event, PartStart):
                parts += 1
                if parts > MAX_IMPORT_PARTS:
                    raise api_error(400, "bad_multipart", f"more than {MAX_IMPORT_PARTS} parts")
                in_file = event.filename is not None
                files += in_file
                if files > 1:
                    raise api_error(
                        400, "bad_upload", "send exactly one file in the multipart body"
                    )
            elif isinstance(event, PartEnd):
                in_file = False
            elif in_file:
                yield event
        if files != 1:
            raise api_error(400, "bad_upload", "send exactly one file in the multipart body")
    else:
        async for chunk in request.stream():
            if chunk:
                yield chunk


@router.post(
    "/banks/{name}/import",
    summary="Bulk import a file (atomic: any bad line rejects it all)",
    responses={202: {"description": "queued as a background job"}},
)
async def import_bank(
    name: str,
    request: Request,
    response: Response,
    state: State,
    who: Curate,
    format: Annotated[str, Query(description=f"one of {', '.join(FORMATS)}")],
) -> dict[str, Any]:
    _check_format(format)
    _bank_or_404(state, name)
    limit = int(state.settings.max_import_bytes)
    try:
        upload = await imports.spool_stream(
            _upload_chunks(request), imports.spool_dir(state.settings), limit
        )
    except imports.UploadTooLarge as e:
        raise api_error(413, "upload_too_large", str(e), limit=limit) from None
    if upload.size == 0:
        imports.remove_quietly(upload.path)
        raise api_error(400, "empty_upload", "the upload is empty")
    if upload.size > imports.sync_max_bytes(state.settings):
        job_id = imports.enqueue_import(state, name, format, upload, actor=actor_of(who))
        response.status_code = 202
        return {"status": "queued", "job_id": job_id, "job_url": f"/v1/jobs/{job_id}"}
    try:
        from starlette.concurrency import run_in_threadpool

        report = await run_in_threadpool(
            imports.run_import, state, name, format, upload.path, actor=actor_of(who)
        )
    except (BankError, BankImportError) as e:
        raise to_http(e) from None
    finally:
        imports.remove_quietly(upload.path)
    return {"status": "done", "report": report}


class _ChunkWriter(io.BufferedIOBase):
    """A binary sink that hands written data to a bounded queue (for streaming)."""

    def __init__(self, q: queue_mod.Queue, closed: threading.Event) -> None:
        super().__init__()
        self.q, self.gone = q, closed
        self.buf: list[bytes] = []
        self.size = 0

    def write(self, data: Any) -> int:
        if self.gone.is_set():
            raise BrokenPipeError("client went away")
        b = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self.buf.append(b)
        self.size += len(b)
        if self.size >= 64 * 1024:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buf:
            chunk = b"".join(self.buf)
            self.buf, self.size = [], 0
            while not self.gone.is_set():
                try:
                    self.q.put(chunk, timeout=0.5)
                    return
                except queue_mod.Full:
                    continue
            raise BrokenPipeError("client went away")

    def writable(self) -> bool:
        return True


_DONE = object()


def _stream_export(
    state: ServiceState, name: str, fmt: str, signal_type: str | None
) -> Iterator[bytes]:
    """Run the export in a thread, yielding its output as it is produced
    (bounded memory whatever the bank size)."""
    q: queue_mod.Queue = queue_mod.Queue(maxsize=16)
    closed = threading.Event()
    writer = _ChunkWriter(q, closed)

    def work() -> None:
        try:
            state.store.export(name, fmt, writer, signal_type)  # type: ignore[arg-type]
            writer.flush()
        except BrokenPipeError:
            return
        except Exception as e:  # noqa: BLE001 - the response has started; end it short
            log.warning("bank export failed", extra={"fields": {"error": type(e).__name__}})
        while not closed.is_set():
            try:
                q.put(_DONE, timeout=0.5)
                return
            except queue_mod.Full:
                continue

    t = threading.Thread(target=work, name="bank-export", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            yield item
    finally:
        closed.set()


@router.get("/banks/{name}/export", summary="Export a bank (streamed)")
def export_bank(
    name: str,
    state: State,
    who: Curate,
    format: Annotated[str, Query(description=f"one of {', '.join(FORMATS)}")] = "csv",
    signal_type: str | None = None,
) -> StreamingResponse:
    _check_format(format)
    _bank_or_404(state, name)
    if signal_type is not None and find_signal_type(signal_type) is None:
        raise api_error(400, "bad_signal_type", f"unknown signal type {signal_type!r}")
    ext = {"vics": "json", "csv": "csv", "icse": "csv"}.get(format, "txt")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:80] or "bank"
    return StreamingResponse(
        _stream_export(state, name, format, signal_type),
        media_type=EXPORT_CONTENT_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{safe}.{ext}"'},
    )


# ------------------------------------------------------------------- jobs
@router.get("/jobs/{job_id}", tags=["jobs"], summary="Status of a background job")
def get_job(job_id: int, state: State, who: Curate) -> dict[str, Any]:
    job = jobs.get_job(state.engine, job_id) if abs(job_id) <= MAX_ROW_ID else None
    if job is None:
        raise api_error(404, "unknown_job", f"no job with id {job_id}")
    d = job.to_dict()
    d.pop("locked_by", None)  # instance names are operator detail
    res = job.result or {}
    if job.status == "done":
        d["outcome"] = "succeeded" if res.get("ok", True) else "rejected"
    elif job.status == "dead":
        d["outcome"] = "failed"
    else:
        d["outcome"] = None
    return d
