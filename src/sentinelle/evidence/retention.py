"""Retention periods per jurisdiction, and the scheduled deletion run.

Defaults (days of preservation after the report is finished):

======  =====  ==========================================================
code    days   source
======  =====  ==========================================================
``US``  365    18 U.S.C. 2258A(h) as amended by the REPORT Act (1 year)
``CA``  21     Canada, S.C. 2011 c. 4 (Mandatory Reporting Act), s. 4
``UK``  365    1 year (``GB`` is accepted as an alias)
======  =====  ==========================================================

Override or add jurisdictions with ``SENTINELLE_RETENTION_DAYS``, e.g.
``US=365,CA=21,UK=365,AU=90``.

:func:`run_retention` destroys (crypto-shreds, with a proof) the evidence of
every case that has had at least one hold and has none active any more: its
retention holds expired and its legal holds were released. Evidence that never
had a hold (never reported) is left alone: its fate belongs to the review. The
job worker runs it every hour; ``sentinelle retention run`` runs it by hand.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, exists, or_, select

from .errors import EvidenceError

log = logging.getLogger(__name__)

RETENTION_ENV = "SENTINELLE_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS: dict[str, int] = {"US": 365, "CA": 21, "UK": 365}
ALIASES = {"GB": "UK", "USA": "US", "CAN": "CA", "GBR": "UK"}
RUN_INTERVAL_S = 3600.0


def retention_table(env: Mapping[str, str] | None = None) -> dict[str, int]:
    """The defaults, overridden/extended by ``$SENTINELLE_RETENTION_DAYS``."""
    env = os.environ if env is None else env
    table = dict(DEFAULT_RETENTION_DAYS)
    spec = (env.get(RETENTION_ENV) or "").strip()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        code, sep, days = part.partition("=")
        code = ALIASES.get(code.strip().upper(), code.strip().upper())
        try:
            n = int(days)
        except ValueError:
            n = -1
        if not sep or not code.isalpha() or not 1 <= len(code) <= 16 or not 1 <= n <= 36500:
            raise EvidenceError(
                f"{RETENTION_ENV}: bad item {part!r} (want CODE=DAYS, 1-36500 days)",
                code="bad_hold",
            )
        table[code] = n
    return table


def normalize_jurisdiction(jurisdiction: str) -> str:
    if not isinstance(jurisdiction, str) or not jurisdiction.strip():
        raise EvidenceError("a jurisdiction code is required", code="unknown_jurisdiction")
    code = jurisdiction.strip().upper()
    return ALIASES.get(code, code)


def retention_days(jurisdiction: str, env: Mapping[str, str] | None = None) -> int:
    """Days of preservation required in ``jurisdiction`` (``US``, ``CA``, ``UK``...)."""
    code = normalize_jurisdiction(jurisdiction)
    table = retention_table(env)
    if code not in table:
        raise EvidenceError(
            f"no retention period for jurisdiction {jurisdiction!r} "
            f"(known: {', '.join(sorted(table))}; set {RETENTION_ENV})",
            code="unknown_jurisdiction",
        )
    return table[code]


@dataclass
class RetentionRun:
    """What one run did: proofs of destroyed cases, and failures by case."""

    now: datetime
    due: list[int] = field(default_factory=list)
    destroyed: list[dict[str, Any]] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "due": self.due,
            "destroyed": [
                {
                    "case_id": p["case_id"],
                    "deletion_id": p["deletion_id"],
                    "proof_sha256": p["proof_sha256"],
                    "blobs": len(p["blobs"]),
                }
                for p in self.destroyed
            ],
            "failed": {str(k): v for k, v in self.failed.items()},
        }


def due_cases(engine: Engine, now: datetime | None = None) -> list[int]:
    """Cases with live evidence, at least one hold, and no hold active at ``now``."""
    from .tables import evidence_keys as keys
    from .tables import preservation_holds as holds

    now = now or datetime.now(UTC)
    any_hold = exists().where(holds.c.case_id == keys.c.case_id)
    active = exists().where(
        holds.c.case_id == keys.c.case_id,
        holds.c.released_at.is_(None),
        or_(holds.c.expires_at.is_(None), holds.c.expires_at > now),
    )
    q = (
        select(keys.c.case_id)
        .where(and_(keys.c.wrapped_key.is_not(None), any_hold, ~active))
        .order_by(keys.c.case_id)
    )
    with engine.connect() as conn:
        return [int(c) for c in conn.execute(q).scalars()]


def run_retention(
    engine: Engine, now: datetime | None = None, *, actor: str = "system", dry_run: bool = False
) -> RetentionRun:
    """Destroy the evidence of every case whose holds are all over (see module doc).

    Safe to run on several instances at once: a case already destroyed by another
    run is skipped. ``dry_run`` only lists the due cases.
    """
    from .store import destroy_case

    now = now or datetime.now(UTC)
    run = RetentionRun(now=now, due=due_cases(engine, now))
    if dry_run:
        return run
    for case_id in run.due:
        try:
            run.destroyed.append(
                destroy_case(
                    engine,
                    case_id,
                    actor=actor,
                    reason="retention period over, no active hold",
                    kind="scheduled",
                    now=now,
                )
            )
        except EvidenceError as e:
            if e.code != "evidence_destroyed":  # another instance was quicker
                run.failed[case_id] = f"{e.code}: {e.message}"
    return run


def _periodic(state: Any) -> None:
    """Job-worker housekeeping: the hourly scheduled deletion."""
    run = run_retention(state.engine)
    if run.destroyed or run.failed:
        log.info(
            "retention run: %d case(s) destroyed, %d failed", len(run.destroyed), len(run.failed)
        )


def register_periodic_task() -> None:
    """Make the job worker run :func:`run_retention` every hour."""
    from ..jobs.worker import register_periodic

    register_periodic("evidence.retention", _periodic, RUN_INTERVAL_S)


register = register_periodic_task  # the plugin hook (see :mod:`sentinelle.plugins`)
