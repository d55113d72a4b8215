"""The console's change-password page: first-login change and self-service.

=======================================  ==============================================
route                                    does
=======================================  ==============================================
``GET  /console/password``               the form: current password, new one twice
``POST /console/password``               change it (CSRF); audited ``auth.password_change``
=======================================  ==============================================

An account created, or reset, by an administrator carries a temporary password
and the ``must_change_password`` flag; while it is set,
:func:`sentinelle.console.session.viewer_dep` sends every other console page here.
A successful change clears the flag, keeps the session that made it and ends
every other session of the user (a temporary password may have been seen by
somebody else). Rules (:func:`sentinelle.review.accounts.change_own_password`):
the current password must be right (a wrong one counts towards the lockout),
the new one is 12-1024 characters, typed twice the same, and differs from the
current one. Passwords are never logged or echoed back into the page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from ...errors import SentinelleError
from ...review import accounts
from ...review.errors import ReviewError
from ...service.deps import StateDep
from ...service.state import ServiceState
from ..i18n import N_
from ..session import PASSWORD_PATH, ActionDep, Viewer, ViewerDep
from ..views import redirect, render, status_for
from .review import _base, _client

router = APIRouter(prefix="/console", include_in_schema=False)

PasswordField = Annotated[str, Form(max_length=accounts.MAX_PASSWORD)]


def _page(
    request: Request,
    state: ServiceState,
    viewer: Viewer,
    *,
    done: bool = False,
    error: SentinelleError | None = None,
) -> Response:
    ctx = _base(
        state,
        viewer,
        min_length=accounts.MIN_PASSWORD,
        must_change=viewer.user.must_change_password,
        flash=N_("Password changed. Your other sessions were ended.") if done else None,
        error=error,
    )
    return render(request, "password.html", ctx, status_code=status_for(error) if error else 200)


@router.get("/password", response_class=HTMLResponse)
def password_page(
    request: Request,
    state: StateDep,
    viewer: ViewerDep,
    done: Annotated[int, Query(ge=0, le=1)] = 0,
) -> Response:
    """The change-password form (the only page while the password is temporary)."""
    return _page(request, state, viewer, done=bool(done))


@router.post("/password", response_class=HTMLResponse)
def password_change(
    request: Request,
    state: StateDep,
    viewer: ActionDep,
    current_password: PasswordField = "",
    new_password: PasswordField = "",
    new_password_again: PasswordField = "",
) -> Response:
    """Replace one's own password; the form again with the error's code on failure."""
    try:
        if new_password != new_password_again:
            raise ReviewError(
                "the two new passwords differ; type the same one twice",
                code="password_mismatch",
                status=422,
            )
        accounts.change_own_password(
            state.engine,
            viewer.user.username,
            current_password,
            new_password,
            keep_token=viewer.token,
            client=_client(request),
        )
    except SentinelleError as e:
        return _page(request, state, viewer, error=e)
    return redirect(f"{PASSWORD_PATH}?done=1", request=request)
