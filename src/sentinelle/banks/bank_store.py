"""`BankStore`: create banks, import/export hashes, edit entries, feed the matcher.

Design notes:

* **Atomic imports.** ``import_file`` parses and validates the whole input first
  (formats raise :class:`BankImportError` listing every bad line); only then is
  anything written, in ONE transaction, with chunked Core bulk inserts.
* **Idempotent imports.** Entries are unique on (bank, signal, hash, variant);
  rows that already exist are counted as ``duplicates`` (``INSERT ... ON
  CONFLICT DO NOTHING``). Hashes with a tombstone in the bank are counted as
  ``skipped_tombstoned`` and never resurrected.
* **Change log.** Every write appends to ``change_log`` in the same
  transaction. Writers are serialized (SQLite ``BEGIN IMMEDIATE``; PostgreSQL a
  transaction-level advisory lock), so sequence numbers become visible in order
  and ``changes_since(seq)`` never skips a change that commits late.
* **Fast loading.** :meth:`BankStore.load_signal` fetches only
  ``(id, bank_id, hash)`` of active entries and converts PDQ hex to a
  ``uint8 (n, 32)`` array in one ``bytes.fromhex`` call.

* **Audited.** Every configuration change -- bank create / delete / rename,
  enable, description, thresholds, imports, entry edits and deletes -- appends a
  :func:`sentinelle.audit.record_event` row *inside the same transaction* as the
  change (so one never commits without the other). Mutating methods take a
  keyword ``actor`` (``"cli"``, ``"key:<id>"``, ``"user:<name>"``; default
  ``"system"`` for automatic changes such as flood-guard pauses). Details hold
  names, counts and old/new setting values: never hashes or file contents.

Entry activity: an entry is *active* when ``enabled`` is true, its bank is
enabled, and ``disabled_until`` is NULL or in the past. ``disable_entry(id)``
clears ``enabled``; ``disable_entry(id, until=t)`` keeps ``enabled`` and sets
``disabled_until`` so the entry comes back by itself at ``t``.
"""

from __future__ import annotations

from .bank_admin import BankAdmin
from .entries import BankEntries
from .imports import BankImports
from .loading import BankLoading


class BankStore(BankAdmin, BankImports, BankEntries, BankLoading):
    """All bank operations. Thread-safe (one engine, a connection per call).

    One class for callers, built from one part per responsibility: :class:`BankAdmin`
    (banks and thresholds), :class:`BankImports` (bulk imports and exports),
    :class:`BankEntries` (entries and the change log), :class:`BankLoading` (index
    loading); their shared engine and transactions are :class:`~._base.StoreBase`.
    """
