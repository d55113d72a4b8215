"""Enumerate the files a scan covers."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileRef:
    """A file to scan, or a path that could not be listed (``error`` set)."""

    path: str
    size: int = 0
    mtime_ns: int = 0
    error: tuple[str, str] | None = None  # (code, message)


def walk(paths: Iterable[str | os.PathLike[str]]) -> Iterator[FileRef]:
    """Yield every regular file under ``paths`` (recursively, sorted, no symlinked dirs).

    Paths that do not exist, cannot be read, or are not regular files are yielded with
    an ``error`` instead of being skipped silently.
    """
    for p in paths:
        root = Path(p)
        if root.is_dir() and not root.is_symlink():
            yield from _walk_dir(root)
        else:
            yield _stat(root)


def _walk_dir(root: Path) -> Iterator[FileRef]:
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append):
        dirnames.sort()
        for name in sorted(filenames):
            yield _stat(Path(dirpath) / name)
        while errors:
            err = errors.pop()
            yield FileRef(str(err.filename or root), error=("io_error", _oserror(err)))


def _stat(path: Path) -> FileRef:
    try:
        st = path.stat()  # follows a file symlink; a broken link raises
    except OSError as e:
        code = "not_found" if isinstance(e, FileNotFoundError) else "io_error"
        return FileRef(str(path), error=(code, _oserror(e)))
    if path.is_dir():
        return FileRef(str(path), error=("not_a_file", "symlink to a directory (not followed)"))
    if not path.is_file():
        return FileRef(str(path), error=("not_a_file", "not a regular file"))
    return FileRef(str(path), size=st.st_size, mtime_ns=st.st_mtime_ns)


def _oserror(e: OSError) -> str:
    return e.strerror or str(e)
