"""Idempotent Parquet partitions: each bucket of rows is one file, written whole or not at all.

A bucket's rows are hashed, sorted (so the file does not depend on the order Spark
delivered them in), written to ``part-NNNNN.parquet.tmp-<random>`` and renamed to
``part-NNNNN.parquet``. A file under its final name is therefore complete: a rerun
after a kill lists the finished buckets and skips them, and the temporary
leftovers of the killed run are removed. On object stores (``s3://``...) the
rename is a copy: the final object appears at once when the copy completes, which
gives the same guarantee.

Each file's footer carries its counts (``sentinelle.stats``: rows, matched,
errors), so totals over a finished output are read from the footers alone.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

__all__ = [
    "PART_RE",
    "STATUS_SCHEMA",
    "bucket_writer",
    "done_buckets",
    "open_output",
    "part_name",
    "remove_leftovers",
    "sort_rows",
]

PART_RE = re.compile(r"^part-(\d{5,})\.parquet$")
TMP_MARK = ".tmp-"
STATUS_SCHEMA = pa.schema(
    [
        ("bucket", pa.int64()),
        ("rows", pa.int64()),
        ("matched", pa.int64()),
        ("errors", pa.int64()),
    ]
)
STATS_KEY = b"sentinelle.stats"


def part_name(bucket: int) -> str:
    return f"part-{bucket:05d}.parquet"


def open_output(output: str) -> tuple[pafs.FileSystem, str]:
    """``(filesystem, root path)`` of an output directory (local path or URI)."""
    if "://" in output:
        scheme, rest = output.split("://", 1)
        if scheme in ("s3a", "s3n"):
            output = f"s3://{rest}"
        return pafs.FileSystem.from_uri(output)
    from pathlib import Path

    return pafs.LocalFileSystem(), str(Path(output).resolve())


def _listing(fs: pafs.FileSystem, root: str) -> list[pafs.FileInfo]:
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        return []
    return list(fs.get_file_info(pafs.FileSelector(root, recursive=False)))


def done_buckets(fs: pafs.FileSystem, root: str) -> set[int]:
    """Buckets whose file is under its final name (complete)."""
    out = set()
    for f in _listing(fs, root):
        m = PART_RE.match(f.base_name)
        if m and f.type == pafs.FileType.File:
            out.add(int(m.group(1)))
    return out


def remove_leftovers(fs: pafs.FileSystem, root: str) -> int:
    """Delete temporary files of an interrupted run; returns how many."""
    n = 0
    for f in _listing(fs, root):
        if TMP_MARK in f.base_name and f.base_name.startswith("part-"):
            fs.delete_file(f.path)
            n += 1
    return n


def sort_rows(table: pa.Table, keys: list[str]) -> pa.Table:
    """``table`` in a deterministic order: by ``keys`` (sortable columns only), nulls last."""
    usable = [
        k
        for k in keys
        if k in table.column_names
        and (
            pa.types.is_string(table.schema.field(k).type)
            or pa.types.is_large_string(table.schema.field(k).type)
            or pa.types.is_integer(table.schema.field(k).type)
            or pa.types.is_floating(table.schema.field(k).type)
            or pa.types.is_boolean(table.schema.field(k).type)
            or pa.types.is_timestamp(table.schema.field(k).type)
            or pa.types.is_date(table.schema.field(k).type)
            or pa.types.is_binary(table.schema.field(k).type)
        )
    ]
    if not usable or table.num_rows < 2:
        return table
    idx = pc.sort_indices(
        table, sort_keys=[(k, "ascending") for k in usable], null_placement="at_end"
    )
    return table.take(idx)


def _stats(table: pa.Table) -> dict[str, int]:
    matched = errors = 0
    if "matches" in table.column_names:
        lens = pc.fill_null(pc.list_value_length(table.column("matches")), 0)
        matched = int(pc.sum(pc.greater(lens, 0)).as_py() or 0)
    if "error" in table.column_names:
        errors = int(pc.sum(table.column("error").is_valid()).as_py() or 0)
    return {"rows": table.num_rows, "matched": matched, "errors": errors}


def write_part(fs: pafs.FileSystem, root: str, bucket: int, table: pa.Table) -> dict[str, int]:
    """Write one bucket's rows atomically (temporary name, then rename)."""
    stats = _stats(table)
    meta = dict(table.schema.metadata or {})
    meta[STATS_KEY] = json.dumps(stats, sort_keys=True).encode()
    table = table.replace_schema_metadata(meta)
    fs.create_dir(root, recursive=True)
    final = f"{root}/{part_name(bucket)}"
    tmp = f"{final}{TMP_MARK}{uuid.uuid4().hex}"
    try:
        with fs.open_output_stream(tmp) as out:
            pq.write_table(table, out, compression="zstd", row_group_size=64 * 1024)
        fs.move(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            fs.delete_file(tmp)
        raise
    return stats


def read_stats(fs: pafs.FileSystem, root: str, bucket: int) -> dict[str, int]:
    with fs.open_input_file(f"{root}/{part_name(bucket)}") as fh:
        meta = pq.read_schema(fh).metadata or {}
    return json.loads(meta.get(STATS_KEY, b"{}"))


def bucket_writer(
    output: str,
    bucket_col: str,
    sort_keys: list[str],
    process: Callable[[pa.RecordBatch], pa.RecordBatch],
    prepare: Callable[[], None] | None = None,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A ``mapInArrow`` function: processes rows, writes one file per bucket, yields status.

    Every row of a bucket must reach the same call (``repartition(n, bucket_col)``
    guarantees it); a call may hold several buckets.
    """

    def run(it: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        if prepare is not None:
            prepare()
        fs, root = open_output(output)
        parts: dict[int, list[pa.RecordBatch]] = {}
        for batch in it:
            if batch.num_rows == 0:
                continue
            buckets = batch.column(bucket_col)
            rest = batch.drop_columns([bucket_col])
            for b in pc.unique(buckets).to_pylist():
                sel = rest.filter(pc.equal(buckets, b))
                parts.setdefault(int(b), []).append(process(sel))
        for b in sorted(parts):
            table = sort_rows(pa.Table.from_batches(parts.pop(b)), sort_keys)
            st = write_part(fs, root, b, table)
            yield pa.RecordBatch.from_pylist([{"bucket": b, **st}], schema=STATUS_SCHEMA)

    return run


def footer_totals(output: str, buckets: range) -> dict[str, Any]:
    fs, root = open_output(output)
    tot = {"rows": 0, "matched": 0, "errors": 0}
    for b in buckets:
        st = read_stats(fs, root, b)
        for k in tot:
            tot[k] += int(st.get(k, 0))
    return tot
