"""What happens after a match: flood guard, quarantine flag, webhooks.

The service's scan/match routes call :func:`on_matches` with the matches of one
request. In order:

1. **Flood guard** (:mod:`sentinelle.actions.flood`): each matched entry counts
   once per request. An entry over its bank's limit is paused for FUTURE
   requests (every instance's index drops it within seconds) and an alert is
   raised; the current match is still reported.
2. **Quarantine**: ``quarantine`` is true when any match is in a bank whose
   actions have ``quarantine`` set (the caller puts it in the scan response).
3. **Webhooks** (:mod:`sentinelle.actions.webhooks`): one delivery job per
   (bank with webhooks, request, URL), with the bank's matches as metadata.

Bank settings come from a snapshot refreshed every few seconds
(:func:`sentinelle.actions.config.cached_actions`), so the hot path does no
database read; the flood guard batches its writes; the only per-request write
is the webhook job, for banks that have webhooks.

Action failures (database briefly unreachable) never fail the request: they are
logged and listed in ``ActionOutcome.errors``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from . import config, flood, webhooks

log = logging.getLogger("sentinelle.actions")


@dataclass
class ActionOutcome:
    quarantine: bool = False
    webhooks_queued: int = 0
    paused_entries: list[int] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "quarantine": self.quarantine,
            "webhooks_queued": self.webhooks_queued,
            "paused_entries": list(self.paused_entries),
            "alerts": list(self.alerts),
        }


def match_metadata(m: Any) -> dict[str, Any]:
    """The fields of a match that may leave the service (no hashes, no media)."""
    return {
        "entry_id": int(m.entry_id),
        "signal": m.signal,
        "distance": int(m.distance),
        "variant": m.variant,
        "enrolled_variant": getattr(m, "enrolled_variant", None),
        "category": getattr(m, "category", None),
    }


def _flush_interval(state: Any) -> float | None:
    extra = getattr(getattr(state, "settings", None), "extra", None) or {}
    v = extra.get("flood_flush_interval_s")
    return None if v is None else float(v)


def on_matches(state: Any, matches: list[Any], *, context: dict) -> ActionOutcome:
    """Apply the actions for one request's ``matches``; see the module docs.

    ``context``: ``request_id`` (put in webhook events), ``source`` or
    ``route``; anything else (notably the upload's own hashes) is ignored and
    never leaves the service. Never raises for action failures.
    """
    out = ActionOutcome()
    if not matches:
        return out
    try:
        settings = config.cached_actions(state.engine)
    except Exception as e:  # noqa: BLE001 - no settings: report matches, no actions
        log.warning("actions: cannot read bank settings (%s)", type(e).__name__)
        out.errors.append("action settings unavailable")
        return out

    by_bank: dict[str, list[Any]] = defaultdict(list)
    for m in matches:
        by_bank[m.bank].append(m)
    out.quarantine = any(
        (a := settings.get(bank)) is not None and a.enabled and a.quarantine for bank in by_bank
    )

    # 1. flood guard: one count per entry per request
    counts = {int(m.entry_id): (m.bank, 1) for m in matches}
    flood_settings = {b: a.flood for b, a in settings.items() if b in by_bank}
    try:
        res = flood.guard_for(state.store, _flush_interval(state)).record(counts, flood_settings)
        out.paused_entries.extend(res.paused_entries)
        out.alerts.extend(res.alerts)
    except Exception as e:  # noqa: BLE001
        log.warning("flood guard: update failed (%s)", type(e).__name__)
        out.errors.append("flood guard unavailable")

    # 3. webhooks
    ctx = {
        "request_id": context.get("request_id"),
        "source": context.get("source") or context.get("route"),
        "instance": getattr(state, "instance_id", None),
        "quarantine": out.quarantine,
    }
    for bank, ms in by_bank.items():
        a = settings.get(bank)
        if a is None or not a.webhooks_active:
            continue
        event = webhooks.make_event(bank, [match_metadata(m) for m in ms], ctx)
        try:
            out.webhooks_queued += len(webhooks.enqueue_webhooks(state.engine, a, event))
        except Exception as e:  # noqa: BLE001
            log.warning("webhooks: enqueue failed for bank %r (%s)", bank, type(e).__name__)
            out.errors.append(f"webhook for bank {bank!r} not queued")
    return out
