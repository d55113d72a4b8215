"""The child side of the isolated C2PA reader: ``python -m sentinelle.provenance.c2pa_worker``.

The native c2pa library parses hostile bytes; a bug in it may hang or crash. So the parent
(:mod:`.c2pa_isolation`) runs it in this long-lived child process, which it can time out
and kill with SIGKILL without losing anything but this one read.

Wire format on the child's stdin/stdout (big-endian, no pickle):

* the child writes one byte ``R`` once its imports are done (ready);
* request: ``>II`` (length of the trust-anchor PEM, length of the data), the PEM (UTF-8,
  empty for none), the data;
* reply: ``>BI`` (status, payload length), the payload: status 0 = no manifest (empty
  payload), 1 = the manifest store JSON (UTF-8), 2 = an error
  ``{"type", "message", "c2pa"}`` (JSON: the exception's class name, its message, whether it
  is a ``c2pa.C2paError``).

The reader is ``module:function`` (``--reader``), ``(data, pem) -> str | None``; the default
is :func:`sentinelle.provenance.c2pa_reader.read_store_json`. Tests inject a reader that
hangs to prove the parent's kill is real. EOF on stdin ends the child (the parent is gone).
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import sys
from collections.abc import Callable
from typing import BinaryIO

DEFAULT_READER = "sentinelle.provenance.c2pa_reader:read_store_json"
READY = b"R"
REQUEST = struct.Struct(">II")
REPLY = struct.Struct(">BI")
STATUS_NONE, STATUS_STORE, STATUS_ERROR = 0, 1, 2

Reader = Callable[[bytes, str | None], str | None]


def resolve_reader(spec: str) -> Reader:
    """``"package.module:function"`` -> the function."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"reader must be module:function, not {spec!r}")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    chunks: list[bytes] = []
    left = n
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _is_c2pa_error(err: BaseException) -> bool:
    try:
        import c2pa
    except ImportError:  # pragma: no cover - the default reader needs it anyway
        return False
    return isinstance(err, c2pa.C2paError)


def serve(reader: Reader, inp: BinaryIO, out: BinaryIO) -> None:
    """Answer requests from ``inp`` on ``out`` until EOF."""
    out.write(READY)
    out.flush()
    while True:
        head = _read_exact(inp, REQUEST.size)
        if head is None:
            return
        pem_len, data_len = REQUEST.unpack(head)
        pem_raw = _read_exact(inp, pem_len) if pem_len else b""
        data = _read_exact(inp, data_len) if data_len else b""
        if pem_raw is None or data is None:
            return
        pem = pem_raw.decode("utf-8") or None
        try:
            text = reader(data, pem)
        except Exception as e:  # noqa: BLE001 - every failure goes back to the parent
            status = STATUS_ERROR
            payload = json.dumps(
                {"type": type(e).__name__, "message": str(e)[:1000], "c2pa": _is_c2pa_error(e)}
            ).encode()
        else:
            status = STATUS_NONE if text is None else STATUS_STORE
            payload = b"" if text is None else text.encode("utf-8")
        out.write(REPLY.pack(status, len(payload)))
        out.write(payload)
        out.flush()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    spec = DEFAULT_READER
    if len(args) == 2 and args[0] == "--reader":
        spec = args[1]
    # The protocol owns fd 1; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    reader = resolve_reader(spec)
    if spec == DEFAULT_READER:
        import c2pa  # noqa: F401 - load the native library before saying ready
    serve(reader, sys.stdin.buffer, out)
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a child process
    raise SystemExit(main())
