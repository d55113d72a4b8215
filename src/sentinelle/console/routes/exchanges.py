"""The console's page for live hash exchanges (NCMEC, StopNCII, ThreatExchange, feeds, peers).

==============================================  ==========================================
route                                           does (permission ``config.change``: admin)
==============================================  ==========================================
``GET  /console/exchanges``                     each exchange: state, enabled, last fetch
                                                started / succeeded, lag, counts, the last
                                                error and the latest quarantined pages
``POST /console/exchanges/{name}/fetch``        queue a fetch now (the job worker runs it;
                                                the fetch lease keeps it to one at a time)
``POST /console/exchanges/{name}/disable``      stop fetching (the bank keeps its entries)
``POST /console/exchanges/{name}/enable``       fetch again from the checkpoint
==============================================  ==========================================

Every POST needs the session's CSRF token and is audited with the console user as
actor (``exchange.fetch_requested``, ``exchange.disable``, ``exchange.enable``).
Credentials are never shown: only where they are read from (``env:NAME`` /
``file:PATH``). Error texts come from the remote protocols and are shown as data.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from ...errors import SentinelleError
from ...exchanges.store import ExchangeInfo, ExchangeStore
from ...review.roles import require
from ...service.deps import StateDep
from ...service.state import ServiceState
from ..i18n import N_
from ..session import ActionDep, Viewer, ViewerDep
from ..views import redirect, render, status_for
from .review import _base, _page_error

router = APIRouter(prefix="/console", include_in_schema=False)

ExchangeName = Annotated[str, Path(min_length=1, max_length=64)]

FLASHES = {
    "fetch": N_("Fetch queued; the job worker runs it within a few seconds."),
    "disabled": N_("Exchange disabled: no more fetches; its bank keeps its entries."),
    "enabled": N_("Exchange enabled: the next fetch resumes from its checkpoint."),
}
#: Exchange states (``sentinelle.exchanges.store.STATES``) as shown.
STATE_LABELS = {
    "idle": N_("idle"),
    "fetching": N_("fetching"),
    "up_to_date": N_("up to date"),
    "degraded": N_("degraded"),
    "error": N_("error"),
    "disabled": N_("disabled"),
}
#: Status counters (``sentinelle.exchanges.store.COUNTERS``) as shown.
COUNT_LABELS = (
    ("records_seen", N_("records read")),
    ("entries_added", N_("hashes added")),
    ("entries_deleted", N_("hashes deleted")),
    ("unknown_types", N_("unknown types skipped")),
    ("malformed", N_("malformed")),
    ("skipped_tombstoned", N_("kept out by a tombstone")),
)
QUARANTINE_SHOWN = 5


def _rows(store: ExchangeStore) -> list[dict[str, Any]]:
    rows = []
    for info in store.list():
        lag = info.lag_s()
        rows.append(
            {
                "info": info,
                "state": STATE_LABELS.get(info.state, info.state),
                "lag_min": None if lag is None else int(lag // 60),
                "quarantined": store.quarantined(info.name, limit=QUARANTINE_SHOWN),
            }
        )
    return rows


def _page(
    request: Request,
    state: ServiceState,
    viewer: Viewer,
    *,
    flash: str | None = None,
    error: SentinelleError | None = None,
) -> Response:
    try:
        require(viewer.user, "config.change")
        rows = _rows(ExchangeStore(state.store))
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    ctx = _base(
        state,
        viewer,
        exchanges=rows,
        count_labels=COUNT_LABELS,
        flash=FLASHES.get(flash or ""),
        error=error,
    )
    return render(request, "exchanges.html", ctx, status_code=status_for(error) if error else 200)


def _get(state: ServiceState, name: str) -> ExchangeInfo:
    return ExchangeStore(state.store).get(name)


@router.get("/exchanges", response_class=HTMLResponse)
def exchanges_page(
    request: Request,
    state: StateDep,
    viewer: ViewerDep,
    flash: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Every exchange's state, last fetch, counts, errors and lag."""
    return _page(request, state, viewer, flash=flash)


@router.post("/exchanges/{name}/fetch", response_class=HTMLResponse)
def exchange_fetch(
    request: Request, name: ExchangeName, state: StateDep, viewer: ActionDep
) -> Response:
    """Queue a fetch now (audited ``exchange.fetch_requested``)."""
    try:
        require(viewer.user, "config.change")
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    try:
        ExchangeStore(state.store).request_fetch(name, actor=viewer.actor)
    except SentinelleError as e:
        return _page(request, state, viewer, error=e)
    return redirect("/console/exchanges?flash=fetch", request=request)


def _set_enabled(
    request: Request, name: str, state: ServiceState, viewer: Viewer, enabled: bool
) -> Response:
    try:
        require(viewer.user, "config.change")
    except SentinelleError as e:
        return _page_error(request, state, viewer, e)
    try:
        ExchangeStore(state.store).set_enabled(name, enabled, actor=viewer.actor)
    except SentinelleError as e:
        return _page(request, state, viewer, error=e)
    flash = "enabled" if enabled else "disabled"
    return redirect(f"/console/exchanges?flash={flash}", request=request)


@router.post("/exchanges/{name}/disable", response_class=HTMLResponse)
def exchange_disable(
    request: Request, name: ExchangeName, state: StateDep, viewer: ActionDep
) -> Response:
    """Stop fetching this exchange (audited ``exchange.disable``)."""
    return _set_enabled(request, name, state, viewer, False)


@router.post("/exchanges/{name}/enable", response_class=HTMLResponse)
def exchange_enable(
    request: Request, name: ExchangeName, state: StateDep, viewer: ActionDep
) -> Response:
    """Fetch this exchange again (audited ``exchange.enable``)."""
    return _set_enabled(request, name, state, viewer, True)
