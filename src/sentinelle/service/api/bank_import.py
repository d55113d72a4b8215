"""Bulk bank imports over HTTP: spooling uploads, and the ``bank_import`` job.

An import upload is streamed into a **private spool file** (mode 0600, in a 0700
directory) while its size is checked, so a hostile client cannot make the
service hold a gigabyte in memory. Then:

* a **small** upload (``<= sync_max_bytes``) is imported at once, inside the
  request, and the spool file deleted;
* a **large** one becomes a durable job of kind ``bank_import`` (see
  :mod:`sentinelle.jobs.queue`); the request answers 202 with the job id and
  ``GET /v1/jobs/{id}`` reports the outcome.

Either way the import itself is :meth:`BankStore.import_file`: it validates every
line before writing, then writes everything in ONE transaction. A rejected
import (any bad line) writes nothing and records every bad line (the first
:data:`MAX_REPORTED_ERRORS` of them). A ``kill -9`` in the middle rolls the
transaction back; the job's lease then expires, another worker claims it and
runs it again from the spool file, which is deleted only once the job has
reached a final state (done, rejected, or its last attempt failed).

Several instances on different hosts: the spool file lives on the host that
received the upload. A worker elsewhere that cannot see it fails the attempt
(retried later, likely by the right host); point ``spool_dir`` at shared storage
to let any host run any import.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import BankError, BankImportError
from ...formats import get_format
from ...formats._io import InputLimits
from ...jobs import queue

JOB_KIND = "bank_import"
DEFAULT_SYNC_MAX_BYTES = 1024 * 1024  # uploads up to 1 MiB are imported inside the request
MAX_REPORTED_ERRORS = 1000  # bad lines kept in a job result / error body


class UploadTooLarge(Exception):
    """The upload went past the configured limit (the spool file is already gone)."""


@dataclass(frozen=True)
class SpooledUpload:
    path: Path
    size: int


def spool_dir(settings: Any) -> Path:
    """The private directory for import uploads (created 0700 on first use).

    ``settings.extra["spool_dir"]`` overrides the default
    ``<tmp>/sentinelle-spool-<uid>``.
    """
    extra = getattr(settings, "extra", None) or {}
    configured = extra.get("spool_dir")
    uid = os.getuid() if hasattr(os, "getuid") else 0
    d = Path(configured) if configured else Path(tempfile.gettempdir()) / f"sentinelle-spool-{uid}"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def sync_max_bytes(settings: Any) -> int:
    extra = getattr(settings, "extra", None) or {}
    return int(extra.get("import_sync_max_bytes", DEFAULT_SYNC_MAX_BYTES))


async def spool_stream(chunks: AsyncIterator[bytes], directory: Path, limit: int) -> SpooledUpload:
    """Write ``chunks`` to a new private file in ``directory``; raise
    :class:`UploadTooLarge` (deleting the file) once more than ``limit`` bytes came."""
    fd, name = tempfile.mkstemp(prefix="import-", suffix=".upload", dir=directory)
    os.fchmod(fd, 0o600)
    size = 0
    ok = False
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge(f"upload larger than the limit of {limit} bytes")
                f.write(chunk)
        ok = True
        return SpooledUpload(Path(name), size)
    finally:
        if not ok:
            remove_quietly(name)


def remove_quietly(path: str | os.PathLike[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def truncated_error(err: BankImportError) -> dict[str, Any]:
    """The error as a JSON body, keeping at most :data:`MAX_REPORTED_ERRORS` lines."""
    d = err.to_dict()
    errors = d.get("errors", [])
    d["errors_total"] = len(errors)
    d["errors"] = errors[:MAX_REPORTED_ERRORS]
    return d


def import_limits(settings: Any) -> InputLimits:
    return InputLimits(max_bytes=int(settings.max_import_bytes))


def run_import(
    state: Any, bank: str, fmt: str, path: Path, *, actor: str = "system"
) -> dict[str, Any]:
    """Import ``path`` into ``bank`` now. Returns the import report as a dict;
    raises :class:`BankImportError` / :class:`BankError` (nothing written).
    ``actor`` (who asked for it) goes in the ``bank.import`` audit row."""
    get_format(fmt)  # unknown format -> BankImportError before touching the bank
    report = state.store.import_file(
        bank, path, fmt, limits=import_limits(state.settings), actor=actor
    )
    return report.to_dict()


def enqueue_import(
    state: Any, bank: str, fmt: str, upload: SpooledUpload, *, actor: str = "system"
) -> int:
    """Queue a ``bank_import`` job for a spooled upload; returns the job id.
    ``actor`` travels in the payload so the worker audits the import as its caller."""
    payload = {
        "actor": actor,
        "bank": bank,
        "format": fmt,
        "path": str(upload.path),
        "size": upload.size,
        "host": socket.gethostname(),
        "upload_id": uuid.uuid4().hex,
    }
    return queue.enqueue(state.engine, JOB_KIND, payload, max_attempts=5)


def handle_bank_import(state: Any, job: Any) -> dict[str, Any]:
    """The ``bank_import`` job handler.

    Returns ``{"ok": True, "report": {...}}`` or, for an import rejected as a
    whole (bad lines, unknown bank or format), ``{"ok": False, "error": {...}}``:
    a rejection is final, retrying cannot help. Other failures (database down,
    spool file on another host) raise, so the worker retries with back-off.
    """
    p = job.payload or {}
    path = Path(str(p.get("path", "")))
    bank, fmt = str(p.get("bank", "")), str(p.get("format", ""))
    actor = str(p.get("actor") or "system")  # jobs queued before auditing carry none
    last_attempt = job.attempts >= job.max_attempts
    if not path.name.startswith("import-") or not path.is_file():
        if p.get("host") not in (None, socket.gethostname()) and not last_attempt:
            raise FileNotFoundError("the upload is spooled on another host")
        return {
            "ok": False,
            "error": {"code": "upload_missing", "message": "the uploaded file is gone"},
        }
    try:
        report = run_import(state, bank, fmt, path, actor=actor)  # the worker keeps the lease
    except BankImportError as e:
        remove_quietly(path)
        return {"ok": False, "error": truncated_error(e)}
    except BankError as e:
        remove_quietly(path)
        return {"ok": False, "error": e.to_dict()}
    except Exception:
        if last_attempt:
            remove_quietly(path)
        raise
    remove_quietly(path)
    return {"ok": True, "report": report, "bank": bank, "format": fmt}


def register() -> None:
    """Register :func:`handle_bank_import` with the job worker (see :mod:`sentinelle.plugins`)."""
    from ...jobs import worker

    worker.register_handler(JOB_KIND, handle_bank_import)
