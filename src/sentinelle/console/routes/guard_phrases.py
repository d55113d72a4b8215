"""The console's page for the prompt guard's deployment phrase lists.

=============================================  ==========================================
route                                          does (permission ``config.change``: admin)
=============================================  ==========================================
``GET  /console/guard/phrases``                both lists per language, their version, who
                                               added each phrase and when
``POST /console/guard/phrases``                add a phrase (``kind``, ``language``,
                                               ``phrase``, ``note``)
``POST /console/guard/phrases/{id}/remove``    remove one
=============================================  ==========================================

Every POST needs the session's CSRF token. Changes go through
:mod:`sentinelle.guard.phrases` (normalised, versioned into ``policy_id``, audited
``guard.phrase.add`` / ``guard.phrase.remove`` with the console user as actor) and
reach this instance's prompt guard at once, the others within
``SENTINELLE_GUARD_PHRASES_TTL`` seconds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from ...errors import SentinelleError
from ...guard import phrases as phrase_lists
from ...guard.lexicon import default_lexicons
from ...review.roles import require
from ...service.deps import DbId, StateDep
from ...service.state import ServiceState
from ..i18n import N_
from ..session import ActionDep, Viewer, ViewerDep
from ..views import redirect, render, status_for
from .review import _base, _page_error

router = APIRouter(prefix="/console", include_in_schema=False)

FLASHES = {
    "added": N_("Phrase added; the guard applies it now."),
    "removed": N_("Phrase removed; the guard no longer applies it."),
}


def _page(
    request: Request,
    state: ServiceState,
    viewer: Viewer,
    *,
    flash: str | None = None,
    error: SentinelleError | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    try:
        require(viewer.user, "config.change")
        entries = phrase_lists.list_entries(state.engine)
        version = phrase_lists.current_version(state.engine)
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    ctx = _base(
        state,
        viewer,
        allow=[e for e in entries if e.kind == "allow"],
        deny=[e for e in entries if e.kind == "deny"],
        version=version,
        languages=[phrase_lists.ANY_LANGUAGE, *default_lexicons().languages],
        flash=FLASHES.get(flash or ""),
        error=error,
        form=form or {},
    )
    status = status_for(error) if error else 200
    return render(request, "guard_phrases.html", ctx, status_code=status)


def _changed(request: Request) -> None:
    g = getattr(request.app.state, "sentinelle_guards", None)
    if g is not None:
        g.phrases.invalidate()


@router.get("/guard/phrases", response_class=HTMLResponse)
def phrases_page(
    request: Request,
    state: StateDep,
    viewer: ViewerDep,
    flash: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Both lists and their version."""
    return _page(request, state, viewer, flash=flash)


@router.post("/guard/phrases", response_class=HTMLResponse)
def phrase_add(
    request: Request,
    state: StateDep,
    viewer: ActionDep,
    kind: Annotated[str, Form(max_length=8)] = "",
    language: Annotated[str, Form(max_length=8)] = "",
    phrase: Annotated[str, Form(max_length=phrase_lists.MAX_PHRASE * 4)] = "",
    note: Annotated[str, Form(max_length=phrase_lists.MAX_NOTE)] = "",
) -> Response:
    """Add a phrase to the allow or deny list (audited ``guard.phrase.add``)."""
    try:
        require(viewer.user, "config.change")
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    try:
        phrase_lists.add(
            state.engine,
            kind=kind,
            language=language,
            phrase=phrase,
            note=note.strip() or None,
            actor=viewer.actor,
        )
    except SentinelleError as e:
        form = {"kind": kind, "language": language, "phrase": phrase[:200], "note": note}
        return _page(request, state, viewer, error=e, form=form)
    _changed(request)
    return redirect("/console/guard/phrases?flash=added", request=request)


@router.post("/guard/phrases/{entry_id}/remove", response_class=HTMLResponse)
def phrase_remove(request: Request, entry_id: DbId, state: StateDep, viewer: ActionDep) -> Response:
    """Remove a phrase (audited ``guard.phrase.remove``)."""
    try:
        require(viewer.user, "config.change")
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    try:
        phrase_lists.remove(state.engine, entry_id=entry_id, actor=viewer.actor)
    except SentinelleError as e:
        return _page(request, state, viewer, error=e)
    _changed(request)
    return redirect("/console/guard/phrases?flash=removed", request=request)
