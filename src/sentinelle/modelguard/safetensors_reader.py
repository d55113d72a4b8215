"""safetensors header reader: 8-byte little-endian length, then a JSON header.

The header maps tensor names to ``{"dtype", "shape", "data_offsets": [begin, end]}``
(offsets relative to the first byte after the header) plus an optional
``"__metadata__"`` object of string to string. Only the header is read: tensors are
located, never loaded. Every bound of :class:`~sentinelle.modelguard.limits.ModelLimits`
is checked *before* the bytes are read.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import BinaryIO

from ._json import loads_bounded
from .errors import ModelFileError
from .layout import TensorInfo, TensorLayout, find_overlap, sorted_layout
from .limits import DEFAULT_LIMITS, ModelLimits

FORMAT = "safetensors"
PREFIX_BYTES = 8
#: Bits per element of the dtypes the format defines (sub-byte float types included).
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "C64": 64,
    "I64": 64, "U64": 64, "F64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip


@dataclass(frozen=True)
class SafetensorsHeader:
    header_bytes: int  # length of the JSON header
    layout: TensorLayout
    metadata: dict[str, str]


def _fail(message: str, code: str) -> ModelFileError:
    return ModelFileError(message, code, format=FORMAT)


def header_length(prefix: bytes, file_size: int | None, limits: ModelLimits) -> int:
    """Validate the 8-byte prefix; return the header length it declares."""
    if len(prefix) < PREFIX_BYTES:
        raise _fail("file is shorter than the 8-byte safetensors prefix", "bad_header")
    (n,) = struct.unpack("<Q", prefix[:PREFIX_BYTES])
    if n < 2:
        raise _fail(f"declared header length {n} is too small", "bad_header")
    if file_size is not None and n > file_size - PREFIX_BYTES:
        raise _fail(
            f"declared header length {n} is larger than the file ({file_size} bytes)",
            "header_beyond_file",
        )
    if n > limits.max_header_bytes:
        raise _fail(
            f"declared header length {n} is over the limit of {limits.max_header_bytes} bytes",
            "header_too_large",
        )
    return n


_INT_LIMIT = 2**63


def _bad(name: str, why: str) -> ModelFileError:
    return _fail(f"tensor {name!r}: {why}", "bad_tensor_entry")


def _int_list(value: object) -> bool:
    """A list of non-negative integers below 2**63 (bool is not an int here)."""
    return type(value) is list and all(type(v) is int and 0 <= v < _INT_LIMIT for v in value)


def _tensor(name: str, entry: object, data_start: int) -> TensorInfo:
    if type(entry) is not dict:
        raise _bad(name, "entry is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if type(dtype) is not str or not 0 < len(dtype) <= 16:
        raise _bad(name, "bad dtype")
    if not _int_list(shape) or len(shape) > 64:
        raise _bad(name, "shape must be a list of at most 64 non-negative integers")
    if not _int_list(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
        raise _bad(name, "data_offsets must be [begin, end], non-negative integers")
    begin, end = offsets
    bits = DTYPE_BITS.get(dtype)
    if bits is not None:
        want = (math.prod(shape) * bits + 7) // 8
        if want != end - begin:
            raise _bad(name, f"{dtype}{shape} needs {want} bytes, data_offsets span {end - begin}")
    return TensorInfo(name, dtype, tuple(shape), data_start + begin, data_start + end)


def parse_header(
    header: bytes, file_size: int | None, limits: ModelLimits = DEFAULT_LIMITS
) -> SafetensorsHeader:
    """Parse and validate the JSON header bytes (``file_size`` None: not known yet)."""
    if not header.lstrip(b" \t\r\n").startswith(b"{"):
        raise _fail("header is not a JSON object", "bad_header")
    # The header's shape is checked entry by entry below, so its nesting needs no walk of
    # its own (JSON deeper than the parser's recursion limit is still json_too_deep).
    doc = loads_bounded(
        header, max_depth=limits.max_json_depth, what="header", format=FORMAT, walk=False
    )
    if not isinstance(doc, dict):
        raise _fail("header is not a JSON object", "bad_header")
    raw_meta = doc.pop("__metadata__", None) or {}
    if not isinstance(raw_meta, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw_meta.items()
    ):
        raise _fail("__metadata__ must map strings to strings", "bad_header")
    if len(doc) > limits.max_tensors:
        raise _fail(f"{len(doc)} tensors; the limit is {limits.max_tensors}", "too_many_tensors")
    data_start = PREFIX_BYTES + len(header)
    tensors = [_tensor(name, entry, data_start) for name, entry in doc.items()]
    layout = sorted_layout(tensors, data_start)
    pair = find_overlap(layout.tensors)
    if pair is not None:
        raise _fail(f"tensors {pair[0].name!r} and {pair[1].name!r} overlap", "overlapping_tensors")
    if file_size is not None and layout.data_end > file_size:
        raise _fail(
            f"tensor data ends at byte {layout.data_end} but the file has {file_size} bytes",
            "truncated_tensors",
        )
    return SafetensorsHeader(len(header), layout, raw_meta)


def read_header(
    fh: BinaryIO, file_size: int, limits: ModelLimits = DEFAULT_LIMITS
) -> SafetensorsHeader:
    """Read and validate the header of an open file (position: start of file)."""
    n = header_length(fh.read(PREFIX_BYTES), file_size, limits)
    header = fh.read(n)
    if len(header) != n:
        raise _fail("file ended inside the header", "header_beyond_file")
    return parse_header(header, file_size, limits)
