"""Entries one by one (read, edit, disable, delete with a tombstone) and the change
log instances follow.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    delete,
    func,
    select,
    update,
)

from ..errors import BankError
from ..formats.entry import (
    FLAG_FIELDS,
    MAX_TEXT_FIELD,
    to_utc,
)
from ..store.models import utcnow
from ._base import (
    CL,
    UPDATABLE_FIELDS,
    E,
    StoreBase,
    T,
)
from .records import (
    Change,
    StoredEntry,
    check_signal,
    row_to_entry,
)


class BankEntries(StoreBase):
    """Entry-level operations and the change log of :class:`~sentinelle.banks.BankStore`."""

    # ----------------------------------------------------------------- entries
    def iter_entries(
        self,
        name: str,
        signal_type: str | None = None,
        *,
        active_only: bool = False,
        now: datetime | None = None,
        batch: int = 10_000,
        after: int = 0,
    ) -> Iterator[StoredEntry]:
        """Entries of bank ``name`` in id order, fetched in batches (keyset paging);
        ``after``: start after this entry id (a cursor for paginated listings)."""
        if signal_type is not None:
            check_signal(signal_type)
        with self._read() as conn:
            bid = self._bank_id(conn, name)
        now = to_utc(now) or utcnow()
        last = int(after)
        while True:
            q = select(E).where(E.c.bank_id == bid, E.c.id > last)
            if signal_type is not None:
                q = q.where(E.c.signal_type == signal_type)
            if active_only:
                q = q.where(
                    E.c.enabled.is_(True),
                    (E.c.disabled_until.is_(None)) | (E.c.disabled_until <= now),
                )
            with self._read() as conn:
                rows = conn.execute(q.order_by(E.c.id).limit(batch)).all()
            if not rows:
                return
            for r in rows:
                yield row_to_entry(r)
            last = rows[-1].id

    def get_entry(self, entry_id: int) -> StoredEntry | None:
        """The entry, or None if there is none with that id (e.g. deleted)."""
        with self._read() as conn:
            r = conn.execute(select(E).where(E.c.id == entry_id)).first()
        return None if r is None else row_to_entry(r)

    def get_entries(self, entry_ids: Iterable[int]) -> dict[int, StoredEntry]:
        """The entries that exist among ``entry_ids``, by id (one query per 500 ids)."""
        ids = sorted({int(i) for i in entry_ids})
        out: dict[int, StoredEntry] = {}
        with self._read() as conn:
            for k in range(0, len(ids), 500):
                for r in conn.execute(select(E).where(E.c.id.in_(ids[k : k + 500]))):
                    out[int(r.id)] = row_to_entry(r)
        return out

    def _entry_bank(self, conn: Connection, entry_id: int) -> Any:
        r = conn.execute(select(E).where(E.c.id == entry_id)).first()
        if r is None:
            raise BankError(f"no entry with id {entry_id}", code="unknown_entry")
        return r

    def update_entry(self, entry_id: int, *, actor: str = "system", **fields: Any) -> StoredEntry:
        """Change metadata / state fields (see ``UPDATABLE_FIELDS``); the hash,
        signal type and variant are the entry's identity and cannot change.
        Audited as ``bank.entry_update`` with the changed field names."""
        unknown = set(fields) - set(UPDATABLE_FIELDS)
        if unknown:
            raise BankError(
                f"cannot update {', '.join(sorted(unknown))} "
                f"(updatable: {', '.join(UPDATABLE_FIELDS)})",
                code="bad_field",
            )
        values: dict[str, Any] = {}
        for k, v in fields.items():
            if k == "enabled":
                values[k] = bool(v)
            elif k == "disabled_until":
                if v is not None and not isinstance(v, datetime):
                    raise BankError("disabled_until must be a datetime or None", "bad_field")
                values[k] = to_utc(v)
            elif k in FLAG_FIELDS:
                if v is not None and not isinstance(v, bool):
                    raise BankError(f"{k} must be true, false or None", "bad_field")
                values[k] = v
            else:
                if v is not None and (not isinstance(v, str) or len(v) > MAX_TEXT_FIELD):
                    raise BankError(f"{k} must be text of at most {MAX_TEXT_FIELD}", "bad_field")
                values[k] = v or None
        op = "update"
        if set(values) <= {"enabled", "disabled_until"} and values:
            active = values.get("enabled", True) and values.get("disabled_until") is None
            op = "enable" if active else "disable"
        with self._write() as conn:
            r = self._entry_bank(conn, entry_id)
            if values:
                conn.execute(update(E).where(E.c.id == entry_id).values(**values))
                self._log(conn, r.bank_id, entry_id, op, utcnow())
                self._audit(
                    conn,
                    actor,
                    "bank.entry_update",
                    f"entry:{entry_id}",
                    {"bank_id": int(r.bank_id), "op": op, "fields": sorted(values)},
                )
        entry = self.get_entry(entry_id)
        assert entry is not None
        return entry

    def disable_entry(
        self, entry_id: int, until: datetime | None = None, *, actor: str = "system"
    ) -> StoredEntry:
        """Disable indefinitely, or (``until`` given) until that time."""
        if until is None:
            return self.update_entry(entry_id, actor=actor, enabled=False, disabled_until=None)
        return self.update_entry(entry_id, actor=actor, enabled=True, disabled_until=until)

    def enable_entry(self, entry_id: int, *, actor: str = "system") -> StoredEntry:
        return self.update_entry(entry_id, actor=actor, enabled=True, disabled_until=None)

    def delete_entry(self, entry_id: int, reason: str = "", *, actor: str = "system") -> None:
        """Delete an entry and tombstone its hash in its bank (re-imports skip it)."""
        now = utcnow()
        with self._write() as conn:
            r = self._entry_bank(conn, entry_id)
            conn.execute(delete(E).where(E.c.id == entry_id))
            conn.execute(
                self._insert()(T)
                .values(
                    bank_id=r.bank_id,
                    signal_type=r.signal_type,
                    hash=r.hash,
                    deleted_at=now,
                    reason=reason[:MAX_TEXT_FIELD],
                )
                .on_conflict_do_nothing(index_elements=["bank_id", "signal_type", "hash"])
            )
            self._log(conn, r.bank_id, entry_id, "delete", now)
            self._audit(
                conn,
                actor,
                "bank.entry_delete",
                f"entry:{entry_id}",
                {"bank_id": int(r.bank_id), "signal_type": r.signal_type, "reason": reason[:200]},
            )

    def tombstones(self, name: str) -> list[tuple[str, str, datetime, str]]:
        """``(signal_type, hash, deleted_at, reason)`` of the bank's tombstones."""
        with self._read() as conn:
            bid = self._bank_id(conn, name)
            rows = conn.execute(
                select(T.c.signal_type, T.c.hash, T.c.deleted_at, T.c.reason)
                .where(T.c.bank_id == bid)
                .order_by(T.c.id)
            ).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    # ----------------------------------------------------------- change log
    def current_seq(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.coalesce(func.max(CL.c.seq), 0))).scalar_one())

    def changes_since(self, seq: int, limit: int | None = None) -> list[Change]:
        """Changes with ``seq`` greater than ``seq``, oldest first."""
        q = select(CL).where(CL.c.seq > seq).order_by(CL.c.seq)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return [Change(r.seq, r.bank_id, r.entry_id, r.op, r.at) for r in conn.execute(q)]
