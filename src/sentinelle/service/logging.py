"""Structured JSON logs: one line per request, never a body or a file name.

The access log line (logger ``sentinelle.access``)::

    {"ts": "2025-01-01T12:00:00.123Z", "level": "INFO", "logger": "sentinelle.access",
     "msg": "request", "request_id": "3f2a...", "method": "POST", "route": "/v1/scan",
     "status": 200, "duration_ms": 41.2, "key_id": 7, "instance": "host:123:ab12cd"}

What is logged is an explicit allow-list of fields (:data:`ACCESS_FIELDS`):
request bodies, uploads, their names, query strings and hashes never are. Other
modules log through :func:`log_event` with their own small dicts.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

ACCESS_LOGGER = "sentinelle.access"
ACCESS_FIELDS = (
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "key_id",
    "instance",
    "bytes_in",
)
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_from(header_value: str | None) -> str:
    """The caller's ``X-Request-ID`` if it is a sane token, else a fresh one."""
    if header_value and _REQUEST_ID_RE.match(header_value):
        return header_value
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; ``extra={"fields": {...}}`` adds keys."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
        return json.dumps(out, default=str, separators=(",", ":"))


def configure_logging(level: str = "INFO") -> None:
    """Send ``sentinelle.*`` and ``uvicorn`` logs to stderr as JSON lines (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.set_name("sentinelle-json")
    for name in ("sentinelle", "uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers = [h for h in lg.handlers if h.get_name() != "sentinelle-json"]
        lg.addHandler(handler)
        lg.setLevel(level)
        lg.propagate = False
    # the multipart parser's warnings quote positions in uploaded bodies: not needed
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    # uvicorn's own access log would duplicate ours (and log query strings): silence it
    logging.getLogger("uvicorn.access").disabled = True


def log_event(logger: logging.Logger, msg: str, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, msg, extra={"fields": fields})


def log_access(**fields: Any) -> None:
    safe = {k: fields[k] for k in ACCESS_FIELDS if k in fields}
    logging.getLogger(ACCESS_LOGGER).info("request", extra={"fields": safe})
