"""Bank import/export formats: one module per format, each a :class:`BankFormat`.

A format module has ``NAME`` (what ``--format`` and the API call it),
``parse(stream, limits=DEFAULT_INPUT_LIMITS) -> list[EntryIn]`` (raises
:class:`~sentinelle.errors.BankImportError` listing every bad line; validates the
whole input before returning) and ``write(entries, stream) -> int`` (number of
entries written; entries a format cannot represent are skipped). Streams may be
binary or text. How a signal type is named in a format is the signal type's
(:mod:`sentinelle.signals.signal_types`), never the format's.

Built-in formats are listed once, in :data:`BUILTIN_FORMATS`; a format from a higher
layer registers itself with :func:`register_format` from its ``register()`` hook
(:mod:`sentinelle.plugins`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any, Protocol

from ..errors import BankImportError
from . import csv_format, icse, md5_list, pdq_list, threatexchange, vics
from ._io import DEFAULT_INPUT_LIMITS, InputLimits
from .entry import EntryIn, normalize_entry


class BankFormat(Protocol):
    """What a format module provides (a module, or any object with these)."""

    NAME: str

    def parse(self, stream: IO[Any], limits: InputLimits = ...) -> list[EntryIn]: ...

    def write(self, entries: Iterable[EntryIn], stream: IO[Any]) -> int: ...


#: The built-in formats, in the order ``--help`` lists them.
BUILTIN_FORMATS: tuple[BankFormat, ...] = (
    csv_format,
    vics,
    icse,
    pdq_list,
    md5_list,
    threatexchange,
)

FORMATS: dict[str, BankFormat] = {}


def register_format(fmt: BankFormat) -> None:
    """Make ``fmt`` available by its ``NAME`` (re-registering the same object is a no-op)."""
    have = FORMATS.get(fmt.NAME)
    if have is not None and have is not fmt:
        raise ValueError(f"format {fmt.NAME!r} is already registered")
    FORMATS[fmt.NAME] = fmt


for _fmt in BUILTIN_FORMATS:
    register_format(_fmt)


def get_format(name: str) -> BankFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise BankImportError(
            f"unknown format {name!r} (expected one of {', '.join(FORMATS)})"
        ) from None


__all__ = [
    "DEFAULT_INPUT_LIMITS",
    "BUILTIN_FORMATS",
    "FORMATS",
    "BankFormat",
    "EntryIn",
    "InputLimits",
    "get_format",
    "normalize_entry",
    "register_format",
]
