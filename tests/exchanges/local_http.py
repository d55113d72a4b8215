"""A tiny real HTTP server on 127.0.0.1 for the exchange protocol servers, with fault injection.

Each protocol server subclasses :class:`LocalServer` and implements
``handle(req) -> (status, content_type, body, headers)``. Faults queued with
:meth:`LocalServer.fail_next` replace the next matching answers:

* ``"500"``, ``"502"``, ``"503"``, ``"429"`` -- that status (429 with ``Retry-After: 0``);
* ``"truncated"`` -- the real answer, cut in half, with status 200 (HMA #2004);
* ``"html"`` -- a 200 HTML error page (a proxy's, a captive portal's);
* ``"garbage"`` -- 200 with the right content type and bytes that parse as nothing.
"""

from __future__ import annotations

import base64
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    raw_path: str = ""

    def q(self, name: str, default: str | None = None) -> str | None:
        v = self.query.get(name)
        return v[0] if v else default

    def basic_auth(self) -> tuple[str, str] | None:
        h = self.headers.get("authorization", "")
        if not h.lower().startswith("basic "):
            return None
        try:
            user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
        except Exception:  # noqa: BLE001
            return None
        return user, pw


@dataclass
class Answer:
    status: int
    content_type: str = "application/json"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class LocalServer:
    def __init__(self) -> None:
        self.faults: deque[tuple[str, str]] = deque()
        self.log: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body in one write (no Nagle/delayed-ACK stall)
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def _do(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                parts = urlsplit(self.path)
                req = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    self.path,
                )
                ans = server._answer(req)
                self.send_response(ans.status)
                self.send_header("Content-Type", ans.content_type)
                self.send_header("Content-Length", str(len(ans.body)))
                for k, v in ans.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(ans.body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _do

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):  # type: ignore[no-untyped-def]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail_next(self, kind: str, times: int = 1, path: str = "") -> None:
        for _ in range(times):
            self.faults.append((path, kind))

    def requests_to(self, path_part: str) -> int:
        return sum(1 for _, p in self.log if path_part in p)

    def _answer(self, req: Request) -> Answer:
        with self._lock:
            self.log.append((req.method, req.raw_path))
            fault = None
            for i, (p, kind) in enumerate(self.faults):
                if p in req.path:
                    fault = kind
                    del self.faults[i]
                    break
        if fault in ("500", "502", "503"):
            return Answer(int(fault), "text/plain", b"server error")
        if fault == "429":
            return Answer(429, "text/plain", b"slow down", {"Retry-After": "0"})
        if fault == "html":
            return Answer(200, "text/html", b"<html><body>Service unavailable</body></html>")
        ans = self.handle(req)
        if fault == "truncated":
            return Answer(ans.status, ans.content_type, ans.body[: len(ans.body) // 2])
        if fault == "garbage":
            return Answer(ans.status, ans.content_type, b"\x00\xff not a page {<")
        return ans

    def handle(self, req: Request) -> Answer:  # pragma: no cover - overridden
        raise NotImplementedError
