"""The hash-chained, append-only audit trail.

Every entry carries the hash of the previous one, so the log forms a chain::

    hash(n) = SHA-256( canonical JSON of {seq, at, actor, action, target,
                                          details, prev_hash = hash(n-1)} )

Sequence numbers start at 1 and have no gaps. A one-row *head* table holds the
last sequence number and hash and is updated in the same transaction as every
append. :func:`verify_chain` recomputes every hash and then detects:

* a **changed** entry (its content no longer matches its hash),
* an **inserted** or re-ordered entry (its ``prev_hash`` does not match the
  previous entry's hash, or the log runs past the head),
* a **deleted** entry anywhere, including the newest ones (a gap in the
  sequence, or a log that ends before the head says it should).

Someone with write access to the database could still rewrite the whole chain
*and* the head consistently. Setting ``SENTINELLE_AUDIT_KEY`` (a secret kept
outside the database) closes that: the head then carries an HMAC of
(seq, hash), which only holders of the key can produce, and verification with
the key rejects a head rewritten without it.

Appends serialise on the head row: the first statement of an append is an
``UPDATE audit_head ... RETURNING``, which takes PostgreSQL's row lock (other
appenders wait until commit) and SQLite's write lock. Triggers installed by the
migration refuse ``UPDATE``/``DELETE`` on ``audit_log`` on both databases.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from ..errors import SentinelleError
from ..store.models import utcnow
from .tables import GENESIS, audit_head, audit_log

KEY_ENV = "SENTINELLE_AUDIT_KEY"
MAX_DETAILS_BYTES = 16 * 1024
MAX_TARGET = 500
MAX_ACTOR = 200
_ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_ACTOR_RE = re.compile(r"^(system|cli|(user|key):[^\x00-\x1f\x7f]{1,190})$")


class AuditError(SentinelleError):
    """Bad audit input or a damaged audit store.

    Codes: ``bad_audit_event`` (actor, action, target or details rejected),
    ``audit_head_missing`` (the anchor row was deleted: the log is damaged).
    """

    code = "audit_error"


@dataclass(frozen=True)
class AuditEvent:
    """One audit entry as stored."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso_time(self.at),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass
class VerifyResult:
    """Outcome of :func:`verify_chain`; ``ok`` is true only with no problem at all."""

    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)
    head_seq: int = 0
    anchored: bool = False  # the head MAC was checked with the audit key


# --------------------------------------------------------------------------
# Canonical form


def iso_time(at: datetime) -> str:
    """Canonical UTC time text with microseconds (naive datetimes are UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text: one byte string per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str | None,
    details_json: str,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of the canonical JSON of one entry, linked to ``prev_hash``."""
    payload = {
        "seq": int(seq),
        "at": iso_time(at),
        "actor": actor,
        "action": action,
        "target": target,
        "details": details_json,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def _audit_key(key: bytes | str | None) -> bytes | None:
    if key is None:
        key = os.environ.get(KEY_ENV, "")
    if isinstance(key, str):
        key = key.encode("utf-8")
    return key or None


def head_mac(key: bytes, seq: int, hash_: str) -> str:
    return hmac.new(key, f"sentinelle-audit-head:{int(seq)}:{hash_}".encode(), "sha256").hexdigest()


# --------------------------------------------------------------------------
# Validation


def _check(actor: str, action: str, target: Any, details: Mapping[str, Any] | None) -> tuple:
    if not isinstance(actor, str) or len(actor) > MAX_ACTOR or not _ACTOR_RE.match(actor):
        raise AuditError(
            f"bad audit actor {actor!r}: use 'user:<name>', 'key:<id>', 'system' or 'cli'",
            code="bad_audit_event",
        )
    if not isinstance(action, str) or len(action) > 100 or not _ACTION_RE.match(action):
        raise AuditError(
            f"bad audit action {action!r}: a dotted lowercase verb such as 'case.view'",
            code="bad_audit_event",
        )
    if target is not None:
        if isinstance(target, bool) or not isinstance(target, str | int):
            raise AuditError("audit target must be text or an integer", code="bad_audit_event")
        target = str(target)
        if len(target) > MAX_TARGET or any(ord(c) < 32 for c in target):
            raise AuditError(
                f"audit target must be at most {MAX_TARGET} printable characters",
                code="bad_audit_event",
            )
    if details is None:
        details = {}
    if not isinstance(details, Mapping):
        raise AuditError("audit details must be a JSON object", code="bad_audit_event")
    try:
        details_json = canonical_json(dict(details))
    except (TypeError, ValueError) as e:
        raise AuditError(
            f"audit details must be JSON-able (no bytes): {e}", code="bad_audit_event"
        ) from None
    if len(details_json.encode("utf-8")) > MAX_DETAILS_BYTES:
        raise AuditError(
            f"audit details larger than {MAX_DETAILS_BYTES} bytes", code="bad_audit_event"
        )
    return actor, action, target, details_json


# --------------------------------------------------------------------------
# Appending


@contextmanager
def write_transaction(conn_or_engine: Any) -> Iterator[Connection]:
    """A connection in a write transaction.

    An :class:`Engine` gets its own transaction (SQLite: ``BEGIN IMMEDIATE``, so
    concurrent writers queue instead of failing), committed on exit. A
    :class:`Connection` (or an ORM ``Session``) is used as it is: the work joins
    the caller's transaction and the caller commits.
    """
    if isinstance(conn_or_engine, Engine):
        conn = conn_or_engine.connect()
        if conn_or_engine.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        try:
            with conn.begin():
                yield conn
        finally:
            conn.close()
    elif isinstance(conn_or_engine, Connection):
        yield conn_or_engine
    elif hasattr(conn_or_engine, "connection"):  # sqlalchemy.orm.Session
        yield conn_or_engine.connection()
    else:
        raise TypeError("expected an Engine, a Connection or a Session")


# Built once: statements with bound parameters hit SQLAlchemy's compiled cache.
_BUMP_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(seq=audit_head.c.seq + 1)
    .returning(audit_head.c.seq, audit_head.c.hash)
)
_INSERT_ENTRY = insert(audit_log)
_SET_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(hash=bindparam("new_hash"), mac=bindparam("new_mac"), updated_at=bindparam("new_at"))
)


def _append(
    conn: Connection,
    actor: str,
    action: str,
    target: str | None,
    details_json: str,
    key: bytes | None,
) -> int:
    # The UPDATE comes first: it takes the lock that serialises appenders.
    row = conn.execute(_BUMP_HEAD).first()
    if row is None:
        raise AuditError(
            "the audit head row is missing: the audit log has been tampered with",
            code="audit_head_missing",
        )
    seq, prev = int(row[0]), str(row[1])
    at = utcnow()
    h = entry_hash(seq, at, actor, action, target, details_json, prev)
    conn.execute(
        _INSERT_ENTRY,
        {
            "id": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "target": target,
            "details": details_json,
            "prev_hash": prev,
            "hash": h,
        },
    )
    conn.execute(
        _SET_HEAD,
        {"new_hash": h, "new_mac": head_mac(key, seq, h) if key else None, "new_at": at},
    )
    return seq


def record_event(
    conn_or_engine: Any,
    *,
    actor: str,
    action: str,
    target: str | int | None = None,
    details: Mapping[str, Any] | None = None,
    key: bytes | str | None = None,
) -> int:
    """Append one audit entry and return its id (= sequence number).

    ``actor``: ``"user:<username>"``, ``"key:<id>"``, ``"system"`` or ``"cli"``.
    ``action``: a dotted verb (``"auth.login"``, ``"media.reveal"``...).
    ``details``: a small JSON object -- never media bytes or prompt text.

    Given a :class:`Connection` (or ``Session``) the entry is written inside the
    caller's transaction, so it commits or rolls back with the audited change.
    On SQLite, start such a transaction with a write (or ``BEGIN IMMEDIATE``):
    a transaction that has only read may be refused the write lock.
    """
    actor, action, target_s, details_json = _check(actor, action, target, details)
    k = _audit_key(key)
    with write_transaction(conn_or_engine) as conn:
        return _append(conn, actor, action, target_s, details_json, k)


# --------------------------------------------------------------------------
# Reading and verifying


def _event(r: Any) -> AuditEvent:
    try:
        details = json.loads(r.details)
    except ValueError:
        details = {"_unparseable": r.details}
    return AuditEvent(
        id=int(r.id),
        at=r.at,
        actor=r.actor,
        action=r.action,
        target=r.target,
        details=details if isinstance(details, dict) else {"_value": details},
        prev_hash=r.prev_hash,
        hash=r.hash,
    )


def list_events(
    engine: Engine,
    *,
    limit: int = 20,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    before_id: int | None = None,
) -> list[AuditEvent]:
    """Newest entries first. ``action`` matches a prefix (``"auth"`` -> ``auth.*``)."""
    q = select(audit_log).order_by(audit_log.c.id.desc()).limit(max(1, min(int(limit), 10_000)))
    if action:
        q = q.where(
            (audit_log.c.action == action) | audit_log.c.action.startswith(action.rstrip(".") + ".")
        )
    if actor:
        q = q.where(audit_log.c.actor == actor)
    if target is not None:
        q = q.where(audit_log.c.target == target)
    if before_id is not None:
        q = q.where(audit_log.c.id < before_id)
    with engine.connect() as conn:
        return [_event(r) for r in conn.execute(q)]


def verify_chain(
    engine: Engine, *, key: bytes | str | None = None, batch: int = 5000
) -> VerifyResult:
    """Recompute the whole chain; report every change, insertion and deletion.

    ``key`` (default ``$SENTINELLE_AUDIT_KEY``) also checks the head's HMAC.
    Reads in id order, ``batch`` rows at a time, so memory stays flat.
    """
    k = _audit_key(key)
    problems: list[str] = []
    checked = 0
    with engine.connect() as conn:
        head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).first()
        if head is None:
            problems.append("audit head row missing (deleted): the log cannot be anchored")
        expected, prev, last_id = 1, GENESIS, 0
        while True:
            rows = conn.execute(
                select(audit_log)
                .where(audit_log.c.id > last_id)
                .order_by(audit_log.c.id)
                .limit(batch)
            ).all()
            if not rows:
                break
            for r in rows:
                seq = int(r.id)
                if seq != expected:
                    problems.append(_gap(expected, seq - 1, "deleted"))
                elif r.prev_hash != prev:
                    problems.append(
                        f"entry {seq}: prev_hash does not match entry {seq - 1} "
                        "(entry inserted, re-ordered or rewritten)"
                    )
                recomputed = entry_hash(
                    seq, r.at, r.actor, r.action, r.target, r.details, r.prev_hash
                )
                if recomputed != r.hash:
                    problems.append(f"entry {seq}: content does not match its hash (changed)")
                prev, expected, last_id = r.hash, seq + 1, seq
                checked += 1
        head_seq = int(head.seq) if head is not None else 0
        anchored = False
        if head is not None:
            if last_id < head_seq:
                problems.append(_gap(last_id + 1, head_seq, "deleted (the newest entries)"))
            elif last_id > head_seq:
                problems.append(
                    f"entries {head_seq + 1}-{last_id} lie beyond the head "
                    "(added outside the audit API)"
                )
            elif head.hash != prev:
                problems.append("head hash does not match the last entry (rewritten)")
            if k is not None and head_seq > 0:
                anchored = True
                if not head.mac or not hmac.compare_digest(
                    head.mac, head_mac(k, head_seq, head.hash)
                ):
                    problems.append("head MAC invalid: the head was written without the audit key")
    return VerifyResult(
        ok=not problems, checked=checked, problems=problems, head_seq=head_seq, anchored=anchored
    )


def _gap(first: int, last: int, what: str) -> str:
    if first == last:
        return f"entry {first} missing ({what})"
    return f"entries {first}-{last} missing ({what})"
