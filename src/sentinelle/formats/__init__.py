"""Bank import/export formats.

``FORMATS`` maps a format name to its module; every module has
``parse(stream, limits=DEFAULT_INPUT_LIMITS) -> list[EntryIn]`` (raises
:class:`~sentinelle.errors.BankImportError` listing every bad line; validates the
whole input before returning) and ``write(entries, stream) -> int`` (number of
entries written; entries a format cannot represent are skipped). Streams may be
binary or text.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import BankImportError
from . import csv_format, md5_list, pdq_list, threatexchange, vics
from ._io import DEFAULT_INPUT_LIMITS, InputLimits
from .entry import (
    DEFAULT_THRESHOLDS,
    ENTRY_SIGNAL_TYPES,
    EXACT_SIGNAL_TYPES,
    EntryIn,
    normalize_entry,
)

FORMATS: dict[str, ModuleType] = {
    "csv": csv_format,
    "vics": vics,
    "pdq-list": pdq_list,
    "md5-list": md5_list,
    "threatexchange": threatexchange,
}


def get_format(name: str) -> ModuleType:
    try:
        return FORMATS[name]
    except KeyError:
        raise BankImportError(
            f"unknown format {name!r} (expected one of {', '.join(FORMATS)})"
        ) from None


__all__ = [
    "DEFAULT_INPUT_LIMITS",
    "DEFAULT_THRESHOLDS",
    "ENTRY_SIGNAL_TYPES",
    "EXACT_SIGNAL_TYPES",
    "FORMATS",
    "EntryIn",
    "InputLimits",
    "get_format",
    "normalize_entry",
]
