"""What a triage covers: folders, single files and ZIP/TAR archives, read in memory.

:func:`iter_items` walks the sources and yields one :class:`Item` per physical file:
a file on disk (read later by a hashing worker), a member of an archive (its bytes,
read here, streamed: **nothing is ever extracted to disk**), or the archive itself
(``kind="archive"``, yielded after its last member: the done-marker a rerun uses to
skip the whole archive).

Hostile input never stops the walk; each problem becomes a per-file error code:

* ``zip_bomb`` -- a member inflating past the member or archive budget at a ratio
  above :attr:`SourceLimits.max_ratio`; ``file_too_large`` -- over the member budget;
  ``archive_too_large`` -- the archive's members (nesting included) together inflate
  past :attr:`SourceLimits.max_total_bytes`; ``too_many_members``;
* ``archive_too_deep`` -- an archive nested deeper than :attr:`SourceLimits.max_depth`
  (hashed as a file, not opened);
* ``unsafe_member_name`` -- an absolute name, ``..`` component, drive letter or NUL
  (path traversal): the member is still hashed (it is evidence) under a defanged
  display name, and the row carries the flag;
* ``archive_link`` -- symlink / hard link members (never followed);
  ``encrypted_member``; ``corrupt_archive`` (a bad header, CRC, truncation);
* on disk: symlink loops and unreadable paths (``io_error``), symlinked folders
  (``not_a_file``, never followed), missing paths (``not_found``).

Paths: a member's display path is ``<archive>!/<member>``; nested archives chain
(``outer.zip!/inner.tar!/dir/x.jpg``). :func:`read_bytes` reads a member back.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..media.limits import DEFAULT_LIMITS
from ..scan.walker import walk

SEP = "!/"
HEAD = 512
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceLimits:
    max_depth: int = 3  # archives inside archives (the top-level archive is depth 1)
    max_member_bytes: int = 512 * 1024**2  # one member, inflated (held in memory)
    max_total_bytes: int = 16 * 1024**3  # all members of one top-level archive, inflated
    max_members: int = 1_000_000  # per top-level archive, nesting included
    max_ratio: float = 200.0  # inflated/compressed above this on a budget breach: a bomb

    def __post_init__(self) -> None:
        if self.max_member_bytes > DEFAULT_LIMITS.max_file_bytes:
            raise ValueError("max_member_bytes is above the hashing file-size limit")


DEFAULT_SOURCE_LIMITS = SourceLimits()


@dataclass(frozen=True)
class Item:
    """One physical file of the seized material.

    ``data``: a member's bytes (None for files on disk, which workers read themselves,
    and for members that could not be read). ``error``: not hashed, with (code,
    message). ``flag``: hashed, but flagged (code, message) -- unsafe names, archives
    too deep to open.
    """

    kind: str  # file | member | archive
    path: str
    source_path: str
    member_path: str | None
    size: int
    mtime_ns: int
    data: bytes | None = None
    error: tuple[str, str] | None = None
    flag: tuple[str, str] | None = None


def archive_kind(head: bytes) -> str | None:
    """``zip``, ``tar``, ``tar?`` (compressed stream that may hold a tar) or None."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return "tar?"
    return None


def _safe_name(name: str) -> tuple[str, str | None]:
    """(display name, problem or None). Display names never climb or start at a root."""
    raw = name
    problem = None
    if "\x00" in name:
        problem = "NUL in member name"
        name = name.replace("\x00", "%00")
    name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        problem = problem or "absolute member name"
    parts = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            problem = problem or "member name climbs out of the archive (..)"
            part = "%2E%2E"
        if len(part) > 1 and part[1] == ":" and part[0].isalpha():
            part = part[0] + "%3A" + part[2:]
        parts.append(part)
    display = "/".join(parts) or "%EMPTY%"
    if problem:
        return display, f"{problem}: {raw[:200]!r}"
    return display, None


class _Budget:
    """Inflated bytes and members left for one top-level archive (nesting included)."""

    def __init__(self, limits: SourceLimits) -> None:
        self.limits = limits
        self.bytes_left = limits.max_total_bytes
        self.members_left = limits.max_members


class _Over(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _read_capped(fh: IO[bytes], compressed: int, budget: _Budget) -> bytes:
    """Read a member whole, within the member and archive budgets."""
    lim = budget.limits
    if budget.bytes_left <= 0:
        raise _Over(
            "archive_too_large", f"the archive's members inflate past {lim.max_total_bytes} bytes"
        )
    cap = min(lim.max_member_bytes, budget.bytes_left)
    buf = bytearray()
    while True:
        chunk = fh.read(min(_CHUNK, cap + 1 - len(buf)))
        if not chunk:
            break
        buf += chunk
        if len(buf) > cap:
            ratio = len(buf) / max(1, compressed)
            budget.bytes_left = max(0, budget.bytes_left - len(buf))
            if compressed and ratio > lim.max_ratio:
                raise _Over(
                    "zip_bomb",
                    f"member inflates past {cap} bytes at a ratio over {ratio:.0f}:1",
                )
            if cap < lim.max_member_bytes:
                raise _Over(
                    "archive_too_large",
                    f"the archive's members inflate past {lim.max_total_bytes} bytes",
                )
            raise _Over("file_too_large", f"member is over {lim.max_member_bytes} bytes")
    budget.bytes_left -= len(buf)
    return bytes(buf)


def _member_items(
    source_path: str,
    prefix: str,
    name: str,
    data: bytes,
    mtime_ns: int,
    depth: int,
    budget: _Budget,
    flag: tuple[str, str] | None,
) -> Iterator[Item]:
    """One member read whole: a nested archive is opened, anything else yielded."""
    member_path = prefix + name
    path = source_path + SEP + member_path
    kind = archive_kind(data[:HEAD])
    if kind is not None and flag is None:
        if depth >= budget.limits.max_depth:
            flag = (
                "archive_too_deep",
                f"archive nested deeper than {budget.limits.max_depth} levels: hashed, not opened",
            )
        else:
            err = yield from _archive_items(
                source_path, member_path + SEP, io.BytesIO(data), kind, mtime_ns, depth + 1, budget
            )
            if err is None:
                return
            if err is not _NOT_ARCHIVE:
                yield _err(source_path, member_path, len(data), mtime_ns, *err)
                return
    yield Item("member", path, source_path, member_path, len(data), mtime_ns, data, None, flag)


def _err(source_path: str, member_path: str, size: int, mtime_ns: int, code: str, msg: str) -> Item:
    return Item(
        "member",
        source_path + SEP + member_path,
        source_path,
        member_path,
        size,
        mtime_ns,
        None,
        (code, msg),
    )


def _zip_items(
    source_path: str,
    prefix: str,
    fh: IO[bytes],
    mtime_ns: int,
    depth: int,
    budget: _Budget,
) -> Iterator[Item]:
    with zipfile.ZipFile(fh) as zf:  # BadZipFile: the caller reports the archive
        yield from _zip_members(source_path, prefix, zf, mtime_ns, depth, budget)


def _zip_members(
    source_path: str,
    prefix: str,
    zf: zipfile.ZipFile,
    mtime_ns: int,
    depth: int,
    budget: _Budget,
) -> Iterator[Item]:
    for info in zf.infolist():
        if info.is_dir():
            continue
        display, problem = _safe_name(info.filename)
        flag = ("unsafe_member_name", problem) if problem else None
        mp = prefix + display
        if budget.members_left <= 0:
            yield _err(source_path, mp, info.file_size, mtime_ns, "too_many_members", "skipped")
            continue
        budget.members_left -= 1
        mode = (info.external_attr >> 16) & 0o170000
        if mode == stat.S_IFLNK:
            yield _err(source_path, mp, info.file_size, mtime_ns, "archive_link", "symlink member")
            continue
        if info.flag_bits & 0x1:
            yield _err(source_path, mp, info.file_size, mtime_ns, "encrypted_member", "encrypted")
            continue
        if info.file_size > budget.limits.max_member_bytes:
            ratio = info.file_size / max(1, info.compress_size)
            code = "zip_bomb" if ratio > budget.limits.max_ratio else "file_too_large"
            msg = f"member declares {info.file_size} bytes (ratio {ratio:.0f}:1), not read"
            yield _err(source_path, mp, info.file_size, mtime_ns, code, msg)
            continue
        try:
            with zf.open(info) as mf:
                data = _read_capped(mf, info.compress_size, budget)
        except _Over as e:
            yield _err(source_path, mp, info.file_size, mtime_ns, e.code, e.message)
            continue
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as e:
            msg = f"cannot read member: {type(e).__name__}: {e}"[:300]
            yield _err(source_path, mp, info.file_size, mtime_ns, "corrupt_archive", msg)
            continue
        except (NotImplementedError, RuntimeError) as e:  # unsupported compression / password
            msg = f"cannot read member: {e}"[:300]
            yield _err(source_path, mp, info.file_size, mtime_ns, "unsupported_archive", msg)
            continue
        yield from _member_items(source_path, prefix, display, data, mtime_ns, depth, budget, flag)


def _tar_items(
    source_path: str,
    prefix: str,
    fh: IO[bytes],
    mtime_ns: int,
    depth: int,
    budget: _Budget,
) -> Iterator[Item]:
    # Stream mode: members in order, nothing seeks back, compressed streams work.
    with tarfile.open(fileobj=fh, mode="r|*") as tf:  # ReadError: the caller reports it
        for m in tf:
            if m.isdir():
                continue
            display, problem = _safe_name(m.name)
            flag = ("unsafe_member_name", problem) if problem else None
            mp = prefix + display
            if budget.members_left <= 0:
                yield _err(source_path, mp, m.size, mtime_ns, "too_many_members", "skipped")
                continue
            budget.members_left -= 1
            if m.issym() or m.islnk():
                msg = f"link member to {m.linkname[:200]!r} (not followed)"
                yield _err(source_path, mp, 0, mtime_ns, "archive_link", msg)
                continue
            if not m.isfile():
                yield _err(source_path, mp, 0, mtime_ns, "not_a_file", "device, fifo or other")
                continue
            if m.size > budget.limits.max_member_bytes:
                msg = f"member declares {m.size} bytes, not read"
                yield _err(source_path, mp, m.size, mtime_ns, "file_too_large", msg)
                continue
            ef = tf.extractfile(m)
            if ef is None:
                yield _err(source_path, mp, m.size, mtime_ns, "corrupt_archive", "no data")
                continue
            try:
                data = _read_capped(ef, 0, budget)
            except _Over as e:
                yield _err(source_path, mp, m.size, mtime_ns, e.code, e.message)
                continue
            except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
                msg = f"archive ends inside this member: {type(e).__name__}: {e}"[:300]
                yield _err(source_path, mp, m.size, mtime_ns, "corrupt_archive", msg)
                return
            if len(data) != m.size:
                msg = f"member truncated ({len(data)} of {m.size} bytes)"
                yield _err(source_path, mp, m.size, mtime_ns, "corrupt_archive", msg)
                return
            yield from _member_items(
                source_path, prefix, display, data, mtime_ns, depth, budget, flag
            )


_NOT_ARCHIVE = ("", "")


def _archive_items(
    source_path: str,
    prefix: str,
    fh: IO[bytes],
    kind: str,
    mtime_ns: int,
    depth: int,
    budget: _Budget,
) -> Iterator[Item]:
    """Members of one archive, in order. Returns None when all went well, the
    ``(code, message)`` of the error that ended it (a corrupt archive: the members
    read so far are kept), or ``_NOT_ARCHIVE`` when ``kind`` was a guess that failed
    before any member (a plain ``.gz`` holding no tar: the caller hashes the bytes)."""
    gen = _zip_items if kind == "zip" else _tar_items
    n = 0
    try:
        for item in gen(source_path, prefix, fh, mtime_ns, depth, budget):
            n += 1
            yield item
    except (tarfile.ReadError, tarfile.CompressionError, EOFError) as e:
        if kind == "tar?" and n == 0:
            return _NOT_ARCHIVE
        return ("corrupt_archive", f"corrupt archive: {type(e).__name__}: {e}"[:300])
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, OSError, ValueError) as e:
        return ("corrupt_archive", f"corrupt archive: {type(e).__name__}: {e}"[:300])
    except RecursionError:
        return ("corrupt_archive", "corrupt archive: nesting too deep")
    return None


def iter_items(
    paths: Iterable[str | os.PathLike[str]],
    limits: SourceLimits = DEFAULT_SOURCE_LIMITS,
    *,
    skip_archive: Callable[[str, int, int], bool] | None = None,
    on_disk_file: Callable[[str], None] | None = None,
) -> Iterator[Item]:
    """Every physical file under ``paths`` (see the module docstring).

    ``skip_archive(path, size, mtime_ns)``: True when the archive was fully done by an
    earlier run with the same size and mtime (its members are then not read again).
    ``on_disk_file(path)``: called once per file on disk, after its items (progress).
    """
    for ref in walk(paths):
        if ref.error:
            yield Item("file", ref.path, ref.path, None, 0, 0, None, ref.error)
            if on_disk_file:
                on_disk_file(ref.path)
            continue
        yield from _disk_items(ref.path, ref.size, ref.mtime_ns, limits, skip_archive)
        if on_disk_file:
            on_disk_file(ref.path)


def _disk_items(
    path: str,
    size: int,
    mtime_ns: int,
    limits: SourceLimits,
    skip_archive: Callable[[str, int, int], bool] | None,
) -> Iterator[Item]:
    plain = Item("file", path, path, None, size, mtime_ns)
    try:
        with open(path, "rb") as fh:
            kind = archive_kind(fh.read(HEAD)) if size else None
            if kind is None:
                yield plain
                return
            if skip_archive and skip_archive(path, size, mtime_ns):
                return
            fh.seek(0)
            err = yield from _archive_items(path, "", fh, kind, mtime_ns, 1, _Budget(limits))
    except OSError as e:
        yield Item("file", path, path, None, size, mtime_ns, None, ("io_error", _oserr(e)))
        return
    if err is _NOT_ARCHIVE:
        yield plain
    else:
        yield Item("archive", path, path, None, size, mtime_ns, None, err)


def _oserr(e: OSError) -> str:
    return e.strerror or str(e)


def _zip_direct(fh: IO[bytes], chain: str, budget: _Budget) -> bytes | None:
    """A zip member (through nested zips) by name, without reading the others."""
    name, _, rest = chain.partition(SEP)
    with zipfile.ZipFile(fh) as zf:
        try:
            info = zf.getinfo(name)
        except KeyError:
            return None
        if info.file_size > budget.limits.max_member_bytes or info.flag_bits & 0x1:
            return None
        with zf.open(info) as mf:
            data = _read_capped(mf, info.compress_size, budget)
    if not rest:
        return data
    if archive_kind(data[:HEAD]) != "zip":
        return None
    return _zip_direct(io.BytesIO(data), rest, budget)


def read_bytes(
    source_path: str,
    member_path: str | None,
    limits: SourceLimits = DEFAULT_SOURCE_LIMITS,
) -> bytes:
    """The bytes of one file (``member_path`` None) or archive member, read in memory.

    Raises ``FileNotFoundError`` (``KeyError`` for a member) when it is not there.
    """
    if member_path is None:
        p = Path(source_path)
        if p.stat().st_size > DEFAULT_LIMITS.max_file_bytes:
            raise ValueError("file over the size limit")
        return p.read_bytes()
    with open(source_path, "rb") as fh:
        if archive_kind(fh.read(HEAD)) == "zip":
            fh.seek(0)
            try:
                got = _zip_direct(fh, member_path, _Budget(limits))
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, _Over):
                got = None
            if got is not None:
                return got
    st = os.stat(source_path)  # tar streams, defanged names: walk the archive again
    for item in _disk_items(source_path, st.st_size, st.st_mtime_ns, limits, None):
        if item.member_path == member_path:
            if item.data is None:
                raise KeyError(f"member cannot be read: {item.error}")
            return item.data
    raise KeyError(f"no member {member_path!r} in {source_path}")
