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
"""

from __future__ import annotations

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

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


class _FilePart:
    """Callbacks collecting the ``file`` part of a multipart body."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data: bytearray | None = None
        self.parts = 0
        self._in_file = False
        self._hname = bytearray()
        self._hval = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self.fields: dict[str, bytearray] = {}
        self._field: str | None = None

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise api_error(400, "bad_multipart", f"more than {MAX_PARTS} parts")
        self._headers = {}
        self._in_file = False
        self._field = None

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
        if params.get(b"name") == UPLOAD_FIELD.encode() and self.data is None:
            self._in_file = True
            self.data = bytearray()
        name = (params.get(b"name") or b"").decode("latin-1")
        if name in FORM_FIELDS and name not in self.fields:
            self._field = name
            self.fields[name] = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file and self.data is not None:
            self.data += data[start:end]
            if len(self.data) > self.limit:
                raise _too_large(self.limit)
        elif self._field is not None:
            self.fields[self._field] += data[start:end]
            if len(self.fields[self._field]) > MAX_FIELD_BYTES:
                raise api_error(422, "field_too_long", f"form field {self._field!r} is too long")

    def on_part_end(self) -> None:
        self._in_file = False
        self._field = None


async def _read_multipart(request: Request, boundary: bytes, limit: int) -> bytes:
    collector = _FilePart(limit)
    callbacks = {
        name: getattr(collector, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
        )
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except ValueError as e:  # MultipartParseError and friends
        raise api_error(400, "bad_multipart", f"malformed multipart body: {e}") from None
    if collector.data is None:
        raise api_error(422, "missing_file", f"multipart body has no part named {UPLOAD_FIELD!r}")
    request.state.form_fields = {
        k: bytes(v).decode("utf-8", "replace") for k, v in collector.fields.items()
    }
    return bytes(collector.data)


async def read_upload(request: Request, limit: int) -> bytes:
    """The uploaded media bytes; 413 over ``limit``, 415/400/422 for bad bodies."""
    ctype, params = parse_options_header(request.headers.get("content-type"))
    ct = ctype.decode("latin-1").lower()
    if ct == "multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary or len(boundary) > 200:
            raise api_error(400, "bad_multipart", "multipart body without a valid boundary")
        return await _read_multipart(request, boundary, limit)
    if ct in ("application/octet-stream", "") or ct.startswith(("image/", "video/")):
        return await _read_raw(request, limit)
    raise api_error(
        415,
        "unsupported_media_type",
        "send the media as multipart/form-data (field 'file') or as a raw body "
        "(application/octet-stream, image/*, video/*)",
    )
