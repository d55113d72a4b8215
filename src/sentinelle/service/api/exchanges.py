"""HTTP routes of the exchange layer: peer feeds (publisher side), exchange status, HMA mirror.

Peer feed routes authenticate the *subscriber's* API key (``Authorization: Bearer``,
issued by ``sentinelle exchange subscriber-add``), not a service API key:

* ``GET  /v1/exchange/feeds/{bank}?after=N&limit=M`` -- a signed page of the bank's feed;
* ``POST /v1/exchange/feeds/{bank}/opinions`` -- ``{"items": [{signal_type, hash, opinion}]}``.

Administration (service API key with the ``curate`` scope; ``admin`` for actions):

* ``GET  /v1/exchanges``, ``GET /v1/exchanges/{name}`` -- state, last fetch, counts, errors, lag;
* ``POST /v1/exchanges/{name}/fetch`` -- queue a fetch now (202 + job id);
* ``GET  /v1/exchange/feeds/{bank}/disagreements`` -- per shared hash, subscribers'
  false-positive and confirmed counts.

HMA mirror (as ``/c/exchanges`` in OpenMediaMatch's curation blueprint):
``GET /c/exchanges``, ``GET /c/exchanges/apis``, ``GET /c/exchange/{name}``,
``GET /c/exchange/{name}/status``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from ...exchanges import publish
from ...exchanges.api import ExchangeError
from ...exchanges.registry import type_names
from ...exchanges.runner import FETCH_JOB
from ...exchanges.store import ExchangeInfo, ExchangeStore
from ...jobs import queue
from ..auth import presented_token
from ..deps import ApiKeyInfo, StateDep, api_error
from ..deps import require_scope as _require_scope
from .hma import hma_error

router = APIRouter(tags=["exchanges"])
Curate = Annotated[ApiKeyInfo, Depends(_require_scope("curate"))]
Admin = Annotated[ApiKeyInfo, Depends(_require_scope("admin"))]

_STATUS = {
    "unknown_exchange": 404,
    "not_shared": 404,
    "unknown_bank": 404,
    "no_signing_key": 503,
    "unsafe_key": 503,
    "bad_signing_key": 503,
}


def _http(e: ExchangeError) -> Exception:
    return api_error(_STATUS.get(e.code, 400), e.code, e.message)


def _subscriber(state: Any, request: Request) -> int:
    sid = publish.Publisher(state.engine).authenticate(presented_token(request))
    if sid is None:
        raise api_error(401, "invalid_key", "missing or invalid subscriber API key")
    return sid


# ------------------------------------------------------------ peer feeds
@router.get("/v1/exchange/feeds/{bank}", summary="A signed page of a shared bank's feed")
def feed_page(
    bank: str,
    request: Request,
    state: StateDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=publish.MAX_PAGE)] = 1000,
) -> Response:
    _subscriber(state, request)
    try:
        key = publish.load_private_key()
        body, headers = publish.Publisher(state.engine).page(bank, after, limit, key)
    except ExchangeError as e:
        raise _http(e) from None
    return Response(body, media_type="application/json", headers=headers)


@router.post("/v1/exchange/feeds/{bank}/opinions", summary="Report opinions on shared hashes")
def feed_opinions(
    bank: str, request: Request, state: StateDep, body: Annotated[dict, Body()]
) -> dict[str, Any]:
    sid = _subscriber(state, request)
    try:
        n = publish.Publisher(state.engine).record_opinions(bank, sid, body.get("items"))
    except ExchangeError as e:
        raise _http(e) from None
    return {"recorded": n}


@router.get(
    "/v1/exchange/feeds/{bank}/disagreements", summary="Subscribers' opinions per shared hash"
)
def feed_disagreements(bank: str, state: StateDep, who: Curate) -> dict[str, Any]:
    try:
        return {"bank": bank, "entries": publish.Publisher(state.engine).disagreements(bank)}
    except ExchangeError as e:
        raise _http(e) from None


# ------------------------------------------------------------- exchanges
def _get(state: Any, name: str) -> ExchangeInfo:
    try:
        return ExchangeStore(state.store).get(name)
    except ExchangeError as e:
        raise _http(e) from None


@router.get("/v1/exchanges", summary="Configured exchanges and their status")
def list_exchanges(state: StateDep, who: Curate) -> dict[str, Any]:
    return {"exchanges": [i.to_dict() for i in ExchangeStore(state.store).list()]}


@router.get("/v1/exchanges/{name}", summary="One exchange's status")
def get_exchange(name: str, state: StateDep, who: Curate) -> dict[str, Any]:
    return _get(state, name).to_dict()


@router.post("/v1/exchanges/{name}/fetch", status_code=202, summary="Queue a fetch now")
def fetch_now(name: str, state: StateDep, who: Admin) -> dict[str, Any]:
    info = _get(state, name)
    job = queue.enqueue(state.engine, FETCH_JOB, {"exchange": info.name}, max_attempts=1)
    return {"job_id": job, "exchange": info.name}


# ------------------------------------------------------------ HMA mirror
@router.get("/c/exchanges", summary="HMA: exchange names")
def hma_exchanges(state: StateDep, who: Curate) -> list[str]:
    return [i.name for i in ExchangeStore(state.store).list()]


@router.get("/c/exchanges/apis", summary="HMA: exchange APIs (types) this instance supports")
def hma_exchange_apis(who: Curate) -> list[str]:
    return type_names()


def _hma_get(state: Any, name: str) -> ExchangeInfo:
    try:
        return ExchangeStore(state.store).get(name)
    except ExchangeError:
        raise hma_error(404, f"Exchange '{name}' not found", "unknown_exchange") from None


@router.get("/c/exchange/{name}", summary="HMA: one exchange")
def hma_exchange(name: str, state: StateDep, who: Curate) -> dict[str, Any]:
    i = _hma_get(state, name)
    return {
        "name": i.name,
        "api": i.type,
        "enabled": i.enabled,
        "bank": i.bank,
        "api_json": i.config,
    }


@router.get("/c/exchange/{name}/status", summary="HMA: fetch status of one exchange")
def hma_exchange_status(name: str, state: StateDep, who: Curate) -> dict[str, Any]:
    i = _hma_get(state, name)

    def ts(d: Any) -> int | None:
        return None if d is None else int(d.timestamp())

    return {
        "running_fetch_start_ts": ts(i.last_fetch_started_at) if i.fetch_owner else None,
        "last_fetch_complete_ts": ts(i.last_fetch_ok_at or i.last_error_at),
        "last_fetch_succeeded": i.last_error is None if i.last_fetch_started_at else None,
        "up_to_date": i.state == "up_to_date",
        "fetched_items": i.counts.get("records_seen", 0),
        "checkpoint_ts": ts(i.progress_at),
    }
