"""Exact-hash index for MD5 / SHA-1 / SHA-256: hash -> ids.

A cryptographic hash either matches or it does not, so the index is a dict.
To stay lean with millions of entries it is keyed by the raw digest
(``bytes``, 16-32 B) rather than the hex string (twice as long, plus str
overhead), and a digest held by a single id (the usual case) maps to a plain
``int`` instead of a list. An ``id -> digest`` dict makes ``remove`` O(1) and
lets re-adding an id replace its digest.

Each :class:`ExactIndex` holds one signal type (e.g. ``ExactIndex("md5")``),
so digests of different lengths are never mixed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from ..errors import InvalidHashError
from ..signals.hashcodec import normalize_hash
from ..signals.signal_types import exact_signal_types, find_signal_type
from .pdq_index import IndexInputError

__all__ = ["ExactIndex"]

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def _check_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise IndexInputError(f"ids must be integers, got {type(value).__name__}")
    v = int(value)
    if not _INT64_MIN <= v <= _INT64_MAX:
        raise IndexInputError(f"id {v} is outside the int64 range")
    return v


class ExactIndex:
    """Exact lookup of one exact signal type (``md5``, ``sha1``, ``sha256``, ...).

    >>> idx = ExactIndex("md5")
    >>> idx.add([7], ["d41d8cd98f00b204e9800998ecf8427e"])
    >>> idx.lookup("D41D8CD98F00B204E9800998ECF8427E")
    [7]
    """

    def __init__(self, signal_type: str = "md5") -> None:
        st = find_signal_type(signal_type)
        if st is None or not st.exact:
            names = ", ".join(t.name for t in exact_signal_types())
            raise IndexInputError(f"ExactIndex handles {names}, not {signal_type!r}")
        self.signal_type = signal_type
        self._by_digest: dict[bytes, int | list[int]] = {}
        self._by_id: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._by_id

    def _digest(self, hex_hash: object) -> bytes:
        if not isinstance(hex_hash, str):
            raise InvalidHashError(
                f"{self.signal_type} hash must be a string, got {type(hex_hash).__name__}"
            )
        return bytes.fromhex(normalize_hash(self.signal_type, hex_hash))

    def add(self, ids: Sequence[int], hex_hashes: Sequence[str]) -> None:
        """Index ``hex_hashes[i]`` under ``ids[i]``; an existing id is replaced.

        All-or-nothing: every id and hash is validated before anything changes.
        """
        if isinstance(hex_hashes, str):
            raise IndexInputError("hex_hashes must be a sequence of strings, not one string")
        id_list = [_check_id(i) for i in ids]
        digests = [self._digest(h) for h in hex_hashes]
        if len(id_list) != len(digests):
            raise IndexInputError(f"got {len(id_list)} ids for {len(digests)} hashes")
        with self._lock:
            for id_, dig in zip(id_list, digests, strict=True):
                old = self._by_id.get(id_)
                if old == dig:
                    continue
                if old is not None:
                    self._unlink(id_, old)
                self._by_id[id_] = dig
                cur = self._by_digest.get(dig)
                if cur is None:
                    self._by_digest[dig] = id_
                elif isinstance(cur, int):
                    self._by_digest[dig] = [cur, id_]
                else:
                    cur.append(id_)

    def remove(self, ids: Sequence[int]) -> int:
        """Remove ids (unknown ones are ignored); returns how many were removed."""
        id_list = [_check_id(i) for i in ids]
        removed = 0
        with self._lock:
            for id_ in id_list:
                dig = self._by_id.pop(id_, None)
                if dig is not None:
                    self._unlink(id_, dig)
                    removed += 1
        return removed

    def _unlink(self, id_: int, dig: bytes) -> None:
        cur = self._by_digest.get(dig)
        if isinstance(cur, int):
            if cur == id_:
                del self._by_digest[dig]
        elif cur is not None:
            cur.remove(id_)
            if len(cur) == 1:
                self._by_digest[dig] = cur[0]

    def lookup(self, hex_hash: str) -> list[int]:
        """Ids whose hash equals ``hex_hash`` (case-insensitive), sorted."""
        cur = self._by_digest.get(self._digest(hex_hash))
        if cur is None:
            return []
        if isinstance(cur, int):
            return [cur]
        return sorted(cur)
