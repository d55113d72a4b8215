"""The union-find behind grouping and series: the same sets whichever way pairs arrive."""

from __future__ import annotations

import numpy as np
import pytest

from sentinelle.triage.union_find import UnionFind


def test_roots_are_each_components_smallest() -> None:
    uf = UnionFind(7)
    for a, b in ((5, 6), (6, 2), (1, 3), (3, 0)):
        uf.union(a, b)
    assert uf.roots().tolist() == [0, 0, 2, 0, 4, 2, 2]


def test_union_many_matches_pair_by_pair_in_any_order() -> None:
    rng = np.random.default_rng(5)
    n = 2_000
    a = rng.integers(0, n, 3_000)
    b = rng.integers(0, n, 3_000)
    one = UnionFind(n)
    merged = sum(one.union(int(x), int(y)) for x, y in zip(a, b, strict=True))
    many = UnionFind(n)
    assert many.union_many(a, b) == merged
    assert many.roots().tolist() == one.roots().tolist()
    shuffled = UnionFind(n)
    order = rng.permutation(len(a))
    assert shuffled.union_many(b[order], a[order]) == merged  # order and direction free
    assert shuffled.roots().tolist() == one.roots().tolist()
    # components: n minus the merges
    assert len(np.unique(one.roots())) == n - merged


def test_union_many_repeats_self_pairs_and_empty() -> None:
    uf = UnionFind(4)
    assert uf.union_many(np.array([1, 1, 2, 3]), np.array([1, 0, 0, 3])) == 2
    assert uf.union_many(np.array([0]), np.array([2])) == 0  # already one set
    assert uf.union_many(np.zeros(0, np.int64), np.zeros(0, np.int64)) == 0
    assert uf.roots().tolist() == [0, 0, 0, 3]


def test_union_many_rejects_bad_positions() -> None:
    uf = UnionFind(3)
    with pytest.raises(IndexError):
        uf.union_many(np.array([0]), np.array([3]))
    with pytest.raises(IndexError):
        uf.union_many(np.array([-1]), np.array([0]))
    with pytest.raises(ValueError):
        uf.union_many(np.array([0, 1]), np.array([0]))
    with pytest.raises(TypeError):  # floats are not truncated into positions
        uf.union_many(np.array([1.7]), np.array([0]))
    with pytest.raises(IndexError):
        uf.union(0, 3)
    with pytest.raises(TypeError):
        uf.find(1.0)  # type: ignore[arg-type]
    assert uf.roots().tolist() == [0, 1, 2]  # nothing joined by a refused call
