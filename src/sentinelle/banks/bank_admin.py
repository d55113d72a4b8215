"""Banks: create, list, rename, enable, describe, delete; per-bank thresholds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    delete,
    func,
    insert,
    select,
    update,
)

from ..errors import BankError
from ..formats.entry import (
    MAX_TEXT_FIELD,
)
from ..signals.signal_types import (
    default_thresholds,
    get_signal_type,
)
from ..store.models import utcnow
from ._base import (
    TH,
    B,
    E,
    StoreBase,
    T,
)
from .records import (
    BankInfo,
    check_name,
    check_threshold,
)


class BankAdmin(StoreBase):
    """Bank-level operations of :class:`~sentinelle.banks.BankStore`."""

    # ------------------------------------------------------------------- banks
    def create_bank(
        self,
        name: str,
        description: str = "",
        thresholds: dict[str, int] | None = None,
        *,
        actor: str = "system",
    ) -> BankInfo:
        check_name(name)
        merged = default_thresholds()
        for st, d in (thresholds or {}).items():
            merged[st] = check_threshold(st, d)
        if len(description) > MAX_TEXT_FIELD * 4:
            raise BankError("description too long", code="bad_description")
        now = utcnow()
        with self._write() as conn:
            if conn.execute(select(B.c.id).where(B.c.name == name)).scalar() is not None:
                raise BankError(f"bank {name!r} already exists", code="bank_exists")
            bid = conn.execute(
                insert(B).returning(B.c.id),
                {"name": name, "description": description, "enabled": True, "created_at": now},
            ).scalar_one()
            conn.execute(
                insert(TH),
                [{"bank_id": bid, "signal_type": k, "max_distance": v} for k, v in merged.items()],
            )
            self._log(conn, bid, None, "add", now)
            self._audit(
                conn,
                actor,
                "bank.create",
                f"bank:{name}",
                {"bank": name, "bank_id": int(bid), "thresholds": merged},
            )
        return self.get_bank(name)

    def _bank_infos(self, conn: Connection, where: Any = None) -> list[BankInfo]:
        q = select(B).order_by(B.c.name)
        if where is not None:
            q = q.where(where)
        banks = conn.execute(q).all()
        ids = [b.id for b in banks]
        if not ids:
            return []
        counts: dict[int, dict[str, int]] = {i: {} for i in ids}
        for bid, st, n in conn.execute(
            select(E.c.bank_id, E.c.signal_type, func.count())
            .where(E.c.bank_id.in_(ids))
            .group_by(E.c.bank_id, E.c.signal_type)
        ):
            counts[bid][st] = n
        ths: dict[int, dict[str, int]] = {i: default_thresholds() for i in ids}
        for bid, st, d in conn.execute(
            select(TH.c.bank_id, TH.c.signal_type, TH.c.max_distance).where(TH.c.bank_id.in_(ids))
        ):
            ths[bid][st] = d
        return [
            BankInfo(
                id=b.id,
                name=b.name,
                description=b.description,
                enabled=bool(b.enabled),
                created_at=b.created_at,
                thresholds=ths[b.id],
                counts=counts[b.id],
            )
            for b in banks
        ]

    def get_bank(self, name: str) -> BankInfo:
        with self._read() as conn:
            infos = self._bank_infos(conn, B.c.name == name)
        if not infos:
            raise BankError(f"no bank named {name!r}", code="unknown_bank")
        return infos[0]

    def list_banks(self) -> list[BankInfo]:
        with self._read() as conn:
            return self._bank_infos(conn)

    def delete_bank(self, name: str, *, actor: str = "system") -> None:
        """Delete a bank with all its entries, thresholds and tombstones."""
        with self._write() as conn:
            bid = self._bank_id(conn, name)
            n = conn.execute(delete(E).where(E.c.bank_id == bid)).rowcount
            conn.execute(delete(T).where(T.c.bank_id == bid))
            conn.execute(delete(TH).where(TH.c.bank_id == bid))
            conn.execute(delete(B).where(B.c.id == bid))
            self._log(conn, bid, None, "delete", utcnow())
            self._audit(
                conn,
                actor,
                "bank.delete",
                f"bank:{name}",
                {"bank": name, "bank_id": bid, "entries_deleted": int(n)},
            )

    def set_bank_enabled(self, name: str, enabled: bool, *, actor: str = "system") -> None:
        with self._write() as conn:
            bid = self._bank_id(conn, name)
            old = conn.execute(select(B.c.enabled).where(B.c.id == bid)).scalar_one()
            conn.execute(update(B).where(B.c.id == bid).values(enabled=bool(enabled)))
            self._log(conn, bid, None, "enable" if enabled else "disable", utcnow())
            self._setting_changed(conn, actor, name, "enabled", bool(old), bool(enabled))

    def set_bank_description(self, name: str, description: str, *, actor: str = "system") -> None:
        """Change a bank's description. Not in the change log (matching does not
        depend on it); audited without the text (it may be long)."""
        if not isinstance(description, str) or len(description) > MAX_TEXT_FIELD * 4:
            raise BankError("description too long", code="bad_description")
        with self._write() as conn:
            bid = self._bank_id(conn, name)
            old = conn.execute(select(B.c.description).where(B.c.id == bid)).scalar_one()
            conn.execute(update(B).where(B.c.id == bid).values(description=description))
            if (old or "") != description:
                self._setting_changed(
                    conn, actor, name, "description", len(old or ""), len(description)
                )

    def rename_bank(self, name: str, new_name: str, *, actor: str = "system") -> BankInfo:
        """Rename a bank (a bank-level change: matchers reload bank names)."""
        check_name(new_name)
        with self._write() as conn:
            bid = self._bank_id(conn, name)
            if new_name != name:
                taken = conn.execute(select(B.c.id).where(B.c.name == new_name)).scalar()
                if taken is not None:
                    raise BankError(f"bank {new_name!r} already exists", code="bank_exists")
                conn.execute(update(B).where(B.c.id == bid).values(name=new_name))
                self._log(conn, bid, None, "update", utcnow())
                self._setting_changed(conn, actor, name, "name", name, new_name)
        return self.get_bank(new_name)

    def set_threshold(
        self, name: str, signal_type: str, max_distance: int, *, actor: str = "system"
    ) -> None:
        check_threshold(signal_type, max_distance)
        with self._write() as conn:
            bid = self._bank_id(conn, name)
            old = conn.execute(
                select(TH.c.max_distance).where(
                    TH.c.bank_id == bid, TH.c.signal_type == signal_type
                )
            ).scalar()
            if old is None:
                old = get_signal_type(signal_type).default_threshold
            conn.execute(delete(TH).where(TH.c.bank_id == bid, TH.c.signal_type == signal_type))
            conn.execute(
                insert(TH),
                {"bank_id": bid, "signal_type": signal_type, "max_distance": max_distance},
            )
            self._log(conn, bid, None, "update", utcnow())
            self._setting_changed(
                conn, actor, name, f"threshold.{signal_type}", old, int(max_distance)
            )

    def thresholds(self, name: str) -> dict[str, int]:
        return dict(self.get_bank(name).thresholds)
