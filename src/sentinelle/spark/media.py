"""Hash and match media in Spark: one output row per file, Arrow batches in and out.

::

    from sentinelle.spark import BankSnapshot, hash_files, hash_paths

    snap = BankSnapshot.from_store(BankStore(url))            # on the driver
    files = spark.read.format("binaryFile").load("s3a://bucket/media/")
    out = hash_files(files, snap)                              # bytes in the table
    out = hash_paths(spark.read.parquet("uris.parquet"), snap) # executors read the URIs

Each file goes the way ``sentinelle scan`` takes it (:mod:`sentinelle.scan.runner`):
the fast PDQ path (reduced decode) with the trimmed query view, matched with
:meth:`Matcher.match_fast`; a hash within the verify margin of a threshold is
hashed again on the reference-exact path and matched with :meth:`Matcher.match`
(``pdq_path`` says which: ``fast``, ``exact-verified``, ``exact``). Hashing is
:func:`sentinelle.signals.hasher.hash_file` / ``hash_bytes`` under the scanner's
decode time limit; the matcher is built once per executor process from the
broadcast snapshot (:mod:`sentinelle.spark.cache`).

A bad file is a row with ``error`` set (``corrupt_media``, ``unsupported_type``,
``io_error``...; the crypto hashes of what was read are still filled), never a
failed task. If a decoder kills the Python worker outright, Spark retries the
task; retries hash each file in a child process, so the file that crashes gets a
``decoder_crashed`` row and the job goes on.

Not done here: provenance verdicts (``scan``'s default; use ``sentinelle scan``
or ``sentinelle provenance`` on the matched files).
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..errors import MediaError
from ..media.limits import DEFAULT_LIMITS, Limits
from ..signals.types import HashResult, HashSignal
from .hashonly import ERROR_TYPE
from .uri import local_path, read_uri

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from ..index.matcher import Matcher

__all__ = [
    "MATCH_TYPE",
    "RESULT_SCHEMA",
    "MediaOptions",
    "hash_batch",
    "hash_files",
    "hash_paths",
]

VARIANT_TYPE = pa.struct([("variant", pa.string()), ("hash", pa.string()), ("quality", pa.int32())])
MATCH_TYPE = pa.struct(
    [
        ("bank", pa.string()),
        ("entry_id", pa.int64()),
        ("entry_hash", pa.string()),
        ("signal", pa.string()),
        ("distance", pa.int32()),
        ("variant", pa.string()),
        ("category", pa.string()),
    ]
)
RESULT_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("size", pa.int64()),
        ("media_type", pa.string()),
        ("format", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("md5", pa.string()),
        ("sha1", pa.string()),
        ("sha256", pa.string()),
        ("pdq", pa.string()),
        ("pdq_quality", pa.int32()),
        ("signals", pa.string()),  # JSON, as in scan records (vPDQ frames included)
        ("variants", pa.list_(VARIANT_TYPE)),
        ("matches", pa.list_(MATCH_TYPE)),
        ("pdq_path", pa.string()),
        ("error", ERROR_TYPE),
        ("config", pa.string()),
        ("bank_version", pa.int64()),
    ]
)
_MATCH_FIELDS = [f.name for f in MATCH_TYPE]


@dataclass(frozen=True)
class MediaOptions:
    """What ``scan`` calls ``--exact``, ``--dihedral``, ``--trim/--no-trim`` and the limits."""

    exact: bool = False
    dihedral: bool = False
    trimmed: bool = True
    limits: Limits = DEFAULT_LIMITS

    @property
    def query_variants(self) -> tuple[str, ...]:
        return tuple(v for v, on in (("trimmed", self.trimmed), ("dihedral", self.dihedral)) if on)

    @property
    def config(self) -> str:
        """The ``config`` string ``scan`` writes for these options without provenance."""
        from ..scan.runner import ScanOptions

        return ScanOptions(
            workers=1,
            exact=self.exact,
            dihedral=self.dihedral,
            trimmed=self.trimmed,
            provenance=False,
        ).config


# ----------------------------------------------------------------- one file


def _under_alarm(limits: Limits, fn: Callable[[], HashResult]) -> HashResult:
    """``fn()`` under the scanner's wall-clock limit (SIGALRM; main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return fn()

    def _alarm(signum: int, frame: object) -> None:
        raise MediaError(
            f"decoding took longer than {limits.decode_timeout_s:g}s", "decode_timeout"
        )

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limits.decode_timeout_s * 1.5 + 1.0)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def hash_source(
    path: str, content: bytes | None, exact: bool, variants: tuple[str, ...], limits: Limits
) -> HashResult:
    """Hash one file (``content`` given: those bytes; else read ``path``). Never raises."""
    from ..signals.hasher import DEFAULT_SIGNALS, hash_bytes, hash_file

    def run() -> HashResult:
        kw: dict[str, Any] = {
            "signals": DEFAULT_SIGNALS,
            "exact": exact,
            "query_variants": variants,
            "limits": limits,
        }
        if content is not None:
            return hash_bytes(content, name=path, **kw)
        local = local_path(path)
        if local is not None:
            r = hash_file(local, **kw)
            r.path = path
            return r
        return hash_bytes(read_uri(path, limits.max_file_bytes), name=path, **kw)

    try:
        return _under_alarm(limits, run)
    except MediaError as e:
        return HashResult(path=path, size=len(content or b""), error=e)
    except Exception as e:  # noqa: BLE001 - one file never fails the task
        return HashResult(path=path, size=0, error=MediaError(type(e).__name__, "internal_error"))


def _isolated(
    path: str, content: bytes | None, exact: bool, variants: tuple[str, ...], limits: Limits
) -> HashResult:
    """:func:`hash_source` in a child process: a decoder crash costs only that file."""
    from ..scan.runner import _pool

    with _pool(1) as solo:
        try:
            return solo.submit(hash_source, path, content, exact, variants, limits).result()
        except BrokenProcessPool:
            return HashResult(
                path=path,
                size=len(content or b""),
                error=MediaError("the decoder crashed on this file", "decoder_crashed"),
            )


def hash_and_match(
    path: str,
    content: bytes | None,
    matcher: Matcher,
    options: MediaOptions,
    isolate: bool = False,
) -> tuple[HashResult, list[Any], str]:
    """Hash, match, and re-check a near miss on the exact path, as ``scan`` does."""
    hasher = _isolated if isolate else hash_source
    variants, limits = options.query_variants, options.limits
    if options.exact:
        result = hasher(path, content, True, variants, limits)
        return result, matcher.match(result), "exact"
    result = hasher(path, content, False, variants, limits)
    matches = matcher.match_fast(result)
    if matches is not None:
        return result, matches, "fast"
    result = hasher(path, content, True, variants, limits)
    return result, matcher.match(result), "exact-verified"


# ----------------------------------------------------------------- batches


class _Columns:
    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {f.name: [] for f in RESULT_SCHEMA}

    def add(
        self, result: HashResult, matches: list[Any], pdq_path: str, config: str, version: int
    ) -> None:
        c = self.cols
        by_type = {s.type: s for s in result.signals if isinstance(s, HashSignal)}
        c["path"].append(result.path)
        c["size"].append(result.size)
        c["media_type"].append(result.media_type)
        c["format"].append(result.format)
        c["width"].append(result.width)
        c["height"].append(result.height)
        for name in ("md5", "sha1", "sha256", "pdq"):
            s = by_type.get(name)
            c[name].append(s.hash if s is not None else None)
        pdq = by_type.get("pdq")
        c["pdq_quality"].append(pdq.quality if pdq is not None else None)
        c["signals"].append(
            json.dumps([s.to_dict() for s in result.signals], separators=(",", ":"))
        )
        c["variants"].append([v.to_dict() for v in result.query_variants])
        c["matches"].append([{k: m.to_dict().get(k) for k in _MATCH_FIELDS} for m in matches])
        c["pdq_path"].append(pdq_path)
        c["error"].append(result.error.to_dict() if result.error is not None else None)
        c["config"].append(config)
        c["bank_version"].append(version)

    def table(self) -> pa.Table:
        return pa.table({k: pa.array(v, RESULT_SCHEMA.field(k).type) for k, v in self.cols.items()})


def hash_batch(
    batch: pa.RecordBatch,
    matcher: Matcher,
    options: MediaOptions = MediaOptions(),
    *,
    path_col: str = "path",
    content_col: str | None = None,
    isolate: bool = False,
) -> pa.RecordBatch:
    """Hash and match every row of ``batch``: the result columns, then the batch's
    other columns (not ``path_col`` nor ``content_col``), row for row."""
    paths = batch.column(path_col).to_pylist()
    contents: list[Any] = (
        batch.column(content_col).to_pylist() if content_col else [None] * len(paths)
    )
    cols = _Columns()
    config = options.config
    for path, content in zip(paths, contents, strict=True):
        if path is None:
            r = HashResult(path=None, size=0, error=MediaError("no path", "io_error"))
            cols.add(r, [], "none", config, matcher.version)
            continue
        if content_col and content is None:
            r = HashResult(path=path, size=0, error=MediaError("no content", "io_error"))
            cols.add(r, [], "none", config, matcher.version)
            continue
        result, matches, how = hash_and_match(path, content, matcher, options, isolate)
        cols.add(result, matches, how, config, matcher.version)
    t = cols.table()
    extra = [n for n in batch.schema.names if n not in (path_col, content_col)]
    arrays = [*t.columns, *(batch.column(n) for n in extra)]
    names = [*t.schema.names, *extra]
    return pa.RecordBatch.from_arrays(
        [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays], names=names
    )


def _attempt() -> int:
    try:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        return ctx.attemptNumber() if ctx is not None else 0
    except Exception:  # noqa: BLE001 - outside Spark
        return 0


def _map(
    bc: Any, options: MediaOptions, path_col: str, content_col: str | None
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def run(it: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from .cache import matcher_for

        matcher = matcher_for(bc.value)
        isolate = _attempt() > 0  # a retry: maybe a decoder crash; isolate each file
        for batch in it:
            yield hash_batch(
                batch,
                matcher,
                options,
                path_col=path_col,
                content_col=content_col,
                isolate=isolate,
            )

    return run


def output_schema(input_schema: Any, path_col: str, content_col: str | None) -> Any:
    """Spark schema of :func:`hash_files` / :func:`hash_paths` output."""
    from pyspark.sql.types import StructType

    from .schema import spark_schema

    out = spark_schema(RESULT_SCHEMA)
    taken = set(RESULT_SCHEMA.names)
    fields = list(out.fields)
    for f in input_schema.fields:
        if f.name in (path_col, content_col):
            continue
        if f.name in taken:
            raise ValueError(f"input column {f.name!r} clashes with an output column")
        fields.append(f)
    return StructType(fields)


def _run(
    df: DataFrame, snapshot: Any, options: MediaOptions, path_col: str, content_col: str | None
) -> DataFrame:
    from .session import broadcast_snapshot

    for c in (path_col, content_col):
        if c is not None and c not in df.columns:
            raise ValueError(f"no column {c!r} in the DataFrame")
    bc = broadcast_snapshot(df.sparkSession, snapshot)
    schema = output_schema(df.schema, path_col, content_col)
    return df.mapInArrow(_map(bc, options, path_col, content_col), schema)


def hash_files(
    df: DataFrame,
    snapshot: Any,
    options: MediaOptions = MediaOptions(),
    *,
    path_col: str = "path",
    content_col: str = "content",
) -> DataFrame:
    """Hash the bytes of a ``binaryFile`` DataFrame (``path``, ``content``, ...)."""
    return _run(df, snapshot, options, path_col, content_col)


def hash_paths(
    df: DataFrame,
    snapshot: Any,
    options: MediaOptions = MediaOptions(),
    *,
    path_col: str = "path",
) -> DataFrame:
    """Hash the files a column of paths / URIs names (read on the executors)."""
    return _run(df, snapshot, options, path_col, None)
