"""PDQIndex and ExactIndex: exactness against numpy brute force, incremental updates,
bad inputs. Hash banks here are random bits (benign by construction)."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pytest

from sentinelle.errors import InvalidHashError
from sentinelle.index.exact import ExactIndex
from sentinelle.index.pdq_index import (
    BUFFER_ROWS,
    DEFAULT_CHUNK_BITS,
    MIH_MAX_DISTANCE,
    SMALL_SEGMENT_ROWS,
    IndexInputError,
    PDQIndex,
)

# ----------------------------------------------------------------------------- helpers


def flip_bits(h: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Copy of one (32,) hash with exactly ``k`` distinct bits flipped."""
    out = h.copy()
    for b in rng.choice(256, size=k, replace=False):
        out[b // 8] ^= np.uint8(1 << (b % 8))
    return out


def brute_force(
    ids: np.ndarray, hashes: np.ndarray, queries: np.ndarray, max_distance: int
) -> list[list[tuple[int, int]]]:
    """Reference answer: numpy popcount over every row."""
    hw = hashes.view(np.uint64)
    out = []
    for q in queries.view(np.uint64):
        d = np.bitwise_count(hw ^ q).sum(axis=1)
        sel = np.nonzero(d <= max_distance)[0]
        pairs = sorted(zip(ids[sel].tolist(), d[sel].tolist(), strict=True), key=lambda p: p[::-1])
        out.append(pairs)
    return out


def clustered(rng: np.random.Generator, n: int, n_centres: int, max_flips: int = 12) -> np.ndarray:
    """Near-duplicates of a few random centres: each row has up to ``max_flips`` bits flipped."""
    centres = rng.integers(0, 256, (n_centres, 32), dtype=np.uint8)
    rows = centres[rng.integers(0, n_centres, n)]
    for _ in range(max_flips):  # flip a random bit of a random half of the rows, max_flips times
        hit = np.nonzero(rng.random(n) < 0.5)[0]
        pos = rng.integers(0, 256, len(hit))
        rows[hit, pos // 8] ^= (1 << (pos % 8)).astype(np.uint8)
    return rows


def make_queries(rng: np.random.Generator, hashes: np.ndarray, n: int) -> np.ndarray:
    """Near-duplicates at distances 0..40 plus random non-matching hashes."""
    near = [flip_bits(hashes[rng.integers(len(hashes))], int(rng.integers(0, 41)), rng)
            for _ in range(n // 2)]  # fmt: skip
    rand = rng.integers(0, 256, (n - n // 2, 32), dtype=np.uint8)
    return np.concatenate([np.stack(near), rand])


class Mirror:
    """Dict model of the index contents, for comparing after updates."""

    def __init__(self) -> None:
        self.d: dict[int, np.ndarray] = {}

    def add(self, ids, hashes) -> None:
        for i, h in zip(ids, hashes, strict=True):
            self.d[int(i)] = h

    def remove(self, ids) -> None:
        for i in ids:
            self.d.pop(int(i), None)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array(sorted(self.d), dtype=np.int64)
        if not len(ids):
            return ids, np.zeros((0, 32), np.uint8)
        return ids, np.stack([self.d[int(i)] for i in ids])


# ----------------------------------------------------------------------------- PDQ: exactness


@pytest.mark.parametrize("kind", ["uniform", "clustered"])
def test_search_equals_brute_force(kind: str) -> None:
    rng = np.random.default_rng(1 if kind == "uniform" else 2)
    n = 30_000
    if kind == "uniform":
        hashes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    else:
        hashes = clustered(rng, n, n_centres=40)
    ids = rng.permutation(10 * n)[:n].astype(np.int64) - 5 * n  # negative ids too
    idx = PDQIndex()
    idx.add(ids, hashes)
    assert len(idx) == n
    queries = make_queries(rng, hashes, 300)
    for d in (0, 5, 20, 31):
        assert idx.search(queries, max_distance=d) == brute_force(ids, hashes, queries, d)
    # beyond the multi-index guarantee: exact scan
    assert idx.search(queries[:20], max_distance=70) == brute_force(ids, hashes, queries[:20], 70)


@pytest.mark.parametrize("layout", ["one segment", "segments + buffer"])
def test_search_pairs_holds_the_same_hits_as_search(layout: str) -> None:
    """The array form: one (query row, id, distance) per hit, the same set as search."""
    rng = np.random.default_rng(9)
    hashes = clustered(rng, 6_000, n_centres=30, max_flips=6)
    ids = np.arange(6_000, dtype=np.int64) * 3 - 100
    idx = PDQIndex()
    if layout == "one segment":
        idx.add(ids, hashes)
    else:
        idx.add(ids[:5_000], hashes[:5_000])
        idx.add(ids[5_000:], hashes[5_000:])
    queries = make_queries(rng, hashes, 60)
    for d in (0, 31, 60):  # 60: beyond the MIH distance, the exact scan
        qi, hit, dist = idx.search_pairs(queries, d)
        assert qi.dtype == hit.dtype == dist.dtype == np.int64
        got = sorted(zip(qi.tolist(), hit.tolist(), dist.tolist(), strict=True))
        want = sorted((q, i, dd) for q, hits in enumerate(idx.search(queries, d)) for i, dd in hits)
        assert got == want
        assert d == 0 or len(got) > len(queries) // 2  # many queries hit (clustered)
    empty = idx.search_pairs(np.zeros((0, 32), np.uint8))
    assert [len(a) for a in empty] == [0, 0, 0]
    with pytest.raises(IndexInputError):
        idx.search_pairs(np.zeros((2, 31), np.uint8))


@pytest.mark.parametrize("layout", ["one segment", "segments + buffer"])
def test_one_query_per_call_equals_batch_and_brute_force(layout: str) -> None:
    """The single-query fast paths (one segment, nq == 1) sort and report like a batch."""
    rng = np.random.default_rng(7)
    hashes = clustered(rng, 6_000, n_centres=30, max_flips=6)  # many ties per query
    hashes[1] = hashes[0]  # same hash, two ids: ties on distance are ordered by id
    ids = np.arange(6_000, dtype=np.int64)[::-1].copy()
    idx = PDQIndex()
    if layout == "one segment":
        idx.add(ids, hashes)
        assert idx.stats()["buffer"] == 0 and len(idx.stats()["segments"]) == 1
    else:
        idx.add(ids[:5_000], hashes[:5_000])
        idx.add(ids[5_000:], hashes[5_000:])  # stays in the buffer
        assert idx.stats()["buffer"] > 0
    queries = np.concatenate([hashes[:3], make_queries(rng, hashes, 40)])
    expected = brute_force(ids, hashes, queries, 31)
    assert sum(len(e) > 1 for e in expected) >= 3
    assert idx.search(queries) == expected
    assert [idx.search(queries[i : i + 1])[0] for i in range(len(queries))] == expected


def test_boundary_distances_31_and_32() -> None:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (5000, 32), dtype=np.uint8)
    q = rng.integers(0, 256, 32, dtype=np.uint8)
    at31 = np.stack([flip_bits(q, 31, rng) for _ in range(50)])
    at32 = np.stack([flip_bits(q, 32, rng) for _ in range(50)])
    hashes = np.concatenate([base, at31, at32])
    ids = np.arange(len(hashes), dtype=np.int64)
    idx = PDQIndex()
    idx.add(ids, hashes)
    got = idx.search(q[None, :], max_distance=31)[0]
    assert got == brute_force(ids, hashes, q[None, :], 31)[0]
    got_ids = {i for i, _ in got}
    assert set(range(5000, 5050)) <= got_ids  # every hash at exactly 31 is found
    assert not got_ids & set(range(5050, 5100))  # none at 32
    assert all(d == 31 for i, d in got if i >= 5000)
    got32 = {i for i, _ in idx.search(q[None, :], max_distance=32)[0]}
    assert set(range(5000, 5100)) <= got32


@pytest.mark.parametrize("d", [31, 32, 40, MIH_MAX_DISTANCE, MIH_MAX_DISTANCE + 1])
def test_every_distance_up_to_threshold_found(d: int) -> None:
    """Hashes at every distance 0..d+1 from one query, spread so chunks differ."""
    rng = np.random.default_rng(d)
    q = rng.integers(0, 256, 32, dtype=np.uint8)
    near = np.stack([flip_bits(q, k, rng) for k in range(d + 2) for _ in range(5)])
    hashes = np.concatenate([rng.integers(0, 256, (3000, 32), dtype=np.uint8), near])
    ids = np.arange(len(hashes), dtype=np.int64)
    idx = PDQIndex()
    idx.add(ids, hashes)
    assert idx.search(q[None, :], max_distance=d) == brute_force(ids, hashes, q[None, :], d)


def test_alternative_chunkings_are_exact() -> None:
    rng = np.random.default_rng(4)
    hashes = rng.integers(0, 256, (8000, 32), dtype=np.uint8)
    ids = np.arange(8000, dtype=np.int64)
    queries = make_queries(rng, hashes, 100)
    want = brute_force(ids, hashes, queries, 31)
    for bits in [DEFAULT_CHUNK_BITS, (16,) * 16, (20,) * 9 + (19,) * 4, (24,) * 8 + (16,) * 4]:
        idx = PDQIndex(chunk_bits=bits)
        idx.add(ids, hashes)
        assert idx.search(queries, 31) == want, bits


def test_large_segment_direct_tables_are_exact() -> None:
    """>= 2**19 rows: the default large-segment chunking with full-width tables."""
    rng = np.random.default_rng(10)
    n = max(SMALL_SEGMENT_ROWS, 1 << 19) + 1000
    hashes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    ids = np.arange(n, dtype=np.int64) * 3
    idx = PDQIndex()
    idx.add(ids, hashes)
    seg = idx._state.segments[0]
    assert seg.layout.bits == DEFAULT_CHUNK_BITS and not seg.keys.size  # direct addressing
    queries = make_queries(rng, hashes, 60)
    for d in (10, 31, 40):
        assert idx.search(queries, d) == brute_force(ids, hashes, queries, d)
    idx.remove(ids[:10])
    assert idx.search(hashes[:3], 0) == [[], [], []]


def _reference_tables(seg) -> None:
    """Check a segment's CSR tables against a numpy stable sort of its bucket values."""
    words = seg.words
    start = 0
    for c, b in enumerate(seg.layout.bits):  # chunk c = bits [start, start + b) of the row
        w, sh = divmod(start, 64)
        key = words[:, w] >> np.uint64(sh)
        if sh + b > 64:
            key |= words[:, w + 1] << np.uint64(64 - sh)
        key = (key & np.uint64((1 << b) - 1)).astype(np.int64)
        start += b
        bucket = key >> int(seg.cp[c, 4])
        order = np.argsort(bucket, kind="stable")  # rows in row order within a bucket
        assert np.array_equal(seg.rows[c], order), c
        lo, hi = int(seg.off_base[c]), int(seg.off_base[c + 1])
        want = np.searchsorted(bucket[order], np.arange(hi - lo), side="left")
        assert np.array_equal(seg.offsets[lo:hi].astype(np.int64), want), c
        if seg.keys.size:
            assert np.array_equal(seg.keys[c], key[order]), c


@pytest.mark.parametrize(
    ("n", "kind"),
    [(3_000, "clustered"), (9_000, "uniform"), (300_000, "uniform"), (300_000, "same")],
)
def test_tables_built_in_place_equal_a_stable_sort(n: int, kind: str) -> None:
    """The in-place build (counting sort into the offsets; two passes for wide tables)
    gives exactly the tables of a stable sort: narrow tables with key filters (3,000
    rows), direct 16-bit tables (9,000), and 2**18..2**19 rows, where 21-bit tables are
    direct and 22-bit ones narrow. "same": one hash 300,000 times (one huge bucket)."""
    rng = np.random.default_rng(n)
    if kind == "uniform":
        hashes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    elif kind == "same":
        hashes = np.repeat(rng.integers(0, 256, (1, 32), dtype=np.uint8), n, axis=0)
    else:
        hashes = clustered(rng, n, n_centres=20)
    ids = rng.permutation(n).astype(np.int64)
    idx = PDQIndex()
    idx.add(ids, hashes)
    (seg,) = idx._state.segments
    _reference_tables(seg)
    queries = np.concatenate([hashes[:5], make_queries(rng, hashes, 20)])
    assert idx.search(queries, 31) == brute_force(ids, hashes, queries, 31)


def test_build_in_one_batch_or_in_chunks_gives_identical_answers() -> None:
    """One big add (sorted ids, copied as is), one shuffled add with repeated ids
    (gathered once; last occurrence wins), and the same rows in many chunks (buffer,
    segments, merges) answer every query identically."""
    rng = np.random.default_rng(21)
    n = 40_000
    hashes = clustered(rng, n, n_centres=300, max_flips=8)
    ids = np.arange(n, dtype=np.int64) * 7 - 1_000
    queries = np.concatenate([hashes[::4_000], make_queries(rng, hashes, 100)])
    want = brute_force(ids, hashes, queries, 31)

    one = PDQIndex()
    one.add(ids, hashes)
    assert one.search(queries) == want

    perm = rng.permutation(n)
    decoys = rng.integers(0, 256, (500, 32), dtype=np.uint8)  # replaced by the later rows
    shuffled = PDQIndex()
    shuffled.add(
        np.concatenate([ids[perm[:500]], ids[perm]]), np.concatenate([decoys, hashes[perm]])
    )
    assert len(shuffled) == n and shuffled.search(queries) == want

    chunked = PDQIndex()
    for lo in range(0, n, 1_500):
        chunked.add(ids[perm[lo : lo + 1_500]], hashes[perm[lo : lo + 1_500]])
    assert len(chunked) == n and len(chunked.stats()["segments"]) > 1
    assert chunked.search(queries) == want
    for seg in (*one._state.segments, *chunked._state.segments):
        _reference_tables(seg)


def test_add_keeps_no_reference_to_the_callers_arrays() -> None:
    """The index owns its copy: changing the caller's arrays afterwards changes nothing."""
    rng = np.random.default_rng(22)
    hashes = rng.integers(0, 256, (5_000, 32), dtype=np.uint8)
    ids = np.arange(5_000, dtype=np.int64)
    idx = PDQIndex()
    idx.add(ids, hashes)
    before = idx.search(hashes[:3].copy(), 0)
    hashes[:] = 0
    ids[:] = 0
    assert idx.search(hashes[:1], 0) == [[]] and before == [[(0, 0)], [(1, 0)], [(2, 0)]]


# ----------------------------------------------------------------------------- PDQ: updates


def test_interleaved_adds_and_removes_match_brute_force() -> None:
    """Many small batches (buffer, flushes, tier merges, compaction) + replacements."""
    rng = np.random.default_rng(5)
    centres = rng.integers(0, 256, (30, 32), dtype=np.uint8)
    idx, mirror = PDQIndex(), Mirror()
    next_id = 0
    for step in range(60):
        n = int(rng.choice([1, 50, 700, 3000]))
        hashes = (
            clustered(rng, n, 5) if step % 3 == 0 else rng.integers(0, 256, (n, 32), dtype=np.uint8)
        )
        if step % 4 == 1 and n >= 2:
            hashes[: n // 2] = np.stack([flip_bits(centres[i % 30], 3, rng) for i in range(n // 2)])
        new_ids = np.arange(next_id, next_id + n, dtype=np.int64)
        next_id += n
        if step % 5 == 2 and mirror.d:  # re-add some existing ids with new hashes
            existing = np.array(list(mirror.d))
            k = min(n, len(existing))
            new_ids[:k] = rng.choice(existing, size=k, replace=False)
        idx.add(new_ids, hashes)
        mirror.add(new_ids, hashes)
        if step % 2 == 1 and mirror.d:
            existing = np.array(list(mirror.d))
            gone = rng.choice(existing, size=min(len(existing), int(rng.integers(1, 2500))))
            unknown = np.array([10**12 + step])
            removed = idx.remove(np.concatenate([gone, unknown]))
            assert removed == len(set(gone.tolist()))
            mirror.remove(gone)
        assert len(idx) == len(mirror.d)
        if step % 6 == 5:
            ids, hs = mirror.arrays()
            queries = np.concatenate([make_queries(rng, hs, 60), centres[:10]])
            assert idx.search(queries, 31) == brute_force(ids, hs, queries, 31), step
    stats = idx.stats()
    assert stats["len"] == len(mirror.d)
    # incremental: many batches but few segments (merged by tier), buffer bounded
    assert len(stats["segments"]) < 25
    assert stats["buffer"] <= BUFFER_ROWS
    ids, hs = mirror.arrays()
    queries = make_queries(rng, hs, 100)
    assert idx.search(queries, 31) == brute_force(ids, hs, queries, 31)


def test_add_does_not_rebuild_large_segment() -> None:
    rng = np.random.default_rng(6)
    idx = PDQIndex()
    idx.add(np.arange(20_000), rng.integers(0, 256, (20_000, 32), dtype=np.uint8))
    big = idx._state.segments[0]
    for i in range(10):
        idx.add([10**6 + i], rng.integers(0, 256, (1, 32), dtype=np.uint8))
    idx.remove([5])
    assert idx._state.segments[0] is big  # same object: not rebuilt
    assert 5 not in idx and 10**6 + 3 in idx and 6 in idx


def test_replace_contains_len_and_duplicates_in_batch() -> None:
    rng = np.random.default_rng(7)
    a, b, c = rng.integers(0, 256, (3, 32), dtype=np.uint8)
    idx = PDQIndex()
    idx.add([1, 2, 1], np.stack([a, b, c]))  # last occurrence of id 1 wins
    assert len(idx) == 2 and 1 in idx and 2 in idx and 3 not in idx
    assert idx.search(c[None, :], 0) == [[(1, 0)]]
    assert idx.search(a[None, :], 0) == [[]]
    idx.add([2], a[None, :])  # replace
    assert idx.search(a[None, :], 0) == [[(2, 0)]]
    assert idx.search(b[None, :], 0) == [[]]
    assert idx.remove([2, 2, 99]) == 1 and len(idx) == 1
    assert "1" not in idx and 1.0 not in idx and True not in idx and 2**70 not in idx
    assert idx.remove([]) == 0


def test_search_hex_and_sorting() -> None:
    q = "f" * 64
    near1 = "e" + "f" * 63  # distance 1
    near3 = "8" + "f" * 63  # distance 3
    hexes = [near3, near1, q]
    idx = PDQIndex()
    idx.add([30, 20, 10], np.stack([np.frombuffer(bytes.fromhex(h), np.uint8) for h in hexes]))
    idx.add([40], np.frombuffer(bytes.fromhex(near1), np.uint8)[None, :])
    assert idx.search_hex([q.upper(), "0" * 64]) == [[(10, 0), (20, 1), (40, 1), (30, 3)], []]
    assert idx.search_hex([]) == []
    with pytest.raises(InvalidHashError):
        idx.search_hex(["xyz"])
    with pytest.raises(InvalidHashError):
        idx.search_hex([b"\x00" * 32])  # type: ignore[list-item]
    with pytest.raises(IndexInputError):
        idx.search_hex(q)  # type: ignore[arg-type]


def test_empty_index_and_empty_queries() -> None:
    idx = PDQIndex()
    q = np.zeros((3, 32), np.uint8)
    assert idx.search(q) == [[], [], []]
    assert idx.search(np.zeros((0, 32), np.uint8)) == []
    assert len(idx) == 0 and 0 not in idx
    idx.add([], np.zeros((0, 32), np.uint8))
    assert len(idx) == 0


@pytest.mark.parametrize(
    "ids, hashes",
    [
        ([1, 2], np.zeros((3, 32), np.uint8)),  # count mismatch
        ([1], np.zeros((1, 31), np.uint8)),  # shape
        ([1], np.zeros((1, 32), np.int64)),  # dtype
        ([1], np.zeros(32, np.uint8)),  # 1-D
        ([1], [[0] * 32]),  # not an array
        ([1.5], np.zeros((1, 32), np.uint8)),  # float id
        ([True], np.zeros((1, 32), np.uint8)),  # bool id
        (["1"], np.zeros((1, 32), np.uint8)),  # str id
        ([2**63], np.zeros((1, 32), np.uint8)),  # out of int64
        (np.array([2**64 - 1], np.uint64), np.zeros((1, 32), np.uint8)),
        (np.zeros((1, 1), np.int64), np.zeros((1, 32), np.uint8)),
        (np.array([1.0]), np.zeros((1, 32), np.uint8)),
    ],
)
def test_add_rejects_bad_input_atomically(ids, hashes) -> None:
    idx = PDQIndex()
    idx.add([7], np.ones((1, 32), np.uint8))
    with pytest.raises(IndexInputError) as exc:
        idx.add(ids, hashes)
    assert exc.value.code == "invalid_index_input"
    assert len(idx) == 1 and 7 in idx  # nothing changed


def test_search_rejects_bad_input() -> None:
    idx = PDQIndex()
    idx.add([1], np.zeros((1, 32), np.uint8))
    q = np.zeros((1, 32), np.uint8)
    for bad in (-1, 256, 31.0, True, "31", None):
        with pytest.raises(IndexInputError):
            idx.search(q, max_distance=bad)  # type: ignore[arg-type]
    for badq in (np.zeros((1, 32), np.float32), np.zeros((2, 16), np.uint8), "ab", None):
        with pytest.raises(IndexInputError):
            idx.search(badq)  # type: ignore[arg-type]
    assert idx.search(q, max_distance=255) == [[(1, 0)]]
    with pytest.raises(IndexInputError):
        idx.remove([1.5])  # type: ignore[list-item]
    with pytest.raises(IndexInputError):
        PDQIndex(chunk_bits=(16,) * 15)


def test_non_contiguous_and_extreme_ids() -> None:
    rng = np.random.default_rng(8)
    big = rng.integers(0, 256, (100, 64), dtype=np.uint8)
    hashes = big[:, ::2]  # non-contiguous view
    ids = np.array([-(2**63), 2**63 - 1] + list(range(98)), dtype=np.int64)
    idx = PDQIndex()
    idx.add(ids, hashes)
    got = idx.search(np.ascontiguousarray(hashes[:2]), 0)
    assert got == [[(-(2**63), 0)], [(2**63 - 1, 0)]]
    assert -(2**63) in idx
    # unaligned, read-only query buffer (e.g. straight from bytes)
    raw = b"\x00" + bytes(hashes[5])
    q = np.frombuffer(raw, dtype=np.uint8)[1:].reshape(1, 32)
    assert idx.search(q, 0) == [[(int(ids[5]), 0)]]


def test_concurrent_searches_and_writes() -> None:
    rng = np.random.default_rng(9)
    hashes = rng.integers(0, 256, (20_000, 32), dtype=np.uint8)
    ids = np.arange(20_000, dtype=np.int64)
    idx = PDQIndex()
    idx.add(ids, hashes)
    stable = hashes[:200]  # ids 0..199 never touched by the writer
    want = brute_force(ids, hashes, stable, 31)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(5):
                got = idx.search(stable, 31)
                # stable ids always present with the same distances
                for g, w in zip(got, want, strict=True):
                    ref = {i: d for i, d in w if i < 200}
                    assert {i: d for i, d in g if i < 200} == ref
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def writer() -> None:
        try:
            for k in range(20):
                new = rng.integers(0, 256, (500, 32), dtype=np.uint8)
                idx.add(np.arange(10**6 + 500 * k, 10**6 + 500 * (k + 1)), new)
                idx.remove(np.arange(1000 + 100 * k, 1100 + 100 * k))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [
        threading.Thread(target=writer)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(idx) == 20_000 + 20 * 500 - 20 * 100


# ----------------------------------------------------------------------------- ExactIndex


def test_exact_index_add_lookup_replace_remove() -> None:
    idx = ExactIndex("md5")
    h1 = hashlib.md5(b"one").hexdigest()
    h2 = hashlib.md5(b"two").hexdigest()
    idx.add([1, 2, 3], [h1, h1.upper(), h2])
    assert idx.lookup(h1) == [1, 2] and idx.lookup(h2) == [3]
    assert idx.lookup(hashlib.md5(b"three").hexdigest()) == []
    idx.add([2], [h2])  # replace
    assert idx.lookup(h1) == [1] and idx.lookup(h2) == [2, 3]
    assert idx.remove([1, 1, 42]) == 1
    assert idx.lookup(h1) == [] and len(idx) == 2 and 2 in idx and 1 not in idx
    idx.add([2], [h2])  # same again: no duplicates
    assert idx.lookup(h2) == [2, 3]


@pytest.mark.parametrize("kind, fn", [("sha1", hashlib.sha1), ("sha256", hashlib.sha256)])
def test_exact_index_other_types(kind, fn) -> None:
    idx = ExactIndex(kind)
    hexes = [fn(str(i).encode()).hexdigest() for i in range(1000)]
    idx.add(list(range(1000)), hexes)
    assert all(idx.lookup(h) == [i] for i, h in enumerate(hexes))
    with pytest.raises(InvalidHashError):
        idx.lookup(hashlib.md5(b"x").hexdigest())  # wrong length for this type


def test_exact_index_rejects_bad_input_atomically() -> None:
    idx = ExactIndex("md5")
    good = hashlib.md5(b"a").hexdigest()
    for ids, hexes, err in [
        ([1, 2], [good, "zz" * 16], InvalidHashError),
        ([1], [good[:-1]], InvalidHashError),
        ([1], [None], InvalidHashError),
        ([1], good, IndexInputError),
        ([1.0], [good], IndexInputError),
        ([2**64], [good], IndexInputError),
        ([1, 2], [good], IndexInputError),
    ]:
        with pytest.raises(err):
            idx.add(ids, hexes)
        assert len(idx) == 0
    with pytest.raises(InvalidHashError):
        idx.lookup(123)  # type: ignore[arg-type]
    with pytest.raises(IndexInputError):
        ExactIndex("pdq")
