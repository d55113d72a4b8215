"""The ``sentinelle backfill`` job: a platform's stored media (or hashes) against the banks.

1. **List** the input on the driver's behalf: a local folder (walked as ``scan``
   walks), a folder URI (Spark's ``binaryFile`` listing: the bytes are not read
   there), or with ``table=True`` a Parquet table with a ``path`` column (media
   URIs; other columns, e.g. an account id, are carried into the output).
   With ``hashes=True`` the table holds hash columns instead (``pdq``, ``md5``...).
2. **Bucket** the rows deterministically: ``pmod(xxhash64(key), P)`` with
   ``P = ceil(rows / rows_per_partition)``; the key is the path (media) or the whole
   row (hashes). The plan (P, options, bank fingerprint) is written to
   ``_backfill.json``; a rerun against other banks or another listing is refused
   instead of mixing outputs.
3. **Skip** the buckets whose ``part-NNNNN.parquet`` exists (complete, see
   :mod:`sentinelle.spark.writer`); hash and match the rest on the executors, each
   bucket in one task, written atomically.
4. **Finish**: ``_SUCCESS`` (totals from the part footers); with an intake database,
   every match becomes a ``hash_match`` signal in the review intake (repeats of
   pending items are not added again, so a rerun does not duplicate them).

A killed run rerun with the same arguments ends with exactly the bytes an
uninterrupted run writes (no time stamps in the rows, rows sorted per part).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SentinelleError
from .media import MediaOptions
from .snapshot import BankSnapshot
from .writer import done_buckets, footer_totals, open_output, part_name, remove_leftovers

__all__ = ["BackfillError", "BackfillSummary", "run_backfill"]

MANIFEST = "_backfill.json"
SUCCESS = "_SUCCESS"
BUCKET = "_sentinelle_bucket"


class BackfillError(SentinelleError):
    code = "backfill_error"


@dataclass
class BackfillSummary:
    output: str
    partitions: int = 0
    rows: int = 0
    skipped_partitions: int = 0  # complete from an earlier run
    written_partitions: int = 0
    leftovers_removed: int = 0
    matched: int = 0
    errors: int = 0
    intake_items: int = 0
    intake_errors: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _list_input(spark: Any, input: str, table: bool, path_col: str) -> Any:
    """A DataFrame with a ``path`` column (plus a table's other columns)."""
    from pyspark.sql import functions as F

    if table:
        df = spark.read.parquet(input)
        if path_col not in df.columns:
            raise BackfillError(f"the input table has no {path_col!r} column", "bad_input")
        return df.withColumnRenamed(path_col, "path") if path_col != "path" else df
    local = None if "://" in input else Path(input)
    if local is not None:
        if not local.exists():
            raise BackfillError(f"no such file or folder: {input}", "bad_input")
        from ..scan.walker import walk

        paths = sorted({ref.path for ref in walk([local])})
        return spark.createDataFrame([(p,) for p in paths], "path string")
    files = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .load(input)
        .select(F.col("path"))
    )
    return files


def _check_manifest(fs: Any, root: str, plan: dict[str, Any]) -> None:
    path = f"{root}/{MANIFEST}"
    import pyarrow.fs as pafs

    if fs.get_file_info(path).type == pafs.FileType.File:
        with fs.open_input_stream(path) as fh:
            old = json.loads(fh.read().decode())
        if old != plan:
            diff = sorted(k for k in plan if old.get(k) != plan.get(k))
            raise BackfillError(
                f"{root} holds a backfill made with other settings ({', '.join(diff)} differ): "
                "rerun with the same input, banks and options, or choose another --output",
                "output_mismatch",
            )
        return
    fs.create_dir(root, recursive=True)
    tmp = f"{path}.tmp"
    with fs.open_output_stream(tmp) as out:
        out.write(json.dumps(plan, indent=1, sort_keys=True).encode())
    fs.move(tmp, path)


def run_backfill(
    spark: Any,
    input: str,
    output: str,
    snapshot: BankSnapshot,
    *,
    options: MediaOptions = MediaOptions(),
    table: bool = False,
    hashes: bool = False,
    path_col: str = "path",
    hash_columns: dict[str, str] | None = None,
    rows_per_partition: int = 1000,
    intake_url: str | None = None,
    account: str = "backfill",
    account_col: str | None = None,
    on_listed: Callable[[int, int, int], None] | None = None,
) -> BackfillSummary:
    """Run (or resume) a backfill of ``input`` into ``output`` (Parquet parts)."""
    from pyspark.sql import functions as F

    from .schema import spark_schema
    from .session import broadcast_snapshot
    from .writer import STATUS_SCHEMA, bucket_writer

    if rows_per_partition < 1:
        raise BackfillError("rows per partition must be at least 1", "bad_option")
    if hashes:
        df = spark.read.parquet(input)
        from .hashonly import default_columns

        cols = dict(hash_columns) if hash_columns else default_columns(df.columns)
        if not cols:
            raise BackfillError("the hash table has no pdq/md5/sha* column", "bad_input")
        key = F.xxhash64(*[F.col(c) for c in df.columns])
        sort_keys = list(df.columns)
    else:
        df = _list_input(spark, input, table, path_col)
        key = F.xxhash64(F.col("path"))
        sort_keys = ["path", *[c for c in df.columns if c != "path"]]
        cols = {}
    n = int(df.count())
    parts = max(1, math.ceil(n / rows_per_partition))
    plan = {
        "format": 1,
        "input": input,
        "mode": "hashes" if hashes else ("table" if table else "media"),
        "rows": n,
        "partitions": parts,
        "config": "hash-only" if hashes else options.config,
        "hash_columns": cols,
        "banks": snapshot.fingerprint,
        "bank_version": snapshot.version,
    }
    fs, root = open_output(output)
    _check_manifest(fs, root, plan)
    summary = BackfillSummary(output=output, partitions=parts, rows=n)
    summary.leftovers_removed = remove_leftovers(fs, root)
    done = {b for b in done_buckets(fs, root) if b < parts}
    pending = [b for b in range(parts) if b not in done]
    summary.skipped_partitions = len(done)
    if on_listed:
        on_listed(n, parts, len(done))
    if pending:
        bc = broadcast_snapshot(spark, snapshot)
        process = _processor(bc, options, cols, hashes)
        todo = df.withColumn(BUCKET, F.pmod(key, F.lit(parts))).filter(F.col(BUCKET).isin(pending))
        todo = todo.repartition(len(pending), F.col(BUCKET))
        fn = bucket_writer(output, BUCKET, sort_keys, process)
        status = todo.mapInArrow(fn, spark_schema(STATUS_SCHEMA)).collect()
        summary.written_partitions = len(status)
    missing = [b for b in range(parts) if not _exists(fs, root, b)]
    if missing:
        # buckets no row hashed into (xxhash spread): write them empty, for a complete set
        _write_empty(fs, root, missing, df.schema, hashes, cols)
        summary.written_partitions += len(missing)
    tot = footer_totals(output, range(parts))
    summary.matched, summary.errors = tot["matched"], tot["errors"]
    with fs.open_output_stream(f"{root}/{SUCCESS}") as out:
        out.write(json.dumps({"partitions": parts, **tot}, sort_keys=True).encode())
    if intake_url:
        _intake(output, parts, intake_url, account, account_col, summary)
    return summary


def _exists(fs: Any, root: str, bucket: int) -> bool:
    import pyarrow.fs as pafs

    return fs.get_file_info(f"{root}/{part_name(bucket)}").type == pafs.FileType.File


def _processor(
    bc: Any, options: MediaOptions, cols: dict[str, str], hashes: bool
) -> Callable[[Any], Any]:
    def process(batch: Any) -> Any:
        from .cache import hash_index_for, matcher_for

        if hashes:
            return hash_index_for(bc.value).match_batch(batch, cols)
        from .media import _attempt, hash_batch

        return hash_batch(batch, matcher_for(bc.value), options, isolate=_attempt() > 0)

    return process


def _write_empty(
    fs: Any, root: str, buckets: list[int], input_schema: Any, hashes: bool, cols: dict[str, str]
) -> None:
    import pyarrow as pa

    from .writer import write_part

    if hashes:
        from .hashonly import ERROR_TYPE, HASH_MATCH_TYPE

        fields = [pa.field(f.name, _arrow_type(f.dataType)) for f in input_schema.fields]
        schema = pa.schema([*fields, ("matches", pa.list_(HASH_MATCH_TYPE)), ("error", ERROR_TYPE)])
    else:
        from .media import RESULT_SCHEMA

        extra = [
            pa.field(f.name, _arrow_type(f.dataType))
            for f in input_schema.fields
            if f.name != "path"
        ]
        schema = pa.schema([*RESULT_SCHEMA, *extra])
    for b in buckets:
        write_part(fs, root, b, schema.empty_table())


def _arrow_type(t: Any) -> Any:
    from pyspark.sql.pandas.types import to_arrow_type

    return to_arrow_type(t)


def _intake(
    output: str,
    parts: int,
    url: str,
    account: str,
    account_col: str | None,
    summary: BackfillSummary,
) -> None:
    """Every match of the output becomes a ``hash_match`` signal (idempotent)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from ..review.intake import IntakeError, record_signal
    from ..store.db import open_engine

    engine = open_engine(url)
    fs, root = open_output(output)
    try:
        for b in range(parts):
            with fs.open_input_file(f"{root}/{part_name(b)}") as fh:
                t = pq.read_table(fh)
            if t.num_rows == 0 or "matches" not in t.column_names:
                continue
            lens = pc.fill_null(pc.list_value_length(t.column("matches")), 0)
            t = t.filter(pc.greater(lens, 0))
            for row in t.to_pylist():
                acct = str(row.get(account_col) or "") if account_col else account
                sha = row.get("sha256")
                for m in row["matches"]:
                    summary_ = {
                        "bank": m["bank"],
                        "entry_id": int(m["entry_id"]),
                        "distance": int(m["distance"]),
                        "signal_type": m["signal"],
                        "hash": m.get("entry_hash"),
                        "variant": m.get("variant"),
                        "category": m.get("category"),
                        "source": "backfill",
                    }
                    try:
                        record_signal(
                            engine,
                            account_id=acct,
                            kind="hash_match",
                            summary={k: v for k, v in summary_.items() if v is not None},
                            media_sha256=sha if isinstance(sha, str) else None,
                        )
                        summary.intake_items += 1
                    except IntakeError as e:
                        summary.intake_errors[e.code] = summary.intake_errors.get(e.code, 0) + 1
    finally:
        engine.dispose()
