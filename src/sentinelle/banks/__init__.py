"""Hash banks: :class:`BankStore` (one class for callers, one module per responsibility)
and the records it returns.

* :mod:`.bank_store` -- :class:`BankStore` and its design notes;
* :mod:`.bank_admin` -- banks: create, list, rename, enable, describe, delete, thresholds;
* :mod:`.imports` -- atomic, idempotent bulk imports and exports;
* :mod:`.entries` -- entries one by one, tombstones, the change log;
* :mod:`.loading` -- active entries as numpy columns for the match indexes;
* :mod:`.records` -- ``BankInfo``, ``StoredEntry``, ``ImportReport``, ``Change``,
  ``LoadedSignal`` and the checks of signal types, thresholds and bank names;
* :mod:`._base` -- tables, transactions and helpers the parts share.
"""

from __future__ import annotations

from .bank_store import BankStore
from .records import (
    BankInfo,
    Change,
    ImportReport,
    LoadedSignal,
    StoredEntry,
    check_name,
    check_signal,
    check_threshold,
)

__all__ = [
    "BankInfo",
    "BankStore",
    "Change",
    "ImportReport",
    "LoadedSignal",
    "StoredEntry",
    "check_name",
    "check_signal",
    "check_threshold",
]
