"""Sentinelle: a defensive toolkit against child sexual abuse material.

Public API::

    from sentinelle import hash_file, hash_bytes, PDQIndex, BankStore
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "BankStore",
    "Matcher",
    "PDQIndex",
    "ExactIndex",
    "enrollment_hashes",
    "hash_bytes",
    "hash_file",
    "__version__",
]

_LAZY = {
    "hash_file": "sentinelle.signals.hasher",
    "hash_bytes": "sentinelle.signals.hasher",
    "enrollment_hashes": "sentinelle.signals.hasher",
    "PDQIndex": "sentinelle.index.pdq_index",
    "ExactIndex": "sentinelle.index.exact",
    "BankStore": "sentinelle.banks",
    "Matcher": "sentinelle.index.matcher",
}

if TYPE_CHECKING:  # pragma: no cover
    from .banks import BankStore
    from .index.exact import ExactIndex
    from .index.matcher import Matcher
    from .index.pdq_index import PDQIndex
    from .signals.hasher import enrollment_hashes, hash_bytes, hash_file


def __getattr__(name: str) -> Any:
    """Import heavy modules (numba, PyAV, SQLAlchemy) only when they are used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sentinelle' has no attribute {name!r}")
