"""HTTP client for NCMEC's CyberTipline Reporting API (``/ispws``).

Endpoints (HTTP Basic auth, XML in and out)::

    GET  /status     connectivity + credentials      -> reportResponse
    GET  /xsd        the current schema              -> XSD text
    POST /submit     <report> XML (opens a report)   -> reportResponse + reportId
    POST /upload     multipart id + file             -> reportResponse + fileId + MD5 hash
    POST /fileinfo   <fileDetails> XML               -> reportResponse
    POST /finish     form id                         -> reportDoneResponse (the receipt)
    POST /retract    form id                         -> reportResponse

Environments: ``test`` (``exttest.cybertip.org``, the default) and ``production``
(``report.cybertip.org``), which is used only when ``SENTINELLE_CYBERTIP_ENV=production``
*and* credentials are configured; a test configuration pointed at the production
host is refused. ``SENTINELLE_CYBERTIP_URL`` overrides the base URL (a local server).

Retries. Calls that carry a ``reportId`` (fileinfo, finish, retract) and status/xsd
are safe to repeat: they are retried with exponential back-off and jitter on
connection failures, HTTP 5xx and NCMEC server errors (responseCode 1xxx). ``submit``
and ``upload`` are *not* idempotent -- a lost answer may hide a report NCMEC did
open -- so they are retried only when the request provably never left (connection
refused, connect timeout) or NCMEC answered with a 1xxx server-error document;
any other failure raises ``ambiguous_outcome`` and a human decides. 4xx and
NCMEC's 2xxx-5xxx codes are never retried.

Every answer is parsed with the safe parser of :mod:`.xsd` (no DTD, no entities,
no network), and bounded in size.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from .errors import ReportError
from .xsd import parse_xml

TEST_URL = "https://exttest.cybertip.org/ispws"
PRODUCTION_URL = "https://report.cybertip.org/ispws"
PRODUCTION_HOST = "report.cybertip.org"
ENVIRONMENTS = ("test", "production")
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
XML_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}

#: Endpoints that may be repeated safely (they name the report they act on).
IDEMPOTENT = frozenset({"status", "xsd", "fileinfo", "finish", "retract"})

#: NCMEC response codes with a fixed meaning (documented; families classify the rest).
CODE_SUCCESS = 0
CODE_NOT_FOUND = 5001
CODE_ALREADY_RETRACTED = 5101
CODE_ALREADY_FINISHED = 5102


@dataclass(frozen=True)
class CyberTipConfig:
    """Where and how to reach the API. Build it with :meth:`from_env` in production."""

    environment: str = "test"
    base_url: str = TEST_URL
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 30.0
    retries: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def __post_init__(self) -> None:
        if self.environment not in ENVIRONMENTS:
            raise ReportError(
                f"SENTINELLE_CYBERTIP_ENV must be test or production (got {self.environment!r})",
                "bad_config",
            )
        host = (urlsplit(self.base_url).hostname or "").lower()
        if not host:
            raise ReportError(f"not a usable API URL: {self.base_url!r}", "bad_config")
        if self.environment != "production" and host == PRODUCTION_HOST:
            raise ReportError(
                "the production CyberTipline host needs SENTINELLE_CYBERTIP_ENV=production",
                "production_not_configured",
            )
        if self.environment == "production" and not (self.username and self.password):
            raise ReportError(
                "production reporting needs SENTINELLE_CYBERTIP_USERNAME and "
                "SENTINELLE_CYBERTIP_PASSWORD (or _PASSWORD_FILE)",
                "production_not_configured",
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CyberTipConfig:
        """Read ``SENTINELLE_CYBERTIP_*``: ENV, URL, USERNAME, PASSWORD(_FILE), TIMEOUT, RETRIES."""
        env = os.environ if env is None else env
        environment = env.get("SENTINELLE_CYBERTIP_ENV", "").strip().lower() or "test"
        default_url = PRODUCTION_URL if environment == "production" else TEST_URL
        password = env.get("SENTINELLE_CYBERTIP_PASSWORD") or None
        pw_file = env.get("SENTINELLE_CYBERTIP_PASSWORD_FILE", "").strip()
        if pw_file and not password:
            try:
                password = Path(pw_file).read_text().strip() or None
            except OSError as e:
                raise ReportError(
                    f"cannot read SENTINELLE_CYBERTIP_PASSWORD_FILE: {e.strerror}", "bad_config"
                ) from None
        try:
            timeout = float(env.get("SENTINELLE_CYBERTIP_TIMEOUT", "30"))
            retries = int(env.get("SENTINELLE_CYBERTIP_RETRIES", "4"))
        except ValueError as e:
            raise ReportError(f"bad CyberTipline setting: {e}", "bad_config") from None
        return cls(
            environment=environment,
            base_url=(env.get("SENTINELLE_CYBERTIP_URL", "").strip() or default_url).rstrip("/"),
            username=env.get("SENTINELLE_CYBERTIP_USERNAME") or None,
            password=password,
            timeout_s=timeout,
            retries=max(0, retries),
        )


@dataclass(frozen=True)
class ApiResponse:
    """One successful answer (``responseCode`` 0) and how it was obtained."""

    endpoint: str
    http_status: int
    response_code: int
    description: str | None = None
    report_id: int | None = None
    file_id: str | None = None
    hash: str | None = None
    file_ids: tuple[str, ...] = ()
    raw: bytes = b""
    server_request_id: str | None = None
    attempts: int = 1


class ApiCallError(ReportError):
    """A failed call; ``attempts`` and ``server_request_id`` tell the journal what happened."""

    def __init__(self, message: str, code: str, **kw: object) -> None:
        attempts = kw.pop("attempts", 1)
        self.server_request_id = kw.pop("server_request_id", None)
        self.description = kw.pop("description", None)
        super().__init__(message, code, **kw)  # type: ignore[arg-type]
        self.attempts = attempts


def _text(root, tag: str) -> str | None:  # type: ignore[no-untyped-def]
    el = root.find(tag)
    return el.text.strip() if el is not None and el.text is not None else None


def parse_response(body: bytes, endpoint: str, http_status: int) -> ApiResponse:
    """Parse a ``reportResponse`` / ``reportDoneResponse``; ``bad_response`` if it is neither."""
    root = parse_xml(body)
    if root.tag not in ("reportResponse", "reportDoneResponse"):
        raise ReportError(f"unexpected answer <{root.tag}> from /{endpoint}", "bad_response")
    try:
        code = int(_text(root, "responseCode") or "")
        report_id = _text(root, "reportId")
        rid = int(report_id) if report_id else None
    except ValueError:
        raise ReportError(f"/{endpoint} answered without a numeric code", "bad_response") from None
    files = root.find("files")
    file_ids = tuple(
        (f.text or "").strip() for f in (files.findall("fileId") if files is not None else [])
    )
    return ApiResponse(
        endpoint=endpoint,
        http_status=http_status,
        response_code=code,
        description=_text(root, "responseDescription"),
        report_id=rid,
        file_id=_text(root, "fileId"),
        hash=_text(root, "hash"),
        file_ids=file_ids,
        raw=body,
    )


def classify(code: int) -> tuple[str, bool]:
    """``(error code, retryable)`` for a non-zero NCMEC ``responseCode`` (by family)."""
    if code == CODE_NOT_FOUND:
        return "report_not_found", False
    if code == CODE_ALREADY_RETRACTED:
        return "already_retracted", False
    if code == CODE_ALREADY_FINISHED:
        return "already_finished", False
    if 1000 <= code < 2000:
        return "transient", True  # NCMEC's own server error: nothing was saved
    if 2000 <= code < 4000:
        return "auth_failed", False
    if 4000 <= code < 5000:
        return "rejected", False
    return "api_error", False


class CyberTiplineClient:
    """Synchronous client; one ``httpx.Client`` with Basic auth, reused across calls.

    ``sleep`` and ``transport`` are injectable for tests; ``jitter`` scales each
    back-off by a random factor in [0.5, 1].
    """

    def __init__(
        self,
        config: CyberTipConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self._sleep = sleep
        auth = (config.username, config.password) if config.username and config.password else None
        self._http = httpx.Client(
            base_url=config.base_url.rstrip("/") + "/",
            auth=auth,
            timeout=config.timeout_s,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": "sentinelle-cybertip/1"},
        )

    @property
    def environment(self) -> str:
        return self.config.environment

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CyberTiplineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- endpoints --------------------------------------------------------------------

    def status(self) -> ApiResponse:
        return self._call("status", "GET", "status")

    def xsd(self) -> bytes:
        """The schema text of this environment (``GET /xsd``)."""
        return self._call("xsd", "GET", "xsd", raw=True).raw

    def submit(self, report_xml: bytes) -> ApiResponse:
        resp = self._call("submit", "POST", "submit", content=report_xml, headers=XML_HEADERS)
        if resp.report_id is None:
            raise ApiCallError(
                "/submit succeeded without a reportId: cannot tell which report was opened",
                "ambiguous_outcome",
                attempts=resp.attempts,
            )
        return resp

    def upload(
        self, report_id: int, data: bytes, filename: str, media_type: str | None = None
    ) -> ApiResponse:
        files = {"file": (filename, data, media_type or "application/octet-stream")}
        resp = self._call("upload", "POST", "upload", data={"id": str(report_id)}, files=files)
        if not resp.file_id:
            raise ApiCallError("/upload answered without a fileId", "ambiguous_outcome")
        return resp

    def fileinfo(self, file_details_xml: bytes) -> ApiResponse:
        return self._call(
            "fileinfo", "POST", "fileinfo", content=file_details_xml, headers=XML_HEADERS
        )

    def finish(self, report_id: int) -> ApiResponse:
        return self._call("finish", "POST", "finish", data={"id": str(report_id)})

    def retract(self, report_id: int) -> ApiResponse:
        return self._call("retract", "POST", "retract", data={"id": str(report_id)})

    # -- machinery ----------------------------------------------------------------------

    def _backoff(self, attempt: int) -> None:
        delay = min(self.config.max_backoff_s, self.config.backoff_s * 2 ** (attempt - 1))
        self._sleep(delay * random.uniform(0.5, 1.0))

    def _call(
        self, endpoint: str, method: str, path: str, *, raw: bool = False, **kwargs: object
    ) -> ApiResponse:
        if not (self.config.username and self.config.password):
            raise ApiCallError(
                "no CyberTipline credentials: set SENTINELLE_CYBERTIP_USERNAME and "
                "SENTINELLE_CYBERTIP_PASSWORD",
                "no_credentials",
                attempts=0,
            )
        idempotent = endpoint in IDEMPOTENT
        attempts = self.config.retries + 1
        last: ApiCallError | None = None
        for attempt in range(1, attempts + 1):
            try:
                return self._once(endpoint, method, path, raw, attempt, idempotent, kwargs)
            except _Retry as r:
                last = r.error
                if attempt < attempts:
                    self._backoff(attempt)
        assert last is not None
        raise ApiCallError(
            f"/{endpoint} failed after {attempts} attempt(s): {last.message}",
            "transient",
            attempts=attempts,
            response_code=last.response_code,
            http_status=last.http_status,
            server_request_id=last.server_request_id,
        )

    def _once(
        self,
        endpoint: str,
        method: str,
        path: str,
        raw: bool,
        attempt: int,
        idempotent: bool,
        kwargs: dict[str, object],
    ) -> ApiResponse:
        try:
            http = self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
            # The request never reached the server: safe to repeat for every endpoint.
            raise _Retry(ApiCallError(f"cannot connect: {e}", "transient")) from None
        except httpx.TransportError as e:
            err = f"{type(e).__name__} after sending /{endpoint}: {e}"
            if idempotent:
                raise _Retry(ApiCallError(err, "transient")) from None
            raise ApiCallError(
                err + " -- the outcome is unknown; not retrying automatically",
                "ambiguous_outcome",
                attempts=attempt,
            ) from None
        rid = http.headers.get("Request-ID") or http.headers.get("X-Request-ID")
        body = http.content
        common = {"attempts": attempt, "http_status": http.status_code, "server_request_id": rid}
        if len(body) > MAX_RESPONSE_BYTES:
            raise ApiCallError(f"/{endpoint} answer too large", "bad_response", **common)
        if http.status_code in (401, 403):
            raise ApiCallError(
                f"/{endpoint}: HTTP {http.status_code}, credentials refused",
                "auth_failed",
                **common,
            )
        if raw and http.status_code == 200:
            return ApiResponse(endpoint, 200, 0, raw=body, server_request_id=rid, attempts=attempt)
        try:
            resp = parse_response(body, endpoint, http.status_code)
        except ReportError as e:
            # No NCMEC verdict reached us (a gateway page, garbage, an empty body).
            # 429 means "not processed": safe to repeat for every endpoint.
            if http.status_code == 429 or (http.status_code >= 500 and idempotent):
                raise _Retry(
                    ApiCallError(f"HTTP {http.status_code} from /{endpoint}", "transient", **common)
                ) from None
            if not idempotent and (http.status_code >= 500 or http.status_code < 300):
                raise ApiCallError(
                    f"/{endpoint}: HTTP {http.status_code} without a usable answer ({e.message})"
                    " -- the outcome is unknown; not retrying automatically",
                    "ambiguous_outcome",
                    **common,
                ) from None
            raise ApiCallError(
                f"/{endpoint}: HTTP {http.status_code}, {e.message}", "bad_response", **common
            ) from None
        if resp.response_code == CODE_SUCCESS:
            if http.status_code >= 300:
                raise ApiCallError(
                    f"/{endpoint}: HTTP {http.status_code} with a success document",
                    "bad_response",
                    **common,
                )
            return ApiResponse(**{**resp.__dict__, "server_request_id": rid, "attempts": attempt})
        code, retryable = classify(resp.response_code)
        err = ApiCallError(
            f"/{endpoint}: NCMEC responseCode {resp.response_code}"
            + (f" ({resp.description})" if resp.description else ""),
            code,
            response_code=resp.response_code,
            description=resp.description,
            **common,
        )
        if retryable:
            raise _Retry(err)
        raise err


class _Retry(Exception):
    """Internal: this attempt failed in a way that is safe to repeat."""

    def __init__(self, error: ApiCallError) -> None:
        super().__init__(error.message)
        self.error = error
