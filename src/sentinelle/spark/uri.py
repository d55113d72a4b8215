"""Reading media named by a path or URI, on an executor.

* a plain path, or ``file:`` URI (``file:/x``, ``file:///x``; what Spark's
  ``binaryFile`` source prints): read from the local file system, with the
  scanner's own file reading (size check before reading, large videos streamed);
* any other scheme (``s3://``, ``s3a://``, ``gs://``, ``hdfs://``, ``abfs://``...):
  opened with ``pyarrow.fs`` (``s3a``/``s3n`` are read as ``s3``), size checked
  against the limit before the bytes are read.

Failures are :class:`~sentinelle.errors.MediaError` (``io_error``, ``file_too_large``,
``unsupported_uri``), never a failed task.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from ..errors import MediaError

__all__ = ["local_path", "read_uri"]

_ALIASES = {"s3a": "s3", "s3n": "s3"}


def local_path(uri: str) -> str | None:
    """The local file path ``uri`` names, or None when it names a remote object."""
    if "://" not in uri and not uri.startswith("file:"):
        return uri
    parts = urlsplit(uri)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return None
        return unquote(parts.path)
    if len(parts.scheme) == 1:  # a Windows drive letter, not a scheme
        return uri
    return None


def read_uri(uri: str, max_bytes: int) -> bytes:
    """The bytes of a remote object (``max_bytes`` enforced before reading)."""
    import pyarrow.fs as pafs

    parts = urlsplit(uri)
    scheme = _ALIASES.get(parts.scheme, parts.scheme)
    target = uri if scheme == parts.scheme else f"{scheme}://{uri.split('://', 1)[1]}"
    try:
        fs, path = pafs.FileSystem.from_uri(target)
    except pa_errors() as e:
        raise MediaError(f"cannot open {parts.scheme}:// URIs: {e}", "unsupported_uri") from e
    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise MediaError(f"no such object: {uri}", "io_error")
        if info.type != pafs.FileType.File:
            raise MediaError(f"not a file: {uri}", "io_error")
        if info.size is not None and info.size > max_bytes:
            raise MediaError(
                f"object is {info.size} bytes, over the limit of {max_bytes}", "file_too_large"
            )
        with fs.open_input_stream(path) as fh:
            data = fh.read(max_bytes + 1)
    except MediaError:
        raise
    except (OSError, ValueError) as e:
        raise MediaError(f"cannot read {uri}: {e}", "io_error") from e
    if len(data) > max_bytes:
        raise MediaError("object grew past the size limit while reading", "file_too_large")
    return bytes(data)


def pa_errors() -> tuple[type[BaseException], ...]:
    import pyarrow as pa

    return (pa.ArrowException, ValueError, OSError)
