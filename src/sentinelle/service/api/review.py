"""Review intake for integrations: how platforms feed cases (API-key auth).

==================================  ======  ==========================================
route                               scope   does
==================================  ======  ==========================================
``POST /v1/review/signals``         curate  record a signal for a platform account
``GET /v1/review/cases``            curate  list cases (queue order) with counts
``GET /v1/review/false-positives``  curate  bank entries reviewers rejected
==================================  ======  ==========================================

``admin`` keys hold every scope. Reviewers work cases in the console (logged-in
users, :mod:`sentinelle.review`); these routes carry metadata only, never media.

::

    curl -s -H "X-API-Key: $KEY" -H "Content-Type: application/json" \\
         -d '{"account_id": "user-42", "kind": "guard_block",
              "summary": {"categories": {"minor_sexual": 0.97}, "policy_id": "default"}}' \\
         http://127.0.0.1:8080/v1/review/signals
    # -> 201 {"case_id": 3, "item_id": 11}
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ...review import cases as review_cases
from ...review.decisions import false_positive_stats
from ...review.errors import ReviewError
from ...review.intake import KINDS, record_signal
from ..auth import ApiKeyInfo, api_error
from ..deps import StateDep, require_scope

router = APIRouter(prefix="/v1/review", tags=["review"])

Curate = Annotated[ApiKeyInfo, Depends(require_scope("curate"))]


class SignalIn(BaseModel):
    account_id: str = Field(min_length=1, max_length=256, description="the platform's account id")
    kind: str = Field(max_length=32, description=f"one of {', '.join(KINDS)}")
    summary: dict[str, Any] = Field(description="metadata of the signal (never media or text)")
    media_sha256: str | None = Field(default=None, max_length=64)
    media_blob_id: int | None = Field(default=None, ge=1, le=2**62)
    occurred_at: datetime | None = Field(
        default=None, description="ISO 8601 with a time zone; default now"
    )


def _fail(e: ReviewError) -> Exception:
    return api_error(e.status, e.code, e.message)


@router.post("/signals", status_code=201, summary="Record a signal for a platform account")
async def post_signal(body: SignalIn, state: StateDep, who: Curate) -> dict[str, int]:
    """Attach the signal to the account's open case (opening one if needed).
    Returns ``{"case_id", "item_id"}``; 422 ``bad_*`` for invalid signals."""
    try:
        case_id, item_id = await run_in_threadpool(
            record_signal,
            state.engine,
            account_id=body.account_id,
            kind=body.kind,
            summary=body.summary,
            media_sha256=body.media_sha256,
            media_blob_id=body.media_blob_id,
            occurred_at=body.occurred_at,
        )
    except ReviewError as e:
        raise _fail(e) from None
    return {"case_id": case_id, "item_id": item_id}


@router.get("/cases", summary="List review cases")
async def get_cases(
    state: StateDep,
    who: Curate,
    status: Annotated[
        list[str] | None,
        Query(description=f"repeatable; any of {', '.join(review_cases.STATUSES)}; default all"),
    ] = None,
    account_id: Annotated[str | None, Query(max_length=256)] = None,
    limit: Annotated[int, Query(ge=1, le=review_cases.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> dict[str, Any]:
    """Cases, most urgent first, and the number of cases per status."""

    def run() -> dict[str, Any]:
        page = review_cases.list_cases(
            state.engine, status=status, account_id=account_id, limit=limit, offset=offset
        )
        return {
            "cases": [c.to_dict() for c in page],
            "counts": review_cases.queue_counts(state.engine),
        }

    try:
        return await run_in_threadpool(run)
    except ReviewError as e:
        raise _fail(e) from None


@router.get("/false-positives", summary="Bank entries rejected by reviewers")
async def get_false_positives(
    state: StateDep,
    who: Curate,
    bank: Annotated[str | None, Query(max_length=200)] = None,
    min_rejections: Annotated[int, Query(ge=1, le=2**62)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Per bank entry: rejections, confirmations and the false-positive rate."""
    stats = await run_in_threadpool(
        false_positive_stats, state.engine, bank=bank, min_rejections=min_rejections, limit=limit
    )
    return {"entries": [s.to_dict() for s in stats]}
