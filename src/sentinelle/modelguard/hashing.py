"""Identifying model files: ``file_sha256``, ``tensor_sha256`` and per-tensor hashes.

* ``file_sha256``: SHA-256 of the file's bytes as stored (changes with any metadata edit).
* per-tensor hash (signal ``tensor_part_sha``): SHA-256 of
  ``b"sentinelle.tensor.v1\\0" + dtype + b"\\0" + shape ("4,320") + b"\\0" + data``:
  the tensor's bytes with its dtype and shape in the framing, *not* its name, so a
  tensor renamed by a converter (kohya <-> diffusers key names) still matches.
* ``tensor_sha256``: SHA-256 over the per-tensor hashes in canonical order, sorted by
  tensor name (UTF-8 bytes): ``b"sentinelle.tensors.v1\\0"`` then, per tensor,
  ``len(name)`` (4 bytes, big-endian) + name + its 32-byte per-tensor digest. It does
  not depend on the header, the metadata, the padding or the order of the tensors in the
  file, and it is the same whether the tensors were hashed one after the other, in
  parallel or while an upload streamed in.

Hashing streams: the file is read once, in large chunks into a small ring of reused
buffers (memory is bounded by ``RING * chunk``), while one thread hashes the whole file
and another the tensors (hashlib releases the GIL, so both run beside the reads).
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelFileError
from .layout import TensorInfo, TensorLayout

TENSOR_FRAMING = b"sentinelle.tensor.v1\0"
MODEL_FRAMING = b"sentinelle.tensors.v1\0"
CHUNK_BYTES = 16 * 1024 * 1024
RING = 3  # buffers in flight: one being read, two being hashed


@dataclass(frozen=True, slots=True)
class TensorDigest:
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "nbytes": self.nbytes,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class HashReport:
    file_sha256: str | None
    tensor_sha256: str | None
    tensors: tuple[TensorDigest, ...]
    bytes_hashed: int


def tensor_hasher(dtype: str, shape: tuple[int, ...]) -> Any:
    """A sha256 object primed with a tensor's framing; feed it the tensor's bytes."""
    h = hashlib.sha256(TENSOR_FRAMING)
    h.update(dtype.encode("utf-8") + b"\0" + ",".join(map(str, shape)).encode("ascii") + b"\0")
    return h


def combine_digests(digests: list[TensorDigest] | tuple[TensorDigest, ...]) -> str:
    """``tensor_sha256`` of a set of per-tensor digests (order-independent)."""
    h = hashlib.sha256(MODEL_FRAMING)
    for d in sorted(digests, key=lambda d: d.name.encode("utf-8")):
        name = d.name.encode("utf-8")
        h.update(struct.pack(">I", len(name)) + name + bytes.fromhex(d.sha256))
    return h.hexdigest()


class LayoutHasher:
    """Per-tensor hashes of bytes fed in file order (from a file or a streamed upload).

    ``update(chunk)`` takes the next bytes of the file, starting at ``offset`` (0 = the
    first byte of the file); bytes outside tensors (header, padding) are skipped.
    """

    def __init__(self, layout: TensorLayout, offset: int = 0) -> None:
        self._tensors = layout.tensors
        self._i = 0
        self._pos = offset
        self._h: Any = None
        self.digests: list[TensorDigest] = []
        self._drain_empty()

    def _finish(self, t: TensorInfo) -> None:
        h = self._h or tensor_hasher(t.dtype, t.shape)
        self.digests.append(TensorDigest(t.name, t.dtype, t.shape, t.nbytes, h.hexdigest()))
        self._h = None
        self._i += 1

    def _drain_empty(self) -> None:
        ts = self._tensors
        while self._i < len(ts) and ts[self._i].nbytes == 0 and ts[self._i].start <= self._pos:
            self._finish(ts[self._i])

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        view = memoryview(chunk).cast("B")
        ts, n, at = self._tensors, len(view), 0
        while at < n and self._i < len(ts):
            t = ts[self._i]
            if self._pos < t.start:  # header or padding: skip
                step = min(t.start - self._pos, n - at)
            else:
                step = min(t.end - self._pos, n - at)
                if self._h is None:
                    self._h = tensor_hasher(t.dtype, t.shape)
                self._h.update(view[at : at + step])
            at += step
            self._pos += step
            if self._pos >= t.end and self._pos >= t.start:
                self._finish(t)
            self._drain_empty()
        self._pos += n - at

    @property
    def done(self) -> bool:
        return self._i >= len(self._tensors)

    def result(self) -> tuple[TensorDigest, ...]:
        if not self.done:
            t = self._tensors[self._i]
            raise ModelFileError(
                f"data ended at byte {self._pos}, inside tensor {t.name!r} "
                f"(bytes {t.start}-{t.end})",
                "truncated_tensors",
            )
        return tuple(self.digests)


def hash_model_file(
    path: str | Path,
    layout: TensorLayout | None,
    *,
    file_sha256: bool = True,
    tensors: bool = True,
    chunk_bytes: int = CHUNK_BYTES,
    progress: Callable[[int], None] | None = None,
) -> HashReport:
    """Hash a file in one streaming pass (see the module docstring).

    ``layout`` None (a format whose tensors are not located, e.g. pickle): only
    ``file_sha256``. With ``file_sha256=False`` only the tensor bytes are read.
    ``progress(n)`` is called with each chunk's byte count.
    """
    tensors = tensors and layout is not None
    if not (file_sha256 or tensors):
        return HashReport(None, None, (), 0)
    start = 0 if file_sha256 else layout.data_start  # type: ignore[union-attr]
    stop = None if file_sha256 else layout.data_end  # type: ignore[union-attr]
    fh_hash = hashlib.sha256() if file_sha256 else None
    lh = LayoutHasher(layout, start) if tensors else None  # type: ignore[arg-type]
    ring = [bytearray(chunk_bytes) for _ in range(RING)]
    pending: list[list[Future[None]]] = [[] for _ in range(RING)]
    total = 0
    pools = [ThreadPoolExecutor(1, thread_name_prefix="modelhash") for _ in range(2)]
    try:
        with open(path, "rb", buffering=0) as f:
            if start:
                f.seek(start)
            k = 0
            while True:
                for fut in pending[k]:
                    fut.result()
                want = chunk_bytes if stop is None else min(chunk_bytes, stop - start - total)
                if want <= 0:
                    break
                buf = ring[k]
                got = f.readinto(memoryview(buf)[:want])
                if not got:
                    break
                view = memoryview(buf)[:got]
                jobs = []
                if fh_hash is not None:
                    jobs.append(pools[0].submit(fh_hash.update, view))
                if lh is not None:
                    jobs.append(pools[1].submit(lh.update, view))
                pending[k] = jobs
                total += got
                if progress is not None:
                    progress(got)
                k = (k + 1) % RING
            for jobs in pending:
                for fut in jobs:
                    fut.result()
    except OSError as e:
        raise ModelFileError(f"cannot read {os.fspath(path)!r}: {e.strerror}", "io_error") from e
    finally:
        for p in pools:
            p.shutdown(wait=True)
    digests = lh.result() if lh is not None else ()
    return HashReport(
        fh_hash.hexdigest() if fh_hash is not None else None,
        combine_digests(digests) if lh is not None else None,
        digests,
        total,
    )
