"""A plain HTTP(S) hash-list feed: any import format Sentinelle reads, fetched conditionally.

The feed is a whole file (``csv``, ``vics``, ``pdq-list``, ``md5-list``,
``threatexchange``: see :mod:`sentinelle.formats`) at one URL, republished by
its owner from time to time. Each fetch sends ``If-None-Match`` (the last
``ETag``) and ``If-Modified-Since`` (the last ``Last-Modified``); ``304 Not
Modified`` costs nothing. A new file is streamed to a temporary file (bounded by
``max_bytes``), parsed and validated **as a whole** by the format's parser, and
applied as a *snapshot*: hashes no longer in the file are deleted (and
tombstoned), which is what HMA's file and full-dump exchanges never do (#1668).
A file that does not parse is quarantined and nothing of it is applied.

Credentials are optional: ``user:password`` is sent as HTTP Basic, anything else
as ``Authorization: Bearer <secret>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import BankImportError
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
        with body:
            if resp.status == 304:
                return
            if resp.content_type in ("text/html", "application/xhtml+xml"):
                raise MalformedPage(
                    f"{safe_url(url)}: got an HTML page, not a hash list",
                    body.read(4096),
                    "wrong_content_type",
                )
            try:
                entries = get_format(self.config.format).parse(
                    body, limits=InputLimits(max_bytes=self.config.max_bytes)
                )
            except BankImportError as e:
                body.seek(0)
                detail = "; ".join(str(x) for x in e.errors[:3])
                raise MalformedPage(
                    f"{safe_url(url)}: {e.message}" + (f" ({detail})" if detail else ""),
                    body.read(4096),
                    "bad_feed_file",
                ) from None
        owner = self.config.owner or None
        category = self.config.category or None
        records = [
            ExchangeRecord(
                key=f"{e.signal_type}:{e.hash}:{e.variant}",
                signals=(Signal(e.signal_type, e.signal_type, e.hash),),
                owner=e.source_org or owner,
                category=e.category or category,
            )
            for e in entries
        ]
        cp = {
            "etag": resp.headers.get("etag"),
            "last_modified": resp.headers.get("last-modified"),
            "entries": len(records),
        }
        yield FetchPage(records, cp, replace_all=True)
