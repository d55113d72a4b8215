"""Read an uploaded file into memory, under a size limit, without touching disk.

Two ways to upload:

* ``multipart/form-data`` with the media in the part named ``file`` (what
  ``curl -F file=@photo.jpg`` sends). Parsed as it streams with
  ``python-multipart``'s low-level parser: unlike framework form parsing, no
  part is ever spooled to a temporary file, and other parts are discarded.
* a raw body: ``application/octet-stream``, ``image/*`` or ``video/*``.

The declared type is only a transport detail: the media type is detected from
the bytes (:mod:`sentinelle.media.detect`), so a mislabelled upload is hashed as
what it really is, or refused as unsupported. File names are never kept.

Other multipart consumers (the HMA routes' ``photo``/``video`` parts, bank
imports) build on :func:`iter_multipart`, the same disk-free streaming parser.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from .auth import api_error

UPLOAD_FIELD = "file"
MAX_PARTS = 16
#: Small text parts kept alongside the file (``request.state.form_fields``), e.g.
#: the platform ``account_id`` that /v1/scan files matches under for review, and
#: ``guard`` (/v1/scan runs the image guard when it is true).
FORM_FIELDS = ("account_id", "guard")
MAX_FIELD_BYTES = 1024

UPLOAD_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [UPLOAD_FIELD],
                    "properties": {UPLOAD_FIELD: {"type": "string", "format": "binary"}},
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _too_large(limit: int):  # type: ignore[no-untyped-def]
    return api_error(
        413, "file_too_large", f"upload is over the limit of {limit} bytes", limit=limit
    )


async def _read_raw(request: Request, limit: int) -> bytes:
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise _too_large(limit)
    return bytes(buf)


@dataclass(frozen=True)
class PartStart:
    """A multipart part begins: its form ``name``, and ``filename`` for a file part
    (a part whose Content-Disposition carries a file name, as browsers and
    ``curl -F name=@file`` send files; ``None`` for a plain text field)."""

    name: str
    filename: str | None


class PartEnd:
    """The current part is complete (use the :data:`PART_END` singleton)."""


PART_END = PartEnd()
#: What :func:`iter_multipart` yields: a part's start, a piece of its data, its end.
MultipartEvent = PartStart | bytes | PartEnd


class _Events:
    """python-multipart callbacks turning one parsed chunk into a list of events."""

    def __init__(self) -> None:
        self.events: list[MultipartEvent] = []
        self._hname = bytearray()
        self._hval = bytearray()
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hval += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._hname).lower()] = bytes(self._hval)
        self._hname.clear()
        self._hval.clear()

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition"))
        name = (params.get(b"name") or b"").decode("latin-1")
        raw_filename = params.get(b"filename")
        filename = None if raw_filename is None else raw_filename.decode("latin-1")
        self.events.append(PartStart(name, filename))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if end > start:
            self.events.append(data[start:end])

    def on_part_end(self) -> None:
        self.events.append(PART_END)


def multipart_boundary(request: Request) -> bytes:
    """The boundary of a ``multipart/form-data`` request; 400 ``bad_multipart`` if the
    body is not multipart or its boundary is missing or absurdly long."""
    ctype, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if ctype.lower() != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise api_error(400, "bad_multipart", "multipart body without a valid boundary")
    return boundary


async def iter_multipart(request: Request, boundary: bytes) -> AsyncIterator[MultipartEvent]:
    """Stream a multipart body as events, in memory, as it arrives.

    Unlike ``request.form()`` (which spools any part over 1 MiB to a temporary
    file), nothing is ever written to disk and nothing is kept: the caller decides
    what to keep of each part (a file in memory under a limit, a spool of its own,
    or nothing). At most one network chunk of events is buffered at a time.
    A malformed or truncated body (no closing boundary) raises 400 ``bad_multipart``.
    """
    collector = _Events()
    try:
        parser = MultipartParser(boundary, collector.callbacks())
    except ValueError as e:
        raise api_error(400, "bad_multipart", f"malformed multipart body: {e}") from None
    async for chunk in request.stream():
        try:
            parser.write(chunk)
        except ValueError as e:  # MultipartParseError and friends
            raise api_error(400, "bad_multipart", f"malformed multipart body: {e}") from None
        events, collector.events = collector.events, []
        for event in events:
            yield event
    try:
        parser.finalize()
    except ValueError as e:
        raise api_error(400, "bad_multipart", f"malformed multipart body: {e}") from None
    if parser.state not in (MultipartState.END, MultipartState.END_BOUNDARY):
        # Truncated: the last part may be cut short; never hand on half a file.
        raise api_error(400, "bad_multipart", "multipart body ends before its closing boundary")
    for event in collector.events:
        yield event


async def read_multipart_form(
    request: Request,
    limit: int,
    fields: Collection[str],
    *,
    field_limit: int = MAX_FIELD_BYTES,
    max_parts: int = MAX_PARTS,
) -> tuple[bytes, dict[str, str]]:
    """The first part named ``file`` (at most ``limit`` bytes, else 413) and the first
    part of each name in ``fields`` (UTF-8 text of at most ``field_limit`` bytes, else
    422 ``field_too_long`` / ``bad_field``); every other part is read and dropped.
    400 ``bad_multipart`` for a malformed or truncated body or more than
    ``max_parts`` parts; 422 ``missing_file`` without a file part."""
    boundary = multipart_boundary(request)
    data: bytearray | None = None
    kept: dict[str, bytearray] = {}
    parts = 0
    current: str | None = None  # the kept part being read: UPLOAD_FIELD, a field, or None
    async for event in iter_multipart(request, boundary):
        if isinstance(event, PartStart):
            parts += 1
            if parts > max_parts:
                raise api_error(400, "bad_multipart", f"more than {max_parts} parts")
            current = None
            if event.name == UPLOAD_FIELD and data is None:
                current, data = UPLOAD_FIELD, bytearray()
            elif event.name in fields and event.name not in kept:
                current, kept[event.name] = event.name, bytearray()
        elif isinstance(event, PartEnd):
            current = None
        elif current == UPLOAD_FIELD and data is not None:
            data += event
            if len(data) > limit:
                raise _too_large(limit)
        elif current is not None:
            kept[current] += event
            if len(kept[current]) > field_limit:
                raise api_error(
                    422, "field_too_long", f"form field {current!r} is over {field_limit} bytes"
                )
    if data is None:
        raise api_error(422, "missing_file", f"multipart body has no part named {UPLOAD_FIELD!r}")
    text: dict[str, str] = {}
    for name, value in kept.items():
        try:
            text[name] = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise api_error(422, "bad_field", f"form field {name!r} is not UTF-8 text") from None
    return bytes(data), text


async def read_upload(request: Request, limit: int) -> bytes:
    """The uploaded media bytes; 413 over ``limit``, 415/400/422 for bad bodies."""
    ctype, _ = parse_options_header(request.headers.get("content-type"))
    ct = ctype.decode("latin-1").lower()
    if ct == "multipart/form-data":
        data, request.state.form_fields = await read_multipart_form(request, limit, FORM_FIELDS)
        return data
    if ct in ("application/octet-stream", "") or ct.startswith(("image/", "video/")):
        return await _read_raw(request, limit)
    raise api_error(
        415,
        "unsupported_media_type",
        "send the media as multipart/form-data (field 'file') or as a raw body "
        "(application/octet-stream, image/*, video/*)",
    )
