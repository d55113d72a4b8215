"""Browser-side security of the console: session cookie, CSRF tokens, headers.

**Session cookie.** The login session token (made and checked by
:mod:`sentinelle.review.accounts`, stored hashed there) travels in one cookie,
``sentinelle_session``: ``HttpOnly`` (no script can read it), ``SameSite=Strict``
(never sent on a request started by another site), ``Path=/console``, and
``Secure`` unless the console is served over plain HTTP on a loopback address
(``make run``).

**CSRF.** Every state-changing request (every POST) must carry a token, in the
``X-CSRF-Token`` header (htmx sends it from ``hx-headers``) or a ``csrf_token``
form field. For a logged-in user the token is derived from the session token:
``HMAC-SHA256(session_token, "csrf")``. Nothing has to be stored, every worker
process agrees, the token changes with each login, and it reveals nothing about
the session token. Before login (the login form itself) a random token is set
in a separate short-lived ``sentinelle_login_csrf`` cookie and must be echoed in
the form ("double submit"). A request whose ``Origin`` header names another
site is refused as well.

**Login throttle.** Besides the per-account lockout, each client address gets
:data:`LOGIN_BURST` login attempts at once, then one per 6 s (429
``login_rate_limited`` with ``Retry-After``): one address cannot try a common password
on every account. Behind a reverse proxy the address is the one uvicorn's proxy headers
give (trusted from 127.0.0.1 only by default).

**Signed media links.** A revealed video is played from a URL that carries an
expiry and an HMAC bound to the session (:func:`sign_media` /
:func:`check_media`), so a copied link is useless to anyone else and for long.

**Headers.** :data:`SECURITY_HEADERS` go on every console response: a strict
Content-Security-Policy (scripts and styles only from ``/console/static``; images
also from ``data:``), no framing, no referrer to other sites, no caching.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

from fastapi import Request, Response

SESSION_COOKIE = "sentinelle_session"
LOGIN_CSRF_COOKIE = "sentinelle_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
COOKIE_PATH = "/console"
MEDIA_LINK_TTL_S = 120
#: Login attempts per client address (token bucket, per instance): 10 at once, then one
#: every 6 s. Counted before the password is checked; the per-account lockout is separate.
LOGIN_BURST = 10
LOGIN_RATE_PER_S = 10 / 60

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # "same-origin", not "no-referrer": with no-referrer Chromium sends
    # ``Origin: null`` on form posts, which the origin check must refuse.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), autoplay=()",
}


def apply_security_headers(response: Response) -> Response:
    """Set :data:`SECURITY_HEADERS` on ``response`` (kept where a route set its own)."""
    for name, value in SECURITY_HEADERS.items():
        if name not in response.headers:
            response.headers[name] = value
    return response


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def cookie_secure(request: Request) -> bool:
    """``Secure`` cookies except over plain HTTP to a loopback address (local demo)."""
    if request.url.scheme == "https":
        return True
    return not _is_loopback(request.url.hostname or "")


def set_session_cookie(
    response: Response, request: Request, token: str, *, max_age_s: int | None = None
) -> None:
    """Store the session token in the HttpOnly, SameSite=Strict session cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age_s,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request),
    )


def session_token(request: Request) -> str | None:
    """The session token from the cookie (unchecked), or None."""
    token = request.cookies.get(SESSION_COOKIE)
    return token if token and len(token) <= 512 else None


# ------------------------------------------------------------------ CSRF
def csrf_for_session(token: str) -> str:
    """The CSRF token of a session: ``HMAC-SHA256(session_token, "csrf")`` in hex."""
    return hmac.new(token.encode(), b"csrf", hashlib.sha256).hexdigest()


def new_login_csrf() -> str:
    """A fresh random token for the login form (set it with :func:`set_login_csrf`)."""
    return secrets.token_urlsafe(32)


def set_login_csrf(response: Response, request: Request, value: str) -> None:
    """The login form's token as a 10-minute HttpOnly cookie (double submit)."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        max_age=600,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request),
    )


def presented_csrf(request: Request, form_value: str | None = None) -> str:
    """The token the request carries: the header first, else the form field."""
    return request.headers.get(CSRF_HEADER) or form_value or ""


def same_origin(request: Request) -> bool:
    """False when an ``Origin`` (or, lacking it, ``Referer``) names another host.

    Browsers send ``Origin`` on every POST; its absence (curl, old clients) is not
    an attack by itself, the token check still applies.
    """
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin != "null"
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return parts.netloc == host


def csrf_ok(request: Request, expected: str, form_value: str | None = None) -> bool:
    """Constant-time check of the presented token against ``expected`` plus origin."""
    got = presented_csrf(request, form_value)
    return bool(expected) and same_origin(request) and hmac.compare_digest(got, expected)


# ------------------------------------------------------------ media links
def sign_media(token: str, item_id: int, *, now: float | None = None) -> str:
    """``"<expiry>.<hmac>"``: a short-lived grant to fetch item ``item_id``'s media."""
    exp = int((now if now is not None else time.time()) + MEDIA_LINK_TTL_S)
    mac = hmac.new(token.encode(), f"media:{item_id}:{exp}".encode(), hashlib.sha256)
    return f"{exp}.{mac.hexdigest()}"


def check_media(token: str, item_id: int, grant: str, *, now: float | None = None) -> bool:
    """True when ``grant`` was made by :func:`sign_media` for this session and item
    and has not expired."""
    exp_s, _, mac = grant.partition(".")
    if not exp_s.isdigit() or len(exp_s) > 12:
        return False
    exp = int(exp_s)
    if exp < (now if now is not None else time.time()):
        return False
    want = hmac.new(token.encode(), f"media:{item_id}:{exp}".encode(), hashlib.sha256)
    return hmac.compare_digest(mac, want.hexdigest())
