"""The encrypted evidence store: put, read, destroy (crypto-shred with a proof).

    store = EvidenceStore(engine, load_master_key())
    blob_id = store.put(case_id, data, media_type="image/jpeg", filename="a.jpg",
                        actor="user:alice")
    data, media_type = store.get(blob_id, actor="user:alice")
    proof = store.destroy_case(case_id, actor="cli", reason="retention expired")

Media is encrypted in memory before it reaches the database and decrypted in
memory when read; no temporary file is ever written. Every store, read and
destruction is written to the audit trail in the same transaction (a read is
a use of the case key).

Destruction deletes the case's wrapped data key and every ciphertext, and records
a proof in ``deletion_log`` (and its hash in the audit trail): SHA-256 of each
destroyed ciphertext and of the wrapped key, time, actor, reason, the holds it
overrode. It is refused while a preservation hold is active unless ``force`` is
given (the CLI and the console allow that to administrators only).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from ..audit import record_event
from ..audit.chain import canonical_json, iso_time, write_transaction
from . import crypto
from .errors import EvidenceError
from .preservation import _aware, _case_id, _reason, active_holds
from .tables import deletion_log, evidence_blobs, evidence_keys, preservation_holds

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MAX_FILENAME = 255
_MEDIA_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}$")


@dataclass(frozen=True)
class BlobInfo:
    """What is known about a blob without decrypting it."""

    id: int
    case_id: int
    media_type: str
    size: int
    created_at: datetime
    created_by: str
    destroyed_at: datetime | None


@dataclass(frozen=True)
class EvidenceItem:
    """A decrypted blob (kept in memory only)."""

    blob_id: int
    case_id: int
    data: bytes
    media_type: str
    filename: str | None


def _info(r: Any) -> BlobInfo:
    return BlobInfo(
        id=int(r.id),
        case_id=int(r.case_id),
        media_type=r.media_type,
        size=int(r.size),
        created_at=r.created_at,
        created_by=r.created_by,
        destroyed_at=r.destroyed_at,
    )


def _dialect_insert(conn: Connection):  # type: ignore[no-untyped-def]
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


class EvidenceStore:
    """AES-256-GCM evidence under per-case data keys wrapped by ``master_key``."""

    def __init__(
        self, engine: Engine, master_key: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.engine = engine
        self._master = crypto.check_master_key(master_key)
        self.master_key_id = crypto.master_key_id(self._master)
        self.max_bytes = int(max_bytes)

    # -- keys -------------------------------------------------------------

    def _case_key(self, conn: Connection, case_id: int, *, create: bool) -> bytes:
        q = select(evidence_keys).where(evidence_keys.c.case_id == case_id).with_for_update()
        row = conn.execute(q).first()
        if row is None:
            if not create:
                raise EvidenceError(f"no evidence key for case {case_id}", code="no_evidence")
            wrapped = crypto.wrap_key(self._master, crypto.new_data_key(), case_id)
            conn.execute(
                _dialect_insert(conn)(evidence_keys)
                .values(
                    case_id=case_id,
                    wrapped_key=wrapped,
                    master_key_id=self.master_key_id,
                    created_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing(index_elements=["case_id"])
            )
            row = conn.execute(q).first()
        if row.wrapped_key is None:
            raise EvidenceError(
                f"the evidence of case {case_id} was destroyed", code="evidence_destroyed"
            )
        if row.master_key_id != self.master_key_id:
            raise EvidenceError(
                f"case {case_id} is wrapped by master key {row.master_key_id}, "
                f"not by the configured one ({self.master_key_id})",
                code="decrypt_failed",
            )
        return crypto.unwrap_key(self._master, row.wrapped_key, case_id)

    # -- put / get ----------------------------------------------------------

    def put(
        self,
        case_id: int,
        data: bytes,
        *,
        media_type: str,
        filename: str | None = None,
        actor: str,
    ) -> int:
        """Encrypt ``data`` for ``case_id`` and store it; returns the blob id."""
        case_id = _case_id(case_id)
        if not isinstance(data, bytes | bytearray | memoryview) or len(data) == 0:
            raise EvidenceError("evidence data must be non-empty bytes", code="bad_evidence")
        if len(data) > self.max_bytes:
            raise EvidenceError(f"evidence larger than {self.max_bytes} bytes", code="bad_evidence")
        mt = (media_type or "").strip().lower() if isinstance(media_type, str) else ""
        if not _MEDIA_TYPE_RE.match(mt):
            raise EvidenceError(f"bad media type {media_type!r}", code="bad_evidence")
        if filename is not None and (
            not isinstance(filename, str)
            or not 1 <= len(filename) <= MAX_FILENAME
            or any(ord(c) < 32 for c in filename)
        ):
            raise EvidenceError(
                f"file name must be 1-{MAX_FILENAME} printable characters", code="bad_evidence"
            )
        now = datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            dek = self._case_key(conn, case_id, create=True)
            blob_id = int(
                conn.execute(
                    insert(evidence_blobs).returning(evidence_blobs.c.id),
                    {
                        "case_id": case_id,
                        "media_type": mt,
                        "size": len(data),
                        "created_at": now,
                        "created_by": actor,
                    },
                ).scalar_one()
            )
            nonce, ct = crypto.encrypt(dek, bytes(data), crypto.blob_aad(case_id, blob_id, mt))
            name_ct = None
            if filename is not None:
                n2, c2 = crypto.encrypt(
                    dek, filename.encode(), crypto.blob_aad(case_id, blob_id, mt, "filename")
                )
                name_ct = n2 + c2
            conn.execute(
                update(evidence_blobs)
                .where(evidence_blobs.c.id == blob_id)
                .values(nonce=nonce, ciphertext=ct, filename_ct=name_ct)
            )
            record_event(
                conn,
                actor=actor,
                action="evidence.store",
                target=f"case:{case_id}",
                details={"blob_id": blob_id, "size": len(data), "media_type": mt},
            )
        return blob_id

    def read(self, blob_id: int, *, actor: str) -> EvidenceItem:
        """Decrypt a blob in memory (audited as ``evidence.read``)."""
        if isinstance(blob_id, bool) or not isinstance(blob_id, int):
            raise EvidenceError(f"no evidence blob {blob_id!r}", code="unknown_blob")
        with write_transaction(self.engine) as conn:
            r = conn.execute(select(evidence_blobs).where(evidence_blobs.c.id == blob_id)).first()
            if r is None:
                raise EvidenceError(f"no evidence blob {blob_id}", code="unknown_blob")
            if r.destroyed_at is not None or r.ciphertext is None:
                raise EvidenceError(
                    f"evidence blob {blob_id} was destroyed", code="evidence_destroyed"
                )
            case_id = int(r.case_id)
            dek = self._case_key(conn, case_id, create=False)
            data = crypto.decrypt(
                dek, r.nonce, r.ciphertext, crypto.blob_aad(case_id, blob_id, r.media_type)
            )
            filename = None
            if r.filename_ct:
                nonce, body = (
                    r.filename_ct[: crypto.NONCE_BYTES],
                    r.filename_ct[crypto.NONCE_BYTES :],
                )
                filename = crypto.decrypt(
                    dek, nonce, body, crypto.blob_aad(case_id, blob_id, r.media_type, "filename")
                ).decode()
            record_event(
                conn,
                actor=actor,
                action="evidence.read",
                target=f"case:{case_id}",
                details={"blob_id": blob_id},
            )
        return EvidenceItem(blob_id, case_id, data, r.media_type, filename)

    def get(self, blob_id: int, *, actor: str) -> tuple[bytes, str]:
        """``(data, media_type)`` of a blob, decrypted in memory."""
        item = self.read(blob_id, actor=actor)
        return item.data, item.media_type

    def info(self, blob_id: int) -> BlobInfo:
        with self.engine.connect() as conn:
            r = conn.execute(select(evidence_blobs).where(evidence_blobs.c.id == blob_id)).first()
        if r is None:
            raise EvidenceError(f"no evidence blob {blob_id}", code="unknown_blob")
        return _info(r)

    def list_case(self, case_id: int) -> list[BlobInfo]:
        return list_case_blobs(self.engine, case_id)

    def destroy_case(
        self, case_id: int, *, actor: str, reason: str, force: bool = False
    ) -> dict[str, Any]:
        """Crypto-shred a case's evidence; see :func:`destroy_case`."""
        return destroy_case(self.engine, case_id, actor=actor, reason=reason, force=force)

    def rewrap(self, new_master_key: bytes, *, actor: str) -> int:
        """Master-key rotation: re-wrap every live case key under ``new_master_key``.

        Returns the number of case keys re-wrapped. Blobs are untouched (their
        data keys do not change). Afterwards only the new master key opens them.
        """
        new = crypto.check_master_key(new_master_key)
        new_id = crypto.master_key_id(new)
        n = 0
        with write_transaction(self.engine) as conn:
            rows = conn.execute(
                select(evidence_keys.c.case_id, evidence_keys.c.wrapped_key)
                .where(
                    evidence_keys.c.wrapped_key.is_not(None),
                    evidence_keys.c.master_key_id == self.master_key_id,
                )
                .with_for_update()
            ).all()
            for case_id, wrapped in rows:
                dek = crypto.unwrap_key(self._master, wrapped, int(case_id))
                conn.execute(
                    update(evidence_keys)
                    .where(evidence_keys.c.case_id == case_id)
                    .values(
                        wrapped_key=crypto.wrap_key(new, dek, int(case_id)), master_key_id=new_id
                    )
                )
                n += 1
            record_event(
                conn,
                actor=actor,
                action="evidence.rewrap",
                details={"from": self.master_key_id, "to": new_id, "cases": n},
            )
        self._master, self.master_key_id = new, new_id
        return n


def list_case_blobs(engine: Engine, case_id: int) -> list[BlobInfo]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(evidence_blobs)
            .where(evidence_blobs.c.case_id == case_id)
            .order_by(evidence_blobs.c.id)
        ).all()
    return [_info(r) for r in rows]


def _sha256(b: bytes | None) -> str | None:
    return None if b is None else hashlib.sha256(bytes(b)).hexdigest()


def destroy_case(
    conn_or_engine: Any,
    case_id: int,
    *,
    actor: str,
    reason: str,
    force: bool = False,
    kind: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Destroy every blob and the data key of ``case_id``; return the proof record.

    Refused with ``under_hold`` while a hold is active at ``now`` unless ``force``
    (the overridden holds are then released and listed in the proof). Needs no
    master key: nothing is decrypted. The proof (canonical JSON) is stored in
    ``deletion_log`` and its SHA-256 in the audit trail::

        {"version": 1, "case_id", "destroyed_at", "actor", "reason", "kind",
         "forced", "holds_overridden", "master_key_id", "wrapped_key_sha256",
         "blobs": [{"id", "media_type", "size", "ciphertext_sha256"}]}

    The returned dict adds ``proof_sha256``, ``deletion_id`` and ``audit_id``.
    """
    case_id = _case_id(case_id)
    why = _reason(reason)
    at = _aware(now)
    with write_transaction(conn_or_engine) as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # overwrite freed pages instead of leaving the bytes in free space
            conn.exec_driver_sql("PRAGMA secure_delete = ON")
        try:
            return _destroy(conn, case_id, actor, why, force, kind, at)
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA secure_delete = OFF")


def _destroy(
    conn: Connection,
    case_id: int,
    actor: str,
    reason: str,
    force: bool,
    kind: str | None,
    at: datetime,
) -> dict[str, Any]:
    key = conn.execute(
        select(evidence_keys).where(evidence_keys.c.case_id == case_id).with_for_update()
    ).first()
    if key is None:
        raise EvidenceError(f"no evidence stored for case {case_id}", code="no_evidence")
    if key.wrapped_key is None:
        raise EvidenceError(
            f"the evidence of case {case_id} was already destroyed", code="evidence_destroyed"
        )
    held = active_holds(conn, case_id, at)
    if held and not force:
        raise EvidenceError(
            f"case {case_id} is under hold ({', '.join(f'{h.kind} hold {h.id}' for h in held)}); "
            "release it first, or force destruction as an administrator with a reason",
            code="under_hold",
        )
    blobs = conn.execute(
        select(
            evidence_blobs.c.id,
            evidence_blobs.c.media_type,
            evidence_blobs.c.size,
            evidence_blobs.c.nonce,
            evidence_blobs.c.ciphertext,
        )
        .where(evidence_blobs.c.case_id == case_id, evidence_blobs.c.destroyed_at.is_(None))
        .order_by(evidence_blobs.c.id)
    ).all()
    proof: dict[str, Any] = {
        "version": 1,
        "case_id": case_id,
        "destroyed_at": iso_time(at),
        "actor": actor,
        "reason": reason,
        "kind": kind or ("forced" if held else "request"),
        "forced": bool(held),
        "holds_overridden": [h.id for h in held],
        "master_key_id": key.master_key_id,
        "wrapped_key_sha256": _sha256(key.wrapped_key),
        "blobs": [
            {
                "id": int(b.id),
                "media_type": b.media_type,
                "size": int(b.size),
                "ciphertext_sha256": _sha256((b.nonce or b"") + (b.ciphertext or b"")),
            }
            for b in blobs
        ],
    }
    proof_json = canonical_json(proof)
    proof_sha = hashlib.sha256(proof_json.encode()).hexdigest()
    for h in held:
        conn.execute(
            update(preservation_holds)
            .where(preservation_holds.c.id == h.id)
            .values(
                released_at=at, released_by=actor, release_reason=f"forced destruction: {reason}"
            )
        )
    conn.execute(
        update(evidence_blobs)
        .where(evidence_blobs.c.case_id == case_id, evidence_blobs.c.destroyed_at.is_(None))
        .values(nonce=None, ciphertext=None, filename_ct=None, destroyed_at=at)
    )
    conn.execute(
        update(evidence_keys)
        .where(evidence_keys.c.case_id == case_id)
        .values(wrapped_key=None, destroyed_at=at)
    )
    deletion_id = int(
        conn.execute(
            insert(deletion_log).returning(deletion_log.c.id),
            {
                "case_id": case_id,
                "at": at,
                "actor": actor,
                "kind": proof["kind"],
                "reason": reason,
                "proof": proof_json,
                "proof_sha256": proof_sha,
            },
        ).scalar_one()
    )
    audit_id = record_event(
        conn,
        actor=actor,
        action="evidence.destroy",
        target=f"case:{case_id}",
        details={
            "deletion_id": deletion_id,
            "proof_sha256": proof_sha,
            "blobs": len(blobs),
            "kind": proof["kind"],
            "holds_overridden": proof["holds_overridden"],
        },
    )
    return {**proof, "proof_sha256": proof_sha, "deletion_id": deletion_id, "audit_id": audit_id}


def deletion_records(engine: Engine, case_id: int | None = None) -> list[dict[str, Any]]:
    """Stored destruction proofs (newest first), each with its id and proof hash."""
    q = select(deletion_log).order_by(deletion_log.c.id.desc())
    if case_id is not None:
        q = q.where(deletion_log.c.case_id == case_id)
    with engine.connect() as conn:
        return [
            {**json.loads(r.proof), "deletion_id": int(r.id), "proof_sha256": r.proof_sha256}
            for r in conn.execute(q)
        ]
