"""Append-only, hash-chained audit trail (see :mod:`sentinelle.audit.chain`).

from sentinelle.audit import record_event, verify_chain
record_event(engine_or_conn, actor="user:alice", action="media.reveal",
             target="item:42", details={"case_id": 7})
verify_chain(engine).ok
"""

from __future__ import annotations

from .chain import (
    AuditError,
    AuditEvent,
    VerifyResult,
    entry_hash,
    list_events,
    record_event,
    verify_chain,
)

__all__ = [
    "AuditError",
    "AuditEvent",
    "VerifyResult",
    "entry_hash",
    "list_events",
    "record_event",
    "verify_chain",
]
