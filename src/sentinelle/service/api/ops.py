"""Operations routes: liveness, readiness, Prometheus metrics.

=====================  ========  ===============================================
route                  scope     does
=====================  ========  ===============================================
``GET /v1/health``     none      liveness
``GET /v1/ready``      any key   index loaded and synced recently (else 503)
``GET /metrics``       metrics   Prometheus text
=====================  ========  ===============================================
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from ..auth import ApiKeyInfo, api_error
from ..deps import StateDep, require_scope

router = APIRouter(tags=["operations"])


@router.get("/v1/health", summary="Liveness (no key needed)")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/v1/ready", summary="Readiness: index loaded and fresh")
def ready(state: StateDep, who: Annotated[ApiKeyInfo, Depends(require_scope("*"))]) -> Any:
    lag = state.sync.lag_s()
    body = {
        "index_version": state.matcher.version,
        "sync_lag_s": None if lag is None else round(lag, 3),
        "instance": state.instance_id,
    }
    if state.matcher.version < 0 or lag is None or lag > state.settings.ready_max_lag_s:
        raise api_error(
            503, "not_ready", "the index is not loaded or has not synced recently", **body
        )
    return {"status": "ready", **body}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(
    state: StateDep, who: Annotated[ApiKeyInfo, Depends(require_scope("metrics"))]
) -> Response:
    return Response(state.metrics.render(), media_type=state.metrics.content_type)
