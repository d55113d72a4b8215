"""``threatexchange``: the text format of python-threatexchange's CLI.

``threatexchange hash`` and ``threatexchange dataset -P`` print one signal per
line as ``<signal_type> <signal_str>`` (``dataset -P`` appends the collaboration
name and metadata after it), e.g.::

    pdq facd8bcb2a49bcebdec1985298d5fe84bcd006c187c598c720c3c087b3fdb318
    video_md5 d41d8cd98f00b204e9800998ecf8427e

Reading: blank lines and ``#`` comments are skipped; anything after the hash is
ignored. Signal type names map to ours as follows (python-threatexchange has no
SHA-1 signal):

=============================  ========
threatexchange                 ours
=============================  ========
``pdq``                        ``pdq``
``video_md5``, ``photo_md5``,  ``md5``
``md5``
``video_sha256``, ``sha256``   ``sha256``
=============================  ========

Any other name (``url``, ``raw_text``, ``trend_query``...) is an unknown signal
type and rejects the import. Writing emits ``pdq``, ``video_md5`` and
``video_sha256`` lines; ``sha1`` and ``vpdq`` entries have no threatexchange
equivalent and are skipped (``write`` returns the number written).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from ..errors import InvalidHashError, LineError
from ..signals.signal_types import by_threatexchange_name, find_signal_type
from ._io import DEFAULT_INPUT_LIMITS, InputLimits, iter_lines, reject_if, text_out
from .entry import EntryIn, normalize_signal_hash

NAME = "threatexchange"

# ThreatExchange names of each signal type: ``SignalType.threatexchange_names`` (the
# first is written; ``video_md5`` / ``photo_md5`` / ``md5`` all read as md5).


def parse(stream: IO[Any], limits: InputLimits = DEFAULT_INPUT_LIMITS) -> list[EntryIn]:
    bad: list[LineError] = []
    out: list[EntryIn] = []
    for no, line in iter_lines(stream, limits, bad):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split(None, 2)
        if len(parts) < 2:
            bad.append(LineError(no, "expected '<signal_type> <hash>'"))
            continue
        te_type = parts[0].lower()
        ours = by_threatexchange_name(te_type)
        if ours is None:
            bad.append(LineError(no, f"unknown signal type {parts[0][:40]!r}"))
            continue
        try:
            st, h = normalize_signal_hash(ours.name, parts[1])
        except InvalidHashError as e:
            bad.append(LineError(no, e.message))
            continue
        out.append(EntryIn(st, h, line=no))
    reject_if(bad, "threatexchange signal list rejected")
    return out


def write(entries: Iterable[EntryIn], stream: IO[Any]) -> int:
    seen: set[tuple[str, str]] = set()
    n = 0
    with text_out(stream) as out:
        for e in entries:
            st = find_signal_type(e.signal_type)
            te = st.threatexchange_names[0] if st is not None and st.threatexchange_names else None
            if te is None or (te, e.hash) in seen:
                continue
            seen.add((te, e.hash))
            out.write(f"{te} {e.hash}\n")
            n += 1
    return n
