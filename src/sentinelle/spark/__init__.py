"""Sentinelle on Apache Spark (optional extra ``sentinelle[spark]``).

* :func:`hash_files` / :func:`hash_paths` (:mod:`.media`): hash and match media from
  a ``binaryFile`` DataFrame or a table of paths / object-store URIs, one row per file;
* :func:`match_hashes` (:mod:`.hashonly`): match a table of precomputed PDQ / MD5 /
  SHA hashes, vectorised over whole Arrow batches;
* :class:`BankSnapshot` (:mod:`.snapshot`): the banks, frozen on the driver and
  broadcast; executors build their indexes from it once per process (:mod:`.cache`);
* :func:`run_backfill` (:mod:`.backfill`): the ``sentinelle backfill`` job, idempotent
  Parquet partitions.

Submitting to a cluster and the cost model: ``docs/SPARK.md``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BankSnapshot",
    "MediaOptions",
    "hash_files",
    "hash_paths",
    "make_session",
    "match_hashes",
    "run_backfill",
]

_WHERE = {
    "BankSnapshot": "snapshot",
    "MediaOptions": "media",
    "hash_files": "media",
    "hash_paths": "media",
    "make_session": "session",
    "match_hashes": "hashonly",
    "run_backfill": "backfill",
}


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
