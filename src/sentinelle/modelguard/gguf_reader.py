"""Bounded GGUF reader: metadata key/values and tensor locations, no tensor data.

Layout (little-endian, versions 2 and 3): ``"GGUF"``, ``u32 version``, ``u64 tensor_count``,
``u64 kv_count``, the key/values (``string key``, ``u32 type``, value; strings are
``u64 length`` + UTF-8; arrays are ``u32 item type``, ``u64 count``, items), the tensor
infos (``string name``, ``u32 n_dims``, ``u64 dims[n_dims]``, ``u32 ggml type``,
``u64 offset``), then padding to ``general.alignment`` (default 32) and the tensor data.

The ``gguf`` package's own ``GGUFReader`` trusts the counts: it memory-maps the file,
loops ``count`` times building one numpy view per field part (per array item), and a
hostile count ends in a bare ``IndexError`` only when a read falls past the end of the
file. This reader checks every count against the bytes left and against
:class:`ModelLimits` *before* it loops, skips numeric arrays with one seek, keeps only
the first strings of big string arrays (tokenizer vocabularies) and takes only the
quantisation block sizes and type names from ``gguf.constants``. Shapes are reported in
GGUF's own order (``ne[0]`` first).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cache
from typing import Any, BinaryIO

from .errors import ModelFileError
from .layout import TensorInfo, TensorLayout, find_overlap, sorted_layout
from .limits import DEFAULT_LIMITS, ModelLimits

FORMAT = "gguf"
MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
KEPT_ARRAY_STRINGS = 256  # strings kept from one array (the rest are counted, not kept)
MAX_KEPT_CHARS = 65_536  # longer string values are kept cut to this
#: value type -> (struct code, size) for the fixed-size types.
SCALARS = {
    0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
    6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8),
}  # fmt: skip
STRING, ARRAY = 8, 9
_U64 = struct.Struct("<Q")


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    metadata: dict[str, Any]  # scalars and strings; arrays as lists (strings cut, see above)
    array_counts: dict[str, int] = field(default_factory=dict)  # full length of each array
    layout: TensorLayout | None = None
    alignment: int = DEFAULT_ALIGNMENT


def _fail(message: str, code: str) -> ModelFileError:
    return ModelFileError(message, code, format=FORMAT)


@cache
def _quant_sizes() -> dict[int, tuple[int, int, str]]:
    """ggml type id -> (block size, bytes per block, name), from the ``gguf`` package.

    Without it (the ``model`` extra) every tensor is taken to run to the next one."""
    try:
        from gguf.constants import GGML_QUANT_SIZES
    except ImportError:
        return {}

    return {int(t): (b, s, t.name) for t, (b, s) in GGML_QUANT_SIZES.items()}


class _Cursor:
    """Sequential reads inside ``[pos, size)`` and under the metadata byte cap."""

    def __init__(self, fh: BinaryIO, size: int, cap: int) -> None:
        self.fh, self.size, self.cap, self.pos = fh, size, cap, 0

    def left(self) -> int:
        return self.size - self.pos

    def need(self, n: int, what: str) -> None:
        if n > self.left():
            raise _fail(f"file ends inside {what}", "gguf_truncated")
        if self.pos + n > self.cap:
            raise _fail(f"metadata is over the limit of {self.cap} bytes", "gguf_absurd_count")

    def read(self, n: int, what: str) -> bytes:
        self.need(n, what)
        data = self.fh.read(n)
        if len(data) != n:
            raise _fail(f"file ends inside {what}", "gguf_truncated")
        self.pos += n
        return data

    def skip(self, n: int, what: str) -> None:
        self.need(n, what)
        self.pos += n
        self.fh.seek(self.pos)

    def unpack(self, code: str, size: int, what: str) -> Any:
        return struct.unpack(code, self.read(size, what))[0]

    def count(self, what: str, min_item: int, limit: int) -> int:
        n = self.unpack("<Q", 8, what)
        if n > limit or (min_item and n > self.left() // min_item):
            raise _fail(
                f"{what} {n} cannot fit in the {self.left()} bytes left (or passes the limit "
                f"of {limit})",
                "gguf_absurd_count",
            )
        return n

    def string(self, what: str, keep: int = MAX_KEPT_CHARS) -> str:
        n = self.count(f"length of {what}", 1, self.size)
        if n > keep:
            head = self.read(keep, what)
            self.skip(n - keep, what)
            return head.decode("utf-8", "replace")
        return self.read(n, what).decode("utf-8", "replace")

    def skip_strings(self, n: int, what: str, block: int = 1 << 20) -> None:
        """Skip ``n`` strings, walking their lengths in 1 MiB reads (no per-item seek)."""
        unpack = _U64.unpack_from
        while n:
            buf = self.fh.read(min(block, max(self.left(), 0)))
            end, at = len(buf), 0
            while n and at + 8 <= end:
                nxt = at + 8 + unpack(buf, at)[0]
                if nxt > end:
                    break
                at = nxt
                n -= 1
            if at == 0:  # one string longer than the block, or the data ran out
                if end < 8:
                    raise _fail(f"file ends inside {what}", "gguf_truncated")
                at = 8 + unpack(buf, 0)[0]
                n -= 1
            self.need(at, what)
            self.pos += at
            self.fh.seek(self.pos)


class _Reader:
    def __init__(self, cur: _Cursor, limits: ModelLimits) -> None:
        self.cur, self.limits = cur, limits
        self.array_items = 0

    def value(self, vtype: int, key: str, depth: int = 0) -> tuple[Any, int | None]:
        cur = self.cur
        if vtype in SCALARS:
            code, size = SCALARS[vtype]
            return cur.unpack(code, size, key), None
        if vtype == STRING:
            return cur.string(key), None
        if vtype != ARRAY:
            raise _fail(f"{key}: unknown value type {vtype}", "bad_gguf")
        if depth >= 2:
            raise _fail(f"{key}: arrays nested too deep", "bad_gguf")
        itype = cur.unpack("<I", 4, key)
        min_item = SCALARS[itype][1] if itype in SCALARS else 8 if itype == STRING else 12
        n = cur.count(f"{key}: array count", min_item, self.limits.max_gguf_array_items)
        self.array_items += n
        if self.array_items > self.limits.max_gguf_array_items:
            raise _fail(
                f"more than {self.limits.max_gguf_array_items} array items", "gguf_absurd_count"
            )
        if itype in SCALARS:
            code, size = SCALARS[itype]
            kept = min(n, 64)
            raw = cur.read(kept * size, key)
            items = list(struct.unpack(f"<{kept}{code[1]}", raw))
            cur.skip((n - kept) * size, key)
            return items, n
        items = []
        kept = n if itype != STRING else min(n, KEPT_ARRAY_STRINGS)
        for _ in range(kept):
            items.append(self.value(itype, key, depth + 1)[0])
        if kept < n:
            cur.skip_strings(n - kept, key)
        return items, n


def read_header(fh: BinaryIO, file_size: int, limits: ModelLimits = DEFAULT_LIMITS) -> GGUFHeader:
    """Read GGUF metadata and tensor infos from an open file (position: start)."""
    cur = _Cursor(fh, file_size, limits.max_gguf_metadata_bytes)
    if file_size < 4 or cur.read(4, "magic") != MAGIC:
        raise _fail("not a GGUF file (bad magic)", "bad_gguf")
    version = cur.unpack("<I", 4, "version")
    if version not in (2, 3):
        hint = " (big-endian files are not supported)" if version > 0xFFFF else ""
        raise _fail(f"GGUF version {version} is not supported{hint}", "bad_gguf")
    n_tensors = cur.unpack("<Q", 8, "tensor count")
    n_kv = cur.unpack("<Q", 8, "key/value count")
    # the smallest key/value is 8 (key length) + 4 (type) + 1 (u8); a tensor info 8+4+4+8
    for what, n, smallest, limit in (
        ("key/value count", n_kv, 13, limits.max_gguf_kv),
        ("tensor count", n_tensors, 24, limits.max_tensors),
    ):
        if n > limit or n * smallest > cur.left():
            raise _fail(
                f"{what} {n} cannot fit in the {cur.left()} bytes left (or passes the limit "
                f"of {limit})",
                "gguf_absurd_count",
            )
    reader = _Reader(cur, limits)
    meta: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for _ in range(n_kv):
        key = cur.string("key", keep=4096)
        vtype = cur.unpack("<I", 4, key)
        value, n = reader.value(vtype, key)
        meta[key] = value
        if n is not None:
            counts[key] = n
    alignment = meta.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise _fail(f"general.alignment {alignment!r} is not a power of two", "bad_gguf")
    infos = []
    for _ in range(n_tensors):
        name = cur.string("tensor name", keep=4096)
        n_dims = cur.unpack("<I", 4, name)
        if n_dims > limits.max_gguf_dims:
            raise _fail(f"tensor {name!r}: {n_dims} dimensions", "bad_gguf")
        dims = struct.unpack(f"<{n_dims}Q", cur.read(8 * n_dims, name))
        gtype = cur.unpack("<I", 4, name)
        offset = cur.unpack("<Q", 8, name)
        infos.append((name, dims, gtype, offset))
    data_start = -(-cur.pos // alignment) * alignment
    layout = _layout(infos, data_start, file_size)
    return GGUFHeader(version, meta, counts, layout, alignment)


def _layout(
    infos: list[tuple[str, tuple[int, ...], int, int]], data_start: int, file_size: int
) -> TensorLayout:
    sizes = _quant_sizes()
    tensors: list[TensorInfo] = []
    unknown: list[tuple[str, tuple[int, ...], int, int]] = []
    for name, dims, gtype, offset in infos:
        n_elems = 1
        for d in dims:
            n_elems *= d
        if gtype in sizes:
            block, per_block, tname = sizes[gtype]
            if n_elems % block:
                raise _fail(f"tensor {name!r}: {n_elems} elements, not whole blocks", "bad_gguf")
            nbytes = n_elems // block * per_block
            start = data_start + offset
            if start + nbytes > file_size:
                raise _fail(
                    f"tensor {name!r} ends at byte {start + nbytes}; the file has {file_size}",
                    "gguf_truncated",
                )
            tensors.append(TensorInfo(name, tname, tuple(dims), start, start + nbytes))
        else:
            unknown.append((name, dims, gtype, offset))
    # Types this version of gguf does not know: each runs to the next tensor (or file end).
    starts = sorted({t.start for t in tensors} | {data_start + u[3] for u in unknown})
    for name, dims, gtype, offset in unknown:
        start = data_start + offset
        if start > file_size:
            raise _fail(f"tensor {name!r} starts past the end of the file", "gguf_truncated")
        nxt = next((s for s in starts if s > start), file_size)
        tensors.append(TensorInfo(name, f"ggml_type_{gtype}", tuple(dims), start, nxt))
    layout = sorted_layout(tensors, data_start)
    pair = find_overlap(layout.tensors)
    if pair is not None:
        raise _fail(f"tensors {pair[0].name!r} and {pair[1].name!r} overlap", "bad_gguf")
    return layout
