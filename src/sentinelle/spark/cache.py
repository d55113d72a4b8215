"""Per-process cache of what executors build from a broadcast bank snapshot.

A Spark executor runs many tasks in the same Python worker process
(``spark.python.worker.reuse``, on by default). Building the PDQ index of a
million-entry bank takes about a second; doing it per task (or per Arrow batch)
would cost more than the hashing. So the first task in a process builds it, keyed
by the snapshot's fingerprint, and every later task of the job reuses it.
:func:`build_counts` tells how often each thing was built in this process (the
tests check it is once per executor process, not once per task).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from ..index.matcher import Matcher
    from .hashonly import HashOnlyIndex
    from .snapshot import BankSnapshot

T = TypeVar("T")

_lock = threading.Lock()
_cache: dict[tuple[str, str], Any] = {}
_builds: Counter[tuple[str, str]] = Counter()
MAX_SNAPSHOTS = 2  # a long-lived worker serving successive jobs keeps the latest two


def _get(kind: str, snapshot: BankSnapshot, build: Callable[[], T]) -> T:
    key = (kind, snapshot.fingerprint)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        value = build()
        same_kind = [k for k in _cache if k[0] == kind]
        while len(same_kind) >= MAX_SNAPSHOTS:
            _cache.pop(same_kind.pop(0), None)
        _cache[key] = value
        _builds[key] += 1
        return value


def matcher_for(snapshot: BankSnapshot) -> Matcher:
    """The :class:`~sentinelle.index.matcher.Matcher` of ``snapshot``, built once per process."""
    from ..index.matcher import Matcher

    return _get("matcher", snapshot, lambda: Matcher(snapshot.store()))


def hash_index_for(snapshot: BankSnapshot) -> HashOnlyIndex:
    """The :class:`~sentinelle.spark.hashonly.HashOnlyIndex` of ``snapshot``, built once."""
    from .hashonly import HashOnlyIndex

    return _get("hashonly", snapshot, lambda: HashOnlyIndex(snapshot))


def build_counts() -> dict[str, int]:
    """``{"matcher:<fingerprint>": n, ...}``: builds made in this process."""
    with _lock:
        return {f"{k}:{fp}": n for (k, fp), n in _builds.items()}


def clear() -> None:
    with _lock:
        _cache.clear()
        _builds.clear()
