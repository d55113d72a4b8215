"""Static reader of pickle checkpoints (``.ckpt``, ``.pt``, ``.pth``, ``.bin``, ``.pkl``).

Nothing is ever unpickled: the opcode stream is walked with :func:`pickletools.genops`
(which decodes opcodes and their arguments only), under a byte cap and an opcode cap.
What it reports:

* every global the stream imports (``GLOBAL``, ``INST``, ``STACK_GLOBAL``) and whether a
  call opcode (``REDUCE``, ``NEWOBJ``, ``OBJ``, ``INST``, ``BUILD``...) could invoke it;
  imports outside the list of what torch/numpy checkpoints need are risks, known
  code-execution callables (``os.system``, ``builtins.exec``, ``subprocess``...) are
  ``dangerous``;
* the strings of the stream (names, textual-inversion tokens, keys like ``sd_checkpoint_name``)
  for the judge.

Torch zip checkpoints (``torch.save`` since 1.6) are read through :mod:`zipfile` after a
check of the central directory's size; each ``*/data.pkl`` member is read, capped, and
walked. Legacy torch files are several pickles in a row followed by raw storage bytes:
pickles are walked until the raw data begins.
"""

from __future__ import annotations

import io
import pickletools
import struct
import zipfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .errors import ModelFileError
from .limits import DEFAULT_LIMITS, ModelLimits

FORMAT = "pickle"
ZIP_MAGIC = b"PK\x03\x04"
#: Globals a plain torch / numpy / lightning checkpoint needs (module, name).
SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [("collections", "OrderedDict"), ("collections", "defaultdict"), ("builtins", "set"),
     ("builtins", "frozenset"), ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"),
     ("builtins", "slice"), ("builtins", "complex"), ("builtins", "bytearray"),
     ("__builtin__", "set"), ("_codecs", "encode"),
     ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_tensor_v2"),
     ("torch._utils", "_rebuild_tensor_v3"), ("torch._utils", "_rebuild_parameter"),
     ("torch._utils", "_rebuild_parameter_with_state"), ("torch._utils", "_rebuild_qtensor"),
     ("torch._utils", "_rebuild_sparse_tensor"),
     ("torch._utils", "_rebuild_meta_tensor_no_storage"),
     ("torch._tensor", "_rebuild_from_type_v2"), ("torch", "Size"), ("torch", "device"),
     ("torch", "dtype"), ("torch", "float32"), ("torch", "float16"), ("torch", "bfloat16"),
     ("torch", "int64"), ("torch", "int32"), ("torch", "uint8"), ("torch", "bool"),
     ("torch", "Tensor"), ("torch.nn.parameter", "Parameter"),
     ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
     ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
     ("numpy", "ndarray"), ("numpy", "dtype")]
)  # fmt: skip
SAFE_MODULE_SUFFIXES = ("Storage",)  # torch.FloatStorage, torch.HalfStorage, ...
#: Modules and callables that run code, touch the system or load more pickles.
DANGEROUS_MODULES = frozenset(
    ["os", "posix", "nt", "subprocess", "sys", "socket", "shutil", "runpy", "pty",
     "importlib", "ctypes", "webbrowser", "multiprocessing", "code", "commands",
     "pickle", "_pickle", "dill", "marshal", "types", "asyncio", "requests", "urllib",
     "http", "ftplib", "telnetlib", "smtplib", "platform", "signal", "tempfile", "pathlib",
     "operator", "functools", "torch.hub", "torch.serialization", "timeit", "pdb", "bdb"]
)  # fmt: skip
DANGEROUS_BUILTINS = frozenset(
    ["eval", "exec", "execfile", "compile", "open", "getattr", "setattr", "delattr",
     "__import__", "globals", "locals", "vars", "input", "breakpoint", "apply", "memoryview"]
)  # fmt: skip
CALL_OPS = frozenset(["REDUCE", "NEWOBJ", "NEWOBJ_EX", "OBJ", "INST", "BUILD"])
STRING_OPS = frozenset(
    ["STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
     "BINUNICODE8"]
)  # fmt: skip
PUT_OPS = frozenset(["PUT", "BINPUT", "LONG_BINPUT"])
GET_OPS = frozenset(["GET", "BINGET", "LONG_BINGET"])
MAX_KEPT_STRING = 1_000


@dataclass
class PickleScan:
    """What the opcodes of one or more pickle streams show."""

    streams: int = 0
    opcodes: int = 0
    globals: dict[str, str] = field(default_factory=dict)  # "module.name" -> safe/unknown/dangerous
    calls: int = 0
    strings: list[str] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (string key, string value)
    members: list[str] = field(default_factory=list)  # zip members read

    @property
    def risk(self) -> str:
        """``dangerous`` / ``unknown`` / ``none``: the worst global imported."""
        kinds = set(self.globals.values())
        if "dangerous" in kinds:
            return "dangerous"
        if "unknown" in kinds or "dynamic" in kinds:
            return "unknown"
        return "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            "streams": self.streams,
            "opcodes": self.opcodes,
            "calls": self.calls,
            "risk": self.risk,
            "globals": dict(sorted(self.globals.items())),
            "members": list(self.members),
        }


def classify_global(module: str, name: str) -> str:
    """``safe`` / ``dangerous`` / ``unknown`` for an imported ``module.name``."""
    if (module, name) in SAFE_GLOBALS:
        return "safe"
    if module == "torch" and name.endswith(SAFE_MODULE_SUFFIXES):
        return "safe"
    root = module.split(".", 1)[0]
    if module in DANGEROUS_MODULES or root in DANGEROUS_MODULES:
        return "dangerous"
    if root in ("builtins", "__builtin__") and name in DANGEROUS_BUILTINS:
        return "dangerous"
    return "unknown"


def _fail(message: str, code: str) -> ModelFileError:
    return ModelFileError(message, code, format=FORMAT)


class _Walker:
    """Walks opcode streams into one :class:`PickleScan`, within the limits."""

    def __init__(self, limits: ModelLimits) -> None:
        self.limits = limits
        self.scan = PickleScan()
        self._seen_strings: set[str] = set()

    def _keep(self, s: str) -> None:
        if (
            len(s) <= MAX_KEPT_STRING
            and s not in self._seen_strings
            and len(self.scan.strings) < self.limits.max_pickle_strings
        ):
            self._seen_strings.add(s)
            self.scan.strings.append(s)

    def _global(self, module: str, name: str) -> None:
        key = f"{module}.{name}"
        if key not in self.scan.globals and len(self.scan.globals) < 10_000:
            self.scan.globals[key] = classify_global(module, name)

    def walk(self, stream: BinaryIO) -> None:
        """One pickle stream (to its STOP opcode)."""
        recent: deque[str | None] = deque(maxlen=2)  # last two values pushed, if strings
        memo: dict[Any, str] = {}
        memo_n = 0
        prev_string: str | None = None
        self.scan.streams += 1
        try:
            for op, arg, _pos in pickletools.genops(stream):
                self.scan.opcodes += 1
                if self.scan.opcodes > self.limits.max_pickle_opcodes:
                    raise _fail(
                        f"more than {self.limits.max_pickle_opcodes} opcodes", "pickle_too_many_ops"
                    )
                name = op.name
                if name in STRING_OPS:
                    s = arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
                    recent.append(s)
                    self._keep(s)
                    if prev_string is not None:
                        self.scan.pairs.append((prev_string, s))
                    prev_string = s
                    continue
                if name in PUT_OPS or name == "MEMOIZE":
                    key = memo_n if name == "MEMOIZE" else arg
                    memo_n += 1
                    if recent and recent[-1] is not None and len(memo) < 1_000_000:
                        memo[key] = recent[-1]
                    continue
                if name in GET_OPS:
                    recent.append(memo.get(arg))
                    prev_string = memo.get(arg)
                    continue
                prev_string = None
                if name in ("GLOBAL", "INST"):
                    module, _, attr = str(arg).partition(" ")
                    self._global(module, attr)
                elif name == "STACK_GLOBAL":
                    if len(recent) == 2 and None not in recent:
                        self._global(str(recent[0]), str(recent[1]))
                    else:
                        self.scan.globals.setdefault("<dynamic>", "dynamic")
                if name in CALL_OPS:
                    self.scan.calls += 1
                recent.append(None)
                if name == "STOP":
                    break
        except ModelFileError:
            raise
        except (ValueError, EOFError, struct.error, UnicodeDecodeError, OverflowError) as e:
            raise _fail(f"malformed pickle stream: {e}", "bad_pickle") from None
        for k, v in self.scan.pairs[:]:
            if len(k) > 100 or len(v) > MAX_KEPT_STRING:
                self.scan.pairs.remove((k, v))


def _read_capped(fh: BinaryIO, limit: int, what: str) -> bytes:
    data = fh.read(limit + 1)
    if len(data) > limit:
        raise _fail(f"{what} is over the limit of {limit} bytes", "pickle_too_large")
    return data


def _check_zip_directory(fh: BinaryIO, size: int, limits: ModelLimits) -> None:
    """Refuse a zip whose central directory is huge before :mod:`zipfile` loads it."""
    tail_len = min(size, 65_557)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        raise _fail("zip end-of-directory record not found", "bad_zip")
    cd_size = struct.unpack_from("<I", tail, at + 12)[0]
    if cd_size == 0xFFFFFFFF:  # zip64: the locator sits just before the record
        loc = tail.rfind(b"PK\x06\x07", 0, at)
        if loc < 0:
            raise _fail("zip64 locator not found", "bad_zip")
        rec_at = struct.unpack_from("<Q", tail, loc + 8)[0]
        if rec_at + 56 > size:
            raise _fail("zip64 record outside the file", "bad_zip")
        fh.seek(rec_at)
        rec = fh.read(56)
        if rec[:4] != b"PK\x06\x06":
            raise _fail("zip64 end-of-directory record not found", "bad_zip")
        cd_size = struct.unpack_from("<Q", rec, 40)[0]
    if cd_size > limits.max_zip_directory_bytes or cd_size > size:
        raise _fail(f"zip directory of {cd_size} bytes is over the limit", "bad_zip")
    fh.seek(0)


def scan_pickle_file(path: str | Path, limits: ModelLimits = DEFAULT_LIMITS) -> PickleScan:
    """Statically scan a pickle or torch zip checkpoint at ``path``."""
    w = _Walker(limits)
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, io.SEEK_END)
            fh.seek(0)
            if fh.read(4) == ZIP_MAGIC:
                _check_zip_directory(fh, size, limits)
                _scan_zip(fh, w, limits)
            else:
                fh.seek(0)
                _scan_plain(fh, size, w, limits)
    except OSError as e:
        raise ModelFileError(f"cannot read {path}: {e.strerror}", "io_error", format=FORMAT) from e
    return w.scan


def _scan_zip(fh: BinaryIO, w: _Walker, limits: ModelLimits) -> None:
    try:
        with zipfile.ZipFile(fh) as z:
            pkl = [i for i in z.infolist() if i.filename.endswith(".pkl")]
            if not pkl:
                raise _fail("zip checkpoint has no .pkl member", "bad_pickle")
            for info in pkl[:16]:
                if info.file_size > limits.max_pickle_bytes:
                    raise _fail(
                        f"{info.filename} is {info.file_size} bytes; the limit is "
                        f"{limits.max_pickle_bytes}",
                        "pickle_too_large",
                    )
                with z.open(info) as member:
                    data = _read_capped(member, limits.max_pickle_bytes, info.filename)
                w.scan.members.append(info.filename)
                w.walk(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise _fail(f"bad zip checkpoint: {e}", "bad_zip") from None
    except (EOFError, NotImplementedError, RuntimeError) as e:  # truncated / encrypted members
        raise _fail(f"unreadable zip member: {e}", "bad_zip") from None


def _scan_plain(fh: BinaryIO, size: int, w: _Walker, limits: ModelLimits) -> None:
    _walk_plain(fh.read(min(size, limits.max_pickle_bytes)), size, w, limits)


def _walk_plain(data: bytes, size: int | None, w: _Walker, limits: ModelLimits) -> None:
    """Consecutive pickles (legacy torch: magic, protocol, sys info, data, storage keys).

    ``data`` is the file's first bytes (at most ``max_pickle_bytes``), ``size`` the whole
    file's (None: not known yet, more follows)."""
    stream = io.BytesIO(data)
    cut = size is None or len(data) < size
    for n in range(8):
        at = stream.tell()
        if at >= len(data) or data[at] != 0x80:  # every pickle we read starts with PROTO
            if n == 0:
                raise _fail("not a pickle stream", "bad_pickle")
            return
        try:
            w.walk(stream)
        except ModelFileError as e:
            if e.code != "bad_pickle":
                raise
            if n == 0 and cut:
                raise _fail(
                    f"first pickle stream does not end within {limits.max_pickle_bytes} bytes",
                    "pickle_too_large",
                ) from None
            if n == 0:
                raise
            return  # past the first stream: the raw storage bytes have begun
        if not cut and stream.tell() >= len(data):
            return


def scan_pickle_bytes(
    data: bytes, size: int | None = None, limits: ModelLimits = DEFAULT_LIMITS
) -> PickleScan:
    """Scan a plain (non-zip) pickle file from its first bytes (see :func:`_walk_plain`)."""
    w = _Walker(limits)
    _walk_plain(data, size, w, limits)
    return w.scan


def scan_pickle_member(name: str, data: bytes, limits: ModelLimits = DEFAULT_LIMITS) -> PickleScan:
    """Scan one zip member's pickle bytes (``archive/data.pkl``)."""
    w = _Walker(limits)
    w.scan.members.append(name)
    w.walk(io.BytesIO(data))
    return w.scan
