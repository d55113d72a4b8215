"""PDQJoinIndex: the bulk join returns exactly what brute force returns."""

from __future__ import annotations

import numpy as np
import pytest

from sentinelle.index.pdq_index import IndexInputError, PDQIndex
from sentinelle.index.pdq_join import MAX_DISTANCE, PDQJoinIndex, brute_force_pairs


def _flip(rng: np.random.Generator, h: np.ndarray, k: int) -> np.ndarray:
    bits = np.unpackbits(h)
    bits[rng.choice(256, k, replace=False)] ^= 1
    return np.packbits(bits)


def _queries(rng: np.random.Generator, bank: np.ndarray, n: int, max_k: int) -> np.ndarray:
    q = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    for i in range(0, n, 2):  # half near copies at 0..max_k bits
        q[i] = _flip(rng, bank[rng.integers(len(bank))], int(rng.integers(0, max_k + 1)))
    return q


def _same(a, b) -> None:
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("max_d", [0, 1, 7, 15, 16, 20, 31, 32, 40, MAX_DISTANCE])
def test_join_equals_brute_force(seed: int, max_d: int) -> None:
    rng = np.random.default_rng(seed * 100 + max_d)
    bank = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    q = _queries(rng, bank, 700, max_d + 3)
    got = PDQJoinIndex(bank).join(q, max_d)
    _same(got, brute_force_pairs(bank, q, max_d))
    assert len(got[0]) > 0


@pytest.mark.parametrize("max_d", [20, 31, 47])
def test_distances_exactly_at_and_one_above_the_threshold(max_d: int) -> None:
    rng = np.random.default_rng(max_d)
    bank = rng.integers(0, 256, (2000, 32), dtype=np.uint8)
    src = rng.integers(0, len(bank), 400)
    at = np.array([_flip(rng, bank[s], max_d) for s in src[:200]])
    above = np.array([_flip(rng, bank[s], max_d + 1) for s in src[200:]])
    ix = PDQJoinIndex(bank)
    qi, row, dist = ix.join(np.concatenate([at, above]), max_d)
    hit = {(int(a), int(b)) for a, b in zip(qi, row, strict=True)}
    assert all((i, int(s)) in hit for i, s in enumerate(src[:200]))
    assert not any((200 + i, int(s)) in hit for i, s in enumerate(src[200:]))
    _same((qi, row, dist), brute_force_pairs(bank, np.concatenate([at, above]), max_d))


def test_bits_spread_over_few_chunks_are_found() -> None:
    """Worst cases for pigeonhole: every chunk at its radius, or all bits in one word."""
    rng = np.random.default_rng(5)
    bank = rng.integers(0, 256, (500, 32), dtype=np.uint8)
    qs = []
    for j in range(100):
        bits = np.unpackbits(bank[j])
        if j % 2:  # two bits in each of 15 chunks + one in the last: 31
            idx = [c * 16 + b for c in range(16) for b in ((0, 9) if c < 15 else (3,))]
        else:  # 31 bits packed into the first two words
            idx = list(rng.choice(128, 31, replace=False))
        bits[idx] ^= 1
        qs.append(np.packbits(bits))
    q = np.array(qs)
    qi, row, dist = PDQJoinIndex(bank).join(q, 31)
    pairs = set(zip(qi.tolist(), row.tolist(), strict=True))
    assert all((j, j) in pairs for j in range(100))
    _same((qi, row, dist), brute_force_pairs(bank, q, 31))


def test_duplicates_in_bank_and_batch() -> None:
    rng = np.random.default_rng(9)
    base = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    bank = np.concatenate([base, base[:50], base[:10]])  # duplicate rows: each reported
    q = np.concatenate([base[:40], base[:40], _queries(rng, base, 200, 33)])
    got = PDQJoinIndex(bank).join(q, 31)
    _same(got, brute_force_pairs(bank, q, 31))
    pairs = list(zip(got[0].tolist(), got[1].tolist(), strict=True))
    assert len(pairs) == len(set(pairs))  # no pair twice (several chunks reach it)
    assert sum(1 for a, _ in pairs if a == 0) == 3  # row 0 is in the bank three times


def test_same_order_as_pdqindex_search() -> None:
    rng = np.random.default_rng(11)
    bank = rng.integers(0, 256, (4000, 32), dtype=np.uint8)
    q = _queries(rng, bank, 600, 31)
    ix = PDQIndex()
    ix.add(np.arange(len(bank)), bank)
    res = ix.search(q, 31)
    qi, row, dist = PDQJoinIndex(bank).join(q, 31)
    flat = [(i, r, d) for i, lst in enumerate(res) for r, d in lst]
    assert flat == list(zip(qi.tolist(), row.tolist(), dist.tolist(), strict=True))


def test_empty_bank_and_empty_batch() -> None:
    rng = np.random.default_rng(0)
    bank = rng.integers(0, 256, (100, 32), dtype=np.uint8)
    for got in (
        PDQJoinIndex(np.zeros((0, 32), np.uint8)).join(bank, 31),
        PDQJoinIndex(bank).join(np.zeros((0, 32), np.uint8), 31),
    ):
        assert all(len(a) == 0 and a.dtype == np.int64 for a in got)
    assert len(PDQJoinIndex(np.zeros((0, 32), np.uint8))) == 0


def test_bad_input_is_refused() -> None:
    ix = PDQJoinIndex(np.zeros((4, 32), np.uint8))
    with pytest.raises(IndexInputError):
        PDQJoinIndex(np.zeros((4, 31), np.uint8))
    with pytest.raises(IndexInputError):
        ix.join(np.zeros((2, 32), np.int32), 31)
    for bad in (-1, MAX_DISTANCE + 1, True, 3.0):
        with pytest.raises(IndexInputError):
            ix.join(np.zeros((2, 32), np.uint8), bad)  # type: ignore[arg-type]
