"""What the bank store returns (bank, entry, import report, change, loaded columns)
and the checks of what it is given (signal type, threshold, bank name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from ..errors import BankError
from ..formats.entry import (
    EntryIn,
    to_utc,
)
from ..signals.signal_types import (
    find_signal_type,
    get_signal_type,
    signal_type_names,
)
from ..store.models import utcnow


@dataclass(frozen=True)
class BankInfo:
    id: int
    name: str
    description: str
    enabled: bool
    created_at: datetime
    thresholds: dict[str, int]
    counts: dict[str, int] = field(default_factory=dict)  # entries per signal type

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class StoredEntry:
    id: int
    bank_id: int
    signal_type: str
    hash: str
    variant: str
    media_ref: str | None
    source_org: str | None
    external_id: str | None
    category: str | None
    added_at: datetime
    enabled: bool
    disabled_until: datetime | None
    note: str | None
    series: str | None = None
    victim_identified: bool | None = None
    offender_identified: bool | None = None
    is_distributed: bool | None = None

    def is_active(self, now: datetime | None = None) -> bool:
        """Enabled and not temporarily disabled (bank state not considered)."""
        now = to_utc(now) or utcnow()
        return self.enabled and (self.disabled_until is None or self.disabled_until <= now)

    def to_entry_in(self) -> EntryIn:
        return EntryIn(
            signal_type=self.signal_type,
            hash=self.hash,
            variant=self.variant,
            media_ref=self.media_ref,
            source_org=self.source_org,
            external_id=self.external_id,
            category=self.category,
            note=self.note,
            added_at=self.added_at,
            enabled=self.enabled,
            disabled_until=self.disabled_until,
            series=self.series,
            victim_identified=self.victim_identified,
            offender_identified=self.offender_identified,
            is_distributed=self.is_distributed,
        )


@dataclass
class ImportReport:
    """``total`` = entries in the input = added + duplicates + skipped_tombstoned.

    ``duplicates`` counts entries already in the bank and repeats inside the
    input; ``ignored`` counts hashes the format recognised but does not store
    (e.g. PhotoDNA in VICS), outside ``total``.
    """

    added: int = 0
    duplicates: int = 0
    skipped_tombstoned: int = 0
    total: int = 0
    ignored: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "added": self.added,
            "duplicates": self.duplicates,
            "skipped_tombstoned": self.skipped_tombstoned,
            "total": self.total,
            "ignored": self.ignored,
        }


@dataclass(frozen=True)
class Change:
    seq: int
    bank_id: int
    entry_id: int | None  # None: bank-level change (reload the bank)
    op: str
    at: datetime


@dataclass
class LoadedSignal:
    """Active entries of one signal type, column-wise, ordered by entry id.

    ``hashes``: ``uint8 (n, 32)`` for ``pdq``/``vpdq``; a list of lowercase hex
    strings for exact signals. ``thresholds`` maps bank id -> max distance;
    ``variants`` and ``media_refs`` are parallel lists (enrollment view, and the
    media an entry came from: vPDQ frames of one video share it).
    """

    signal_type: str
    entry_ids: np.ndarray
    bank_ids: np.ndarray
    hashes: np.ndarray | list[str]
    bank_names: dict[int, str]
    thresholds: dict[int, int]
    variants: list[str] = field(default_factory=list)
    media_refs: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.entry_ids.shape[0])


def check_signal(signal_type: str) -> str:
    if find_signal_type(signal_type) is None:
        raise BankError(
            f"unknown signal type {signal_type!r} "
            f"(expected one of {', '.join(signal_type_names())})",
            code="bad_signal_type",
        )
    return signal_type


def check_threshold(signal_type: str, max_distance: int) -> int:
    check_signal(signal_type)
    if isinstance(max_distance, bool) or not isinstance(max_distance, int):
        raise BankError("threshold must be an integer", code="bad_threshold")
    st = get_signal_type(signal_type)
    if st.exact:
        if max_distance != 0:
            raise BankError(f"{signal_type} is an exact hash: threshold must be 0", "bad_threshold")
    elif not 0 <= max_distance <= st.max_threshold:
        raise BankError(
            f"{signal_type} threshold must be 0-{st.max_threshold} bits", code="bad_threshold"
        )
    return max_distance


def check_name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        raise BankError("bank name must be 1-200 characters", code="bad_bank_name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name) or name != name.strip():
        raise BankError(
            "bank name must not contain control characters or surrounding spaces",
            code="bad_bank_name",
        )
    return name


def row_to_entry(r: Any) -> StoredEntry:
    return StoredEntry(
        id=r.id,
        bank_id=r.bank_id,
        signal_type=r.signal_type,
        hash=r.hash,
        variant=r.variant,
        media_ref=r.media_ref,
        source_org=r.source_org,
        external_id=r.external_id,
        category=r.category,
        added_at=r.added_at,
        enabled=bool(r.enabled),
        disabled_until=r.disabled_until,
        note=r.note,
        series=r.series,
        victim_identified=_flag(r.victim_identified),
        offender_identified=_flag(r.offender_identified),
        is_distributed=_flag(r.is_distributed),
    )


def _flag(v: Any) -> bool | None:
    return None if v is None else bool(v)
