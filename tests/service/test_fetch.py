"""URL fetching: off by default, allow-listed hosts only, no SSRF (real sockets)."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from sentinelle.service.app import create_app
from sentinelle.service.fetch import (
    FetchError,
    check_url,
    fetch_media,
    host_allowed,
    is_public_address,
)
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "127.8.9.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
        "2001:db8::1",
        "2001::1",
    ],
)
def test_non_public_addresses_are_refused(ip: str) -> None:
    assert not is_public_address(ipaddress.ip_address(ip))


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(ip: str) -> None:
    assert is_public_address(ipaddress.ip_address(ip))


def test_host_allow_list() -> None:
    allowed = ("media.example.org", "*.cdn.example.net")
    assert host_allowed("media.example.org", allowed)
    assert host_allowed("MEDIA.example.org.", allowed)
    assert host_allowed("a.b.cdn.example.net", allowed)
    assert not host_allowed("cdn.example.net", allowed)
    assert not host_allowed("evilcdn.example.net", allowed)
    assert not host_allowed("media.example.org.evil.com", allowed)
    assert not host_allowed("anything", ())


@pytest.mark.parametrize(
    "url,code",
    [
        ("ftp://media.example.org/x", "bad_url"),
        ("file:///etc/passwd", "bad_url"),
        ("http://user:pw@media.example.org/x", "bad_url"),
        ("http://media.example.org:99999/x", "bad_url"),
        ("http://", "bad_url"),
        ("http://other.example.org/x", "fetch_host_not_allowed"),
        ("http://127.0.0.1/x", "fetch_host_not_allowed"),
        ("http://[::1]/x", "fetch_host_not_allowed"),
        ("http://localhost/x", "fetch_address_refused"),
        ("http://127.0.0.1:8080/", "fetch_address_refused"),
        ("http://[::ffff:127.0.0.1]/", "fetch_address_refused"),
        ("http://169.254.169.254/latest/meta-data/", "fetch_address_refused"),
    ],
)
def test_check_url_refusals(url: str, code: str) -> None:
    allowed = ("media.example.org", "localhost", "127.0.0.1", "::ffff:127.0.0.1", "169.254.169.254")
    if code == "fetch_host_not_allowed":
        allowed = ("media.example.org",)
    with pytest.raises(FetchError) as e:
        check_url(url, allowed)
    assert e.value.code == code


class _Handler(BaseHTTPRequestHandler):
    seen_hosts: list[str] = []

    def log_message(self, *a) -> None:  # type: ignore[no-untyped-def]
        pass

    def do_GET(self) -> None:  # noqa: N802
        _Handler.seen_hosts.append(self.headers.get("Host", ""))
        port = self.server.server_address[1]
        if self.path == "/img.png":
            self._send(200, PNG_1PX)
        elif self.path == "/big":
            self._send(200, b"\0" * 5000)
        elif self.path == "/big-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"3e8\r\n" + b"\0" * 1000 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/slow":
            time.sleep(2)
            self._send(200, PNG_1PX)
        elif self.path == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif self.path == "/to-other-host":
            self._redirect(f"http://elsewhere.invalid:{port}/img.png")
        elif self.path == "/to-img":
            self._redirect("/img.png")
        elif self.path == "/loop":
            self._redirect("/loop")
        elif self.path == "/gzip":
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"abc")
        else:
            self._send(404, b"no")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, loc: str) -> None:
        self.send_response(302)
        self.send_header("Location", loc)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture()
def server() -> Iterator[int]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def _loopback_ok(ip) -> bool:  # type: ignore[no-untyped-def]
    """Test-only policy: also admit loopback, so a local server can stand in for a CDN."""
    return ip.is_loopback or is_public_address(ip)


def test_fetch_from_a_real_server(server: int) -> None:
    kw = dict(allowed_hosts=("localhost",), max_bytes=2000, timeout_s=1.0, address_ok=_loopback_ok)
    _Handler.seen_hosts.clear()
    assert fetch_media(f"http://localhost:{server}/img.png", **kw) == PNG_1PX
    # connected to the checked address, with the URL's host kept for the Host header
    assert _Handler.seen_hosts == [f"localhost:{server}"]
    assert fetch_media(f"http://localhost:{server}/to-img", **kw) == PNG_1PX
    for path, code in [
        ("/big", "file_too_large"),
        ("/big-chunked", "file_too_large"),
        ("/slow", "fetch_timeout"),
        ("/to-metadata", "fetch_host_not_allowed"),
        ("/to-other-host", "fetch_host_not_allowed"),
        ("/loop", "fetch_too_many_redirects"),
        ("/gzip", "fetch_failed"),
        ("/missing", "fetch_failed"),
    ]:
        with pytest.raises(FetchError) as e:
            fetch_media(f"http://localhost:{server}{path}", **kw)
        assert e.value.code == code, path
    # redirect to an allowed host that resolves to a private address: refused
    kw2 = dict(kw, allowed_hosts=("localhost", "169.254.169.254"))
    with pytest.raises(FetchError) as e:
        fetch_media(f"http://localhost:{server}/to-metadata", **kw2)
    assert e.value.code == "fetch_address_refused"
    # with the production policy, loopback itself is refused before connecting
    _Handler.seen_hosts.clear()
    with pytest.raises(FetchError) as e:
        fetch_media(
            f"http://localhost:{server}/img.png", allowed_hosts=("localhost",), max_bytes=2000
        )
    assert e.value.code == "fetch_address_refused" and _Handler.seen_hosts == []


def test_scan_url_route(sqlite_url: str, server: int) -> None:
    app = create_app(Settings(database_url=sqlite_url, key_cache_s=0))
    _, key = create_key(app.state.sentinelle.engine, "k", ["scan"])
    h = {"X-API-Key": key}
    with TestClient(app) as c:
        url = f"http://localhost:{server}/img.png"
        r = c.post("/v1/scan/url", json={"url": url}, headers=h)
        assert r.status_code == 403 and r.json()["error"]["code"] == "fetch_disabled"
    app2 = create_app(
        Settings(
            database_url=sqlite_url,
            key_cache_s=0,
            fetch_enabled=True,
            fetch_allowed_hosts=("localhost",),
        )
    )
    with TestClient(app2) as c:
        _Handler.seen_hosts.clear()
        r = c.post("/v1/scan/url", json={"url": url}, headers=h)
        assert r.status_code == 403 and r.json()["error"]["code"] == "fetch_address_refused"
        assert _Handler.seen_hosts == []  # never connected
        r = c.post("/v1/scan/url", json={"url": "http://example.com/x.jpg"}, headers=h)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "fetch_host_not_allowed"
        r = c.post("/v1/scan/url", json={"url": "gopher://localhost/"}, headers=h)
        assert r.status_code == 422
        r = c.post("/v1/scan/url", json={"nourl": 1}, headers=h)
        assert r.status_code == 422
