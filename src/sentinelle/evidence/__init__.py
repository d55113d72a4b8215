"""Encrypted evidence, preservation holds and retention.

    from sentinelle.evidence import EvidenceStore, load_master_key
    store = EvidenceStore(engine, load_master_key())

* :mod:`.crypto` -- AES-256-GCM envelope encryption, master key loading.
* :mod:`.store` -- :class:`EvidenceStore` (put/get/destroy with proof).
* :mod:`.preservation` -- retention and legal holds, extensions, releases.
* :mod:`.retention` -- periods per jurisdiction, scheduled deletion.
"""

from __future__ import annotations

from .crypto import generate_master_key, load_master_key
from .errors import EvidenceError
from .preservation import (
    Hold,
    extend_hold,
    list_holds,
    place_legal_hold,
    release_hold,
    start_hold,
)
from .retention import retention_days, run_retention
from .store import EvidenceItem, EvidenceStore, deletion_records, destroy_case

__all__ = [
    "EvidenceError",
    "EvidenceItem",
    "EvidenceStore",
    "Hold",
    "deletion_records",
    "destroy_case",
    "extend_hold",
    "generate_master_key",
    "list_holds",
    "load_master_key",
    "place_legal_hold",
    "release_hold",
    "retention_days",
    "run_retention",
    "start_hold",
]
