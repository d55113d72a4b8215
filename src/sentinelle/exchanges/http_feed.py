"""A plain HTTP(S) hash-list feed: any import format Sentinelle reads, fetched conditionally.

The feed is a whole file (``csv``, ``vics``, ``pdq-list``, ``md5-list``,
``threatexchange``: see :mod:`sentinelle.formats`) at one URL, republished by
its owner from time to time. Each fetch sends ``If-None-Match`` (the last
``ETag``) and ``If-Modified-Since`` (the last ``Last-Modified``); ``304 Not
Modified`` costs nothing. A new file is streamed to a temporary file (bounded by
``max_bytes``), then parsed **while it is applied**, ``CHUNK_LINES`` lines at a
time by the format's own parser, inside one database transaction, as a
*snapshot*: hashes no longer in the file are deleted (and tombstoned), which is
what HMA's file and full-dump exchanges never do (#1668). Memory stays flat for
any file size (VICS JSON, one document, is the exception: parsed whole). A file
with a bad line anywhere is quarantined and the transaction rolls back: nothing
of it is applied.

Credentials are optional: ``user:password`` is sent as HTTP Basic, anything else
as ``Authorization: Bearer <secret>``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, ClassVar

from ..errors import BankImportError, LineError
from ..formats import FORMATS, get_format
from ..formats._io import InputLimits
from .api import (
    ExchangeAPI,
    ExchangeConfig,
    ExchangeError,
    ExchangeRecord,
    FetchPage,
    MalformedPage,
    Signal,
)
from .transport import safe_url

DEFAULT_MAX_BYTES = 512 * 1024 * 1024


@dataclass
class HttpFeedConfig(ExchangeConfig):
    format: str = "pdq-list"
    category: str = ""
    owner: str = ""
    max_bytes: int = DEFAULT_MAX_BYTES


class HttpFeedExchange(ExchangeAPI):
    type_name: ClassVar[str] = "http_feed"
    description: ClassVar[str] = "a hash-list file over HTTP(S), with ETag / If-Modified-Since"
    config_cls: ClassVar[type[ExchangeConfig]] = HttpFeedConfig
    credential_format: ClassVar[str] = "user:password, or a bearer token"
    config: HttpFeedConfig

    def __init__(self, config: ExchangeConfig, credentials: Any, http: Any) -> None:
        super().__init__(config, credentials, http)
        if not self.config.base_url:
            raise ExchangeError("http_feed needs base_url (the file's URL)", "bad_config")
        if self.config.format not in FORMATS:
            raise ExchangeError(
                f"unknown format {self.config.format!r} (one of {', '.join(FORMATS)})",
                "bad_config",
            )

    def _auth(self) -> dict[str, Any]:
        secret = self.credentials
        if not secret:
            return {}
        user, sep, pw = str(secret).partition(":")
        if sep and user and pw:
            return {"auth": (user, pw)}
        return {"headers": {"Authorization": f"Bearer {secret}"}}

    def fetch(self, checkpoint: dict[str, Any] | None) -> Iterator[FetchPage]:
        cp = dict(checkpoint or {})
        auth = self._auth()
        headers = dict(auth.pop("headers", {}))
        if cp.get("etag"):
            headers["If-None-Match"] = cp["etag"]
        if cp.get("last_modified"):
            headers["If-Modified-Since"] = cp["last_modified"]
        url = self.config.base_url
        old_limit = self.http.max_bytes
        self.http.max_bytes = self.config.max_bytes
        try:
            resp, body = self.http.download(url, headers=headers, ok=(200, 304), **auth)
        finally:
            self.http.max_bytes = old_limit
        if resp.status == 304:
            body.close()
            return
        if resp.content_type in ("text/html", "application/xhtml+xml"):
            with body:
                raise MalformedPage(
                    f"{safe_url(url)}: got an HTML page, not a hash list",
                    body.read(4096),
                    "wrong_content_type",
                )
        cp = {
            "etag": resp.headers.get("etag"),
            "last_modified": resp.headers.get("last-modified"),
        }
        # the file is parsed while the store applies it, a chunk at a time, inside the
        # page's one transaction: memory stays flat however large the list; a bad line
        # anywhere rolls the whole snapshot back (nothing partial is written)
        yield FetchPage([], cp, replace_all=True, chunks=self._chunks(body, url))

    def _chunks(self, body: IO[bytes], url: str) -> Iterator[list[ExchangeRecord]]:
        """Records of the downloaded file, ``CHUNK_LINES`` lines at a time (the format's
        own parser on each slice; a CSV slice gets the header again, and is never cut
        inside a quoted field). VICS JSON is one document: parsed whole (bounded by
        ``max_bytes``). Closes ``body`` when done."""
        fmt = get_format(self.config.format)
        limits = InputLimits(max_bytes=self.config.max_bytes)
        owner = self.config.owner or None
        category = self.config.category or None
        with body:
            for first_line, piece in _slices(body, self.config.format, CHUNK_LINES):
                try:
                    entries = fmt.parse(piece, limits=limits)
                except BankImportError as e:
                    shift = first_line - (2 if self.config.format in _HEADED else 1)
                    errors = [LineError(x.line + shift, x.message) for x in e.errors]
                    detail = "; ".join(str(x) for x in errors[:3])
                    head = e.message.split(":", 1)[0]
                    raise MalformedPage(
                        f"{safe_url(url)}: {head}" + (f" ({detail})" if detail else ""),
                        piece.getvalue()[:4096],
                        "bad_feed_file",
                    ) from None
                yield [
                    ExchangeRecord(
                        key=f"{e.signal_type}:{e.hash}:{e.variant}",
                        signals=(Signal(e.signal_type, e.signal_type, e.hash),),
                        owner=e.source_org or owner,
                        category=e.category or category,
                    )
                    for e in entries
                ]


#: Lines parsed and applied at a time from a feed file.
CHUNK_LINES = 20_000
#: Formats whose first line is a header repeated on each slice.
_HEADED = ("csv", "icse")
#: Formats that are one document (not line-oriented): parsed whole.
_WHOLE = ("vics",)


def _slices(body: IO[bytes], format_name: str, n: int) -> Iterator[tuple[int, io.BytesIO]]:
    """``(line number of the slice's first data line, slice)`` for ``body``: up to ``n``
    lines each; headed formats repeat line 1 at the top of every slice."""
    if format_name in _WHOLE:
        yield 1, io.BytesIO(body.read())
        return
    header = b""
    line_no = 1
    if format_name in _HEADED:
        header = body.readline()
        line_no = 2
    buf: list[bytes] = []
    start = line_no
    quoted = False
    emitted = False
    for line in body:
        buf.append(line)
        if format_name in _HEADED and line.count(b'"') % 2:
            quoted = not quoted  # inside a quoted field that spans lines
        if len(buf) >= n and not quoted:
            yield start, io.BytesIO(header + b"".join(buf))
            emitted = True
            start += len(buf)
            buf = []
    if buf or not emitted:
        yield start, io.BytesIO(header + b"".join(buf))
