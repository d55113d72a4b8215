"""Where a model file keeps its tensors: what every format reader hands to hashing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor: ``start``/``end`` are absolute byte offsets in the file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class TensorLayout:
    """The tensors of one file, sorted by ``start`` (validated: in the file, no overlap)."""

    tensors: tuple[TensorInfo, ...]
    data_start: int  # first byte after the header / metadata
    data_end: int  # last tensor byte + 1 (``data_start`` when there are no tensors)

    @property
    def data_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)


def sorted_layout(tensors: list[TensorInfo], data_start: int) -> TensorLayout:
    """Sort by offset and return the layout (callers have validated the extents)."""
    ts = tuple(sorted(tensors, key=lambda t: (t.start, t.end, t.name)))
    end = max((t.end for t in ts), default=data_start)
    return TensorLayout(ts, data_start, max(end, data_start))


def find_overlap(tensors: tuple[TensorInfo, ...]) -> tuple[TensorInfo, TensorInfo] | None:
    """First pair of tensors (sorted by start) whose byte ranges overlap, if any."""
    prev: TensorInfo | None = None
    for t in tensors:
        if t.nbytes == 0:
            continue
        if prev is not None and t.start < prev.end:
            return prev, t
        prev = t
    return None
