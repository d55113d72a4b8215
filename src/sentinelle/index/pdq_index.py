"""PDQ matching index: multi-index hashing (MIH) with incremental add / remove.

What it answers
---------------
Given query PDQ hashes (256 bits each), return every indexed ``(id, distance)``
with Hamming distance ``<= max_distance``. Recall is always 100%: the answer is
exactly what a brute-force scan would return, never an approximation.

How it works
------------
*Multi-index hashing.* The 256 bits are cut into 16 chunks of 16 bits. If two
hashes are within distance ``d``, the 16 chunk distances sum to at most ``d``,
so (generalised pigeonhole) for any per-chunk radii ``t_c`` with
``sum(t_c + 1) >= d + 1`` at least one chunk ``c`` is within ``t_c``. We spread
``d + 1`` over the 16 chunks as evenly as possible: for the PDQ threshold 31
every chunk gets radius 1 (17 probes per chunk, 272 in all); for ``d = 20``
five chunks get radius 1 and eleven radius 0; for ``d = 0`` a single exact
chunk probe suffices. Each chunk has a bucket table in CSR form (``offsets`` +
``rows``), so a probe is two array reads. Every candidate is verified with four
64-bit popcounts, and it is reported only from the *first* chunk that lets it
through, so no per-query hash set is needed to de-duplicate.

*Software pipelining.* At 1M+ rows nearly every step of a query is a random
DRAM read (bucket offsets, row lists, hashes: far more than the CPU caches
hold), so the kernel works in stages over whole arrays -- all bucket addresses,
then all (offset, size) reads, then all row reads, then all hash reads -- and
in each stage issues an explicit prefetch (``llvm.prefetch``)
:data:`_PREFETCH_AHEAD` items ahead. Dozens of misses are then in flight at
once instead of the few a branchy loop keeps (each mispredicted "is this bucket
empty?" branch used to flush them). The gain over the branchy loop was only
measured ad hoc (no before/after section in ``bench/RESULTS.md``; the index's
figures against ``PDQIndex`` are there).

The tables hold probes of radius <= 2, so the structure guarantees 100%
recall up to ``max_distance`` :data:`MIH_MAX_DISTANCE` (= 47); above that the
index falls back to an exact brute-force scan.

*Incremental (LSM-like).* The index is a list of immutable *segments* plus a
small *buffer*:

- ``add`` appends to the buffer (brute-force scanned, at most
  :data:`BUFFER_ROWS` rows). A full buffer, or a large batch, becomes a new
  segment; nothing existing is rebuilt.
- segments of similar size (same power-of-4 tier) are merged four at a time,
  and only while the result stays below :data:`MAX_MERGE_ROWS`, so each row is
  re-indexed O(log n) times over its life and big segments are never rebuilt
  because of a small add.
- ``remove`` (and re-adding an id, which replaces its hash) sets a tombstone in
  the owning segment's ``alive`` mask; a segment that is more than half dead is
  compacted on its own.

Small segments use fewer bucket-table bits (``2**k`` buckets, ``k <= 16``) and
keep the 16-bit chunk keys to filter bucket entries, so a 2,000-row segment
does not pay for 16 x 65,537 offsets.

*Memory* (per live hash, large segments): 32 B hash + 8 B id + 12 x 4 B row
indices + 1 B tombstone = 89 B, plus 128 MiB of bucket offsets per large segment
(12 direct tables of 2**21..2**22 entries). A build needs little beyond that: the
batch is copied once (gathered in id order; an increasing batch is copied as is)
and each table is sorted in place, its counting-sort histogram being the offsets
themselves. Peak RSS growth of a build beside ``PDQIndex`` of python-threatexchange:
``bench/bench_index.py`` (section "PDQ index" of ``bench/RESULTS.md``).

*Threads.* Searches read an immutable snapshot of the segment list and run in
numba kernels that release the GIL, so concurrent searches run in parallel.
Writers take a lock. A search that overlaps a write sees every entry either
before or after the write (a replaced id may be briefly absent, never doubled
by that write).

Hashes are ``numpy.uint8`` arrays of shape ``(n, 32)`` holding the PDQ bits in
the order of the hex form (``bytes.fromhex(hex)``). Internally each row is
viewed as four ``uint64`` words; any fixed bit partition works for Hamming
distance, so no byte swapping is needed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from math import comb

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ..errors import SentinelleError
from ..signals.hashcodec import normalize_hash, pdq_hexes_to_array

__all__ = [
    "BUFFER_ROWS",
    "IndexInputError",
    "MAX_MERGE_ROWS",
    "MIH_MAX_DISTANCE",
    "PDQIndex",
]

#: Chunking of large segments: 12 chunks (four of 22 bits, eight of 21 bits).
#: Against 16 x 16 bits (see ``bench/bench_index.py --chunkings``) wider chunks
#: give ~6x fewer candidates per query (each a cache miss on the hash array)
#: for ~7x more probes (each a cheap table read): a clear win from ~1M rows.
DEFAULT_CHUNK_BITS: tuple[int, ...] = (22,) * 4 + (21,) * 8
#: Chunking of small segments, where probes dominate: 16 x 16 bits.
SMALL_CHUNK_BITS: tuple[int, ...] = (16,) * 16
#: Segments below this many rows use :data:`SMALL_CHUNK_BITS`.
SMALL_SEGMENT_ROWS = 1 << 18
#: Largest probe radius per chunk (flip masks are precomputed up to this weight).
MAX_RADIUS = 3
#: Rows kept in the brute-force buffer before it becomes a segment.
BUFFER_ROWS = 2048
#: Tier merges never produce a segment larger than this.
MAX_MERGE_ROWS = 1 << 22
MERGE_FANOUT = 4
_MAX_SEGMENT_ROWS = (1 << 32) - 1  # row indices are uint32
_MIN_TABLE_BITS = 4

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def mih_max_distance(chunk_bits: Sequence[int] = DEFAULT_CHUNK_BITS) -> int:
    """Largest distance the chunk tables alone answer with 100% recall.

    Pigeonhole: with radii ``t_c <= MAX_RADIUS`` we need ``sum(t_c + 1) >= d + 1``.
    """
    return len(chunk_bits) * (MAX_RADIUS + 1) - 1


#: Guaranteed by every segment (12 x 4 - 1 = 47 for the large-segment chunking;
#: small segments reach 63). Above it, searches scan.
MIH_MAX_DISTANCE = mih_max_distance()


class IndexInputError(SentinelleError, ValueError):
    """Bad argument to an index method (wrong shape, dtype, range...)."""

    code = "invalid_index_input"


# --------------------------------------------------------------------------- kernels
# All kernels are compiled lazily on first call and cached on disk (cache=True).

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U4 = np.uint64(4)
_U56 = np.uint64(56)
_U64 = np.uint64(64)


@njit(inline="always")
def _popcount(x):
    # SWAR popcount; LLVM turns this idiom into a single POPCNT instruction.
    x = x - ((x >> _U1) & _M1)
    x = (x & _M2) + ((x >> _U2) & _M2)
    x = (x + (x >> _U4)) & _M4
    return (x * _H01) >> _U56


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Hint the CPU to start loading ``arr[idx]`` (``arr[idx, 0]`` for 2-D) into cache.

    Emits LLVM's ``llvm.prefetch``.

    A no-op for correctness; it lets the kernels overlap the DRAM misses of
    the next few bucket / hash reads with the work on the current one.
    """
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = context.get_constant(signature.args[1], 0)
        index = [args[1]] + [zero] * (aryty.ndim - 1)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, index)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        # (address, rw = read, locality = 3: keep in all cache levels, data cache)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


#: How many probes / candidates ahead the kernels prefetch (16..64 measured
#: alike at 1M rows, 8 clearly worse).
_PREFETCH_AHEAD = 32


@njit(inline="always")
def _chunk(words, row, cp, c):
    """Chunk ``c`` of a 256-bit row (4 little-endian uint64 words).

    ``cp[c]`` = (word index, shift, mask, upper-word shift or 0 if the chunk
    does not straddle two words, table shift).
    """
    w = np.int64(cp[c, 0])
    v = words[row, w] >> cp[c, 1]
    if cp[c, 3] != 0:
        v |= words[row, w + 1] << cp[c, 3]
    return v & cp[c, 2]


#: Tables up to this many bits (256 KiB of offsets) are counting-sorted straight into
#: their offsets: the histogram stays in cache. Wider ones take two cache-friendly passes.
_DIRECT_SORT_BITS = 16


@njit(cache=True, nogil=True)
def _sort_small_table(words, cp, c, n, offsets, base, nb, rows, keys, need_keys):
    """Counting sort of chunk ``c`` with the ``offsets`` table itself as histogram.

    Counts, then running sums (bucket ends), then a scatter from the last row to
    the first that decrements each bucket's end down to its start: no scratch, and
    rows within a bucket in row order.
    """
    tshift = cp[c, 4]
    for r in range(n):
        offsets[base + np.int64(_chunk(words, r, cp, c) >> tshift)] += 1
    acc = np.uint32(0)
    for b in range(nb):
        acc += offsets[base + b]
        offsets[base + b] = acc
    offsets[base + nb] = n
    for r in range(n - 1, -1, -1):
        key = _chunk(words, r, cp, c)
        b = base + np.int64(key >> tshift)
        p = offsets[b] - np.uint32(1)
        offsets[b] = p
        rows[c, p] = r
        if need_keys:
            keys[c, p] = np.uint32(key)


@njit(cache=True, nogil=True)
def _sort_wide_table(words, cp, c, n, offsets, base, table_bits, rows, karr, keep_keys):
    """Stable bucket sort of chunk ``c`` on a wide table, in two cache-friendly passes.

    Pass 1 scatters rows (and their keys, into ``karr``: the output ``keys`` row, or
    a shared scratch row) by the high half of the bucket bits into ``rows[c]``
    itself: a few thousand sequential streams, histogram in L1. Pass 2 sorts each
    high group by the low half with a scratch the size of the largest group, and
    writes that group's offsets. The only scratch beyond the tables is ``karr``
    (4 B a row, shared by every chunk) and the largest group.
    """
    tshift = cp[c, 4]
    lo_bits = table_bits // 2
    hi_bits = table_bits - lo_bits
    lo_mask = np.uint32((1 << lo_bits) - 1)
    nh = 1 << hi_bits
    start = np.zeros(nh + 1, np.int64)
    for r in range(n):
        start[np.int64((_chunk(words, r, cp, c) >> tshift) >> lo_bits) + 1] += 1
    biggest = 0
    for h in range(nh):
        biggest = max(biggest, start[h + 1])
        start[h + 1] += start[h]
    pos = start[:nh].copy()
    for r in range(n):
        key = np.uint32(_chunk(words, r, cp, c))
        h = np.int64((key >> np.uint32(tshift)) >> np.uint32(lo_bits))
        p = pos[h]
        rows[c, p] = r
        karr[p] = key
        pos[h] = p + 1
    sr = np.empty(biggest, np.uint32)
    sk = np.empty(biggest if keep_keys else 0, np.uint32)
    cnt = np.empty((1 << lo_bits) + 1, np.int64)
    sh = np.uint32(tshift)
    for h in range(nh):
        s = start[h]
        e = start[h + 1]
        ob = base + (np.int64(h) << lo_bits)
        if s == e:
            for b in range(1 << lo_bits):
                offsets[ob + b] = s
            continue
        cnt[:] = 0
        for p in range(s, e):
            cnt[np.int64((karr[p] >> sh) & lo_mask) + 1] += 1
        for b in range(1 << lo_bits):
            cnt[b + 1] += cnt[b]
            offsets[ob + b] = s + cnt[b]
        for p in range(s, e):
            b = np.int64((karr[p] >> sh) & lo_mask)
            q = cnt[b]
            sr[q] = rows[c, p]
            if keep_keys:
                sk[q] = karr[p]
            cnt[b] = q + 1
        for q in range(e - s):
            rows[c, s + q] = sr[q]
            if keep_keys:
                karr[s + q] = sk[q]
    offsets[base + (np.int64(1) << table_bits)] = n


@njit(cache=True, nogil=True)
def _build_tables(words, cp, off_base):
    """CSR bucket tables, one per chunk, bucketed by the chunk value >> ``cp[c, 4]``.

    Returns flat ``offsets`` (chunk ``c`` at ``off_base[c]``), ``rows`` (m, n)
    and ``keys`` (m, n): the full chunk value of each bucket entry, needed only
    when some table is narrower than its chunk (small segments), else (m, 0).
    Rows within a bucket are in row order. Built (nearly) in place: the peak of a
    build is the tables plus 4 B a row (``bench/bench_index.py`` measures it; an
    LSD radix sort used to need four n-row scratch arrays).
    """
    n = words.shape[0]
    m = cp.shape[0]
    need_keys = False
    need_scratch = False
    for c in range(m):
        nb = off_base[c + 1] - off_base[c] - 1
        if cp[c, 4] != 0:
            need_keys = True
        elif nb > (1 << _DIRECT_SORT_BITS):
            need_scratch = True  # unless the keys rows serve (below)
    offsets = np.zeros(off_base[m], np.uint32)
    rows = np.empty((m, n), np.uint32)
    keys = np.empty((m, n if need_keys else 0), np.uint32)
    scratch = np.empty(n if need_scratch and not need_keys else 0, np.uint32)
    for c in range(m):
        base = off_base[c]
        nb = off_base[c + 1] - base - 1
        table_bits = 0
        while (1 << table_bits) < nb:
            table_bits += 1
        if table_bits <= _DIRECT_SORT_BITS:
            _sort_small_table(words, cp, c, n, offsets, base, nb, rows, keys, need_keys)
        elif need_keys:  # every chunk keeps its keys (only narrow tables read them)
            _sort_wide_table(words, cp, c, n, offsets, base, table_bits, rows, keys[c], True)
        else:
            _sort_wide_table(words, cp, c, n, offsets, base, table_bits, rows, scratch, False)
    return offsets, rows, keys


@njit(inline="always")
def _grow(a, need):
    if need <= a.shape[0]:
        return a
    out = np.empty(max(need, 2 * a.shape[0]), a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _search_mih(
    words, alive, offsets, rows, keys, cp, off_base, queries, radii, masks, nmasks, max_d
):
    """Probe the chunk tables of one segment for every query row.

    ``radii[c]`` is the probe radius of chunk ``c`` (-1: chunk not probed);
    ``masks[c, :nmasks[c, r]]`` are the flip masks of weight <= ``r`` for chunk
    ``c``. Returns parallel arrays (query index, segment row, distance).

    Two phases per query, for memory-level parallelism: first gather every
    candidate row from the probed buckets, then verify them in a tight loop
    whose hash loads are independent, so the CPU keeps many cache misses in
    flight instead of chasing one pointer at a time.
    """
    nq = queries.shape[0]
    m = cp.shape[0]
    out_q = np.empty(256, np.int64)
    out_r = np.empty(256, np.int64)
    out_d = np.empty(256, np.int64)
    n_out = 0
    cand_r = np.empty(4096, np.uint32)
    cand_c = np.empty(4096, np.uint8)
    ahead = _PREFETCH_AHEAD
    n_direct = 0  # probes into direct (unfiltered) tables, per query
    for c in range(m):
        if radii[c] >= 0 and cp[c, 4] == 0:
            n_direct += nmasks[c, radii[c]]
    probe_b = np.empty(n_direct, np.int64)
    probe_c = np.empty(n_direct, np.uint8)
    hit_lo = np.empty(n_direct, np.int64)
    hit_n = np.empty(n_direct, np.int64)
    hit_c = np.empty(n_direct, np.int64)
    for qi in range(nq):
        q0 = queries[qi, 0]
        q1 = queries[qi, 1]
        q2 = queries[qi, 2]
        q3 = queries[qi, 3]
        # phase 1a, direct tables (large segments; buckets hold ~0-1 rows). Every
        # step is a random DRAM read, so it runs as a software pipeline: list
        # the bucket addresses, then walk them prefetching the one ``ahead``
        # probes later; likewise for the rows of non-empty buckets.
        k = 0
        for c in range(m):
            rc = radii[c]
            if rc < 0 or cp[c, 4] != 0:
                continue
            qkey = _chunk(queries, qi, cp, c)
            base = off_base[c]
            for mi in range(nmasks[c, rc]):
                probe_b[k] = base + np.int64(qkey ^ masks[c, mi])
                probe_c[k] = c
                k += 1
        for i in range(min(ahead, k)):
            _prefetch(offsets, probe_b[i])
        nz = 0
        for i in range(k):
            if i + ahead < k:
                _prefetch(offsets, probe_b[i + ahead])
            b = probe_b[i]
            lo = np.int64(offsets[b])
            cnt = np.int64(offsets[b + 1]) - lo
            if cnt != 0:
                hit_lo[nz] = lo
                hit_n[nz] = cnt
                hit_c[nz] = probe_c[i]
                nz += 1
        for i in range(min(ahead, nz)):
            _prefetch(rows[hit_c[i]], hit_lo[i])
        n_cand = 0
        for i in range(nz):
            if i + ahead < nz:
                _prefetch(rows[hit_c[i + ahead]], hit_lo[i + ahead])
            lo = hit_lo[i]
            cnt = hit_n[i]
            c = hit_c[i]
            if n_cand + cnt > cand_r.shape[0]:
                cand_r = _grow(cand_r, n_cand + cnt)
                cand_c = _grow(cand_c, n_cand + cnt)
            for p in range(lo, lo + cnt):
                cand_r[n_cand] = rows[c, p]
                cand_c[n_cand] = c
                n_cand += 1
        # phase 1b, filtered tables (small segments): buckets shared by several keys
        for c in range(m):
            rc = radii[c]
            if rc < 0 or cp[c, 4] == 0:
                continue
            qkey = _chunk(queries, qi, cp, c)
            tshift = cp[c, 4]
            base = off_base[c]
            for mi in range(nmasks[c, rc]):
                probe = qkey ^ masks[c, mi]
                b = base + np.int64(probe >> tshift)
                lo = np.int64(offsets[b])
                hi = np.int64(offsets[b + 1])
                if hi == lo:
                    continue
                if n_cand + (hi - lo) > cand_r.shape[0]:
                    cand_r = _grow(cand_r, n_cand + (hi - lo))
                    cand_c = _grow(cand_c, n_cand + (hi - lo))
                for p in range(lo, hi):
                    if keys[c, p] == probe:
                        cand_r[n_cand] = rows[c, p]
                        cand_c[n_cand] = c
                        n_cand += 1
        # phase 2: verify (prefetching the hash ``ahead`` candidates later)
        for i in range(min(ahead, n_cand)):
            _prefetch(words, np.int64(cand_r[i]))
        for i in range(n_cand):
            if i + ahead < n_cand:
                _prefetch(words, np.int64(cand_r[i + ahead]))
            r = cand_r[i]
            d = np.int64(
                _popcount(words[r, 0] ^ q0)
                + _popcount(words[r, 1] ^ q1)
                + _popcount(words[r, 2] ^ q2)
                + _popcount(words[r, 3] ^ q3)
            )
            if d > max_d or not alive[r]:
                continue
            # Report only from the first chunk within its radius: no duplicates.
            first = True
            for j in range(cand_c[i]):
                rj = radii[j]
                if rj >= 0:
                    x = _chunk(words, r, cp, j)
                    y = _chunk(queries, qi, cp, j)
                    if np.int64(_popcount(x ^ y)) <= rj:
                        first = False
                        break
            if not first:
                continue
            if n_out == out_q.shape[0]:
                out_q = _grow(out_q, n_out + 1)
                out_r = _grow(out_r, n_out + 1)
                out_d = _grow(out_d, n_out + 1)
            out_q[n_out] = qi
            out_r[n_out] = r
            out_d[n_out] = d
            n_out += 1
    return out_q[:n_out], out_r[:n_out], out_d[:n_out]


@njit(cache=True, nogil=True)
def _search_flat(words, alive, queries, max_d):
    """Exact scan of every row (buffer, or any segment beyond the MIH distance)."""
    nq = queries.shape[0]
    n = words.shape[0]
    out_q = np.empty(256, np.int64)
    out_r = np.empty(256, np.int64)
    out_d = np.empty(256, np.int64)
    n_out = 0
    for qi in range(nq):
        q0 = queries[qi, 0]
        q1 = queries[qi, 1]
        q2 = queries[qi, 2]
        q3 = queries[qi, 3]
        for r in range(n):
            d = np.int64(
                _popcount(words[r, 0] ^ q0)
                + _popcount(words[r, 1] ^ q1)
                + _popcount(words[r, 2] ^ q2)
                + _popcount(words[r, 3] ^ q3)
            )
            if d <= max_d and alive[r]:
                if n_out == out_q.shape[0]:
                    out_q = _grow(out_q, n_out + 1)
                    out_r = _grow(out_r, n_out + 1)
                    out_d = _grow(out_d, n_out + 1)
                out_q[n_out] = qi
                out_r[n_out] = r
                out_d[n_out] = d
                n_out += 1
    return out_q[:n_out], out_r[:n_out], out_d[:n_out]


# --------------------------------------------------------------------------- layout


def _masks_upto(width: int, radius: int) -> list[int]:
    """All ``width``-bit masks of weight 0..radius, lightest first."""
    out: list[int] = []
    for weight in range(radius + 1):
        out += [sum(1 << b for b in bits) for bits in combinations(range(width), weight)]
    return out


@lru_cache(maxsize=8)
def _layout(chunk_bits: tuple[int, ...]) -> _Layout:
    return _Layout(chunk_bits)


class _Layout:
    """How the 256 bits are cut into chunks, plus the precomputed flip masks."""

    def __init__(self, chunk_bits: Sequence[int]) -> None:
        bits = [int(b) for b in chunk_bits]
        if sum(bits) != 256 or not all(8 <= b <= 24 for b in bits) or len(bits) > 64:
            raise IndexInputError("chunk_bits must be widths of 8..24 bits summing to 256")
        self.bits = tuple(bits)
        self.cp = np.zeros((len(bits), 5), dtype=np.uint64)
        start = 0
        for c, b in enumerate(bits):
            sh = start % 64
            self.cp[c] = (start // 64, sh, (1 << b) - 1, 64 - sh if sh + b > 64 else 0, 0)
            start += b
        per_chunk = [_masks_upto(b, MAX_RADIUS) for b in bits]
        self.masks = np.zeros((len(bits), max(map(len, per_chunk))), dtype=np.uint64)
        for c, ms in enumerate(per_chunk):
            self.masks[c, : len(ms)] = ms
        # nmasks[c, t] = number of masks of weight <= t
        self.nmasks = np.array(
            [[sum(comb(b, w) for w in range(t + 1)) for t in range(MAX_RADIUS + 1)] for b in bits],
            dtype=np.int64,
        )
        self.max_distance = mih_max_distance(bits)

    def radii(self, max_distance: int, n_rows: int) -> np.ndarray:
        """Per-chunk probe radii with ``sum(radius + 1) == max_distance + 1``.

        Generalised pigeonhole: any hash within ``max_distance`` of the query is
        then within ``radius[c]`` on some chunk ``c``. Radii are handed out
        greedily to the chunk whose next step costs least, cost ~ probes x
        (1 + 2 x expected candidates per probe); -1 means "not probed".
        """
        m = len(self.bits)
        radii = [-1] * m
        for _ in range(max_distance + 1):
            best, best_cost = -1, float("inf")
            for c in range(m):
                t = radii[c] + 1
                if t > MAX_RADIUS:
                    continue
                step = comb(self.bits[c], t)
                cost = step * (1.0 + 2.0 * n_rows / (1 << self.bits[c]))
                if cost < best_cost:
                    best, best_cost = c, cost
            radii[best] += 1
        return np.array(radii, dtype=np.int64)


# --------------------------------------------------------------------------- storage


class _Segment:
    """Immutable rows (sorted by id) + MIH tables; only ``alive`` ever changes."""

    __slots__ = (
        "ids", "words", "alive", "n_alive", "layout", "cp", "off_base",
        "offsets", "rows", "keys", "_radii",
    )  # fmt: skip

    def __init__(
        self, ids: np.ndarray, words: np.ndarray, layout: _Layout, owned_sorted: bool = False
    ) -> None:
        """``owned_sorted``: ``ids`` are strictly increasing and both arrays belong to
        the segment from now on (no copy: a big build holds one copy of the hashes)."""
        n = len(ids)
        if owned_sorted:
            self.ids, self.words = ids, words
        else:
            order = np.argsort(ids, kind="stable")
            self.ids = np.ascontiguousarray(ids[order])
            self.words = np.ascontiguousarray(words[order])
            del order
        self.alive = np.ones(n, dtype=np.bool_)
        self.n_alive = n
        self.layout = layout
        # Table bits per chunk: the full chunk width once the segment is large
        # enough (direct addressing, <= 8 buckets per row), else about one
        # bucket per row and a key filter.
        self.cp = layout.cp.copy()
        sizes = [0]
        for c, bits in enumerate(layout.bits):
            k = bits if n >= 1 << (bits - 3) else max(_MIN_TABLE_BITS, n.bit_length())
            k = min(k, bits)
            self.cp[c, 4] = bits - k
            sizes.append((1 << k) + 1)
        self.off_base = np.cumsum(sizes).astype(np.int64)
        self.offsets, self.rows, self.keys = _build_tables(self.words, self.cp, self.off_base)
        self._radii: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def radii(self, max_distance: int) -> np.ndarray:
        r = self._radii.get(max_distance)
        if r is None:
            r = self._radii[max_distance] = self.layout.radii(max_distance, len(self.ids))
        return r

    def search(self, qwords: np.ndarray, max_d: int) -> tuple[np.ndarray, ...]:
        """(query index, row, distance) of live rows within ``max_d``."""
        if max_d > self.layout.max_distance:
            return _search_flat(self.words, self.alive, qwords, max_d)
        lay = self.layout
        return _search_mih(
            self.words, self.alive, self.offsets, self.rows, self.keys, self.cp,
            self.off_base, qwords, self.radii(max_d), lay.masks, lay.nmasks, max_d,
        )  # fmt: skip

    def locate(self, ids: np.ndarray) -> np.ndarray:
        """Rows holding the given (live) ids; ids not live here are dropped."""
        pos = np.searchsorted(self.ids, ids)
        inside = pos < len(self.ids)
        pos, ids = pos[inside], ids[inside]
        pos = np.unique(pos[self.ids[pos] == ids])
        return pos[self.alive[pos]]

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ids[self.alive], self.words[self.alive]

    def nbytes(self) -> int:
        arrays = (self.ids, self.words, self.alive, self.offsets, self.rows, self.keys)
        return sum(a.nbytes for a in arrays)


@dataclass(frozen=True)
class _State:
    """What a search reads: replaced as a whole by writers, never mutated (bar tombstones)."""

    segments: tuple[_Segment, ...]
    buf_ids: np.ndarray  # int64 (b,)
    buf_words: np.ndarray  # uint64 (b, 4)


_EMPTY_IDS = np.zeros(0, dtype=np.int64)
_EMPTY_WORDS = np.zeros((0, 4), dtype=np.uint64)
_ALL_ALIVE = np.ones(BUFFER_ROWS, dtype=np.bool_)


# --------------------------------------------------------------------------- validation


def _as_ids(ids: Iterable[int] | np.ndarray) -> np.ndarray:
    """Validate ids: 1-D integers within int64 (bools and floats are rejected)."""
    if isinstance(ids, np.ndarray):
        arr = ids
    else:
        seq = list(ids)
        for v in seq:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise IndexInputError(f"ids must be integers, got {type(v).__name__}")
            if not _INT64_MIN <= int(v) <= _INT64_MAX:
                raise IndexInputError(f"id {v} is outside the int64 range")
        arr = np.array([int(v) for v in seq], dtype=np.int64)
    if arr.ndim != 1:
        raise IndexInputError(f"ids must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind not in "iu" or arr.dtype == np.bool_:
        raise IndexInputError(f"ids must have an integer dtype, got {arr.dtype}")
    if arr.dtype == np.uint64 and len(arr) and int(arr.max()) > _INT64_MAX:
        raise IndexInputError("ids must fit in int64")
    return arr.astype(np.int64, copy=False)


def _as_words(hashes: np.ndarray, what: str) -> np.ndarray:
    """Validate a uint8 (n, 32) array and view it as uint64 (n, 4)."""
    if not isinstance(hashes, np.ndarray):
        raise IndexInputError(f"{what} must be a numpy uint8 array of shape (n, 32)")
    if hashes.dtype != np.uint8:
        raise IndexInputError(f"{what} must have dtype uint8, got {hashes.dtype}")
    if hashes.ndim != 2 or hashes.shape[1] != 32:
        raise IndexInputError(f"{what} must have shape (n, 32), got {hashes.shape}")
    words = np.ascontiguousarray(hashes).view(np.uint64)
    if not (words.flags.aligned and words.flags.writeable):
        words = words.copy()  # one kernel specialisation: aligned, writeable
    return words


def _check_distance(max_distance: int) -> int:
    if isinstance(max_distance, bool) or not isinstance(max_distance, (int, np.integer)):
        raise IndexInputError("max_distance must be an integer")
    if not 0 <= int(max_distance) <= 255:
        raise IndexInputError(f"max_distance must be in 0..255, got {max_distance}")
    return int(max_distance)


# --------------------------------------------------------------------------- the index


def _split_hits(
    nq: int, qi: np.ndarray, ids: np.ndarray, dist: np.ndarray
) -> list[list[tuple[int, int]]]:
    """Per query, its ``(id, distance)`` hits sorted by distance then id."""
    if nq == 1:  # the common "one file, one hash" call: skip the per-query split
        if len(ids) <= 1:
            return [[(int(ids[0]), int(dist[0]))]] if len(ids) else [[]]
        order = np.lexsort((ids, dist))
        return [list(zip(ids[order].tolist(), dist[order].tolist(), strict=True))]
    order = np.lexsort((ids, dist, qi))
    qi, ids, dist = qi[order], ids[order], dist[order]
    bounds = np.searchsorted(qi, np.arange(nq + 1))
    ids_l, dist_l = ids.tolist(), dist.tolist()
    return [
        list(zip(ids_l[bounds[i] : bounds[i + 1]], dist_l[bounds[i] : bounds[i + 1]], strict=True))
        for i in range(nq)
    ]


class PDQIndex:
    """Exact PDQ range search with incremental add / remove.

    >>> idx = PDQIndex()
    >>> h = np.zeros((2, 32), dtype=np.uint8); h[1, 0] = 0b111
    >>> idx.add([10, 11], h)
    >>> idx.search(h[:1], max_distance=31)
    [[(10, 0), (11, 3)]]
    """

    def __init__(self, chunk_bits: Sequence[int] | None = None) -> None:
        """``chunk_bits``: force one chunking for every segment (benchmarks, tests);
        by default segments below :data:`SMALL_SEGMENT_ROWS` rows use 16 x 16 bits
        and larger ones :data:`DEFAULT_CHUNK_BITS`."""
        if chunk_bits is None:
            self._small, self._large = _layout(SMALL_CHUNK_BITS), _layout(DEFAULT_CHUNK_BITS)
        else:
            self._small = self._large = _Layout(chunk_bits)
        self._lock = threading.Lock()
        self._state = _State((), _EMPTY_IDS, _EMPTY_WORDS)
        self._len = 0

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return self._len

    def __contains__(self, id_: object) -> bool:
        if isinstance(id_, bool) or not isinstance(id_, (int, np.integer)):
            return False
        if not _INT64_MIN <= int(id_) <= _INT64_MAX:
            return False
        state = self._state
        target = np.array([int(id_)], dtype=np.int64)
        if np.any(state.buf_ids == target[0]):
            return True
        return any(len(seg.locate(target)) for seg in state.segments)

    def search(self, queries: np.ndarray, max_distance: int = 31) -> list[list[tuple[int, int]]]:
        """For each query row, the ``(id, distance)`` within ``max_distance``.

        ``queries``: uint8 array (m, 32). Each list is sorted by distance then id.
        """
        qwords = _as_words(queries, "queries")
        max_d = _check_distance(max_distance)
        nq = len(qwords)
        if nq == 0:
            return []
        qi, ids, dist = self._search_arrays(qwords, max_d)
        return _split_hits(nq, qi, ids, dist)

    def search_pairs(
        self, queries: np.ndarray, max_distance: int = 31
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`search` as three int64 arrays ``(query row, id, distance)``, one entry
        per hit, in no particular order: no Python object per hit, for callers that
        join many queries with many hits each (near-duplicate grouping)."""
        qwords = _as_words(queries, "queries")
        max_d = _check_distance(max_distance)
        if len(qwords) == 0:
            return _EMPTY_IDS, _EMPTY_IDS, _EMPTY_IDS
        qi, ids, dist = self._search_arrays(qwords, max_d)
        return qi.astype(np.int64, copy=False), ids, dist.astype(np.int64, copy=False)

    def search_hex(
        self, hex_list: Sequence[str], max_distance: int = 31
    ) -> list[list[tuple[int, int]]]:
        """:meth:`search` for PDQ hex strings; raises ``InvalidHashError`` on a bad one."""
        if isinstance(hex_list, str):
            raise IndexInputError("search_hex expects a list of hex strings, not one string")
        hexes = [normalize_hash("pdq", h) if isinstance(h, str) else _bad_hex(h) for h in hex_list]
        return self.search(pdq_hexes_to_array(hexes), max_distance)

    def _search_arrays(
        self, qwords: np.ndarray, max_d: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        state = self._state  # one snapshot for the whole search
        if not len(state.buf_ids) and len(state.segments) == 1:  # e.g. a bank loaded at once
            seg = state.segments[0]
            q, r, d = seg.search(qwords, max_d)
            return q, seg.ids[r], d
        parts_q, parts_id, parts_d = [], [], []
        if len(state.buf_ids):
            q, r, d = _search_flat(state.buf_words, _ALL_ALIVE, qwords, max_d)
            parts_q.append(q)
            parts_id.append(state.buf_ids[r])
            parts_d.append(d)
        for seg in state.segments:
            if seg.n_alive == 0:
                continue
            q, r, d = seg.search(qwords, max_d)
            parts_q.append(q)
            parts_id.append(seg.ids[r])
            parts_d.append(d)
        if not parts_q:
            return _EMPTY_IDS, _EMPTY_IDS, _EMPTY_IDS
        return np.concatenate(parts_q), np.concatenate(parts_id), np.concatenate(parts_d)

    # ------------------------------------------------------------------ writes

    def add(self, ids: Sequence[int] | np.ndarray, hashes: np.ndarray) -> None:
        """Index ``hashes[i]`` under ``ids[i]``; an id already present is replaced.

        Within one call, the last occurrence of a repeated id wins. The call is
        all-or-nothing: inputs are validated before anything changes.
        """
        id_arr = _as_ids(ids)
        words = _as_words(hashes, "hashes")
        if len(id_arr) != len(words):
            raise IndexInputError(f"got {len(id_arr)} ids for {len(words)} hashes")
        if len(id_arr) == 0:
            return
        id_arr, words = _sorted_last_wins(id_arr, words)
        with self._lock:
            self._write(id_arr, words)

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        """Remove the given ids (unknown ids are ignored); returns how many were removed."""
        id_arr = np.unique(_as_ids(ids))
        if len(id_arr) == 0:
            return 0
        with self._lock:
            return self._write(id_arr, None)

    def _write(self, ids: np.ndarray, words: np.ndarray | None) -> int:
        """Drop every live copy of ``ids``, then (if ``words``) add the new rows."""
        state = self._state
        removed = 0
        # 1. tombstones in segments (in place: a search sees alive or dead, both valid)
        dead_segments: list[tuple[_Segment, np.ndarray]] = []
        for seg in state.segments:
            rows = seg.locate(ids)
            if len(rows):
                dead_segments.append((seg, rows))
        buf_keep = ~np.isin(state.buf_ids, ids)
        removed = sum(len(r) for _, r in dead_segments) + int((~buf_keep).sum())
        buf_ids, buf_words = state.buf_ids[buf_keep], state.buf_words[buf_keep]
        segments = list(state.segments)
        if words is not None:
            if len(buf_ids) + len(ids) <= BUFFER_ROWS:
                buf_ids = np.concatenate([buf_ids, ids])
                buf_words = np.concatenate([buf_words, words])
            elif len(ids) >= BUFFER_ROWS:
                # A big batch becomes segments of its own, in place (it is sorted and
                # ours: no concatenation, no second copy); the buffer stays as it is.
                for start in range(0, len(ids), _MAX_SEGMENT_ROWS):
                    end = start + _MAX_SEGMENT_ROWS
                    segments.append(self._segment(ids[start:end], words[start:end], True))
            else:
                new_ids = np.concatenate([buf_ids, ids])
                new_words = np.concatenate([buf_words, words])
                buf_ids, buf_words = _EMPTY_IDS, _EMPTY_WORDS
                for start in range(0, len(new_ids), _MAX_SEGMENT_ROWS):
                    end = start + _MAX_SEGMENT_ROWS
                    segments.append(self._segment(new_ids[start:end], new_words[start:end]))
        for seg, rows in dead_segments:
            seg.alive[rows] = False
            seg.n_alive -= len(rows)
        segments = self._maintain(segments)
        self._state = _State(tuple(segments), buf_ids, buf_words)
        self._len += (len(ids) if words is not None else 0) - removed
        return removed

    def _segment(self, ids: np.ndarray, words: np.ndarray, owned_sorted: bool = False) -> _Segment:
        layout = self._small if len(ids) < SMALL_SEGMENT_ROWS else self._large
        return _Segment(ids, words, layout, owned_sorted)

    def _maintain(self, segments: list[_Segment]) -> list[_Segment]:
        """Drop empty segments, compact half-dead ones, merge same-tier small ones."""
        out: list[_Segment] = []
        for seg in segments:
            if seg.n_alive == 0:
                continue
            if seg.n_alive * 2 < len(seg):
                seg = self._segment(*seg.live())
            out.append(seg)
        while True:
            tiers: dict[int, list[_Segment]] = {}
            for seg in out:
                if seg.n_alive < MAX_MERGE_ROWS // MERGE_FANOUT:
                    tier = (max(seg.n_alive, 1).bit_length() - 1) // 2  # power-of-4 tier
                    tiers.setdefault(tier, []).append(seg)
            group = next((g for g in tiers.values() if len(g) >= MERGE_FANOUT), None)
            if group is None:
                return out
            group = group[:MERGE_FANOUT]
            live = [seg.live() for seg in group]
            merged = self._segment(
                np.concatenate([i for i, _ in live]), np.concatenate([w for _, w in live])
            )
            out = [s for s in out if all(s is not g for g in group)] + [merged]

    # ------------------------------------------------------------------ introspection

    def stats(self) -> dict[str, int | list[int]]:
        """Segment sizes, buffer size and array bytes (for benchmarks and debugging)."""
        state = self._state
        return {
            "len": self._len,
            "segments": [len(s) for s in state.segments],
            "segments_alive": [s.n_alive for s in state.segments],
            "buffer": len(state.buf_ids),
            "nbytes": sum(s.nbytes() for s in state.segments)
            + state.buf_ids.nbytes
            + state.buf_words.nbytes,
        }


def _sorted_last_wins(ids: np.ndarray, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Our own copy of a batch, sorted by id, the last occurrence of a repeated id kept.

    One copy of the hashes and no more (the peak of a big build is the index itself):
    an already increasing batch (a bank loaded in id order) is copied as it is,
    else rows are gathered once in id order through a stable argsort.
    """
    if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):
        return ids.copy(), np.array(words, order="C", copy=True)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    last = np.ones(len(ids), dtype=np.bool_)  # stable: the last of each run came last
    np.not_equal(ids[1:], ids[:-1], out=last[:-1])
    if not last.all():
        order = order[last]
        ids = ids[last]
    del last
    return ids, words[order]


def _bad_hex(value: object) -> str:
    from ..errors import InvalidHashError

    raise InvalidHashError(f"pdq hash must be a string, got {type(value).__name__}")
