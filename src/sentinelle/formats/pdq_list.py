"""``pdq-list``: one 64-hex PDQ hash per line, optionally ``<hash>,<quality>``.

See :mod:`sentinelle.formats.hashlist` for the exact rules. Export writes plain
PDQ hashes only (``variant`` and metadata are not representable; each distinct
hash once).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from ._io import DEFAULT_INPUT_LIMITS, InputLimits
from .entry import EntryIn
from .hashlist import parse_hash_list, write_hash_list

NAME = "pdq-list"


def parse(stream: IO[Any], limits: InputLimits = DEFAULT_INPUT_LIMITS) -> list[EntryIn]:
    return parse_hash_list(stream, "pdq", limits, quality_column=True)


def write(entries: Iterable[EntryIn], stream: IO[Any]) -> int:
    return write_hash_list(entries, stream, "pdq")
