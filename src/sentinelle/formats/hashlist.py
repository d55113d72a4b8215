"""Shared engine for the plain "one hash per line" formats (``pdq-list``, ``md5-list``).

Rules: blank lines and lines starting with ``#`` are skipped; surrounding
whitespace is ignored; a line may carry a second field separated by a comma,
tab or spaces (``<hash>,<quality>`` as PDQ tools print it) -- for PDQ it must be
an integer quality 0-100 and is otherwise ignored; for other signals a second
field is an error. Any bad line rejects the whole file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import IO, Any

from ..errors import InvalidHashError, LineError
from ..signals.signal_types import get_signal_type
from ._io import DEFAULT_INPUT_LIMITS, InputLimits, iter_lines, reject_if, text_out
from .entry import LOWER_HEX, EntryIn, normalize_signal_hash

_SPLIT = re.compile(r"[,\t ]+")


def parse_hash_list(
    stream: IO[Any],
    signal_type: str,
    limits: InputLimits = DEFAULT_INPUT_LIMITS,
    *,
    quality_column: bool = False,
) -> list[EntryIn]:
    """One ``signal_type`` hash per line; ``quality_column``: ``<hash>,<quality>`` allowed."""
    bad: list[LineError] = []
    out: list[EntryIn] = []
    want = get_signal_type(signal_type).hex_length
    fullmatch = LOWER_HEX.fullmatch
    for no, line in iter_lines(stream, limits, bad):
        s = line.strip()
        if len(s) == want and fullmatch(s):  # fast path: a bare lowercase hash
            out.append(EntryIn(signal_type, s, line=no))
            continue
        if not s or s.startswith("#"):
            continue
        parts = _SPLIT.split(s)
        if len(parts) > 2 or (len(parts) == 2 and not quality_column):
            bad.append(LineError(no, f"expected one {signal_type} hash per line"))
            continue
        if len(parts) == 2:
            q = parts[1]
            if not q.isdigit() or int(q) > 100:
                bad.append(LineError(no, f"bad PDQ quality {q[:20]!r} (expected 0-100)"))
                continue
        try:
            st, h = normalize_signal_hash(signal_type, parts[0])
        except InvalidHashError as e:
            bad.append(LineError(no, e.message))
            continue
        out.append(EntryIn(st, h, line=no))
    reject_if(bad, f"{signal_type} list rejected")
    return out


def write_hash_list(entries: Iterable[EntryIn], stream: IO[Any], signal_type: str) -> int:
    """Write the ``signal_type`` hashes of ``entries`` (each once); return the count."""
    seen: set[str] = set()
    n = 0
    with text_out(stream) as out:
        for e in entries:
            if e.signal_type != signal_type or e.hash in seen:
                continue
            seen.add(e.hash)
            out.write(e.hash + "\n")
            n += 1
    return n
