"""The signal type registry: every :class:`SignalType` Sentinelle knows, by name.

Built-in types are listed once, in :data:`BUILTIN_SIGNAL_TYPES`; that list is the only
place a new signal type is registered (its class lives in its own module next to this
one). An extension from a higher layer registers its types with
:func:`register_signal_type` from its ``register()`` hook (see :mod:`sentinelle.plugins`).

    from sentinelle.signals.signal_types import get_signal_type
    st = get_signal_type("pdq")
    st.validate("F8F8...")  # -> "f8f8...", or InvalidHashError
"""

from __future__ import annotations

import threading

from ...errors import InvalidHashError
from .base import CryptoSignalType, SignalType
from .file_sha256 import FileSHA256Type
from .md5 import MD5Type
from .pdq import PDQType
from .sha1 import SHA1Type
from .sha256 import SHA256Type
from .tensor_part_sha import TensorPartSHAType
from .tensor_sha256 import TensorSHA256Type
from .vpdq import VPDQType

#: The built-in signal types, in the order they are listed and computed.
BUILTIN_SIGNAL_TYPES: tuple[type[SignalType], ...] = (
    MD5Type,
    SHA1Type,
    SHA256Type,
    PDQType,
    VPDQType,
    FileSHA256Type,
    TensorSHA256Type,
    TensorPartSHAType,
)

_registry: dict[str, SignalType] = {}
_lock = threading.Lock()


def register_signal_type(cls: type[SignalType]) -> SignalType:
    """Add ``cls`` to the registry (registering the same class again is a no-op)."""
    st = cls()
    with _lock:
        have = _registry.get(st.name)
        if have is not None and type(have) is not cls:
            raise ValueError(f"signal type {st.name!r} is already registered")
        _registry.setdefault(st.name, st)
        return _registry[st.name]


for _cls in BUILTIN_SIGNAL_TYPES:
    register_signal_type(_cls)


def signal_types() -> tuple[SignalType, ...]:
    """Every registered type, built-ins first, in registration order."""
    with _lock:
        return tuple(_registry.values())


def signal_type_names() -> tuple[str, ...]:
    return tuple(st.name for st in signal_types())


def find_signal_type(name: str) -> SignalType | None:
    return _registry.get(name)


def get_signal_type(name: str) -> SignalType:
    """The type called ``name``, else :class:`~sentinelle.errors.InvalidHashError`."""
    st = _registry.get(name)
    if st is None:
        raise InvalidHashError(
            f"unknown signal type {name!r} (expected one of {', '.join(signal_type_names())})"
        )
    return st


def exact_signal_types() -> tuple[SignalType, ...]:
    return tuple(st for st in signal_types() if st.exact)


def default_thresholds() -> dict[str, int]:
    """``{name: default threshold}`` for every registered type."""
    return {st.name: st.default_threshold for st in signal_types()}


def by_hma_name(name: str) -> SignalType | None:
    """The type HMA calls ``name`` (``video_md5`` -> md5), or None."""
    for st in signal_types():
        if name in st.hma_names:
            return st
    return None


def by_threatexchange_name(name: str) -> SignalType | None:
    for st in signal_types():
        if name in st.threatexchange_names:
            return st
    return None


def by_vics_name(name: str) -> SignalType | None:
    """The type of a VICS ``AlternativeHashes`` ``HashName`` (case-insensitive)."""
    n = name.strip().lower()
    for st in signal_types():
        if n in st.vics_names:
            return st
    return None


__all__ = [
    "BUILTIN_SIGNAL_TYPES",
    "CryptoSignalType",
    "SignalType",
    "by_hma_name",
    "by_threatexchange_name",
    "by_vics_name",
    "default_thresholds",
    "exact_signal_types",
    "find_signal_type",
    "get_signal_type",
    "register_signal_type",
    "signal_type_names",
    "signal_types",
]
