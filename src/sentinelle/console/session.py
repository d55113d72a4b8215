"""Who is using the console: FastAPI dependencies for pages and actions.

::

    @router.get("/console/queue")
    def queue(viewer: Viewer = Depends(viewer_dep)): ...       # any logged-in user

    @router.post("/console/items/{item_id}/reveal")
    def reveal(viewer: Viewer = Depends(action_dep)): ...      # + CSRF token + origin

:func:`viewer_dep` resolves the session cookie through
:func:`sentinelle.review.accounts.authenticate` (expiry, idle timeout,
revocation, disabled accounts). Without a live session a page request is
redirected to the login page (303; ``HX-Redirect`` for htmx requests).

:func:`action_dep` additionally checks the CSRF token (header ``X-CSRF-Token``
or form field ``csrf_token``) and the ``Origin``; a failure is 403
``csrf_failed``. Role checks happen in the service layer
(:func:`sentinelle.review.roles.require`), server-side, on every action.

While the user's ``must_change_password`` flag is set (a temporary password
issued by an administrator), both dependencies send every request except those
in :data:`ALLOWED_WHILE_MUST_CHANGE` to :data:`PASSWORD_PATH` instead (303;
``HX-Redirect`` for htmx requests): nothing else of the console is reachable
until the user has chosen their own password.

:func:`load_viewer` also reads the language the user chose
(``request.state.locale``), which :func:`sentinelle.console.views.render` uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ..review.accounts import User, authenticate
from ..review.errors import AuthError
from ..review.exposure import get_settings
from .security import CSRF_FIELD, csrf_for_session, csrf_ok, session_token

#: The change-password page (see :mod:`sentinelle.console.routes.password`).
PASSWORD_PATH = "/console/password"
#: What a user with a temporary password may still reach: changing it, logging out.
ALLOWED_WHILE_MUST_CHANGE = frozenset({PASSWORD_PATH, "/console/logout"})


@dataclass(frozen=True)
class Viewer:
    """The logged-in user of a request, with the session's CSRF token."""

    user: User
    token: str
    csrf: str

    @property
    def actor(self) -> str:
        return self.user.actor


def _login_redirect(request: Request) -> HTTPException:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    url = "/console/login"
    if request.method == "GET" and target.startswith("/console/") and "login" not in target:
        url += "?next=" + quote(target, safe="/")
    if request.headers.get("hx-request") == "true":
        return HTTPException(401, "log in again", headers={"HX-Redirect": url})
    return HTTPException(303, "log in first", headers={"Location": url})


def _password_redirect(request: Request) -> HTTPException:
    """To the change-password page; the body names the stable code for scripts."""
    detail = {
        "error": {
            "code": "password_change_required",
            "message": "choose your own password first: " + PASSWORD_PATH,
        }
    }
    if request.headers.get("hx-request") == "true":
        return HTTPException(403, detail, headers={"HX-Redirect": PASSWORD_PATH})
    return HTTPException(303, detail, headers={"Location": PASSWORD_PATH})


def load_viewer(request: Request) -> Viewer | None:
    """The viewer of ``request``'s session cookie, or None (blocking: DB access)."""
    token = session_token(request)
    if token is None:
        return None
    engine = request.app.state.sentinelle.engine
    try:
        user = authenticate(engine, token)
    except AuthError:
        return None
    # the language the user chose (None: never chose; the views fall back to the cookie)
    request.state.locale = get_settings(engine, user.id).locale
    return Viewer(user=user, token=token, csrf=csrf_for_session(token))


async def viewer_dep(request: Request) -> Viewer:
    """``Depends(viewer_dep)``: the logged-in viewer, else a redirect to log in
    (or to the change-password page while the password is a temporary one)."""
    viewer = await run_in_threadpool(load_viewer, request)
    if viewer is None:
        raise _login_redirect(request)
    if viewer.user.must_change_password and request.url.path not in ALLOWED_WHILE_MUST_CHANGE:
        raise _password_redirect(request)
    return viewer


async def action_dep(request: Request) -> Viewer:
    """``Depends(action_dep)``: logged in AND a valid CSRF token and origin."""
    viewer = await viewer_dep(request)
    form_value = None
    if "x-csrf-token" not in request.headers:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            # max_files=0: a console form never carries a file, and a file part would
            # be spooled to a temporary file on disk; refuse it (400) instead.
            value = (await request.form(max_files=0)).get(CSRF_FIELD)
            form_value = value if isinstance(value, str) else None
    if not csrf_ok(request, viewer.csrf, form_value):
        raise HTTPException(
            403,
            {"error": {"code": "csrf_failed", "message": "missing or wrong CSRF token; reload"}},
        )
    return viewer


#: Route parameter types: ``viewer: ViewerDep`` (any page), ``viewer: ActionDep`` (a POST).
ViewerDep = Annotated[Viewer, Depends(viewer_dep)]
ActionDep = Annotated[Viewer, Depends(action_dep)]
