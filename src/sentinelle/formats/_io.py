"""Bounded, line-numbered reading of import files.

Import files are hostile input: they may be huge, binary, or badly encoded.
:func:`iter_lines` yields ``(line_number, text)`` pairs from a binary or text
stream, enforcing :class:`InputLimits` and recording undecodable lines instead of
crashing, so a parser can report *every* bad line at once.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from ..errors import BankImportError, LineError


@dataclass(frozen=True)
class InputLimits:
    """Maximum size of one import. Beyond these the import is rejected."""

    max_bytes: int = 2 * 1024**3  # 2 GiB
    max_lines: int = 50_000_000
    max_line_bytes: int = 1024 * 1024  # one line / CSV field


DEFAULT_INPUT_LIMITS = InputLimits()


def too_large(limits: InputLimits, what: str) -> BankImportError:
    return BankImportError(
        f"input too large: more than {what} "
        f"(limits: {limits.max_bytes} bytes, {limits.max_lines} lines)"
    )


def read_all_bytes(stream: IO[Any], limits: InputLimits) -> bytes:
    """Read the whole stream as bytes (text streams are UTF-8 encoded), bounded."""
    data = stream.read(limits.max_bytes + 1)
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogatepass")
    if len(data) > limits.max_bytes:
        raise too_large(limits, f"{limits.max_bytes} bytes")
    return data


def _guarded_text(stream: IO[str]) -> Iterator[str]:
    """Iterate a text stream, turning a decoding failure into an import error."""
    n = 0
    try:
        for line in stream:
            n += 1
            yield line
    except UnicodeDecodeError as e:
        raise BankImportError(
            "input rejected", [LineError(n + 1, f"cannot decode text: {e.reason}")]
        ) from None


def iter_lines(
    stream: IO[Any], limits: InputLimits, bad: list[LineError]
) -> Iterator[tuple[int, str]]:
    """Yield ``(line_no, line)`` (1-based, without the line terminator).

    Lines that are not valid UTF-8, contain NUL bytes, or exceed
    ``max_line_bytes`` are appended to ``bad`` and not yielded. A leading UTF-8
    BOM is dropped. Raises :class:`BankImportError` once the stream exceeds
    ``max_bytes`` or ``max_lines``.
    """
    if isinstance(stream, io.TextIOBase):
        raw_iter: Iterator[Any] = _guarded_text(stream)
    else:
        raw_iter = iter(lambda: stream.readline(limits.max_line_bytes + 2), b"")
    total = 0
    line_no = 0
    for raw in raw_iter:
        line_no += 1
        if line_no > limits.max_lines:
            raise too_large(limits, f"{limits.max_lines} lines")
        data = raw.encode("utf-8", errors="surrogatepass") if isinstance(raw, str) else raw
        total += len(data)
        if total > limits.max_bytes:
            raise too_large(limits, f"{limits.max_bytes} bytes")
        if len(data) > limits.max_line_bytes + 1 and not data.endswith(b"\n"):
            # over-long line: record it and skip the rest of it
            bad.append(LineError(line_no, f"line longer than {limits.max_line_bytes} bytes"))
            for more in raw_iter:
                more_b = more.encode() if isinstance(more, str) else more
                total += len(more_b)
                if total > limits.max_bytes:
                    raise too_large(limits, f"{limits.max_bytes} bytes")
                if more_b.endswith(b"\n"):
                    break
            continue
        if line_no == 1 and data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        if b"\x00" in data:
            bad.append(LineError(line_no, "NUL byte in line (binary file?)"))
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            bad.append(LineError(line_no, f"not valid UTF-8 (byte offset {e.start})"))
            continue
        yield line_no, text.rstrip("\r\n")


def reject_if(bad: list[LineError], what: str) -> None:
    """Raise a :class:`BankImportError` listing ``bad`` (sorted) if any."""
    if bad:
        bad.sort(key=lambda e: e.line)
        raise BankImportError(f"{what}: {len(bad)} bad line(s), nothing imported", bad)


@contextmanager
def text_out(stream: IO[Any]) -> Iterator[IO[str]]:
    """Yield a text view of ``stream`` (UTF-8); binary streams are wrapped and
    detached afterwards so the caller's stream stays open."""
    if isinstance(stream, io.TextIOBase):
        yield stream
        return
    wrapper = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    try:
        yield wrapper
    finally:
        wrapper.flush()
        wrapper.detach()


#: A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str | None) -> str:
    """A CSV cell a spreadsheet will not run: a leading formula character is quoted with ``'``."""
    if not text:
        return ""
    return "'" + text if text.startswith(FORMULA_START) else text


def spreadsheet_unquote(text: str) -> str:
    """The inverse of :func:`spreadsheet_safe`, for cells read back."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text
