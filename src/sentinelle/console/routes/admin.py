"""The console's administrative pages: preservation, audit trail, users.

=============================================  ==========================================
route                                          does (permission, checked server-side)
=============================================  ==========================================
``GET  /console/holds``                        evidence per case, holds, deletion log
                                               (``evidence.view``: legal, admin)
``POST /console/holds/legal``                  place a legal hold on a case, with a
                                               reason (``evidence.manage``: legal)
``POST /console/holds/{id}/release``           release a hold, reason required
``POST /console/holds/{id}/extend``            push a retention hold's end back
``POST /console/evidence/{case}/destroy``      destruction on request, reason required;
                                               refused under an active hold unless
                                               ``force`` (``evidence.destroy``: admin)
``GET  /console/deletions/{id}``               one recorded destruction proof
``GET  /console/audit``                        recent audit entries (``audit.view``):
                                               actor, action, target, time only
``POST /console/audit/verify``                 recompute the hash chain, show the result
``GET  /console/users``                        accounts (``user.manage``: admin)
``POST /console/users``                        create with a role and a temporary
                                               password (shown once)
``POST /console/users/{name}/role``            change role (revokes the user's sessions)
``POST /console/users/{name}/disable``         disable (revokes sessions) / ``enable``
``POST /console/users/{name}/password``        reset to a new temporary password
=============================================  ==========================================

Every POST needs the session's CSRF token (:func:`sentinelle.console.session.action_dep`).
Every change is audited by the layer that makes it, in the same transaction
(``hold.legal``, ``hold.release``, ``hold.extend``, ``evidence.destroy`` with the
proof's hash, ``user.create``, ``user.role_change``, ``user.disable``...); the
pages add ``audit.view`` and ``audit.verify``. The audit page never shows an
entry's details (they may name a reason, never media or prompt text, but the
list needs only who did what to what, and when).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from ...errors import SentinelleError
from ...review import accounts
from ...review.errors import Conflict, NotFound, ReviewError
from ...review.roles import ROLES, require
from ...service.deps import DbId, StateDep
from ...service.state import ServiceState
from .. import preservation
from ..i18n import N_
from ..session import ActionDep, Viewer, ViewerDep
from ..views import is_htmx, redirect, render, status_for
from .review import _base, _page_error, _record

router = APIRouter(prefix="/console", include_in_schema=False)

AUDIT_PAGE_SIZE = 100
MAX_DAYS = 36500

#: Flash messages by key (msgids, translated by the template).
FLASHES = {
    "legal": N_("Legal hold placed."),
    "released": N_("Hold released."),
    "extended": N_("Hold extended."),
    "created": N_("User created."),
    "role": N_("Role changed; the user's sessions were ended."),
    "disabled": N_("User disabled; their sessions were ended."),
    "enabled": N_("User enabled."),
}


# ================================================================ helpers
def _int_field(raw: str, name: str, *, low: int = 1, high: int = 2**62) -> int:
    """A whole number from a form field, or ReviewError ``bad_<name>`` (422)."""
    try:
        value = int(raw.strip())
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ReviewError(
            f"{name.replace('_', ' ')} must be a whole number from {low} to {high}",
            code=f"bad_{name}",
        )
    return value


def _case_exists(state: ServiceState, case_id: int) -> None:
    from ...review.tables import cases

    with state.engine.connect() as conn:
        found = conn.execute(sa.select(cases.c.id).where(cases.c.id == case_id)).scalar()
    if found is None:
        raise NotFound(f"no case {case_id}", code="unknown_case")


def _temporary_password() -> str:
    """20 random characters from an unambiguous alphabet (about 100 bits)."""
    alphabet = "abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(20))
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))


def _not_self(viewer: Viewer, username: str, what: str) -> None:
    if accounts.normalize_username(username) == viewer.user.username:
        raise Conflict(
            f"you cannot {what} your own account; ask another administrator",
            code="self_change",
        )


# ================================================================ preservation
def _holds_context(state: ServiceState, viewer: Viewer, case_id: int | None) -> dict[str, Any]:
    return _base(
        state,
        viewer,
        cases=preservation.overview(state.engine, case_id=case_id),
        deletions=preservation.deletions(state.engine),
        case_filter=case_id,
        can_manage=viewer.user.can("evidence.manage"),
        can_destroy=viewer.user.can("evidence.destroy"),
    )


def _holds_page(
    request: Request,
    state: ServiceState,
    viewer: Viewer,
    *,
    case_id: int | None = None,
    flash: str | None = None,
    error: SentinelleError | None = None,
) -> Response:
    try:
        require(viewer.user, "evidence.view")
        ctx = _holds_context(state, viewer, case_id)
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    ctx.update(flash=FLASHES.get(flash or ""), error=error)
    return render(request, "holds.html", ctx, status_code=status_for(error) if error else 200)


@router.get("/holds", response_class=HTMLResponse)
def holds_page(
    request: Request,
    state: StateDep,
    viewer: ViewerDep,
    case: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    flash: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Evidence per case with its holds (jurisdiction, start, expiry), and the deletion log."""
    return _holds_page(request, state, viewer, case_id=case, flash=flash)


def _hold_action(
    request: Request, state: ServiceState, viewer: Viewer, permission: str, flash: str, fn: Any
) -> Response:
    """Run one hold change after the permission check; the page again, or its error."""
    try:
        require(viewer.user, permission)
        fn()
    except SentinelleError as e:
        if isinstance(e, ReviewError) and e.code == "forbidden":
            return _page_error(request, state, viewer, e)
        return _holds_page(request, state, viewer, error=e)
    return redirect(f"/console/holds?flash={flash}", request=request)


@router.post("/holds/legal", response_class=HTMLResponse)
def hold_place(
    request: Request,
    state: StateDep,
    viewer: ActionDep,
    case_id: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """A legal hold (no end date) on a review case; audited ``hold.legal``."""
    from ...evidence import place_legal_hold

    def place() -> None:
        cid = _int_field(case_id, "case_id")
        _case_exists(state, cid)
        place_legal_hold(state.engine, case_id=cid, actor=viewer.actor, reason=reason)

    return _hold_action(request, state, viewer, "evidence.manage", "legal", place)


@router.post("/holds/{hold_id}/release", response_class=HTMLResponse)
def hold_release(
    request: Request,
    hold_id: DbId,
    state: StateDep,
    viewer: ActionDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Release a legal or retention hold, with a reason; audited ``hold.release``."""
    from ...evidence import release_hold

    def release() -> None:
        release_hold(state.engine, hold_id, actor=viewer.actor, reason=reason)

    return _hold_action(request, state, viewer, "evidence.manage", "released", release)


@router.post("/holds/{hold_id}/extend", response_class=HTMLResponse)
def hold_extend(
    request: Request,
    hold_id: DbId,
    state: StateDep,
    viewer: ActionDep,
    days: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Push a retention hold's end back by ``days`` (never shorter); audited ``hold.extend``."""
    from ...evidence import extend_hold

    def extend() -> None:
        n = _int_field(days, "days", high=MAX_DAYS)
        extend_hold(state.engine, hold_id, actor=viewer.actor, reason=reason, days=n)

    return _hold_action(request, state, viewer, "evidence.manage", "extended", extend)


@router.post("/evidence/{case_id}/destroy", response_class=HTMLResponse)
def evidence_destroy(
    request: Request,
    case_id: DbId,
    state: StateDep,
    viewer: ActionDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
    confirm: Annotated[str, Form(max_length=20)] = "",
    force: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Destruction on request (administrators only), then the recorded proof.

    A reason is required, and the case number typed again as confirmation.
    Under an active hold it is refused (409 ``under_hold``) unless ``force`` is
    ticked: the overridden holds are then released and listed in the proof.
    :func:`sentinelle.evidence.store.destroy_case` writes the proof to the
    deletion log and its SHA-256 to the audit trail, in one transaction.
    """
    from ...evidence import destroy_case

    try:
        require(viewer.user, "evidence.destroy")
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    try:
        if confirm.strip() != str(case_id):
            raise ReviewError(
                f"type the case number ({case_id}) to confirm the destruction",
                code="bad_confirmation",
            )
        proof = destroy_case(
            state.engine, case_id, actor=viewer.actor, reason=reason, force=force == "on"
        )
    except SentinelleError as e:
        return _holds_page(request, state, viewer, error=e)
    return redirect(f"/console/deletions/{proof['deletion_id']}?new=1", request=request)


@router.get("/deletions/{deletion_id}", response_class=HTMLResponse)
def deletion_page(
    request: Request,
    deletion_id: DbId,
    state: StateDep,
    viewer: ViewerDep,
    new: Annotated[int, Query(ge=0, le=1)] = 0,
) -> Response:
    """One destruction and its proof: what was destroyed, by whom, why, which holds."""
    try:
        require(viewer.user, "evidence.view")
        record = preservation.deletion(state.engine, deletion_id)
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    flash = N_("Evidence destroyed. The proof below is recorded.") if new else None
    return render(request, "deletion.html", _base(state, viewer, d=record, flash=flash))


# ================================================================ audit
def _audit_context(
    state: ServiceState,
    viewer: Viewer,
    *,
    action: str = "",
    actor: str = "",
    before: int | None = None,
) -> dict[str, Any]:
    from ...audit import list_events

    entries = list_events(
        state.engine,
        limit=AUDIT_PAGE_SIZE,
        action=action or None,
        actor=actor or None,
        before_id=before,
    )
    older = entries[-1].id if len(entries) == AUDIT_PAGE_SIZE else None
    return _base(
        state, viewer, entries=entries, action=action, actor=actor, older=older, verify=None
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    state: StateDep,
    viewer: ViewerDep,
    action: Annotated[str, Query(max_length=100)] = "",
    actor: Annotated[str, Query(max_length=200)] = "",
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """Recent audit entries, newest first (filter by action prefix or exact actor)."""
    try:
        require(viewer.user, "audit.view")
        _record(
            state,
            actor=viewer.actor,
            action="audit.view",
            target="audit_log",
            details={"action": action or None, "actor": actor or None, "before": before},
        )
        ctx = _audit_context(
            state, viewer, action=action.strip(), actor=actor.strip(), before=before
        )
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    return render(request, "audit.html", ctx)


@router.post("/audit/verify", response_class=HTMLResponse)
def audit_verify(
    request: Request,
    state: StateDep,
    viewer: ActionDep,
) -> Response:
    """Recompute the whole chain (:func:`sentinelle.audit.verify_chain`) and show it.

    The check runs first; its outcome is then recorded as ``audit.verify``.
    """
    from ...audit import verify_chain

    try:
        require(viewer.user, "audit.view")
        result = verify_chain(state.engine)
        _record(
            state,
            actor=viewer.actor,
            action="audit.verify",
            target="audit_log",
            details={"ok": result.ok, "checked": result.checked, "problems": len(result.problems)},
        )
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    if is_htmx(request):
        return render(request, "_verify.html", {"verify": result})
    ctx = _audit_context(state, viewer)
    ctx["verify"] = result
    return render(request, "audit.html", ctx)


# ================================================================ users
def _users_page(
    request: Request,
    state: ServiceState,
    viewer: Viewer,
    *,
    flash: str | None = None,
    error: SentinelleError | None = None,
    issued: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    try:
        require(viewer.user, "user.manage")
        listed = accounts.list_users(state.engine)
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    ctx = _base(
        state,
        viewer,
        users=listed,
        roles=ROLES,
        flash=FLASHES.get(flash or ""),
        error=error,
        issued=issued,
        form=form or {},
    )
    return render(request, "users.html", ctx, status_code=status_for(error) if error else 200)


@router.get("/users", response_class=HTMLResponse)
def users_page(
    request: Request,
    state: StateDep,
    viewer: ViewerDep,
    flash: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Every account: role, TOTP, state, last login."""
    return _users_page(request, state, viewer, flash=flash)


def _user_action(
    request: Request, state: ServiceState, viewer: Viewer, flash: str, fn: Any
) -> Response:
    try:
        require(viewer.user, "user.manage")
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    try:
        fn()
    except SentinelleError as e:
        return _users_page(request, state, viewer, error=e)
    return redirect(f"/console/users?flash={flash}", request=request)


@router.post("/users", response_class=HTMLResponse)
def user_create(
    request: Request,
    state: StateDep,
    viewer: ActionDep,
    username: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Create an account with a temporary password, shown once on the answer.

    The password is generated here, never logged or stored in the clear (only
    its argon2 hash); hand it over out of band. The user must replace it at first
    login (``must_change_password``, see :mod:`sentinelle.console.routes.password`). Audited
    ``user.create``.
    """
    try:
        require(viewer.user, "user.manage")
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    password = _temporary_password()
    try:
        user = accounts.create_user(
            state.engine,
            username,
            password,
            role,
            display_name=display_name,
            actor=viewer.actor,
            temporary=True,
        )
    except SentinelleError as e:
        form = {"username": username[:64], "display_name": display_name, "role": role}
        return _users_page(request, state, viewer, error=e, form=form)
    issued = {"username": user.username, "password": password, "what": "created"}
    return _users_page(request, state, viewer, flash="created", issued=issued)


@router.post("/users/{username}/role", response_class=HTMLResponse)
def user_role(
    request: Request,
    username: str,
    state: StateDep,
    viewer: ActionDep,
    role: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Change a user's role (not one's own); their sessions end. Audited ``user.role_change``."""

    def change() -> None:
        _not_self(viewer, username, "change the role of")
        accounts.set_role(state.engine, username, role, actor=viewer.actor)

    return _user_action(request, state, viewer, "role", change)


@router.post("/users/{username}/disable", response_class=HTMLResponse)
def user_disable(
    request: Request,
    username: str,
    state: StateDep,
    viewer: ActionDep,
) -> Response:
    """Disable an account (not one's own) and end its sessions; audited ``user.disable``."""

    def disable() -> None:
        _not_self(viewer, username, "disable")
        accounts.set_disabled(state.engine, username, True, actor=viewer.actor)

    return _user_action(request, state, viewer, "disabled", disable)


@router.post("/users/{username}/enable", response_class=HTMLResponse)
def user_enable(
    request: Request,
    username: str,
    state: StateDep,
    viewer: ActionDep,
) -> Response:
    """Re-enable a disabled account; audited ``user.enable``."""

    def enable() -> None:
        accounts.set_disabled(state.engine, username, False, actor=viewer.actor)

    return _user_action(request, state, viewer, "enabled", enable)


@router.post("/users/{username}/password", response_class=HTMLResponse)
def user_password(
    request: Request,
    username: str,
    state: StateDep,
    viewer: ActionDep,
) -> Response:
    """A new temporary password (shown once, to be replaced at the user's next login);
    clears a lockout, ends the user's sessions."""
    try:
        require(viewer.user, "user.manage")
        _not_self(viewer, username, "reset the password of")
        password = _temporary_password()
        user = accounts.set_password(
            state.engine, username, password, actor=viewer.actor, temporary=True
        )
    except SentinelleError as e:
        if isinstance(e, ReviewError) and e.code == "forbidden":
            return _page_error(request, state, viewer, e)
        return _users_page(request, state, viewer, error=e)
    issued = {"username": user.username, "password": password, "what": "reset"}
    return _users_page(request, state, viewer, issued=issued)
