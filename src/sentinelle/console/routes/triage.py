"""The console's investigator triage queue: a case's groups, worked through in rank order.

=================================================  ===========================================
route                                              does
=================================================  ===========================================
``GET  /console/triage``                           the triage cases and what is left to review
``GET  /console/triage/{case}``                    the queue: groups by rank (undecided first),
                                                   tier, priority and every reason, series
``GET  /console/triage/groups/{g}/preview``        blurred (grayscale) preview, no-store
``POST /console/triage/groups/{g}/reveal``         the group's picture in the clear (fragment);
                                                   audited ``media.reveal``, counted in the cap
``POST /console/triage/groups/{g}/reblur``         back to the blurred fragment
``POST /console/triage/groups/{g}/decide``         not pertinent / known / later, or
                                                   **confirm new -> bank** (and the bank's
                                                   exchange feed, when it is published)
=================================================  ===========================================

The same reviewer protection as the rest of the console: login session, every POST with
the session's CSRF token, previews blurred per the reviewer's settings (never sharp),
a reveal only in the answer to an audited POST, counted against the daily cap, re-blurred
after two minutes. Triage is investigators' work: a page needs ``case.view`` and
``decision.approve`` (specialists); a reveal ``media.reveal`` too. Media are read from
the case's files (:func:`sentinelle.triage.sources.read_bytes`), in memory only.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from ...banks import BankStore
from ...errors import SentinelleError
from ...review import exposure
from ...review.roles import require
from ...service.deps import DbId, StateDep
from ...service.state import ServiceState
from ...triage import confirm, reviews, store
from ...triage.store import TriageError
from .. import blur
from ..i18n import N_
from ..security import apply_security_headers
from ..session import ActionDep, Viewer, ViewerDep
from ..views import error_page, redirect, render, status_for
from .review import _badge, _base, _page_error, _record, _reveal_sharp

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE = 50
TIER_LABELS = {
    "camera_new": N_("New, camera evidence: possible real victim"),
    "unknown_new": N_("New, origin unknown"),
    "ai_new": N_("New, AI-generated or AI-edited"),
    "known": N_("Known material"),
}
DECISION_LABELS = {
    "confirmed_new": N_("Confirmed new, added to a bank"),
    "not_pertinent": N_("Not pertinent"),
    "known": N_("Known material"),
    "deferred": N_("Later"),
    "imported": N_("Category from a VICS file"),
}
FLASHES = {
    "confirmed": N_("Confirmed: the group's hashes are in the bank."),
    "shared": N_("Confirmed: the group's hashes are in the bank and shared with its exchange."),
    "decided": N_("Decision saved."),
}


def _check(viewer: Viewer) -> None:
    require(viewer.user, "case.view")
    require(viewer.user, "decision.approve")


def _group(state: ServiceState, group_id: int) -> store.Group:
    g = store.get_group(state.engine, group_id)
    if g is None:
        raise TriageError(f"no triage group {group_id}", "unknown_group")
    return g


def _group_bytes(state: ServiceState, g: store.Group) -> bytes:
    """The bytes of the group's representative content (first readable copy)."""
    from ...triage.sources import read_bytes

    if g.representative_media_id is None:
        raise TriageError("the group has no media to show", "no_media")
    for f in store.media_files(state.engine, g.representative_media_id)[:5]:
        try:
            return read_bytes(f.source_path, f.member_path)
        except (OSError, KeyError, ValueError):
            continue
    raise TriageError("none of the group's copies can be read", "media_unreadable")


def _media_ctx(state: ServiceState, viewer: Viewer, g: store.Group, **extra: Any) -> dict[str, Any]:
    return {
        "g": g,
        "csrf": viewer.csrf,
        "settings": exposure.get_settings(state.engine, viewer.user.id),
        "can_reveal": viewer.user.can("media.reveal"),
        **extra,
    }


@router.get("/triage", response_class=HTMLResponse)
def triage_cases(request: Request, state: StateDep, viewer: ViewerDep) -> Response:
    """Every triage case with its counts per tier and how many groups are decided."""
    try:
        _check(viewer)
        rows = []
        for c in store.list_cases(state.engine):
            summary = store.case_summary(state.engine, c.id)
            decided = len(reviews.list_reviews(state.engine, c.id))
            rows.append({"case": c, "summary": summary, "decided": decided})
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    return render(
        request,
        "triage_cases.html",
        _base(state, viewer, rows=rows, tier_labels=TIER_LABELS),
    )


@router.get("/triage/{case_id}", response_class=HTMLResponse)
def triage_queue(
    request: Request,
    case_id: DbId,
    state: StateDep,
    viewer: ViewerDep,
    show: Annotated[str, Query(max_length=10)] = "pending",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    flash: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """The case's groups by rank; undecided ones first (``show=all``: every group)."""
    try:
        _check(viewer)
        case = store.get_case_by_id(state.engine, case_id)
        if case is None:
            raise TriageError(f"no triage case {case_id}", "unknown_case")
        done = {r.group_id: r for r in reviews.list_reviews(state.engine, case.id)}
        groups = store.list_groups(state.engine, case.id)
        wanted = [g for g in groups if show == "all" or g.id not in done]
        total = len(wanted)
        shown = wanted[(page - 1) * PAGE : page * PAGE]
        series = {s.id: s for s in store.list_series(state.engine, case.id)}
        banks = [b.name for b in BankStore(state.engine).list_banks()]
        settings = exposure.get_settings(state.engine, viewer.user.id)
        _record(
            state,
            actor=viewer.actor,
            action="triage.view",
            target=f"triage_case:{case.id}",
            details={"page": page, "show": show},
        )
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    return render(
        request,
        "triage_queue.html",
        _base(
            state,
            viewer,
            case=case,
            groups=shown,
            done=done,
            series=series,
            banks=banks,
            categories=confirm_categories(),
            settings=settings,
            show="all" if show == "all" else "pending",
            page=page,
            pages=max(1, -(-total // PAGE)),
            total=total,
            n_decided=len(done),
            n_groups=len(groups),
            tier_labels=TIER_LABELS,
            decision_labels=DECISION_LABELS,
            summary=store.case_summary(state.engine, case.id),
            weights=dict(case.settings.get("weights") or {}),
            can_reveal=viewer.user.can("media.reveal"),
            flash=FLASHES.get(flash or ""),
        ),
    )


def confirm_categories() -> tuple[str, ...]:
    from ...review.decisions import INDUSTRY_CATEGORIES

    return INDUSTRY_CATEGORIES


@router.get("/triage/groups/{group_id}/preview")
def group_preview(request: Request, group_id: DbId, state: StateDep, viewer: ViewerDep) -> Response:
    """The blurred (grayscale per the reviewer's settings) preview; never cached."""
    try:
        _check(viewer)
        g = _group(state, group_id)
        settings = exposure.get_settings(state.engine, viewer.user.id)
        preview = blur.render_preview(
            _group_bytes(state, g),
            blur_level=max(settings.blur_level, blur.MIN_PREVIEW_BLUR),
            grayscale=settings.grayscale,
        )
    except SentinelleError as e:
        return Response(
            status_code=status_for(e),
            headers={"X-Error-Code": e.code, "Cache-Control": "no-store"},
        )
    return apply_security_headers(Response(preview.data, media_type=preview.media_type))


@router.post("/triage/groups/{group_id}/reveal", response_class=HTMLResponse)
def group_reveal(request: Request, group_id: DbId, state: StateDep, viewer: ActionDep) -> Response:
    """One group's picture in the clear: permission, cap, then count and audit, then render."""
    try:
        _check(viewer)
        require(viewer.user, "media.reveal")
        g = _group(state, group_id)
        exposure.check_can_view(state.engine, viewer.user.id)
        preview, st, settings = _reveal_sharp(
            state,
            viewer,
            _group_bytes(state, g),
            target=f"triage_group:{g.id}",
            details={"case_id": g.case_id, "media_id": g.representative_media_id},
        )
    except SentinelleError as e:
        return error_page(request, e)
    ctx = _media_ctx(
        state,
        viewer,
        g,
        revealed=True,
        image_src="data:image/jpeg;base64," + base64.b64encode(preview.data).decode("ascii"),
        exposure=_badge(st),
        oob_exposure=True,
    )
    return render(request, "_triage_media.html", ctx)


@router.post("/triage/groups/{group_id}/reblur", response_class=HTMLResponse)
def group_reblur(request: Request, group_id: DbId, state: StateDep, viewer: ActionDep) -> Response:
    """Back to the blurred preview (nothing in the clear in this response)."""
    try:
        _check(viewer)
        g = _group(state, group_id)
    except SentinelleError as e:
        return error_page(request, e)
    return render(request, "_triage_media.html", _media_ctx(state, viewer, g, revealed=False))


@router.post("/triage/groups/{group_id}/decide", response_class=HTMLResponse)
def group_decide(
    request: Request,
    group_id: DbId,
    state: StateDep,
    viewer: ActionDep,
    decision: Annotated[str, Form(max_length=20)] = "",
    bank: Annotated[str, Form(max_length=200)] = "",
    category: Annotated[str, Form(max_length=64)] = "",
    note: Annotated[str, Form(max_length=reviews.MAX_NOTE)] = "",
) -> Response:
    """Decide on a group; ``confirmed_new`` adds its hashes to ``bank`` (and its feed)."""
    try:
        _check(viewer)
        g = _group(state, group_id)
        cat = category.strip() or None
        if decision == "confirmed_new":
            if not bank.strip():
                raise TriageError("pick the bank to add the group to", "bank_required")
            res = confirm.confirm_to_bank(
                state.engine,
                g.case_id,
                g.id,
                bank=bank.strip(),
                category=cat,
                actor=viewer.actor,
                note=note.strip() or None,
            )
            flash = "shared" if res.shared else "confirmed"
        else:
            confirm.decide(
                state.engine,
                g.case_id,
                g.id,
                decision,
                actor=viewer.actor,
                category=cat,
                note=note.strip() or None,
            )
            flash = "decided"
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    return redirect(f"/console/triage/{g.case_id}?flash={flash}#queue", request=request)
