"""Review decisions flow back to the exchange an entry came from.

:func:`on_final_decision` is registered (by :func:`sentinelle.exchanges.runner.register`)
as a hook of :mod:`sentinelle.review.decisions` and runs after a decision on a
hash-match item becomes final. If the matched bank entry came
from an exchange that accepts feedback, one ``exchange_feedback`` job per source
record is queued (deduplicated per decision and record). The worker sends it
with the client's ``send_feedback``; failures are retried with back-off by the
job queue and end in the dead-letter list (``sentinelle actions dead-letters``)
after :data:`FEEDBACK_MAX_ATTEMPTS`. Refused requests (4xx other than 429) are
permanent. Job payloads hold record keys and hashes of the *bank entry* (the
exchange's own data), never media or credentials.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine

from .api import VERDICTS, AuthError, ExchangeError, NotSupported, StoredRecord, TransientError
from .store import ExchangeStore

log = logging.getLogger("sentinelle.exchanges.feedback")

FEEDBACK_JOB = "exchange_feedback"
FEEDBACK_MAX_ATTEMPTS = 10


def on_decision(engine: Engine, entry_id: int | None, verdict: str, decision_id: int) -> int:
    """Queue feedback for a final decision on bank entry ``entry_id``; returns jobs queued."""
    from ..jobs import queue
    from .registry import get_type

    if entry_id is None or verdict not in VERDICTS:
        return 0
    found = ExchangeStore(engine).records_for_entry(int(entry_id))
    if found is None:
        return 0
    info, records = found
    if not get_type(info.type).supports_feedback:
        return 0
    n = 0
    for rec in records:
        queue.enqueue(
            engine,
            FEEDBACK_JOB,
            {
                "exchange": info.name,
                "verdict": verdict,
                "record": {
                    "key": rec.key,
                    "signal_type": rec.signal_type,
                    "hash": rec.hash,
                    "owner": rec.owner,
                    "category": rec.category,
                    "tags": list(rec.tags),
                },
            },
            max_attempts=FEEDBACK_MAX_ATTEMPTS,
            dedupe_key=f"{FEEDBACK_JOB}:{decision_id}:{info.id}:{rec.key}:{rec.signal_type}"[:200],
        )
        n += 1
    return n


def send(engine: Engine, payload: dict[str, Any], http: Any = None) -> dict[str, Any]:
    """Deliver one feedback payload now (the job handler; also used by tests)."""
    from ..jobs.worker import PermanentJobError
    from .runner import build_api
    from .transport import HttpTransport

    try:
        rec = payload["record"]
        record = StoredRecord(
            key=str(rec["key"]),
            signal_type=str(rec["signal_type"]),
            hash=str(rec["hash"]),
            owner=rec.get("owner"),
            category=rec.get("category"),
            tags=tuple(rec.get("tags") or ()),
        )
        name, verdict = str(payload["exchange"]), str(payload["verdict"])
    except (KeyError, TypeError) as e:
        raise PermanentJobError(f"bad exchange_feedback payload ({e})") from None
    store = ExchangeStore(engine)
    try:
        info = store.get(name)
    except ExchangeError as e:
        raise PermanentJobError(e.message) from None
    own = http is None
    transport = http or HttpTransport(retries=1)
    try:
        api = build_api(info, transport)
        api.send_feedback(record, verdict)
    except NotSupported as e:
        return {"sent": False, "reason": e.message}
    except (TransientError, AuthError):
        raise  # retried by the queue (credentials may be fixed meanwhile)
    except ExchangeError as e:
        raise PermanentJobError(f"{e.code}: {e.message}") from None
    finally:
        if own:
            transport.close()
    return {"sent": True, "exchange": name, "verdict": verdict}


def _handle(state: Any, job: Any) -> dict[str, Any]:
    return send(state.engine, job.payload)


def on_final_decision(engine: Engine, result: Any, item: Any) -> None:
    """Review hook: feedback to the entry's exchange; a confirmed entry of a shared
    bank joins this instance's peer feed (:mod:`.publish`)."""
    from .publish import Publisher

    entry_id = getattr(item, "entry_id", None)
    if entry_id is None:
        return
    verdict = result.decision.verdict
    on_decision(engine, int(entry_id), verdict, int(result.decision.id))
    if verdict == "confirm":
        Publisher(engine).on_confirmed(int(entry_id))


def register_handler() -> None:
    from ..jobs import worker
    from ..review.decisions import on_final_decision as add_hook

    worker.register_handler(FEEDBACK_JOB, _handle)
    add_hook(on_final_decision)
