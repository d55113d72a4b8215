"""The review console: HTML pages under ``/console`` (FastAPI + Jinja2 + htmx).

Pages (every one needs a login session, see :mod:`sentinelle.console.session`):

=======================================  ==============================================
route                                    does
=======================================  ==============================================
``GET  /console/login``, ``POST``        password (+ TOTP) login; sets the session cookie
``POST /console/logout``                 revokes the session
``GET  /console/queue``                  cases by status; ``POST /console/queue/next``
                                         takes the most urgent open case
``GET  /console/cases/{id}``             one platform account: hash matches, guard
                                         blocks, provenance verdicts, decisions, history
``POST /console/cases/{id}/take``        assign to oneself
``POST /console/cases/{id}/pass``        pass to the queue or a colleague, no penalty
``GET  /console/items/{id}/preview``     blurred (grayscale) preview image, no-store
``POST /console/items/{id}/reveal``      the item in the clear (htmx fragment); audited
                                         ``media.reveal``; counts against the daily cap
``POST /console/items/{id}/reblur``      back to the blurred fragment
``GET  /console/items/{id}/video``       a revealed video's bytes (signed, 2-minute link)
``POST /console/items/{id}/decide``      confirm / reject + category + notes
``POST /console/decisions/{id}/approve`` second review (accept / return)
``GET  /console/reports/{id}``           report draft + its XSD validation result
``GET  /console/settings``, ``POST``     the reviewer's protection settings
``POST /console/break``                  "I took a break" (resets the reminder)
``GET  /console/metrics``                transparency metrics (export links)
=======================================  ==============================================

Media never leaves in the clear except in the response to an audited reveal,
and never with caching allowed. Media bytes and their renderings are never
logged; errors are shown with their stable code.
"""

from __future__ import annotations

import base64
import logging
import math
import os
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ...audit import record_event
from ...errors import SentinelleError
from ...review import accounts, cases, decisions, exposure
from ...review.errors import NotFound, PermissionDenied, ReviewError
from ...review.roles import require
from ...service.deps import DbId, StateDep
from ...service.state import ServiceState
from .. import blur, labels
from ..i18n import N_
from ..security import (
    LOGIN_BURST,
    LOGIN_CSRF_COOKIE,
    LOGIN_RATE_PER_S,
    apply_security_headers,
    check_media,
    clear_session_cookie,
    csrf_ok,
    new_login_csrf,
    set_login_csrf,
    set_session_cookie,
    sign_media,
)
from ..session import ActionDep, Viewer, ViewerDep, load_viewer
from ..views import (
    STATIC_FILES,
    error_page,
    is_htmx,
    redirect,
    render,
    set_locale_cookie,
    static_bytes,
    status_for,
)

log = logging.getLogger("sentinelle.console")

router = APIRouter(prefix="/console", include_in_schema=False)


CATEGORY_CHOICES = decisions.INDUSTRY_CATEGORIES
#: What each industry classification code means (translated where shown, see console.labels).
CATEGORY_LABELS = labels.CATEGORY_LABELS
#: Queue tabs: (status, label); labels are msgids, translated by the template.
QUEUE_TABS = (
    ("open", N_("Waiting")),
    ("awaiting_approval", N_("Awaiting approval")),
    ("closed", N_("Closed")),
)


# ================================================================ helpers
@dataclass(frozen=True)
class ExposureBadge:
    """What the header shows about today's exposure."""

    viewed: int
    reveals: int
    cap: int | None
    remaining: int | None
    over_cap: bool
    break_due: bool
    since_break_items: int
    since_break_minutes: int

    @property
    def level(self) -> str:
        if self.over_cap:
            return "full"
        if self.cap and self.viewed >= 0.8 * self.cap:
            return "near"
        return ""


def _badge(st: exposure.ExposureStatus) -> ExposureBadge:
    return ExposureBadge(
        viewed=st.items_viewed,
        reveals=st.reveals,
        cap=st.cap,
        remaining=st.remaining,
        over_cap=st.over_cap,
        break_due=st.break_due,
        since_break_items=st.items_since_break,
        since_break_minutes=int(st.minutes_since_break),
    )


def _base(state: ServiceState, viewer: Viewer, **extra: Any) -> dict[str, Any]:
    """Context every logged-in page needs: user, CSRF token, exposure badge."""
    st = exposure.exposure_status(state.engine, viewer.user.id)
    return {
        "user": viewer.user,
        "csrf": viewer.csrf,
        "exposure": _badge(st),
        **extra,
    }


def _page_error(
    request: Request, state: ServiceState, viewer: Viewer, err: SentinelleError
) -> Response:
    """The error page for a logged-in viewer (header and exposure badge kept)."""
    return error_page(request, err, context=_base(state, viewer))


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _safe_next(value: str | None) -> str:
    """Only local console paths are followed after login (no open redirect)."""
    if (
        value
        and value.startswith("/console/")
        and not any(c in value for c in ("\\", "\n", "\r", "//"))
    ):
        return value
    return "/console/queue"


def _evidence(state: ServiceState) -> Any:
    """The encrypted evidence store (its master key from the environment)."""
    from ...evidence import EvidenceStore, load_master_key

    return EvidenceStore(state.engine, load_master_key(os.environ))


def _item_and_case(state: ServiceState, viewer: Viewer, item_id: int) -> tuple[Any, Any]:
    """(ItemView, CaseView) for ``item_id`` after the ``case.view`` check."""
    require(viewer.user, "case.view")
    case_id = _case_of_item(state, item_id)
    view = cases.load_case(state.engine, case_id)
    for item in view.items:
        if item.id == item_id:
            return item, view
    raise NotFound(f"no item {item_id}", code="unknown_item")


def _case_of_item(state: ServiceState, item_id: int) -> int:
    import sqlalchemy as sa

    from ...review.tables import case_items

    with state.engine.connect() as conn:
        cid = conn.execute(
            sa.select(case_items.c.case_id).where(case_items.c.id == item_id)
        ).scalar()
    if cid is None:
        raise NotFound(f"no item {item_id}", code="unknown_item")
    return int(cid)


def _load_media(state: ServiceState, viewer: Viewer, item: Any) -> tuple[bytes, str]:
    """Decrypt an item's media in memory (audited ``evidence.read`` by the store).

    The blob must belong to the item's own case: an item pointing at another
    case's evidence is refused rather than shown.
    """
    if item.media_blob_id is None:
        raise NotFound(f"item {item.id} has no media attached", code="no_media")
    blob = _evidence(state).read(int(item.media_blob_id), actor=viewer.actor)
    if blob.case_id != item.case_id:
        raise PermissionDenied("the item's media belongs to another case", code="forbidden")
    return blob.data, blob.media_type


def _record(state: ServiceState, **kwargs: Any) -> None:
    """Append an audit event (``sentinelle.audit``)."""
    record_event(state.engine, **kwargs)


def _reveal_sharp(
    state: ServiceState, viewer: Viewer, data: bytes, *, target: str, details: dict[str, Any]
) -> tuple[blur.Preview, Any, Any]:
    """The one reveal path (review items and triage groups): render in the clear, count it
    against the daily cap atomically (concurrent reveals cannot all pass the earlier check),
    then audit ``media.reveal``; the caller sends pixels only after this returns."""
    settings = exposure.get_settings(state.engine, viewer.user.id)
    preview = blur.render_preview(data, blur_level=0, grayscale=settings.grayscale)
    st = exposure.record_exposure(
        state.engine, viewer.user.id, viewed=1, revealed=1, enforce_cap=True
    )
    _record(state, actor=viewer.actor, action="media.reveal", target=target, details=details)
    return preview, st, settings


# ================================================================ static
@router.get("/static/{name}")
def static(name: str) -> Response:
    """``console.css``, ``htmx.min.js``, ``console.js`` (nothing else is served from here)."""
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return Response(status_code=404)
    return Response(
        static_bytes(name),
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


# ================================================================ login
@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    viewer = await run_in_threadpool(load_viewer, request)
    return redirect("/console/queue" if viewer else "/console/login")


def _login_page(
    request: Request,
    *,
    next_url: str = "/console/queue",
    error: SentinelleError | None = None,
    username: str = "",
    status_code: int = 200,
) -> Response:
    token = new_login_csrf()
    response = render(
        request,
        "login.html",
        {"error": error, "next_url": next_url, "username": username, "login_csrf": token},
        status_code=status_code,
    )
    set_login_csrf(response, request, token)
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(
    request: Request,
    next: str | None = None,  # noqa: A002
    lang: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """The login form; ``?lang=fr`` switches its language (kept in a cookie)."""
    viewer = await run_in_threadpool(load_viewer, request)
    if viewer is not None:
        return redirect(_safe_next(next))
    if lang is not None:
        request.state.locale = lang
    response = _login_page(request, next_url=_safe_next(next))
    set_locale_cookie(response, request, lang)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login_submit(
    request: Request,
    state: StateDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    totp: Annotated[str, Form(max_length=16)] = "",
    next: Annotated[str, Form(max_length=500)] = "/console/queue",  # noqa: A002
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    next_url = _safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not csrf_ok(request, expected, csrf_token):
        err = SentinelleError("the login form expired; try again", code="csrf_failed")
        return _login_page(request, next_url=next_url, error=err, status_code=403)
    # Per-address throttle before any password is checked: the per-account lockout alone
    # lets one address try a common password on every account (spraying).
    wait = state.limiter.take(
        ("console-login", _client(request) or "unknown"), LOGIN_RATE_PER_S, LOGIN_BURST
    )
    if wait > 0:
        err = SentinelleError(
            f"too many login attempts from this address; try again in {math.ceil(wait)} s",
            code="login_rate_limited",
        )
        response = _login_page(
            request, next_url=next_url, error=err, username=username[:64], status_code=429
        )
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    try:
        session = await run_in_threadpool(
            accounts.login,
            state.engine,
            username,
            password,
            totp_code=totp.strip() or None,
            client=_client(request),
        )
    except ReviewError as e:
        return _login_page(
            request, next_url=next_url, error=e, username=username[:64], status_code=e.status
        )
    if next_url == "/console/queue" and not session.user.can("queue.view"):
        next_url = "/console/metrics" if session.user.can("metrics.export") else "/console/settings"
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, request, session.token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    saved = await run_in_threadpool(exposure.get_settings, state.engine, session.user.id)
    set_locale_cookie(response, request, saved.locale)
    return apply_security_headers(response)


@router.post("/logout")
async def logout(
    request: Request,
    state: StateDep,
    viewer: ActionDep,
) -> Response:
    await run_in_threadpool(accounts.logout, state.engine, viewer.token)
    await run_in_threadpool(
        _record, state, actor=viewer.actor, action="auth.logout", target=viewer.actor
    )
    response = RedirectResponse("/console/login", status_code=303)
    clear_session_cookie(response, request)
    return apply_security_headers(response)


# ================================================================ queue
@router.get("/queue", response_class=HTMLResponse)
def queue_page(
    request: Request,
    state: StateDep,
    viewer: ViewerDep,
    status: Annotated[str, Query(max_length=40)] = "open",
    flash: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """The cases waiting, most urgent first; tabs per status."""
    try:
        require(viewer.user, "queue.view")
        wanted = status if status in cases.STATUSES else "open"
        listed = cases.list_cases(
            state.engine,
            status=["open", "assigned"] if wanted == "open" else wanted,
            limit=200,
        )
        counts = cases.queue_counts(state.engine)
        tabs = _queue_tabs(counts)
        approvals = (
            decisions.pending_approvals(state.engine, limit=100)
            if viewer.user.can("decision.approve")
            else []
        )
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    return render(
        request,
        "queue.html",
        _base(
            state,
            viewer,
            cases=listed,
            tabs=tabs,
            status=wanted,
            other_tabs=[t for t in tabs if t.status != wanted and t.count],
            approvals=approvals,
            flash=FLASHES.get(flash or ""),
        ),
    )


@dataclass(frozen=True)
class QueueTab:
    """One status tab of the queue and how many cases it holds."""

    status: str
    label: str
    count: int


def _queue_tabs(counts: dict[str, int]) -> list[QueueTab]:
    """The queue's tabs; "Waiting" holds both open and assigned cases."""
    tabs = []
    for status, label in QUEUE_TABS:
        n = (
            counts.get("open", 0) + counts.get("assigned", 0)
            if status == "open"
            else counts.get(status, 0)
        )
        tabs.append(QueueTab(status, label, n))
    return tabs


#: Flash messages by key (msgids, translated by the template).
FLASHES = {
    "passed": N_("Case passed on. Nothing is counted against you."),
    "empty": N_("No open case is waiting."),
    "break": N_("Break noted. The reminder starts again from now."),
    "settings": N_("Settings saved."),
}


@router.post("/queue/next")
def queue_next(
    request: Request,
    state: StateDep,
    viewer: ActionDep,
) -> Response:
    """Take the most urgent unassigned case and open it."""
    try:
        taken = cases.next_case(state.engine, viewer.user)
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    if taken is None:
        return redirect("/console/queue?flash=empty", request=request)
    return redirect(f"/console/cases/{taken.id}", request=request)


# ================================================================ cases
def _reviewers(state: ServiceState, viewer: Viewer) -> list[Any]:
    """Colleagues a case can be passed to (active users who can decide)."""
    return [
        u
        for u in accounts.list_users(state.engine, include_disabled=False)
        if u.id != viewer.user.id and u.can("decision.create")
    ]


def _case_context(state: ServiceState, viewer: Viewer, view: Any) -> dict[str, Any]:
    settings = exposure.get_settings(state.engine, viewer.user.id)
    drafts = _drafts_for_case(state, view.case.id) if viewer.user.can("report.view") else []
    return _base(
        state,
        viewer,
        view=view,
        case=view.case,
        items=view.items,
        settings=settings,
        reviewers=_reviewers(state, viewer),
        categories=CATEGORY_CHOICES,
        drafts=drafts,
        can_reveal=viewer.user.can("media.reveal"),
        can_decide=viewer.user.can("decision.create"),
        can_approve=viewer.user.can("decision.approve"),
        can_draft=viewer.user.can("report.draft"),
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request,
    case_id: DbId,
    state: StateDep,
    viewer: ViewerDep,
) -> Response:
    """Everything about one platform account (audited ``case.view``)."""
    try:
        view = cases.get_case(state.engine, case_id, viewer.user)
        ctx = _case_context(state, viewer, view)
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    return render(request, "case.html", ctx)


@router.post("/cases/{case_id}/take")
def case_take(
    request: Request,
    case_id: DbId,
    state: StateDep,
    viewer: ActionDep,
) -> Response:
    try:
        cases.assign_case(state.engine, case_id, viewer.user)
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    return redirect(f"/console/cases/{case_id}", request=request)


@router.post("/cases/{case_id}/pass")
def case_pass(
    request: Request,
    case_id: DbId,
    state: StateDep,
    viewer: ActionDep,
    to_user: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Pass the case back to the queue or to a named colleague: never a penalty."""
    try:
        to_id = int(to_user) if to_user.strip() else None
    except ValueError:
        to_id = -1
    if to_id is not None and not 1 <= to_id <= 2**62:
        return error_page(request, code="bad_assignee", message="pick a colleague from the list")
    try:
        cases.pass_case(state.engine, case_id, viewer.user, to_user_id=to_id, reason=reason)
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    return redirect("/console/queue?flash=passed", request=request)


# ================================================================ media
def _media_context(
    state: ServiceState,
    viewer: Viewer,
    item: Any,
    *,
    settings: exposure.UserSettings | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Context of ``_media.html``; ``settings`` when the caller has already read them."""
    return {
        "item": item,
        "settings": settings or exposure.get_settings(state.engine, viewer.user.id),
        "csrf": viewer.csrf,
        "can_reveal": viewer.user.can("media.reveal"),
        **extra,
    }


@router.get("/items/{item_id}/preview")
def item_preview(
    request: Request,
    item_id: DbId,
    state: StateDep,
    viewer: ViewerDep,
) -> Response:
    """The blurred, grayscale (per the user's settings) preview; never cached."""
    try:
        item, _view = _item_and_case(state, viewer, item_id)
        settings = exposure.get_settings(state.engine, viewer.user.id)
        data, _media_type = _load_media(state, viewer, item)
        preview = blur.render_preview(
            data,
            blur_level=max(settings.blur_level, blur.MIN_PREVIEW_BLUR),
            grayscale=settings.grayscale,
        )
    except SentinelleError as e:
        return Response(
            status_code=status_for(e), headers={"X-Error-Code": e.code, "Cache-Control": "no-store"}
        )
    return apply_security_headers(Response(preview.data, media_type=preview.media_type))


@router.post("/items/{item_id}/reveal", response_class=HTMLResponse)
def item_reveal(
    request: Request,
    item_id: DbId,
    state: StateDep,
    viewer: ActionDep,
) -> Response:
    """Show one item in the clear: permission, daily cap, then audit, then render.

    The reveal is audited (``media.reveal``) and counted (viewed + revealed)
    before any pixel is sent; past the cap it is refused (429,
    ``exposure_cap_reached``) and the item stays blurred.
    """
    try:
        require(viewer.user, "media.reveal")
        item, _view = _item_and_case(state, viewer, item_id)
        if item.media_blob_id is None:
            raise NotFound(f"item {item.id} has no media attached", code="no_media")
        exposure.check_can_view(state.engine, viewer.user.id)
        data, media_type = _load_media(state, viewer, item)
        preview, st, settings = _reveal_sharp(
            state,
            viewer,
            data,
            target=f"item:{item.id}",
            details={"case_id": item.case_id, "blob_id": item.media_blob_id},
        )
    except SentinelleError as e:
        return error_page(request, e)
    is_video = preview.source_kind == "video"
    ctx = _media_context(
        state,
        viewer,
        item,
        settings=settings,
        revealed=True,
        image_src="data:image/jpeg;base64," + base64.b64encode(preview.data).decode("ascii"),
        is_video=is_video,
        video_src=(
            f"/console/items/{item.id}/video?grant={sign_media(viewer.token, item.id)}"
            if is_video
            else None
        ),
        video_type=media_type if is_video else None,
        exposure=_badge(st),
        oob_exposure=True,
    )
    return render(request, "_media.html", ctx)


@router.post("/items/{item_id}/reblur", response_class=HTMLResponse)
def item_reblur(
    request: Request,
    item_id: DbId,
    state: StateDep,
    viewer: ActionDep,
) -> Response:
    """Back to the blurred preview (nothing in the clear in this response)."""
    try:
        item, _view = _item_and_case(state, viewer, item_id)
    except SentinelleError as e:
        return error_page(request, e)
    return render(request, "_media.html", _media_context(state, viewer, item, revealed=False))


@router.get("/items/{item_id}/video")
def item_video(
    request: Request,
    item_id: DbId,
    state: StateDep,
    viewer: ViewerDep,
    grant: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """A revealed video's bytes: only with a fresh grant made by the audited reveal."""
    if not check_media(viewer.token, item_id, grant):
        return Response(status_code=403, headers={"X-Error-Code": "media_grant_expired"})
    try:
        require(viewer.user, "media.reveal")
        item, _view = _item_and_case(state, viewer, item_id)
        data, media_type = _load_media(state, viewer, item)
    except SentinelleError as e:
        return Response(status_code=status_for(e), headers={"X-Error-Code": e.code})
    if not media_type.startswith("video/"):
        return Response(status_code=415, headers={"X-Error-Code": "not_a_video"})
    return apply_security_headers(
        Response(
            data,
            media_type=media_type,
            headers={"Content-Disposition": "inline", "Accept-Ranges": "none"},
        )
    )


# ================================================================ decisions
@router.post("/items/{item_id}/decide", response_class=HTMLResponse)
def item_decide(
    request: Request,
    item_id: DbId,
    state: StateDep,
    viewer: ActionDep,
    verdict: Annotated[str, Form(max_length=20)] = "",
    category: Annotated[str, Form(max_length=20)] = "",
    custom_category: Annotated[str, Form(max_length=100)] = "",
    notes: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    """Confirm or reject one item; answers the re-rendered item (htmx) or the case.

    The htmx answer also carries the case header out of band (``hx-swap-oob``):
    the decision can close the case, change its counts or open a report draft.
    """
    cat: str | None = category.strip() or None
    if cat == "custom":
        cat = custom_category.strip() or None
    try:
        result = decisions.decide(
            state.engine, item_id, viewer.user, verdict=verdict, category=cat, notes=notes
        )
        item, view = _item_and_case(state, viewer, item_id)
    except SentinelleError as e:
        return error_page(request, e)
    if not is_htmx(request):
        return redirect(f"/console/cases/{view.case.id}")
    ctx = _case_context(state, viewer, view)
    ctx.update(item=item, result=result, header_oob=True)
    return render(request, "_decide_answer.html", ctx)


@router.post("/decisions/{decision_id}/approve", response_class=HTMLResponse)
def decision_approve(
    request: Request,
    decision_id: DbId,
    state: StateDep,
    viewer: ActionDep,
    accept: Annotated[str, Form(max_length=10)] = "yes",
    category: Annotated[str, Form(max_length=64)] = "",
    notes: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    """Second review: accept (optionally re-categorised) or return a pending decision."""
    try:
        result = decisions.approve(
            state.engine,
            decision_id,
            viewer.user,
            accept=accept == "yes",
            category=category.strip() or None,
            notes=notes,
        )
    except SentinelleError as e:
        return error_page(request, e)
    return redirect(f"/console/cases/{result.decision.case_id}", request=request)


# ================================================================ reports
def _drafts_for_case(state: ServiceState, case_id: int) -> list[Any]:
    from ..reports import drafts_for_case

    return drafts_for_case(state.engine, case_id)


@router.get("/reports/{report_id}", response_class=HTMLResponse)
def report_page(
    request: Request,
    report_id: DbId,
    state: StateDep,
    viewer: ViewerDep,
) -> Response:
    """A CyberTipline report draft: its XML and the result of XSD validation."""
    try:
        require(viewer.user, "report.view")
        from ..reports import draft_view

        draft = draft_view(state.engine, report_id)
        _record(
            state,
            actor=viewer.actor,
            action="report.view",
            target=f"report:{report_id}",
            details={"valid": draft.valid},
        )
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    return render(request, "report.html", _base(state, viewer, draft=draft))


# ================================================================ settings
@router.get("/settings", response_class=HTMLResponse)
def settings_page(
    request: Request,
    state: StateDep,
    viewer: ViewerDep,
    flash: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    settings = exposure.get_settings(state.engine, viewer.user.id)
    return render(
        request,
        "settings.html",
        _base(state, viewer, settings=settings, flash=FLASHES.get(flash or "")),
    )


def _opt_int(raw: str, name: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ReviewError(f"{name} must be a whole number", code="bad_setting") from None


@router.post("/settings", response_class=HTMLResponse)
def settings_save(
    request: Request,
    state: StateDep,
    viewer: ActionDep,
    blur_level: Annotated[str, Form(max_length=10)] = "",
    grayscale: Annotated[str, Form(max_length=10)] = "",
    mute_audio: Annotated[str, Form(max_length=10)] = "",
    daily_cap: Annotated[str, Form(max_length=10)] = "",
    break_after_minutes: Annotated[str, Form(max_length=10)] = "",
    break_after_items: Annotated[str, Form(max_length=10)] = "",
    locale: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Save the reviewer's own protection settings (a user can only be stricter
    than the console's caps; see :mod:`sentinelle.review.exposure`) and the
    console language (also kept in a cookie for the login page)."""
    try:
        level = _opt_int(blur_level, "blur level")
        changes: dict[str, Any] = {
            "grayscale": grayscale == "on",
            "mute_audio": mute_audio == "on",
            "daily_cap": _opt_int(daily_cap, "daily cap"),
            "break_after_minutes": _opt_int(break_after_minutes, "break after minutes"),
            "break_after_items": _opt_int(break_after_items, "break after items"),
        }
        if level is not None:
            changes["blur_level"] = level
        if locale.strip():
            changes["locale"] = locale.strip()
        exposure.update_settings(state.engine, viewer.user.id, **changes)
        _record(
            state,
            actor=viewer.actor,
            action="config.change",
            target=f"user_settings:{viewer.user.username}",
            details=dict(changes),
        )
    except SentinelleError as e:
        settings = exposure.get_settings(state.engine, viewer.user.id)
        ctx = _base(state, viewer, settings=settings, error=e)
        return render(request, "settings.html", ctx, status_code=status_for(e))
    response = redirect("/console/settings?flash=settings", request=request)
    set_locale_cookie(response, request, changes.get("locale"))
    return response


@router.post("/break")
def took_break(
    request: Request,
    state: StateDep,
    viewer: ActionDep,
) -> Response:
    exposure.take_break(state.engine, viewer.user.id)
    return redirect("/console/queue?flash=break", request=request)


# ================================================================ metrics
@router.get("/metrics", response_class=HTMLResponse)
def metrics_page(
    request: Request,
    state: StateDep,
    viewer: ViewerDep,
) -> Response:
    """Transparency metrics: where to export them (the export itself is audited)."""
    try:
        require(viewer.user, "metrics.export")
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    return render(request, "metrics.html", _base(state, viewer))


@router.get("/metrics/export.{fmt}")
def metrics_export(
    request: Request,
    fmt: str,
    state: StateDep,
    viewer: ViewerDep,
) -> Response:
    """Download the transparency metrics (all time) as JSON or CSV; audited
    ``export.metrics`` by :func:`sentinelle.reports.transparency.collect_metrics`."""
    if fmt not in ("json", "csv"):
        return error_page(
            request, code="not_found", message="export as json or csv", status_code=404
        )
    try:
        require(viewer.user, "metrics.export")
        from ...reports.transparency import collect_metrics, to_csv

        metrics = collect_metrics(state.engine, actor=viewer.actor)
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    name = f"sentinelle-metrics.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        response: Response = Response(to_csv(metrics), media_type="text/csv", headers=headers)
    else:
        import json

        body = json.dumps(metrics, indent=2, sort_keys=True, default=str)
        response = Response(body, media_type="application/json", headers=headers)
    return apply_security_headers(response)
