"""A local stand-in for NCMEC's CyberTipline Reporting API, for tests.

It implements the documented protocol on a real socket (uvicorn in a thread on
127.0.0.1, an ephemeral port): ``GET /status``, ``GET /xsd``, ``POST /submit``,
``POST /upload`` (multipart ``id`` + ``file``), ``POST /fileinfo``, ``POST /finish``,
``POST /retract``, with HTTP Basic auth (401 with an empty body when refused). Every
XML document it receives is parsed safely and validated against the XSD; a schema
violation is answered with responseCode 4100 and the problems, as the real API does.
Every answer it sends is itself validated against the XSD, so the server cannot
drift from the schema either.

NCMEC's rules it enforces: a report is open from ``/submit`` until ``/finish`` or
``/retract``; files and file details only go to open reports and to files of that
report; an unfinished report is deleted 24 h after opening or 1 h after its last
change, whichever is later (after that it answers 5001 "report does not exist").
The clock is injectable (``server.clock``) so expiry is tested without waiting.

Faults for retry tests (``server.fail_next(endpoint, mode, times)``):

* ``server_error`` -- HTTP 500 with a responseCode 1000 document, nothing saved;
* ``gateway``      -- HTTP 502 with an HTML page, the request never processed;
* ``lost``         -- the request IS processed (a report opens, a file is stored)
  but the answer is replaced by a 502 page: the outcome is lost in transit;
* ``hang``         -- processed, then the answer is held for ``hang_s`` seconds
  (longer than the client's timeout);
* ``hostile``      -- not processed; the answer is a document with a DOCTYPE and an
  external entity (an XXE probe) that a safe client must refuse to expand.

Usage::

    with CyberTipServer(xsd_path) as srv:
        client = CyberTiplineClient(CyberTipConfig(base_url=srv.url, username=..., ...))
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sentinelle.reports.errors import ReportError
from sentinelle.reports.xsd import load_schema, parse_xml, validate

HOSTILE = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<reportResponse><responseCode>0</responseCode>"
    b"<responseDescription>&x;</responseDescription><reportId>1</reportId></reportResponse>"
)
OPEN_TTL = dt.timedelta(hours=24)
CHANGE_TTL = dt.timedelta(hours=1)
FAULT_MODES = ("server_error", "gateway", "lost", "hang", "hostile")


@dataclass
class ServerFile:
    file_id: str
    name: str
    md5: str
    size: int
    details: bytes | None = None


@dataclass
class ServerReport:
    report_id: int
    xml: bytes
    opened: dt.datetime
    last_change: dt.datetime
    status: str = "open"  # open | finished | retracted
    files: dict[str, ServerFile] = field(default_factory=dict)

    def expires_at(self) -> dt.datetime:
        return max(self.opened + OPEN_TTL, self.last_change + CHANGE_TTL)


def _xml_response(body: str, status: int = 200) -> Response:
    return Response(
        ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + body).encode(),
        status_code=status,
        media_type="text/xml; charset=utf-8",
        headers={"Request-ID": uuid.uuid4().hex},
    )


class CyberTipServer:
    """The fake API. Thread-safe state; ``calls`` records ``(endpoint, http_status)``."""

    def __init__(
        self,
        xsd_path: str | Path,
        *,
        username: str = "esp-user",
        password: str = "esp-secret",
        clock: Callable[[], dt.datetime] | None = None,
        hang_s: float = 2.0,
    ) -> None:
        self.xsd_bytes = Path(xsd_path).read_bytes()
        self.schema = load_schema(self.xsd_bytes)
        self.username = username
        self.password = password
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.hang_s = hang_s
        self.reports: dict[int, ServerReport] = {}
        self.calls: list[tuple[str, int]] = []
        self.received: list[tuple[str, bytes]] = []
        self._faults: dict[str, deque[str]] = {}
        self._next_id = 4564654
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- test controls ------------------------------------------------------------------

    def fail_next(self, endpoint: str, mode: str = "server_error", times: int = 1) -> None:
        if mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {FAULT_MODES}")
        with self._lock:
            self._faults.setdefault(endpoint, deque()).extend([mode] * times)

    def count(self, endpoint: str) -> int:
        return sum(1 for e, _ in self.calls if e == endpoint)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> CyberTipServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app(),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("CyberTipServer did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}/ispws"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> CyberTipServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- protocol -----------------------------------------------------------------------

    def _respond(self, code: int, description: str, status: int = 200, **extra: object) -> Response:
        parts = [
            f"<responseCode>{code}</responseCode>",
            f"<responseDescription>{escape(description[:2000])}</responseDescription>",
        ]
        for tag in ("reportId", "fileId", "hash"):
            if extra.get(tag) is not None:
                parts.append(f"<{tag}>{escape(str(extra[tag]))}</{tag}>")
        body = "<reportResponse>" + "".join(parts) + "</reportResponse>"
        self._self_check(body)
        return _xml_response(body, status)

    def _self_check(self, body: str) -> None:
        issues = validate(body.encode(), self.schema)
        assert not issues, f"fake server produced an invalid answer: {issues}"

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.username) and secrets.compare_digest(
            pw, self.password
        )

    def _live(self, report_id_text: str | None) -> ServerReport | Response:
        """The open report named by ``report_id_text`` or the error answer to send."""
        try:
            rid = int(str(report_id_text))
        except ValueError:
            return self._respond(4100, "Validation failed: report id must be a number", 400)
        report = self.reports.get(rid)
        if report is not None and report.status == "open" and self.clock() > report.expires_at():
            del self.reports[rid]  # NCMEC deletes unfinished reports at expiry
            report = None
        if report is None:
            return self._respond(5001, "Report does not exist", 400)
        if report.status == "finished":
            return self._respond(5102, "Report has already been finished", 400)
        if report.status == "retracted":
            return self._respond(5101, "Report has already been retracted", 400)
        return report

    def _parse_valid(self, body: bytes, root_tag: str) -> Response | None:
        try:
            root = parse_xml(body)
        except ReportError as e:
            return self._respond(4100, f"Validation failed: {e.message}", 400)
        if root.tag != root_tag:
            return self._respond(4100, f"Validation failed: expected <{root_tag}>", 400)
        issues = validate(body, self.schema)
        if issues:
            text = "; ".join(str(i) for i in issues[:20])
            return self._respond(4100, f"Validation failed: {text}", 400)
        return None

    async def _submit(self, request: Request) -> Response:
        body = await request.body()
        bad = self._parse_valid(body, "report")
        if bad is not None:
            return bad
        now = self.clock()
        rid = self._next_id
        self._next_id += 1
        self.reports[rid] = ServerReport(rid, body, now, now)
        return self._respond(0, "Success", reportId=rid)

    async def _upload(self, request: Request) -> Response:
        try:
            form = await request.form()
        except Exception:  # malformed multipart
            return self._respond(4100, "Validation failed: multipart body expected", 400)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return self._respond(4100, "Validation failed: missing file part", 400)
        report = self._live(form.get("id"))  # type: ignore[arg-type]
        if isinstance(report, Response):
            return report
        data = await upload.read()
        md5 = hashlib.md5(data).hexdigest()
        file_id = uuid.uuid4().hex
        report.files[file_id] = ServerFile(file_id, upload.filename or "", md5, len(data))
        report.last_change = self.clock()
        return self._respond(0, "Success", reportId=report.report_id, fileId=file_id, hash=md5)

    async def _fileinfo(self, request: Request) -> Response:
        body = await request.body()
        bad = self._parse_valid(body, "fileDetails")
        if bad is not None:
            return bad
        root = parse_xml(body)
        report = self._live(root.findtext("reportId"))
        if isinstance(report, Response):
            return report
        file_id = (root.findtext("fileId") or "").strip()
        if file_id not in report.files:
            return self._respond(4100, f"Validation failed: unknown fileId {file_id}", 400)
        report.files[file_id].details = body
        report.last_change = self.clock()
        return self._respond(0, "Success", reportId=report.report_id)

    async def _finish(self, request: Request) -> Response:
        form = await request.form()
        report = self._live(form.get("id"))  # type: ignore[arg-type]
        if isinstance(report, Response):
            return report
        report.status = "finished"
        files = "".join(f"<fileId>{fid}</fileId>" for fid in report.files)
        body = (
            f"<reportDoneResponse><responseCode>0</responseCode>"
            f"<reportId>{report.report_id}</reportId><files>{files}</files></reportDoneResponse>"
        )
        self._self_check(body)
        return _xml_response(body)

    async def _retract(self, request: Request) -> Response:
        form = await request.form()
        report = self._live(form.get("id"))  # type: ignore[arg-type]
        if isinstance(report, Response):
            return report
        report.status = "retracted"
        return self._respond(0, "Success", reportId=report.report_id)

    async def _status(self, request: Request) -> Response:
        return self._respond(0, f"Remote User : {self.username}")

    async def _xsd(self, request: Request) -> Response:
        return Response(self.xsd_bytes, media_type="text/xml; charset=utf-8")

    def _endpoint(self, name: str, handler):  # type: ignore[no-untyped-def]
        async def run(request: Request) -> Response:
            if not self._authorized(request):
                self.calls.append((name, 401))
                return Response(b"", status_code=401, headers={"WWW-Authenticate": "Basic"})
            with self._lock:
                queue = self._faults.get(name)
                fault = queue.popleft() if queue else None
            if fault == "server_error":
                resp = self._respond(1000, "Server error", 500)
            elif fault == "hostile":
                resp = Response(HOSTILE, 200, media_type="text/xml")
            elif fault == "gateway":
                resp = Response(b"<html><body>502 Bad Gateway</body></html>", 502)
            else:
                body = await request.body()
                self.received.append((name, body))
                resp = await handler(request)
                if fault == "lost":
                    resp = Response(b"<html><body>502 Bad Gateway</body></html>", 502)
                elif fault == "hang":
                    await asyncio.sleep(self.hang_s)
            self.calls.append((name, resp.status_code))
            return resp

        return run

    def _app(self) -> Starlette:
        routes = [
            Route("/ispws/status", self._endpoint("status", self._status), methods=["GET"]),
            Route("/ispws/xsd", self._endpoint("xsd", self._xsd), methods=["GET"]),
            Route("/ispws/submit", self._endpoint("submit", self._submit), methods=["POST"]),
            Route("/ispws/upload", self._endpoint("upload", self._upload), methods=["POST"]),
            Route("/ispws/fileinfo", self._endpoint("fileinfo", self._fileinfo), methods=["POST"]),
            Route("/ispws/finish", self._endpoint("finish", self._finish), methods=["POST"]),
            Route("/ispws/retract", self._endpoint("retract", self._retract), methods=["POST"]),
        ]
        return Starlette(routes=routes)
