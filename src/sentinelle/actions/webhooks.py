"""Signed webhook deliveries, retried through the job queue.

When a bank with webhooks matches, :func:`enqueue_webhooks` queues one job of
kind ``webhook`` per URL. The worker POSTs the JSON event; a non-2xx answer or
a network error is retried with exponential back-off, and after
:data:`WEBHOOK_MAX_ATTEMPTS` attempts the delivery is dead-lettered
(``sentinelle actions dead-letters``; ``sentinelle actions replay JOB_ID``).

The event carries match metadata only -- bank, entry id, signal, distance,
variant, request id, instance -- never media, and never the uploader's hashes.

Request headers::

    Content-Type: application/json
    X-Sentinelle-Event: match
    X-Sentinelle-Delivery: <job id>          (same across retries of one event)
    X-Sentinelle-Timestamp: <unix seconds>   (time of THIS attempt)
    X-Sentinelle-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>

How a receiver verifies a delivery (:func:`verify_signature` does all of it):

1. Read the raw request body bytes (before any JSON parsing).
2. Compute ``HMAC-SHA256(secret, f"{timestamp}.".encode() + body)`` in hex.
3. Compare it with the ``v1=`` value in constant time
   (``hmac.compare_digest``); reject on mismatch.
4. Reject if the timestamp is more than 5 minutes from the receiver's clock:
   a captured request cannot be replayed later.
5. Deduplicate on the event's ``id`` (or the delivery header): a delivery
   whose 2xx answer was lost is retried, so receivers may see an event twice.

Answer 2xx quickly. 408, 425, 429 and 5xx answers (and timeouts) are retried;
any other status (e.g. 400, 401, 404, 410) is treated as permanent and the
delivery is dead-lettered at once. Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import Engine

from ..jobs import queue, worker
from ..store.models import utcnow
from . import config

log = logging.getLogger("sentinelle.webhooks")

JOB_KIND = "webhook"
WEBHOOK_MAX_ATTEMPTS = 10
TIMEOUT_S = 10.0
TOLERANCE_S = 300
RETRYABLE_STATUS = frozenset({408, 425, 429})
USER_AGENT = "Sentinelle-Webhook/1"


class WebhookError(Exception):
    """A delivery attempt failed; retried by the job queue."""


# ---------------------------------------------------------------- signing
def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """``v1=<hex>``: HMAC-SHA256 over ``f"{timestamp}." + body`` with ``secret``."""
    msg = f"{timestamp}.".encode() + body
    return "v1=" + hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes,
    signature: str,
    tolerance_s: float = TOLERANCE_S,
    *,
    now: float | None = None,
) -> bool:
    """For receivers: True iff ``signature`` (the ``X-Sentinelle-Signature``
    header, possibly several comma-separated ``v1=`` values during a secret
    rotation) matches and ``timestamp`` is within ``tolerance_s`` of ``now``."""
    try:
        ts = int(str(timestamp).strip())
    except (TypeError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - ts) > tolerance_s:
        return False
    expected = sign(secret, ts, body)
    candidates = [s.strip() for s in str(signature or "").split(",")]
    return any(hmac.compare_digest(expected, c) for c in candidates if c.startswith("v1="))


def headers_for(secret: str, body: bytes, delivery: str, *, now: float | None = None) -> dict:
    ts = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Sentinelle-Event": "match",
        "X-Sentinelle-Delivery": delivery,
        "X-Sentinelle-Timestamp": str(ts),
        "X-Sentinelle-Signature": sign(secret, ts, body),
    }


def encode_event(event: dict[str, Any]) -> bytes:
    """Canonical JSON bytes of an event (the exact bytes that are signed)."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


# --------------------------------------------------------------- delivery
def deliver(url: str, body: bytes, secret: str, delivery: str, timeout_s: float = TIMEOUT_S) -> int:
    """POST once; returns the 2xx status. Raises :class:`WebhookError` to retry,
    :class:`~sentinelle.jobs.worker.PermanentJobError` when retrying is pointless."""
    headers = headers_for(secret, body, delivery)
    try:
        with (
            httpx.Client(
                timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)),
                follow_redirects=False,
                trust_env=False,
            ) as client,
            client.stream("POST", url, content=body, headers=headers) as resp,
        ):
            status = resp.status_code
    except httpx.HTTPError as e:
        raise WebhookError(f"delivery failed: {type(e).__name__}") from None
    if 200 <= status < 300:
        return status
    if status >= 500 or status in RETRYABLE_STATUS:
        raise WebhookError(f"receiver answered HTTP {status}")
    raise worker.PermanentJobError(f"receiver answered HTTP {status} (not retried)")


def _handle(state: Any, job: queue.Job) -> dict:
    """Job ``webhook``: payload ``{"bank", "url", "event"}``. The secret is read
    now (not stored in the job), so a rotated secret applies to pending retries."""
    p = job.payload
    bank, url, event = p.get("bank"), p.get("url"), p.get("event")
    if not isinstance(bank, str) or not isinstance(url, str) or not isinstance(event, dict):
        raise worker.PermanentJobError("bad webhook job payload")
    secret = config.webhook_secret(state.engine, bank)
    if not secret:
        raise worker.PermanentJobError(f"bank {bank!r} has no webhook secret (or no longer exists)")
    status = deliver(url, encode_event(event), secret, str(job.id))
    return {"status": status, "attempts": job.attempts}


def make_event(bank: str, matches: list[dict[str, Any]], context: dict[str, Any]) -> dict[str, Any]:
    """The JSON event for one request's matches in one bank (metadata only)."""
    return {
        "id": uuid.uuid4().hex,
        "type": "match",
        "bank": bank,
        "created_at": utcnow().isoformat(),
        "request_id": context.get("request_id"),
        "instance": context.get("instance"),
        "source": context.get("source"),
        "quarantine": bool(context.get("quarantine", False)),
        "matches": matches,
    }


def enqueue_webhooks(
    engine: Engine, actions: config.BankActions, event: dict[str, Any]
) -> list[int]:
    """Queue one delivery per webhook URL of the bank; returns the job ids."""
    if not actions.webhooks_active:
        return []
    ids = []
    for url in actions.webhook_urls:
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        ids.append(
            queue.enqueue(
                engine,
                JOB_KIND,
                {"bank": actions.bank, "url": url, "event": event},
                max_attempts=WEBHOOK_MAX_ATTEMPTS,
                dedupe_key=f"{JOB_KIND}:{event['id']}:{digest}",
            )
        )
    return ids


def register() -> None:
    """Register the webhook delivery job (see :mod:`sentinelle.plugins`)."""
    worker.register_handler(JOB_KIND, _handle)
