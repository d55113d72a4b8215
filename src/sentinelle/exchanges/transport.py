"""HTTP for every exchange client: bounded bodies, back-off on 429/5xx, no secrets in errors.

* **Bounded.** A response body is read in chunks and refused past ``max_bytes``
  (a page of a hash list is kilobytes to a few megabytes; a 2 GB "page" is an
  attack or a bug). Whole-file feeds stream to a temporary file instead
  (:meth:`HttpTransport.download`).
* **Back-off.** 429, 502, 503 and 504 answers and connection errors are retried
  ``retries`` times with exponential back-off and jitter, honouring a
  ``Retry-After`` header up to ``max_backoff_s``; then :class:`TransientError`.
  Every method retries, including PUT/POST: the exchanges' feedback calls are
  idempotent (an opinion is set, not appended). Other 5xx are retried too.
* **Quiet.** Errors name the host and path only: query strings (ThreatExchange
  puts its access token there) and bodies never appear in messages or logs.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

import httpx

from .api import AuthError, ExchangeError, MalformedPage, TransientError

USER_AGENT = "Sentinelle-Exchange/1"
RETRY_STATUS = frozenset({408, 425, 429})
DEFAULT_MAX_BYTES = 32 * 1024 * 1024


def safe_url(url: str) -> str:
    """``scheme://host/path`` without query, fragment or user info (for messages)."""
    p = urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return f"{p.scheme}://{host}{p.path}"


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def require_type(self, *allowed: str) -> None:
        """Raise :class:`MalformedPage` unless the media type is one of ``allowed``."""
        ct = self.content_type
        if not any(ct == a or ct.endswith("+" + a.split("/")[-1]) for a in allowed):
            raise MalformedPage(
                f"{safe_url(self.url)}: content type {ct or 'missing'!r}, expected "
                + " or ".join(allowed),
                self.body,
                "wrong_content_type",
            )


class HttpTransport:
    """One ``httpx.Client`` with Sentinelle's retry and size rules."""

    def __init__(
        self,
        *,
        timeout_s: float = 60.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 60.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        verify: bool | str = True,
    ) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_bytes = max_bytes
        self.sleep = sleep
        self.requests = 0
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            follow_redirects=False,
            trust_env=False,
            verify=verify,
            headers={"User-Agent": USER_AGENT},
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ core
    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.max_backoff_s, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return min(self.max_backoff_s, self.backoff_s * 2**attempt) * random.uniform(0.5, 1.0)

    def request(
        self,
        method: str,
        url: str,
        *,
        sink: IO[bytes] | None = None,
        ok: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> Response:
        """Send with retries; the body goes to memory (bounded) or to ``sink``.

        ``ok`` lists the statuses returned to the caller (e.g. 304 for a
        conditional GET); 401/403 raise :class:`AuthError`; other statuses raise
        :class:`ExchangeError` (4xx) or, after the retries, :class:`TransientError`.
        """
        where = safe_url(url)
        last = ""
        retry_after: str | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self._delay(attempt - 1, retry_after))
            retry_after = None
            self.requests += 1
            try:
                with self.client.stream(method, url, **kwargs) as resp:
                    status = resp.status_code
                    if status in ok:
                        body = self._read(resp, where, sink)
                        return Response(status, resp.headers, body, url)
                    retry_after = resp.headers.get("retry-after")
            except httpx.HTTPError as e:
                last = f"{where}: {type(e).__name__}"
                continue
            if status in (401, 403):
                raise AuthError(f"{where}: HTTP {status} (credentials refused)", "exchange_auth")
            if status >= 500 or status in RETRY_STATUS:
                last = f"{where}: HTTP {status}"
                continue
            raise ExchangeError(f"{where}: HTTP {status}", "exchange_http")
        raise TransientError(f"{last} (after {self.retries + 1} attempts)")

    def _read(self, resp: httpx.Response, where: str, sink: IO[bytes] | None) -> bytes:
        size = 0
        chunks: list[bytes] = []
        for chunk in resp.iter_bytes(64 * 1024):
            size += len(chunk)
            if size > self.max_bytes:
                raise MalformedPage(
                    f"{where}: response larger than {self.max_bytes} bytes",
                    b"".join(chunks)[:4096],
                    "page_too_large",
                )
            if sink is None:
                chunks.append(chunk)
            else:
                sink.write(chunk)
        return b"".join(chunks)

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def download(self, url: str, **kwargs: Any) -> tuple[Response, IO[bytes]]:
        """GET into a temporary file (deleted when closed); the file is rewound."""
        tmp = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
        try:
            resp = self.request("GET", url, sink=tmp, **kwargs)
        except BaseException:
            tmp.close()
            raise
        tmp.seek(0)
        return resp, tmp
