"""Bulk PDQ join: every (query, bank entry) pair within a Hamming distance, for a
whole batch of queries at once.

:class:`~sentinelle.index.pdq_index.PDQIndex` answers one query at a time (each
probe a random read into large tables). A hash-only table is a *batch* of
thousands of queries against a fixed bank, so here the work is arranged as a
sort-merge join instead:

*Chunks.* The 256 bits are 16 chunks of 16 bits. Pigeonhole: if two hashes are
within ``d``, the 16 chunk distances sum to at most ``d``, so for radii ``r_c``
with ``sum(r_c + 1) >= d + 1`` some chunk ``c`` is within ``r_c``. ``d + 1`` is
spread over the 16 chunks as evenly as possible: radius 1 everywhere for the PDQ
threshold 31 (17 probe keys per chunk), radius <= 2 up to ``d = 47``
(:data:`MAX_DISTANCE`).

*Bank side*, built once: per chunk, the entries counting-sorted by their chunk
key (65,536 buckets, CSR offsets), and stored *inline in that order*: the row
number and two of the entry's four 64-bit words (the word holding the chunk and
the next one). A bucket is then a contiguous run of ~``n / 65536`` entries.

*Query side*, per batch and chunk: the ``m * probes`` probe keys (each query's
chunk with every flip mask of weight <= r_c) are counting-sorted the same way,
so the join walks both sides in key order: each bank bucket is read once, from
one place, for all the queries that probe it (sequential memory, no misses on
the bank side beyond streaming it).

*Verification.* A candidate's two inline words give a lower bound of its
distance (partial Hamming distance): for a random entry it is ~56 +- 5 bits, so
``<= d`` almost never holds for a non-match (about 3e-6 at d = 31), and the inner
loop (two XOR + POPCNT per entry, no branch: a vectorised minimum per bucket
first) is all the work for the other 99.999%. Survivors are checked on their full
256 bits, and a pair is kept only by the *first* chunk whose probe reaches it
(its chunk distance <= r_c), so no pair comes out twice.

Cost model: candidates per query = ``sum_c probes_c * n / 2**16``: 272 x n /
65,536, i.e. ~4,150 at n = 1M and d = 31. That is the bound of this scheme per
query: ~4,150 (2 popcount) lane operations plus 272 bucket visits. Wider chunks
(12 x ~21 bits, radius 2, as in PDQIndex) give ~1,100 candidates but ~2,800 probes
into 2M-bucket tables (random reads: what the batch form is meant to avoid).

Answers are exact: the same pairs as a brute-force scan (tests compare with
numpy on random data, distances at the threshold and one above, duplicates,
empty bank and empty batch).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from .pdq_index import IndexInputError

__all__ = ["MAX_DISTANCE", "PDQJoinIndex", "brute_force_pairs"]

N_CHUNKS = 16
CHUNK_BITS = 16
#: Largest distance answered with radii <= 2 per chunk (16 x 3 - 1).
MAX_DISTANCE = N_CHUNKS * 3 - 1

_MASK16 = np.uint64(0xFFFF)
#: Buckets per merge tile (2**11: ~0.5 MiB of inline words at 1M entries, cache-sized).
_TILE = 1 << 11
_HIGH = 0xFFFF & ~(_TILE - 1)


@intrinsic
def _ctpop(typingctx, x):
    """LLVM ``ctpop`` on a uint64 (one POPCNT; vectorised as VPOPCNTQ where the CPU has it)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return x(x), codegen


@njit(cache=True, nogil=True)
def _build(words, offsets, rows, wa, wb):
    n = words.shape[0]
    for c in range(N_CHUNKS):
        w = c >> 2
        w2 = (w + 1) & 3
        sh = np.uint64((c & 3) * 16)
        cnt = offsets[c]
        for i in range(n):
            cnt[np.int64((words[i, w] >> sh) & _MASK16) + 1] += 1
        for k in range(65536):
            cnt[k + 1] += cnt[k]
        pos = cnt[:65536].copy()
        for i in range(n):
            k = np.int64((words[i, w] >> sh) & _MASK16)
            p = pos[k]
            pos[k] = p + 1
            rows[c, p] = i
            wa[c, p] = words[i, w]
            wb[c, p] = words[i, w2]


@njit(cache=True, nogil=True)
def _join(words, offsets, rows, wa, wb, q, radii, masks, mask_count, max_d):
    """All (query, row, distance) with distance <= max_d, each pair once."""
    m = q.shape[0]
    cap = 1024
    out_q = np.empty(cap, np.int64)
    out_r = np.empty(cap, np.int64)
    out_d = np.empty(cap, np.int64)
    n_out = 0
    pstart = np.empty(65537, np.int64)
    md = np.uint64(max_d)
    for c in range(N_CHUNKS):
        r = radii[c]
        if r < 0:
            continue
        nm = mask_count[r]
        w = c >> 2
        w2 = (w + 1) & 3
        sh = np.uint64((c & 3) * 16)
        # query side: the batch counting-sorted by this chunk's key, its two words inline
        pstart[:] = 0
        for i in range(m):
            pstart[np.int64((q[i, w] >> sh) & _MASK16) + 1] += 1
        for k in range(65536):
            pstart[k + 1] += pstart[k]
        fill = pstart[:65536].copy()
        order = np.empty(m, np.int64)
        skey = np.empty(m, np.int64)
        sa = np.empty(m, np.uint64)
        sb = np.empty(m, np.uint64)
        for i in range(m):
            key = np.int64((q[i, w] >> sh) & _MASK16)
            f = fill[key]
            fill[key] = f + 1
            order[f] = i
            skey[f] = key
            sa[f] = q[i, w]
            sb[f] = q[i, w2]
        off = offsets[c]
        ca = wa[c]
        cb = wb[c]
        crow = rows[c]
        # merge, tile by tile of the bank's buckets (a tile's entries stay in cache):
        # for each flip mask, the queries whose key XOR the mask falls in the tile are
        # one run of the sorted batch (the mask's high bits map the tile to one tile)
        for tile in range(0, 65536, _TILE):
            for t in range(nm):
                mk = masks[t]
                src = tile ^ (mk & _HIGH)
                for u in range(pstart[src], pstart[src + _TILE]):
                    k = skey[u] ^ mk
                    s = off[k]
                    e = off[k + 1]
                    qa = sa[u]
                    qb = sb[u]
                    best = np.uint64(255)
                    for j in range(s, e):  # branch-free minimum first
                        d = _ctpop(ca[j] ^ qa) + _ctpop(cb[j] ^ qb)
                        best = min(best, d)
                    if best > md:
                        continue
                    i = order[u]
                    for j in range(s, e):
                        if _ctpop(ca[j] ^ qa) + _ctpop(cb[j] ^ qb) > md:
                            continue
                        row = crow[j]
                        dist = (
                            _ctpop(words[row, 0] ^ q[i, 0])
                            + _ctpop(words[row, 1] ^ q[i, 1])
                            + _ctpop(words[row, 2] ^ q[i, 2])
                            + _ctpop(words[row, 3] ^ q[i, 3])
                        )
                        if dist > md:
                            continue
                        first = True  # reported by an earlier chunk's probe?
                        for c2 in range(c):
                            r2 = radii[c2]
                            if r2 < 0:
                                continue
                            v = c2 >> 2
                            sh2 = np.uint64((c2 & 3) * 16)
                            x = ((words[row, v] ^ q[i, v]) >> sh2) & _MASK16
                            if np.int64(_ctpop(x)) <= r2:
                                first = False
                                break
                        if not first:
                            continue
                        if n_out == cap:
                            cap *= 2
                            out_q = _grow(out_q, cap)
                            out_r = _grow(out_r, cap)
                            out_d = _grow(out_d, cap)
                        out_q[n_out] = i
                        out_r[n_out] = row
                        out_d[n_out] = np.int64(dist)
                        n_out += 1
    return out_q[:n_out], out_r[:n_out], out_d[:n_out]


@njit(cache=True, nogil=True)
def _grow(a, cap):
    b = np.empty(cap, a.dtype)
    b[: a.shape[0]] = a
    return b


def _radii(max_d: int) -> np.ndarray:
    """Per-chunk probe radius (-1: chunk not probed) with ``sum(r + 1) = max_d + 1``."""
    budget = max_d + 1
    base, extra = divmod(budget, N_CHUNKS)
    return np.array([base - 1 + (1 if c < extra else 0) for c in range(N_CHUNKS)], np.int64)


def _masks() -> tuple[np.ndarray, np.ndarray]:
    """Flip masks of 16 bits by weight (0, then 1, then 2) and counts up to each weight."""
    out = [0]
    counts = [1]
    for r in (1, 2):
        for bits in combinations(range(CHUNK_BITS), r):
            out.append(sum(1 << b for b in bits))
        counts.append(len(out))
    return np.array(out, np.int64), np.array(counts, np.int64)


_MASKS, _MASK_COUNT = _masks()


def _as_words(hashes: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(hashes)
    if a.dtype != np.uint8 or a.ndim != 2 or a.shape[1] != 32:
        raise IndexInputError(f"{what} must be a uint8 array of shape (n, 32), not {a.shape}")
    return np.ascontiguousarray(a).view("<u8").reshape(len(a), 4)


class PDQJoinIndex:
    """An immutable bank of PDQ hashes for batch joins (rows numbered 0..n-1).

    Memory: 32 B hash + 16 x (4 B row + 16 B words) = 352 B per entry (~336 MiB
    at 1M), plus 8 MiB of bucket offsets. Built once (a counting sort per chunk).
    """

    def __init__(self, hashes: np.ndarray) -> None:
        self.words = _as_words(hashes, "hashes").copy()
        n = len(self.words)
        if n >= 1 << 32:
            raise IndexInputError("at most 2**32 - 1 rows")
        self.offsets = np.zeros((N_CHUNKS, 65537), np.int64)
        self.rows = np.empty((N_CHUNKS, n), np.uint32)
        self.wa = np.empty((N_CHUNKS, n), np.uint64)
        self.wb = np.empty((N_CHUNKS, n), np.uint64)
        if n:
            _build(self.words, self.offsets, self.rows, self.wa, self.wb)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.words, self.offsets, self.rows, self.wa, self.wb))

    def join(
        self, queries: np.ndarray, max_distance: int = 31
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(query, row, distance)`` int64 arrays of every pair within ``max_distance``,
        sorted by query, then distance, then row (the order of ``PDQIndex.search``)."""
        q = _as_words(queries, "queries")
        if isinstance(max_distance, bool) or not isinstance(max_distance, int | np.integer):
            raise IndexInputError("max_distance must be an integer")
        if not 0 <= int(max_distance) <= MAX_DISTANCE:
            raise IndexInputError(f"max_distance must be in 0..{MAX_DISTANCE}")
        if len(q) == 0 or len(self.words) == 0:
            e = np.zeros(0, np.int64)
            return e, e.copy(), e.copy()
        qi, row, dist = _join(
            self.words,
            self.offsets,
            self.rows,
            self.wa,
            self.wb,
            q,
            _radii(int(max_distance)),
            _MASKS,
            _MASK_COUNT,
            int(max_distance),
        )
        order = np.lexsort((row, dist, qi))
        return qi[order], row[order], dist[order]


def brute_force_pairs(
    bank: np.ndarray, queries: np.ndarray, max_distance: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference answer with numpy (for tests and benchmark recall checks)."""
    b = np.unpackbits(np.asarray(bank, np.uint8), axis=1).astype(np.int16)
    qs = np.unpackbits(np.asarray(queries, np.uint8), axis=1).astype(np.int16)
    out_q, out_r, out_d = [], [], []
    for start in range(0, len(qs), 256):
        blk = qs[start : start + 256]
        d = blk.sum(1)[:, None] + b.sum(1)[None, :] - 2 * (blk @ b.T)
        qi, ri = np.nonzero(d <= max_distance)
        out_q.append(qi + start)
        out_r.append(ri)
        out_d.append(d[qi, ri])
    if not out_q:
        e = np.zeros(0, np.int64)
        return e, e.copy(), e.copy()
    qi, ri, di = (np.concatenate(x).astype(np.int64) for x in (out_q, out_r, out_d))
    order = np.lexsort((ri, di, qi))
    return qi[order], ri[order], di[order]
