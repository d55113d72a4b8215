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
def _union_many(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> int:
    joined = 0
    for k in range(len(a)):
        ra = _find(parent, a[k])
        rb = _find(parent, b[k])
        if ra == rb:
            continue
        if ra > rb:
            ra, rb = rb, ra
        parent[rb] = ra
        joined += 1
    return joined


class UnionFind:
    """Disjoint sets of ``n`` positions (8 bytes each)."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, i: int) -> int:
        p = self.parent
        root = i
        while p[root] != root:
            root = int(p[root])
        while p[i] != root:
            p[i], i = root, int(p[i])
        return root

    def union(self, a: int, b: int) -> bool:
        """Join the sets of ``a`` and ``b``; False when they were one already."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if ra > rb:
            ra, rb = rb, ra
        self.parent[rb] = ra
        return True

    def union_many(self, a: np.ndarray, b: np.ndarray) -> int:
        """Join each pair ``(a[k], b[k])``; returns how many joins merged two sets."""
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
