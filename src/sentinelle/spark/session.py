"""Spark session and broadcast helpers."""

from __future__ import annotations

import os
import sys
from typing import Any

from .snapshot import BankSnapshot

__all__ = ["DEFAULT_CONF", "broadcast_snapshot", "make_session"]

#: Settings every Sentinelle job wants. Media rows are big (``binaryFile`` puts the
#: whole file in a cell), so Arrow batches are kept small; the hash-only path
#: re-batches in the worker (:func:`sentinelle.spark.hashonly.rebatch`). Python
#: workers are reused across tasks and forked from a daemon that has already loaded
#: the hashing stack (:mod:`sentinelle.spark.daemon`): a fresh worker starts warm.
DEFAULT_CONF: dict[str, str] = {
    "spark.sql.execution.arrow.maxRecordsPerBatch": "64",
    "spark.python.worker.reuse": "true",
    "spark.python.daemon.module": "sentinelle.spark.daemon",
    "spark.sql.sources.binaryFile.maxLength": str(2**31 - 1),
}

_broadcasts: dict[tuple[int, str], Any] = {}


def make_session(
    master: str | None = None, app_name: str = "sentinelle", conf: dict[str, str] | None = None
) -> Any:
    """A ``SparkSession`` (``master`` None: whatever ``spark-submit`` configured)."""
    from pyspark.sql import SparkSession

    if master and master.startswith("local"):
        # executors are this machine's Python: the one running the driver (its venv)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    b = SparkSession.builder.appName(app_name)
    if master:
        b = b.master(master)
    for k, v in {**DEFAULT_CONF, **(conf or {})}.items():
        b = b.config(k, v)
    return b.getOrCreate()


def broadcast_snapshot(spark: Any, snapshot: Any) -> Any:
    """A Spark ``Broadcast`` of ``snapshot`` (one per session and snapshot content)."""
    if not isinstance(snapshot, BankSnapshot):
        return snapshot  # already a Broadcast
    sc = spark.sparkContext
    key = (id(sc), snapshot.fingerprint)
    bc = _broadcasts.get(key)
    if bc is None:
        bc = _broadcasts[key] = sc.broadcast(snapshot)
    return bc
