"""Fetch media by URL without opening a server-side request forgery (SSRF) hole.

Off by default (``SENTINELLE_FETCH_ENABLED``). When on, a URL is fetched only if:

1. its scheme is ``http`` or ``https``, it has no user-info, and its host is on
   the allow-list (``SENTINELLE_FETCH_ALLOWED_HOSTS``; an entry ``*.example.org``
   allows sub-domains of example.org, not example.org itself);
2. **every** address the host resolves to is a public unicast address: loopback,
   private (RFC 1918, ULA ``fc00::/7``), link-local (``169.254.0.0/16`` -- cloud
   metadata -- and ``fe80::/10``), multicast, reserved, unspecified, shared
   (CGNAT) and documentation ranges are refused, for IPv4 and IPv6, including
   IPv4 addresses embedded in IPv6 (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
   ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo);
3. the connection goes to the **address that was checked** (the URL host is kept
   only for the ``Host`` header and TLS SNI / certificate verification), so a DNS
   answer that changes between the check and the connection (DNS rebinding)
   cannot redirect it;
4. redirects are not followed blindly: each ``Location`` goes through 1-3 again,
   at most :data:`MAX_REDIRECTS` times;
5. the body is limited in size (declared ``Content-Length`` checked first, then
   counted while streaming) and the whole fetch in time.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Collection
from urllib.parse import urljoin, urlsplit

import httpx

from ..errors import SentinelleError

MAX_REDIRECTS = 3
MAX_URL = 2048
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",  # shared address space (CGNAT)
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "2001:db8::/32",
        "100::/64",
    )
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(SentinelleError):
    """A URL was refused or could not be fetched; ``status`` is the HTTP status to answer."""

    code = "fetch_failed"

    def __init__(self, message: str, code: str, status: int) -> None:
        super().__init__(message, code)
        self.status = status


def is_public_address(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses (see the module docstring)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public_address(ip.ipv4_mapped)
        if any(ip in n for n in _NAT64):
            return False
        if ip.sixtofour is not None and not is_public_address(ip.sixtofour):
            return False
        if ip.teredo is not None:
            return False
        if ip.scope_id:
            return False
    if any(ip.version == n.version and ip in n for n in _EXTRA_BLOCKED):
        return False
    return bool(
        ip.is_global
        and not (
            ip.is_private
            or ip.is_loopback
            or ip.is_link_local
            or ip.is_multicast
            or ip.is_reserved
            or ip.is_unspecified
        )
    )


def host_allowed(host: str, allowed_hosts: Collection[str]) -> bool:
    h = host.lower().rstrip(".")
    for a in allowed_hosts:
        a = a.lower().rstrip(".")
        if a.startswith("*."):
            if h.endswith(a[1:]) and len(h) > len(a) - 1:
                return True
        elif h == a:
            return True
    return False


def resolve(host: str, port: int) -> list[IPAddress]:
    """All addresses of ``host`` (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise FetchError(f"cannot resolve {host!r}: {e}", "fetch_dns_failed", 502) from None
    out: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if ip not in out:
            out.append(ip)
    if not out:
        raise FetchError(f"{host!r} has no address", "fetch_dns_failed", 502)
    return out


def check_url(
    url: str,
    allowed_hosts: Collection[str],
    address_ok: Callable[[IPAddress], bool] = is_public_address,
) -> tuple[str, str, int, IPAddress, str]:
    """Validate ``url``; returns ``(scheme, host, port, pinned address, path+query)``."""
    if not isinstance(url, str) or len(url) > MAX_URL or any(ord(c) < 33 for c in url):
        raise FetchError("invalid URL", "bad_url", 422)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchError("invalid URL", "bad_url", 422) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError("only http and https URLs can be fetched", "bad_url", 422)
    if parts.username is not None or parts.password is not None:
        raise FetchError("URLs with user information are refused", "bad_url", 422)
    host = (parts.hostname or "").lower()
    if not host:
        raise FetchError("URL has no host", "bad_url", 422)
    if not host_allowed(host, allowed_hosts):
        raise FetchError(
            f"host {host!r} is not on the fetch allow-list", "fetch_host_not_allowed", 403
        )
    port = port or (443 if scheme == "https" else 80)
    addresses = resolve(host, port)
    bad = [ip for ip in addresses if not address_ok(ip)]
    if bad:
        raise FetchError(
            f"host {host!r} resolves to a non-public address; refused",
            "fetch_address_refused",
            403,
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, addresses[0], path


def fetch_media(
    url: str,
    *,
    allowed_hosts: Collection[str],
    max_bytes: int,
    timeout_s: float = 10.0,
    max_redirects: int = MAX_REDIRECTS,
    address_ok: Callable[[IPAddress], bool] = is_public_address,
) -> bytes:
    """The body of ``url`` (status 200), under every rule of the module docstring.

    Raises :class:`FetchError` with ``code`` and the HTTP ``status`` to answer.
    ``address_ok`` exists for tests that serve from loopback; keep the default.
    """
    deadline = time.monotonic() + timeout_s
    current = url
    with httpx.Client(
        follow_redirects=False, timeout=httpx.Timeout(timeout_s), trust_env=False
    ) as client:
        for _ in range(max_redirects + 1):
            scheme, host, port, ip, path = check_url(current, allowed_hosts, address_ok)
            ip_host = f"[{ip}]" if ip.version == 6 else str(ip)
            default_port = 443 if scheme == "https" else 80
            host_header = host if port == default_port else f"{host}:{port}"
            target = f"{scheme}://{ip_host}:{port}{path}"
            extensions = {"sni_hostname": host} if scheme == "https" else {}
            try:
                with client.stream(
                    "GET",
                    target,
                    headers={
                        "Host": host_header,
                        "Accept": "image/*, video/*",
                        "Accept-Encoding": "identity",
                    },
                    extensions=extensions,
                ) as resp:
                    if resp.status_code in (301, 302, 303, 307, 308):
                        loc = resp.headers.get("location")
                        if not loc:
                            raise FetchError("redirect without a location", "fetch_failed", 502)
                        current = urljoin(current, loc)
                        continue
                    if resp.status_code != 200:
                        raise FetchError(
                            f"the remote server answered {resp.status_code}", "fetch_failed", 502
                        )
                    return _read_limited(resp, max_bytes, deadline)
            except httpx.TimeoutException:
                raise FetchError("fetching the URL timed out", "fetch_timeout", 504) from None
            except httpx.HTTPError as e:
                raise FetchError(
                    f"cannot fetch the URL: {type(e).__name__}", "fetch_failed", 502
                ) from None
    raise FetchError(f"more than {max_redirects} redirects", "fetch_too_many_redirects", 502)


def _read_limited(resp: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    encoding = resp.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):  # compressed bodies could hide a bomb
        raise FetchError(f"remote sent {encoding!r}-encoded content", "fetch_failed", 502)
    declared = resp.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(
            f"remote file is over the limit of {max_bytes} bytes", "file_too_large", 413
        )
    buf = bytearray()
    for chunk in resp.iter_raw():
        buf += chunk
        if len(buf) > max_bytes:
            raise FetchError(
                f"remote file is over the limit of {max_bytes} bytes", "file_too_large", 413
            )
        if time.monotonic() > deadline:
            raise FetchError("fetching the URL timed out", "fetch_timeout", 504)
    return bytes(buf)
