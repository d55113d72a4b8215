"""Hash-only matching: a table of hashes a platform already computed, against the banks.

Nothing is read or decoded: each Arrow batch's hash columns (hex strings: ``pdq``,
``md5``, ``sha1``, ``sha256``... one column per signal type) are decoded in one
vectorised pass, PDQ hashes are matched exactly (100% recall, each distinct hash of
the batch once): a batch of at least :data:`JOIN_MIN_QUERIES` distinct hashes in one
bulk join (:class:`~sentinelle.index.pdq_join.PDQJoinIndex`, a sort-merge of the
batch's probe keys with the bank's chunk tables), a smaller one by range search in
:class:`~sentinelle.index.pdq_index.PDQIndex` (same matches, same order; each index
is built on first use, once per executor process); exact hashes by binary search in
a sorted digest column. The whole batch is answered with numpy; no Python runs per row
except inside the index's own kernel.

Each output row is the input row plus

* ``matches``: ``array<struct<bank, entry_id, signal, distance>>`` sorted by signal
  (in column order), distance, entry id; a PDQ match is kept when its distance is
  within the threshold of the entry's bank;
* ``error``: ``struct<code, message>`` when a hash cell is not valid hex of the
  right length (the other columns of the row are still matched); null otherwise.
  A null cell is no hash, not an error.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..index.pdq_index import PDQIndex
from ..index.pdq_join import MAX_DISTANCE as JOIN_MAX_DISTANCE
from ..index.pdq_join import PDQJoinIndex
from ..signals.signal_types import find_signal_type, get_signal_type

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from .snapshot import BankSnapshot

__all__ = [
    "ERROR_TYPE",
    "HASH_MATCH_TYPE",
    "HashOnlyIndex",
    "decode_hex",
    "match_hashes",
]

HASH_MATCH_TYPE = pa.struct(
    [
        ("bank", pa.string()),
        ("entry_id", pa.int64()),
        ("signal", pa.string()),
        ("distance", pa.int32()),
    ]
)
ERROR_TYPE = pa.struct([("code", pa.string()), ("message", pa.string())])

_LUT = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _LUT[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _LUT[_c] = 10 + _i


def decode_hex(arr: pa.Array, nbytes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode a string column of hex digests, vectorised.

    Returns ``(digests uint8 (n, nbytes), present bool (n,), valid bool (n,))``:
    ``present`` is False for nulls, ``valid`` True where the cell is exactly
    ``2 * nbytes`` hex digits (either case). Invalid rows hold zeros.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    width = 2 * nbytes
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
            arr = arr.cast(pa.large_string() if pa.types.is_large_binary(arr.type) else pa.string())
        else:
            arr = arr.cast(pa.string())
    present = np.asarray(arr.is_valid(), dtype=bool)
    lens = np.asarray(pc.fill_null(pc.binary_length(arr), 0), dtype=np.int64)
    ok_len = present & (lens == width)
    if not ok_len.all():
        arr = pc.if_else(pa.array(ok_len), arr, pa.scalar("0" * width, arr.type))
    out = np.zeros((n, nbytes), dtype=np.uint8)
    if n == 0:
        return out, present, ok_len
    off_t = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=off_t)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    start = int(offsets[0])
    chars = data[start : start + n * width]
    try:  # C speed when every cell is clean hex (the usual case)
        raw = bytes.fromhex(chars.tobytes().decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raw = b""
    if len(raw) == n * nbytes:  # (fromhex skips spaces: a short result is not clean)
        out[:] = np.frombuffer(raw, dtype=np.uint8).reshape(n, nbytes)
        valid = ok_len.copy()
    else:
        nib = _LUT[chars.reshape(n, width)]
        bad = (nib == 255).any(axis=1)
        out[:] = (nib[:, 0::2] << 4) | (nib[:, 1::2] & 0x0F)
        valid = ok_len & ~bad
    out[~valid] = 0
    return out, present, valid


class _Exact:
    """One exact signal type: digests sorted by their first 8 bytes (a uint64, so the
    binary search compares integers), with the entry and bank of each."""

    def __init__(self, nbytes: int, hexes: list[str], ids: np.ndarray, bank_pos: np.ndarray):
        self.nbytes = nbytes
        dig, _, valid = decode_hex(pa.array(hexes, pa.string()), nbytes)
        dig, ids, bank_pos = dig[valid], ids[valid], bank_pos[valid]
        pfx = _prefix(dig)
        order = np.argsort(pfx, kind="stable")
        self.pfx = pfx[order]
        self.dig = dig[order]
        self.ids = ids[order]
        self.bank_pos = bank_pos[order]
        # run_end[i]: one past the last position sharing pfx[i] (saves a second search)
        n = len(self.pfx)
        starts = np.flatnonzero(np.r_[True, self.pfx[1:] != self.pfx[:-1]]) if n else starts_empty()
        ends = np.r_[starts[1:], n].astype(np.int64)
        self.run_end = np.repeat(ends, np.diff(np.r_[starts, n]))

    def lookup(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(query row, position)`` of every equal digest."""
        qp = _prefix(q)
        n = len(self.pfx)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        order = np.argsort(qp)  # sorted needles: the search walks the array in order
        lo = np.empty(len(qp), dtype=np.int64)
        lo[order] = np.searchsorted(self.pfx, qp[order], "left")
        lo = np.minimum(lo, n - 1)
        hit = self.pfx[lo] == qp
        cnt = np.where(hit, self.run_end[lo] - lo, 0)
        rows = np.repeat(np.arange(len(qp)), cnt)
        pos = _ranges(lo, cnt)
        same = (self.dig[pos] == q[rows]).all(axis=1)  # the prefix matched: check the rest
        return rows[same], pos[same]


def starts_empty() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


def _prefix(dig: np.ndarray) -> np.ndarray:
    """The first 8 bytes of each digest as one integer (order-preserving)."""
    head = np.zeros((len(dig), 8), dtype=np.uint8)
    w = min(8, dig.shape[1])
    head[:, :w] = dig[:, :w]
    return head.view(">u8").ravel().astype(np.uint64)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for each pair, vectorised."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    base = np.repeat(starts.astype(np.int64) - (ends - counts), counts)
    return base + np.arange(total, dtype=np.int64)


#: Batches with at least this many distinct PDQ hashes take the bulk join
#: (:class:`~sentinelle.index.pdq_join.PDQJoinIndex`); smaller ones query
#: :class:`PDQIndex` (the join sweeps 16 x 65,536 buckets: a fixed cost per batch).
JOIN_MIN_QUERIES = 512
#: Rows per batch a Spark worker matches at once (:func:`rebatch`; hash rows are small).
BATCH_ROWS = 1 << 16


class _LazyPDQ:
    """The PDQ bank's two indexes, each built on first use (once per process, like
    the :class:`HashOnlyIndex` holding it)."""

    def __init__(self, hashes: np.ndarray) -> None:
        self._hashes = hashes
        self._search: PDQIndex | None = None
        self._join: PDQJoinIndex | None = None
        self._lock = threading.Lock()

    def search(self) -> PDQIndex:
        with self._lock:
            if self._search is None:
                ix = PDQIndex()
                ix.add(np.arange(len(self._hashes), dtype=np.int64), self._hashes)
                self._search = ix
            return self._search

    def join(self) -> PDQJoinIndex:
        with self._lock:
            if self._join is None:
                self._join = PDQJoinIndex(self._hashes)
            return self._join


class HashOnlyIndex:
    """Indexes of a :class:`BankSnapshot` for matching hash columns (built once per process)."""

    def __init__(self, snapshot: BankSnapshot) -> None:
        self.bank_names: list[str] = [b.name for b in snapshot.banks]
        pos_of = {b.id: i for i, b in enumerate(snapshot.banks)}
        self._thr: dict[str, np.ndarray] = {}
        self.version = snapshot.version
        self._pdq: _LazyPDQ | None = None
        self._pdq_hashes = np.zeros((0, 32), dtype=np.uint8)
        self._exact: dict[str, _Exact] = {}
        self._ids: dict[str, np.ndarray] = {}
        self._bank_pos: dict[str, np.ndarray] = {}
        for name, loaded in snapshot.signals.items():
            st = get_signal_type(name)
            if st.index not in ("pdq", "exact") or len(loaded) == 0:
                continue
            ids = np.asarray(loaded.entry_ids, dtype=np.int64)
            bpos = np.array([pos_of.get(int(b), -1) for b in loaded.bank_ids], dtype=np.int64)
            keep = bpos >= 0
            self._thr[name] = np.array(
                [
                    snapshot.thresholds.get(b.name, {}).get(name, st.default_threshold)
                    for b in snapshot.banks
                ],
                dtype=np.int64,
            )
            if st.index == "pdq":
                self._pdq_hashes = np.ascontiguousarray(
                    np.asarray(loaded.hashes, dtype=np.uint8)[keep]
                )
                self._pdq = _LazyPDQ(self._pdq_hashes)
                self._ids[name], self._bank_pos[name] = ids[keep], bpos[keep]
            else:
                hexes = [h for h, k in zip(loaded.hashes, keep, strict=True) if k]
                nbytes = len(hexes[0]) // 2 if hexes else 16
                ex = _Exact(nbytes, hexes, ids[keep], bpos[keep])
                self._exact[name] = ex

    def signal_types(self) -> list[str]:
        return (["pdq"] if self._pdq is not None else []) + sorted(self._exact)

    def _pdq_hits(self, q: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(row, bank_pos, entry_id, distance)`` of PDQ matches of the rows of ``q``."""
        empty = np.zeros(0, dtype=np.int64)
        if self._pdq is None or len(q) == 0:
            return empty, empty, empty, empty
        thr = self._thr["pdq"]
        # Each distinct hash once (platform tables repeat viral media).
        keys = np.ascontiguousarray(q).view("S32").ravel()
        uniq, inv = np.unique(keys, return_inverse=True)
        uq = np.frombuffer(uniq.tobytes(), dtype=np.uint8).reshape(-1, 32)
        max_d = int(thr.max())
        if len(uq) >= JOIN_MIN_QUERIES and max_d <= JOIN_MAX_DISTANCE:
            # bulk join: (query, position, distance) sorted as PDQIndex.search sorts
            qi, pos, dist = self._pdq.join().join(uq, max_d)
            cnt_u = np.bincount(qi, minlength=len(uq)).astype(np.int64)
        else:
            res = self._pdq.search().search(uq, max_d)
            cnt_u = np.fromiter((len(r) for r in res), dtype=np.int64, count=len(res))
            flat = [h for r in res for h in r]
            pos = np.fromiter((p for p, _ in flat), dtype=np.int64, count=len(flat))
            dist = np.fromiter((d for _, d in flat), dtype=np.int64, count=len(flat))
        if cnt_u.sum() == 0:
            return empty, empty, empty, empty
        bpos = self._bank_pos["pdq"][pos]
        ok = dist <= thr[bpos]
        # per original row: the hits of its distinct hash
        start_u = np.cumsum(cnt_u) - cnt_u
        cnt_i = cnt_u[inv]
        rows = np.repeat(np.arange(len(q)), cnt_i)
        hit = _ranges(start_u[inv], cnt_i)
        keep = ok[hit]
        rows, hit = rows[keep], hit[keep]
        return rows, bpos[hit], self._ids["pdq"][pos[hit]], dist[hit]

    def match_columns(self, columns: Mapping[str, pa.Array], n: int) -> tuple[pa.Array, pa.Array]:
        """``(matches, error)`` arrays for ``n`` rows whose hash columns are ``columns``
        (signal type -> string array)."""
        parts: list[tuple[np.ndarray, ...]] = []
        err_code = np.full(n, None, dtype=object)
        err_msg = np.full(n, None, dtype=object)
        for order, (sig, arr) in enumerate(columns.items()):
            st = find_signal_type(sig)
            if st is None or st.index not in ("pdq", "exact"):
                raise ValueError(f"hash-only matching handles pdq and exact types, not {sig!r}")
            nbytes = (
                32
                if st.index == "pdq"
                else (self._exact[sig].nbytes if sig in self._exact else _exact_nbytes(sig))
            )
            dig, present, valid = decode_hex(arr, nbytes)
            bad = present & ~valid
            if bad.any():
                fresh = bad & np.equal(err_code, None)
                err_code[fresh] = "invalid_hash"
                err_msg[fresh] = f"{sig}: not {2 * nbytes} hex digits"
            idx = np.flatnonzero(valid)
            if len(idx) == 0:
                continue
            if st.index == "pdq":
                r, bp, eid, d = self._pdq_hits(dig[idx])
            elif sig in self._exact:
                ex = self._exact[sig]
                r, p = ex.lookup(dig[idx])
                bp, eid, d = ex.bank_pos[p], ex.ids[p], np.zeros(len(p), np.int64)
            else:
                continue
            if len(r):
                parts.append((idx[r], np.full(len(r), order), d, eid, bp))
        matches = self._build_matches(parts, list(columns), n)
        error = pa.StructArray.from_arrays(
            [pa.array(err_code, pa.string()), pa.array(err_msg, pa.string())],
            fields=list(ERROR_TYPE),
            mask=pa.array(np.equal(err_code, None)),
        )
        return matches, error

    def _build_matches(
        self, parts: list[tuple[np.ndarray, ...]], sigs: list[str], n: int
    ) -> pa.Array:
        if parts:
            row, sig, dist, eid, bpos = (np.concatenate(c) for c in zip(*parts, strict=True))
            order = np.lexsort((eid, dist, sig, row))
            row, sig, dist, eid, bpos = row[order], sig[order], dist[order], eid[order], bpos[order]
        else:
            row = sig = dist = eid = bpos = np.zeros(0, dtype=np.int64)
        offsets = np.searchsorted(row, np.arange(n + 1)).astype(np.int32)
        values = pa.StructArray.from_arrays(
            [
                pa.array(self.bank_names, pa.string()).take(pa.array(bpos)),
                pa.array(eid, pa.int64()),
                pa.array(sigs, pa.string()).take(pa.array(sig)),
                pa.array(dist.astype(np.int32), pa.int32()),
            ],
            fields=list(HASH_MATCH_TYPE),
        )
        return pa.ListArray.from_arrays(pa.array(offsets), values)

    def match_batch(
        self, batch: pa.RecordBatch, columns: Mapping[str, str] | None = None
    ) -> pa.RecordBatch:
        """The batch plus ``matches`` and ``error`` columns.

        ``columns``: signal type -> column name (default: every column named after a
        signal type the banks hold: ``pdq``, ``md5``...).
        """
        cols = dict(columns) if columns is not None else default_columns(batch.schema.names)
        arrays = {sig: batch.column(name) for sig, name in cols.items()}
        matches, error = self.match_columns(arrays, batch.num_rows)
        names = [*batch.schema.names, "matches", "error"]
        return pa.RecordBatch.from_arrays([*batch.columns, matches, error], names=names)


def _exact_nbytes(sig: str) -> int:
    return {"md5": 16, "sha1": 20}.get(sig, 32)


def default_columns(names: Iterable[str]) -> dict[str, str]:
    out = {}
    for name in names:
        st = find_signal_type(name)
        if st is not None and st.index in ("pdq", "exact"):
            out[name] = name
    return out


def _batches(
    it: Iterator[pa.RecordBatch], bc: Any, columns: dict[str, str]
) -> Iterator[pa.RecordBatch]:
    from .cache import hash_index_for

    index = hash_index_for(bc.value if hasattr(bc, "value") else bc)
    for batch in rebatch(it, BATCH_ROWS):
        yield index.match_batch(batch, columns)


def rebatch(it: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of ``it``, in order, in batches of at least ``rows`` (the last may be
    short): Spark hands Python workers small Arrow batches (``maxRecordsPerBatch``, 64
    in :data:`~sentinelle.spark.session.DEFAULT_CONF` for media rows), and the bulk
    join's fixed cost per batch wants many hashes at once."""
    buf: list[pa.RecordBatch] = []
    n = 0
    for batch in it:
        if batch.num_rows >= rows and not buf:
            yield batch
            continue
        buf.append(batch)
        n += batch.num_rows
        if n >= rows:
            yield _concat(buf)
            buf, n = [], 0
    if buf:
        yield _concat(buf)


def _concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def match_hashes(
    df: DataFrame, snapshot: Any, columns: Mapping[str, str] | None = None
) -> DataFrame:
    """Match the hash columns of ``df`` against a (broadcast) bank snapshot.

    ``snapshot``: a :class:`BankSnapshot` (broadcast here) or a Spark ``Broadcast`` of
    one (reuse it across calls). Returns ``df``'s columns plus ``matches`` and
    ``error``; one output row per input row.
    """
    from .session import broadcast_snapshot

    cols = dict(columns) if columns is not None else default_columns(df.columns)
    if not cols:
        raise ValueError("no hash column: name one per signal type (e.g. {'pdq': 'pdq_hex'})")
    missing = [c for c in cols.values() if c not in df.columns]
    if missing:
        raise ValueError(f"no column {missing[0]!r} in the DataFrame")
    bc = broadcast_snapshot(df.sparkSession, snapshot)
    return df.mapInArrow(lambda it: _batches(it, bc, cols), output_schema(df.schema))


def output_schema(input_schema: Any) -> Any:
    """The Spark schema of :func:`match_hashes`' output: the input's fields, then
    ``matches`` and ``error``."""
    from pyspark.sql.types import StructType

    from .schema import spark_type

    out = StructType(list(input_schema.fields))
    out.add("matches", spark_type(pa.list_(HASH_MATCH_TYPE)))
    out.add("error", spark_type(ERROR_TYPE))
    return out
