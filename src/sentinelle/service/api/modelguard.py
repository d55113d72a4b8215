"""``POST /v1/model/scan``: check an uploaded model file without keeping it (scope ``scan``).

The model streams in as a raw body (``application/octet-stream``) or as the ``file`` part
of a multipart body. Only the header and metadata are parsed; **the tensors are hashed
as they stream** (``file_sha256`` of the upload, ``tensor_sha256`` and the per-tensor
hashes for safetensors and GGUF) and dropped, so memory stays bounded by the header
caps whatever the model's size (see :mod:`sentinelle.modelguard.upload`); with
``?hash=false`` the rest of the body is read and discarded unhashed (``file_sha256``
still comes back). Nothing is written to disk or logged.

The body is limited like a bank import, by ``SENTINELLE_MAX_IMPORT_BYTES`` (1 GiB by
default; 413 above it, before anything is read when ``Content-Length`` says so). The
answer is the ``sentinelle model scan --match --json`` record with ``path: null``:
``matches`` lists the banks' entries the identifiers hit (exact ``file_sha256`` /
``tensor_sha256``, and ``tensor_part_sha`` overlap by known model); ``?tensors=true``
adds the per-tensor hashes. A file that is broken or hostile (header
larger than the file, malformed JSON, truncated tensors, pickle bombs, absurd GGUF counts,
an empty body) is answered 422 with its stable ``code`` as soon as the header shows it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from python_multipart.multipart import parse_options_header

from ...modelguard.matching import match_model
from ...modelguard.scan import default_judge
from ...modelguard.upload import StreamScanner
from ..auth import ApiKeyInfo, api_error
from ..deps import StateDep, body_limit, require_scope
from ..uploads import UPLOAD_FIELD, UPLOAD_OPENAPI, PartEnd, PartStart, iter_multipart
from ..uploads import multipart_boundary as _boundary

router = APIRouter(prefix="/v1", tags=["model guard"])
body_limit("/v1/model/scan", "import")

Scan = Annotated[ApiKeyInfo, Depends(require_scope("scan"))]
#: Bytes gathered before one hop to a worker thread (hashing off the event loop).
FEED_BYTES = 1024 * 1024


async def _file_chunks(request: Request) -> AsyncIterator[bytes]:
    ctype, _ = parse_options_header(request.headers.get("content-type"))
    ct = ctype.decode("latin-1").lower()
    if ct == "multipart/form-data":
        seen = current = False
        async for event in iter_multipart(request, _boundary(request)):
            if isinstance(event, PartStart):
                current = event.name == UPLOAD_FIELD and not seen
                seen = seen or current
            elif isinstance(event, PartEnd):
                current = False
            elif current:
                yield bytes(event)
        if not seen:
            raise api_error(422, "missing_file", f"multipart body has no part {UPLOAD_FIELD!r}")
        return
    if ct not in ("application/octet-stream", ""):
        raise api_error(415, "unsupported_media_type", "send the model as a raw body or multipart")
    async for chunk in request.stream():
        yield chunk


def _declared_size(request: Request) -> int | None:
    ctype = request.headers.get("content-type", "")
    raw = request.headers.get("content-length")
    if raw is None or ctype.lower().startswith("multipart/"):
        return None
    try:
        return int(raw)
    except ValueError:
        return None


@router.post("/model/scan", openapi_extra=UPLOAD_OPENAPI)
async def model_scan(
    request: Request,
    state: StateDep,
    who: Scan,
    hash: Annotated[bool, Query(description="Hash the tensors as they stream.")] = True,
    tensors: Annotated[bool, Query(description="Include the per-tensor hashes.")] = False,
) -> dict[str, Any]:
    """Judge an uploaded model's metadata and card text; return its identifiers."""
    scanner = StreamScanner(hash_tensors=hash, declared_size=_declared_size(request))
    pending = bytearray()
    async for chunk in _file_chunks(request):
        pending += chunk
        if len(pending) >= FEED_BYTES:
            await run_in_threadpool(scanner.feed, bytes(pending))
            pending.clear()
    if pending:
        await run_in_threadpool(scanner.feed, bytes(pending))
    result = await run_in_threadpool(scanner.finish, default_judge())
    result.matches = await run_in_threadpool(match_model, result, state.matcher, state.store)
    return result.to_dict(tensors=tensors)
