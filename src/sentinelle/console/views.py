"""Rendering for the console: Jinja2 templates, static files, error pages.

Templates live in ``sentinelle/templates/console/`` (autoescaped Jinja2, no
front-end build step); the static files (``console.css``, the vendored
``htmx.min.js``, htmx 2.0.11, BSD-0, and the few lines of ``console.js``) in
``sentinelle/static/``. Every response
made here carries :data:`sentinelle.console.security.SECURITY_HEADERS`.

Requests made by htmx (header ``HX-Request``) get page fragments; errors for
them are a small fragment too, so a failed action never replaces a whole page.

Every page is rendered in the viewer's language (:mod:`sentinelle.console.i18n`):
the logged-in user's saved choice (``request.state.locale``, set by
:func:`sentinelle.console.session.load_viewer`), else the language cookie, else
English; labels of stored codes come from :mod:`sentinelle.console.labels`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from ..errors import MediaError, SentinelleError
from . import i18n, labels
from .security import COOKIE_PATH, apply_security_headers, cookie_secure

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
TEMPLATES.env.policies["ext.i18n.trimmed"] = True
i18n.install(TEMPLATES.env)
labels.install(TEMPLATES.env)
STATIC_FILES = {
    "console.css": "text/css; charset=utf-8",
    "htmx.min.js": "text/javascript; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}

# Codes of other modules' errors that are not 400 (review errors carry ``status``).
_STATUS_BY_CODE = {
    "unknown_blob": 404,
    "evidence_destroyed": 410,
    "under_hold": 409,
    "no_master_key": 503,
    "decrypt_failed": 500,
    "unknown_report": 404,
    "unknown_draft": 404,
    "unknown_hold": 404,
    "unknown_deletion": 404,
    "no_evidence": 404,
    "bad_hold": 422,
    "bad_evidence": 422,
    "unknown_jurisdiction": 422,
}


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def request_locale(request: Request) -> str:
    """The language of ``request``: the viewer's saved choice, the cookie, or English."""
    return (
        i18n.normalize(getattr(request.state, "locale", None))
        or i18n.normalize(request.cookies.get(i18n.LOCALE_COOKIE))
        or i18n.DEFAULT_LOCALE
    )


def set_locale_cookie(response: Response, request: Request, locale: str | None) -> None:
    """Remember ``locale`` for the pages shown before login (one year; nothing secret)."""
    chosen = i18n.normalize(locale)
    if chosen is None:
        return
    response.set_cookie(
        i18n.LOCALE_COOKIE,
        chosen,
        max_age=365 * 24 * 3600,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request),
    )


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render ``console/<name>`` with ``context`` (plus ``request``) in the request's
    language, secured headers."""
    ctx = dict(context or {})
    with i18n.use_locale(request_locale(request)) as locale:
        response = TEMPLATES.TemplateResponse(
            request, f"console/{name}", ctx, status_code=status_code
        )
    response.headers["Content-Language"] = locale
    apply_security_headers(response)
    return response


def redirect(url: str, *, request: Request | None = None) -> Response:
    """303 to ``url``; for htmx requests an ``HX-Redirect`` (htmx follows it)."""
    if request is not None and is_htmx(request):
        response: Response = Response(status_code=200, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    return apply_security_headers(response)


def status_for(err: SentinelleError) -> int:
    """The HTTP status for an error raised by a service layer."""
    status = getattr(err, "status", None)
    if isinstance(status, int) and 400 <= status < 600:
        return status
    if isinstance(err, MediaError):
        return 422
    return _STATUS_BY_CODE.get(err.code, 400)


def error_page(
    request: Request,
    err: SentinelleError | None = None,
    *,
    code: str | None = None,
    message: str | None = None,
    status_code: int | None = None,
    context: dict[str, Any] | None = None,
) -> HTMLResponse:
    """A calm error page (or fragment for htmx) showing the stable code and message."""
    code = code or (err.code if err else "error")
    message = message or (err.message if err else "something went wrong")
    status = status_code or (status_for(err) if err else 400)
    ctx = {**(context or {}), "code": code, "message": message, "status": status}
    if is_htmx(request):
        # Shown in the page's alert area; the element that asked stays as it was.
        response = render(request, "_error.html", ctx, status_code=status)
        response.headers["HX-Retarget"] = "#alerts"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return render(request, "error.html", ctx, status_code=status)


@lru_cache(maxsize=len(STATIC_FILES))
def static_bytes(name: str) -> bytes:
    """One of :data:`STATIC_FILES` from the installed package."""
    return resources.files("sentinelle").joinpath("static", name).read_bytes()
