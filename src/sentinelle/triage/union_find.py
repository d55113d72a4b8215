"""Union-find (disjoint sets) over positions ``0..n-1``, in one int64 array.

Triage joins media into groups and groups into series by single linkage over many
pairs (a near-copy of a photo with 300 copies meets all of them): :meth:`UnionFind.
union_many` joins whole pair arrays in a compiled loop, without a Python object per
pair. The smaller root always becomes the parent, so the final forest, and each
element's root, do not depend on the order the pairs came in.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@njit(cache=True, nogil=True)
def _union_one(parent: np.ndarray, a: int, b: int) -> bool:
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra == rb:
        return False
    if ra > rb:  # the smaller root is the parent: the forest does not depend on order
        ra, rb = rb, ra
    parent[rb] = ra
    return True


@njit(cache=True, nogil=True)
def _union_many(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> int:
    joined = 0
    for k in range(len(a)):
        if _union_one(parent, a[k], b[k]):
            joined += 1
    return joined


class UnionFind:
    """Disjoint sets of ``n`` positions (8 bytes each)."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, i: int) -> int:
        return int(_find(self.parent, self._at(i)))

    def union(self, a: int, b: int) -> bool:
        """Join the sets of ``a`` and ``b``; False when they were one already."""
        return bool(_union_one(self.parent, self._at(a), self._at(b)))

    def _at(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"a position is an integer, not {type(i).__name__}")
        if not 0 <= i < len(self.parent):
            raise IndexError(f"position {i} outside 0..{len(self.parent) - 1}")
        return int(i)

    def union_many(self, a: np.ndarray, b: np.ndarray) -> int:
        """Join each pair ``(a[k], b[k])``; returns how many joins merged two sets."""
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind not in "iu" or b.dtype.kind not in "iu":  # 1.7 is not a position
            raise TypeError(f"union_many needs integer arrays, not {a.dtype} and {b.dtype}")
        a = np.ascontiguousarray(a, dtype=np.int64)
        b = np.ascontiguousarray(b, dtype=np.int64)
        if a.shape != b.shape or a.ndim != 1:
            raise ValueError("union_many needs two 1-D arrays of one length")
        n = len(self.parent)
        if len(a) and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n):
            raise IndexError(f"union_many: a position outside 0..{n - 1}")
        return int(_union_many(self.parent, a, b)) if len(a) else 0

    def roots(self) -> np.ndarray:
        """Each element's root (pointer jumping over the forest: no per-element objects)."""
        p = self.parent.copy()
        while True:
            q = p[p]
            if np.array_equal(q, p):
                return q
            p = q
