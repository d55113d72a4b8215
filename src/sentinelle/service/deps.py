"""FastAPI dependencies shared by every router.

::

    from fastapi import APIRouter, Depends
    from sentinelle.service.deps import ApiKeyInfo, api_error, get_state, require_scope

    router = APIRouter(prefix="/v1")

    @router.get("/things")
    def things(state=Depends(state_dep), who: ApiKeyInfo = Depends(require_scope("scan"))):
        ...
        raise api_error(404, "unknown_thing", "no such thing")

HMA compatibility routes use ``require_scope("scan", allow_list=True)``: a caller
without a key is admitted when its address is on ``SENTINELLE_HMA_ALLOWLIST``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Path, Request

from .auth import ApiKeyInfo, api_error, authenticate
from .state import ServiceState

__all__ = [
    "ApiKeyInfo",
    "DbId",
    "StateDep",
    "api_error",
    "body_limit",
    "get_state",
    "require_scope",
    "state_dep",
]

#: A database row id in a URL path: bounded so a huge number is a 422, not a
#: driver overflow deep in a query.
DbId = Annotated[int, Path(ge=1, le=2**62)]


def get_state(request: Request) -> ServiceState:
    """The :class:`ServiceState` of the app serving ``request``.

    A plain function: FastAPI runs sync dependencies in its thread pool, which costs
    more than this look-up, so routes depend on :func:`state_dep` instead.
    """
    return request.app.state.sentinelle


async def state_dep(request: Request) -> ServiceState:
    """``Depends(state_dep)``: the state, resolved on the event loop (no thread hop)."""
    return request.app.state.sentinelle


def require_scope(scope: str, *, allow_list: bool = False) -> Callable[..., ApiKeyInfo]:
    """Dependency: the caller must hold ``scope`` (``admin`` implies all).

    Raises 401 (no/invalid/revoked key), 403 (scope), 429 (rate limit).
    """

    async def dependency(request: Request) -> ApiKeyInfo:
        # Runs on the event loop: verification is an in-memory cache hit except
        # once per key every few seconds (a short indexed primary-key query).
        return authenticate(get_state(request), request, scope, allow_list=allow_list)

    dependency.__name__ = f"require_{scope}"
    return dependency


# ---------------------------------------------------------------- body limits
# Every request body is limited while it streams in (app.py's middleware): a
# declared Content-Length over the limit gets 413 before anything is read; a
# chunked body is cut off at the limit with 413. The limit depends on the path:
# ``"upload"`` paths (media) get ``max_upload_bytes``, ``"import"`` paths (bulk
# bank imports) ``max_import_bytes``, everything else ``max_json_bytes``.
BODY_LIMIT_RULES: list[tuple[re.Pattern[str], str]] = []


def body_limit(path_regex: str, kind: str) -> None:
    """Register a body-size class for paths matching ``path_regex`` (full match).

    ``kind``: ``"upload"`` or ``"import"``. Call at import time of a router module,
    e.g. ``body_limit(r"/v1/banks/[^/]+/import", "import")``.
    """
    if kind not in ("upload", "import", "json"):
        raise ValueError(f"unknown body limit kind {kind!r}")
    BODY_LIMIT_RULES.append((re.compile(path_regex), kind))


def body_limit_kind(path: str) -> str:
    for rx, kind in BODY_LIMIT_RULES:
        if rx.fullmatch(path):
            return kind
    return "json"


#: ``state: StateDep`` in a route: the service state, resolved on the event loop.
StateDep = Annotated[ServiceState, Depends(state_dep)]
