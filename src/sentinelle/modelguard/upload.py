"""Scanning a model as it streams in (an HTTP upload): nothing is kept but the header.

:class:`StreamScanner` takes the bytes in order (``feed``), buffers only the first ones
until the format's header and metadata are complete, then hashes every further byte as
it passes (``file_sha256`` of the whole stream, and the per-tensor hashes for
safetensors and GGUF) and drops it. Memory stays bounded by the header caps of
:class:`~sentinelle.modelguard.limits.ModelLimits` (``max_header_bytes`` for safetensors,
``max_upload_prefix_bytes`` for GGUF metadata and pickle streams), whatever the upload's size.

* safetensors: parsed as soon as ``8 + header length`` bytes are in; a stream that ends
  inside a tensor is ``truncated_tensors``;
* GGUF: parsed from the buffered prefix; metadata larger than the prefix cap is refused
  (``gguf_absurd_count``) -- scan such a file locally;
* pickle: a plain pickle is walked from the prefix; a torch zip is read from its first
  local file header, which must be a stored ``*/data.pkl`` with its sizes (as
  ``torch.save`` writes it); anything else is ``unsupported_model``.
"""

from __future__ import annotations

import hashlib
import io
import struct
from typing import Any

from ..signals.types import HashSignal
from . import gguf_reader, pickle_reader, safetensors_reader
from .errors import ModelFileError
from .fields import TextField
from .hashing import LayoutHasher, combine_digests
from .judge import ModelJudge
from .layout import TensorLayout
from .limits import DEFAULT_LIMITS, MiB, ModelLimits
from .result import ModelScanResult
from .training_metadata import extract

MAX_UPLOAD_PREFIX = 64 * MiB


def _pickle_error(message: str, code: str) -> ModelFileError:
    return ModelFileError(message, code, format="pickle")


class StreamScanner:
    """Feed an upload's bytes in order, then call :meth:`finish` for the result."""

    def __init__(
        self,
        *,
        limits: ModelLimits = DEFAULT_LIMITS,
        hash_tensors: bool = True,
        declared_size: int | None = None,
        prefix_limit: int = MAX_UPLOAD_PREFIX,
    ) -> None:
        self.limits = limits
        self.hash_tensors = hash_tensors
        self.declared_size = declared_size
        self.prefix_limit = prefix_limit
        self.size = 0
        self.format: str | None = None
        self._prefix = bytearray()
        self._parsed = False
        self._next_try = 0
        self._file = hashlib.sha256()
        self._layout: TensorLayout | None = None
        self._hasher: LayoutHasher | None = None
        self._fields: list[TextField] = []
        self._images: int | None = None
        self._summary: dict[str, Any] = {}
        self._notes: list[str] = []
        self._pickle: pickle_reader.PickleScan | None = None

    # ------------------------------------------------------------------ feeding
    def feed(self, chunk: bytes) -> None:
        """The next bytes of the upload. Raises :class:`ModelFileError` as soon as the
        header shows the file is broken or hostile."""
        if not chunk:
            return
        self._file.update(chunk)
        self.size += len(chunk)
        if self._parsed:
            if self._hasher is not None:
                self._hasher.update(chunk)
            return
        self._prefix += chunk
        self._try_parse(final=False)

    def _try_parse(self, final: bool) -> None:
        buf = bytes(self._prefix)
        if self.format is None:
            if len(buf) < 16 and not final:
                return
            from .scan import sniff_format

            self.format = sniff_format(buf[:16])
            if self.format is None:
                raise ModelFileError(
                    "upload is not a safetensors, GGUF, pickle or torch zip model",
                    "unsupported_model",
                )
        ready = {"safetensors": self._safetensors, "gguf": self._gguf, "pickle": self._pickle_}
        if ready[self.format](buf, final):
            self._parsed = True
            if self._layout is not None and self.hash_tensors:
                self._hasher = LayoutHasher(self._layout)
                self._hasher.update(buf)
            self._prefix = bytearray()

    def _over_prefix(self, buf: bytes, what: str, code: str) -> None:
        if len(buf) >= self.prefix_limit:
            raise ModelFileError(
                f"{what} is larger than the {self.prefix_limit}-byte upload prefix; "
                "scan the file locally",
                code,
                format=self.format,
            )

    def _safetensors(self, buf: bytes, final: bool) -> bool:
        if len(buf) < safetensors_reader.PREFIX_BYTES:
            if final:
                safetensors_reader.header_length(buf, None, self.limits)
            return False
        n = safetensors_reader.header_length(buf[:8], self.declared_size, self.limits)
        if len(buf) < 8 + n:
            if final:
                raise ModelFileError(
                    "upload ended inside the header", "header_beyond_file", format=self.format
                )
            return False
        h = safetensors_reader.parse_header(buf[8 : 8 + n], self.declared_size, self.limits)
        self._layout = h.layout
        md = extract(h.metadata, self.limits)
        self._fields += md.fields
        self._images, self._summary, self._notes = md.images, md.summary, md.notes
        self._summary["metadata_keys"] = len(h.metadata)
        return True

    def _gguf(self, buf: bytes, final: bool) -> bool:
        # Until the stream ends, its size is unknown: counts are bounded by the limits and
        # the prefix cap; parsing is retried each time the prefix doubles (linear work).
        if not final and len(buf) < self._next_try:
            return False
        size = len(buf) if final else self.declared_size or 2**62
        try:
            g = gguf_reader.read_header(io.BytesIO(buf), size, self.limits)
        except ModelFileError as e:
            if final or e.code != "gguf_truncated":
                raise
            self._over_prefix(buf, "GGUF metadata", "gguf_absurd_count")
            self._next_try = 2 * len(buf)
            return False
        self._layout = g.layout
        general = {
            k.removeprefix("general."): v for k, v in g.metadata.items() if k.startswith("general.")
        }
        md = extract(general, self.limits)
        self._fields += md.fields
        self._summary = {k: v for k, v in list(general.items())[:20] if isinstance(v, str | int)}
        self._summary["gguf_version"] = g.version
        return True

    def _pickle_(self, buf: bytes, final: bool) -> bool:
        if buf[:4] == pickle_reader.ZIP_MAGIC:
            if len(buf) < 30:
                if final:
                    raise ModelFileError(
                        "upload ends inside a zip header", "bad_zip", format="pickle"
                    )
                return False
            flags, method = struct.unpack_from("<HH", buf, 6)
            csize, _usize, name_len, extra_len = struct.unpack_from("<IIHH", buf, 18)
            start = 30 + name_len + extra_len
            if len(buf) < start:
                return False
            name = buf[30 : 30 + name_len].decode("utf-8", "replace")
            if not name.endswith(".pkl") or method != 0 or flags & 0x08:
                raise _pickle_error(
                    "upload is a zip whose first member is not a stored data.pkl; "
                    "scan the file locally",
                    "unsupported_model",
                )
            if csize > self.limits.max_pickle_bytes:
                raise ModelFileError(
                    f"{name} is {csize} bytes", "pickle_too_large", format="pickle"
                )
            if len(buf) < start + csize:
                if final:
                    raise _pickle_error("upload ends inside data.pkl", "bad_zip")
                return False
            data = buf[start : start + csize]
            self._pickle = pickle_reader.scan_pickle_member(name, data, self.limits)
        else:
            if not final and len(buf) < min(self.prefix_limit, self.limits.max_pickle_bytes):
                return False
            head = buf[: self.limits.max_pickle_bytes]
            size = self.size if final else None
            self._pickle = pickle_reader.scan_pickle_bytes(head, size, self.limits)
        from .scan import pickle_fields

        self._fields += pickle_fields(self._pickle)
        return True

    # ------------------------------------------------------------------ result
    def finish(self, judge: ModelJudge) -> ModelScanResult:
        """Judge and return the result (raises :class:`ModelFileError` for a bad upload)."""
        if self.size == 0:
            raise ModelFileError("empty upload", "empty_file")
        if not self._parsed:
            self._try_parse(final=True)
        if not self._parsed:
            raise ModelFileError("upload ended inside the header", "bad_header", format=self.format)
        digests = self._hasher.result() if self._hasher is not None else ()
        if self._layout is not None and self._layout.data_end > self.size:
            raise ModelFileError(
                f"tensor data ends at byte {self._layout.data_end}; the upload has {self.size}",
                "truncated_tensors",
                format=self.format,
            )
        risk = self._pickle.risk if self._pickle else None
        judgement = judge.judge(self._fields, self._images, risk)
        r = ModelScanResult(None, self.format, self.size, judgement.decision, judgement)
        r.metadata, r.notes, r.pickle = self._summary, self._notes, self._pickle
        r.signals.append(HashSignal("file_sha256", self._file.hexdigest()))
        if self._layout is not None:
            r.tensor_count = len(self._layout.tensors)
            r.tensor_bytes = self._layout.data_bytes
            if self._hasher is not None:
                r.signals.append(HashSignal("tensor_sha256", combine_digests(digests)))
                r.tensors = digests
        return r
