"""A frozen, picklable copy of the banks, for broadcasting to Spark executors.

Executors cannot (and should not) reach the bank database: the driver reads the
enabled entries once into a :class:`BankSnapshot` (numpy columns, a few tens of
bytes per entry), Spark broadcasts it, and every executor process builds its
indexes from it once (:mod:`sentinelle.spark.cache`).

:class:`SnapshotStore` serves a snapshot through the part of the
:class:`~sentinelle.banks.BankStore` interface that
:class:`~sentinelle.index.matcher.Matcher` reads, so executors match with the very
code ``sentinelle scan`` uses (thresholds per bank, query variants, vPDQ rule,
fast-path margin).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from ..banks.records import BankInfo, LoadedSignal
from ..signals.signal_types import get_signal_type, signal_types

__all__ = ["BankSnapshot", "SnapshotEntry", "SnapshotStore"]


@dataclass(frozen=True)
class SnapshotEntry:
    """What :meth:`Matcher._category` reads of an entry."""

    id: int
    bank_id: int
    category: str | None


@dataclass
class BankSnapshot:
    """Enabled entries of the selected banks at one change-log position (``version``)."""

    version: int
    banks: list[BankInfo]
    thresholds: dict[str, dict[str, int]]  # bank name -> signal type -> max distance
    signals: dict[str, LoadedSignal]
    categories: dict[int, str] = field(default_factory=dict)
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_store(cls, store: Any, banks: list[str] | None = None) -> BankSnapshot:
        """Read the enabled entries of ``banks`` (default: every enabled bank)."""
        from sqlalchemy import select

        from ..store.models import BankEntry

        version = int(store.current_seq())
        infos = [b for b in store.list_banks() if b.enabled and (banks is None or b.name in banks)]
        loaded = {st.name: store.load_signal(st.name, banks=banks) for st in signal_types()}
        ths = {b.name: dict(store.thresholds(b.name)) for b in infos}
        ids = [int(b.id) for b in infos]
        cats: dict[int, str] = {}
        if ids:
            t = BankEntry.__table__
            q = select(t.c.id, t.c.category).where(
                t.c.bank_id.in_(ids), t.c.category.is_not(None), t.c.category != ""
            )
            with store._read() as conn:
                cats = {int(i): str(c) for i, c in conn.execute(q)}
        return cls(version=version, banks=infos, thresholds=ths, signals=loaded, categories=cats)

    def __len__(self) -> int:
        return sum(len(s) for s in self.signals.values())

    @property
    def fingerprint(self) -> str:
        """SHA-256 over everything matching depends on: equal snapshots, equal prints.

        Keys the executor cache and is written into backfill manifests, so output
        made against other banks is never mixed with this run's.
        """
        if self._fingerprint is None:
            h = hashlib.sha256(f"v1:{self.version}".encode())
            for b in sorted(self.banks, key=lambda b: b.id):
                h.update(
                    f"|bank:{b.id}:{b.name}:{sorted(self.thresholds[b.name].items())}".encode()
                )
            for name in sorted(self.signals):
                s = self.signals[name]
                h.update(f"|sig:{name}:{len(s)}".encode())
                h.update(np.ascontiguousarray(s.entry_ids, dtype=np.int64).tobytes())
                h.update(np.ascontiguousarray(s.bank_ids, dtype=np.int64).tobytes())
                if isinstance(s.hashes, np.ndarray):
                    h.update(np.ascontiguousarray(s.hashes).tobytes())
                else:
                    h.update("\n".join(s.hashes).encode())
                h.update("\n".join(s.variants or []).encode())
                h.update("\n".join(r or "" for r in s.media_refs or []).encode())
            for k in sorted(self.categories):
                h.update(f"|cat:{k}:{self.categories[k]}".encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fingerprint"] = self.fingerprint  # computed once, on the driver
        return state

    def store(self) -> SnapshotStore:
        return SnapshotStore(self)


class SnapshotStore:
    """The read-only store interface :class:`~sentinelle.index.matcher.Matcher` uses."""

    def __init__(self, snapshot: BankSnapshot) -> None:
        self.snapshot = snapshot
        self._by_name = {b.name: b for b in snapshot.banks}

    def current_seq(self) -> int:
        return self.snapshot.version

    def list_banks(self) -> list[BankInfo]:
        return list(self.snapshot.banks)

    def thresholds(self, name: str) -> dict[str, int]:
        return dict(self.snapshot.thresholds.get(name, {}))

    def load_signal(
        self, signal_type: str, banks: list[str] | None = None, now: datetime | None = None
    ) -> LoadedSignal:
        s = self.snapshot.signals.get(signal_type)
        if s is not None:
            return s
        get_signal_type(signal_type)  # unknown type: raises as the real store does
        return LoadedSignal(
            signal_type=signal_type,
            entry_ids=np.zeros(0, np.int64),
            bank_ids=np.zeros(0, np.int32),
            hashes=[]
            if get_signal_type(signal_type).index == "exact"
            else np.zeros((0, 32), np.uint8),
            bank_names={b.id: b.name for b in self.snapshot.banks},
            thresholds={},
        )

    def get_entry(self, entry_id: int) -> SnapshotEntry | None:
        return SnapshotEntry(int(entry_id), -1, self.snapshot.categories.get(int(entry_id)))

    def changes_since(self, seq: int, limit: int | None = None) -> list[Any]:
        return []  # a snapshot never changes

    def get_entries(self, ids: Any) -> dict[int, Any]:
        return {}
