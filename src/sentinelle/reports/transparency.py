"""Transparency metrics: what a platform publishes about its child-safety work.

    from sentinelle.reports.transparency import collect_metrics, to_csv
    m = collect_metrics(engine, since=..., until=..., actor="cli")   # JSON-able dict
    csv_text = to_csv(m)

Reads the review tables (migration 0005), the CyberTipline tables (0007) and the
evidence tables (0006); counts only, never content. Sections:

* ``signals`` -- case items by source (``hash_match``, ``guard_block``,
  ``guard_escalation``, ``provenance``) and hash-match items by bank, by the time
  the signal occurred.
* ``decisions`` -- final outcomes (a final or approved decision, made in the
  period) by source and verdict, and confirmed items by category (industry
  A1/A2/B1/B2 or custom) and source.
* ``second_review`` -- decisions that went through a second reviewer (decided in
  the period): how many were upheld, how many returned (the second reviewer
  disagreed: the **overturn rate**), how many of those ended with the opposite
  verdict (**reversal rate**), plus recategorisations from the audit trail.
* ``reports`` -- CyberTipline reports by state (created in the period), and for
  reports finished in the period the **time from detection to report**: from the
  earliest confirmed signal of the case to the finish receipt (count, mean,
  median, p90, min, max, in hours), and from detection to the first decision.
* ``preservation`` -- holds started and cases destroyed (by kind) in the period.

``since``/``until`` bound the period (half-open ``[since, until)``, aware UTC;
either may be None). Export is audited (``export.metrics``) when an ``actor`` is
given.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from ..audit import record_event
from ..audit.tables import audit_log
from ..evidence.tables import deletion_log, preservation_holds
from ..review.tables import aware as _aware
from ..review.tables import case_items, decisions
from .tables import reports

#: Decisions in force (a second review that accepts leaves ``final`` with an approver;
#: ``approved`` is accepted too) -- ``returned`` ones were overturned by the second reviewer.
FINAL_STATES = ("final", "approved")


def _period(col: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    conds = []
    if since is not None:
        conds.append(col >= since)
    if until is not None:
        conds.append(col < until)
    return conds


def _nested_counts(rows: Any) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for a, b, n in rows:
        out[str(a)][str(b if b is not None else "none")] = int(n)
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def _duration_stats(hours: list[float]) -> dict[str, Any]:
    if not hours:
        return {
            "count": 0,
            "mean_h": None,
            "median_h": None,
            "p90_h": None,
            "min_h": None,
            "max_h": None,
        }
    s = sorted(hours)
    p90 = s[min(len(s) - 1, max(0, round(0.9 * len(s) + 0.5) - 1))]
    return {
        "count": len(s),
        "mean_h": round(statistics.fmean(s), 3),
        "median_h": round(statistics.median(s), 3),
        "p90_h": round(p90, 3),
        "min_h": round(s[0], 3),
        "max_h": round(s[-1], 3),
    }


def _signals(conn: Any, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    where = _period(case_items.c.occurred_at, since, until)
    by_source = {
        str(k): int(n)
        for k, n in conn.execute(
            sa.select(case_items.c.kind, sa.func.count())
            .where(*where)
            .group_by(case_items.c.kind)
            .order_by(case_items.c.kind)
        )
    }
    by_bank = {
        str(b): int(n)
        for b, n in conn.execute(
            sa.select(case_items.c.bank, sa.func.count())
            .where(case_items.c.kind == "hash_match", case_items.c.bank.is_not(None), *where)
            .group_by(case_items.c.bank)
            .order_by(case_items.c.bank)
        )
    }
    return {
        "total": sum(by_source.values()),
        "by_source": by_source,
        "hash_matches_by_bank": by_bank,
    }


def _decisions(conn: Any, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    j = decisions.join(case_items, case_items.c.id == decisions.c.item_id)
    where = [decisions.c.state.in_(FINAL_STATES), *_period(decisions.c.created_at, since, until)]
    by_source_verdict = _nested_counts(
        conn.execute(
            sa.select(case_items.c.kind, decisions.c.verdict, sa.func.count())
            .select_from(j)
            .where(*where)
            .group_by(case_items.c.kind, decisions.c.verdict)
        )
    )
    confirmed = _nested_counts(
        conn.execute(
            sa.select(decisions.c.category, case_items.c.kind, sa.func.count())
            .select_from(j)
            .where(decisions.c.verdict == "confirm", *where)
            .group_by(decisions.c.category, case_items.c.kind)
        )
    )
    totals: dict[str, int] = defaultdict(int)
    for verdicts in by_source_verdict.values():
        for v, n in verdicts.items():
            totals[v] += n
    return {
        "by_verdict": dict(sorted(totals.items())),
        "by_source_and_verdict": by_source_verdict,
        "confirmed_by_category_and_source": confirmed,
        "confirmed_by_category": {c: sum(v.values()) for c, v in confirmed.items()},
    }


def _second_review(conn: Any, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    rows = conn.execute(
        sa.select(decisions.c.id, decisions.c.item_id, decisions.c.verdict, decisions.c.state)
        .where(
            decisions.c.approver_id.is_not(None),
            decisions.c.state.in_((*FINAL_STATES, "returned")),
            *_period(decisions.c.created_at, since, until),
        )
        .order_by(decisions.c.id)
    ).all()
    returned = [r for r in rows if r.state == "returned"]
    reversed_n = 0
    for r in returned:  # what the item finally became after the return
        final = conn.execute(
            sa.select(decisions.c.verdict)
            .where(
                decisions.c.item_id == r.item_id,
                decisions.c.id > r.id,
                decisions.c.state.in_(FINAL_STATES),
            )
            .order_by(decisions.c.id.desc())
            .limit(1)
        ).scalar()
        if final is not None and final != r.verdict:
            reversed_n += 1
    recat = conn.execute(
        sa.select(sa.func.count()).where(
            audit_log.c.action == "decision.recategorize",
            *_period(audit_log.c.at, since, until),
        )
    ).scalar_one()
    n = len(rows)
    return {
        "second_reviews": n,
        "upheld": n - len(returned),
        "returned": len(returned),
        "reversed": reversed_n,
        "overturn_rate": round(len(returned) / n, 4) if n else None,
        "reversal_rate": round(reversed_n / n, 4) if n else None,
        "recategorized": int(recat),
    }


def _reports(conn: Any, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    by_state = {
        str(s): int(n)
        for s, n in conn.execute(
            sa.select(reports.c.state, sa.func.count())
            .where(*_period(reports.c.created_at, since, until))
            .group_by(reports.c.state)
            .order_by(reports.c.state)
        )
    }
    finished = conn.execute(
        sa.select(reports.c.id, reports.c.case_id, reports.c.finished_at).where(
            reports.c.finished_at.is_not(None),
            reports.c.case_id.is_not(None),
            *_period(reports.c.finished_at, since, until),
        )
    ).all()
    to_report: list[float] = []
    to_decision: list[float] = []
    for r in finished:
        fin = _aware(r.finished_at)
        confirmed = sa.and_(
            case_items.c.case_id == r.case_id,
            case_items.c.status == "confirmed",
            case_items.c.occurred_at <= fin,
        )
        detected = _aware(
            conn.execute(sa.select(sa.func.min(case_items.c.occurred_at)).where(confirmed)).scalar()
        )
        if detected is None:
            continue
        to_report.append((fin - detected).total_seconds() / 3600)
        decided = _aware(
            conn.execute(
                sa.select(sa.func.min(decisions.c.created_at))
                .select_from(decisions.join(case_items, case_items.c.id == decisions.c.item_id))
                .where(confirmed)
            ).scalar()
        )
        if decided is not None:
            to_decision.append(max(0.0, (decided - detected).total_seconds() / 3600))
    return {
        "by_state": by_state,
        "finished": len(finished),
        "detection_to_report": _duration_stats(to_report),
        "detection_to_first_decision": _duration_stats(to_decision),
    }


def _preservation(conn: Any, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    holds = _nested_counts(
        conn.execute(
            sa.select(preservation_holds.c.kind, preservation_holds.c.jurisdiction, sa.func.count())
            .where(*_period(preservation_holds.c.started_at, since, until))
            .group_by(preservation_holds.c.kind, preservation_holds.c.jurisdiction)
        )
    )
    destroyed = {
        str(k): int(n)
        for k, n in conn.execute(
            sa.select(deletion_log.c.kind, sa.func.count())
            .where(*_period(deletion_log.c.at, since, until))
            .group_by(deletion_log.c.kind)
            .order_by(deletion_log.c.kind)
        )
    }
    return {"holds_started": holds, "cases_destroyed": destroyed}


def collect_metrics(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """All transparency metrics for ``[since, until)`` as a JSON-able dict."""
    since, until = _aware(since), _aware(until)
    with engine.connect() as conn:
        out = {
            "period": {
                "since": since.isoformat() if since else None,
                "until": until.isoformat() if until else None,
            },
            "generated_at": datetime.now(UTC).isoformat(),
            "signals": _signals(conn, since, until),
            "decisions": _decisions(conn, since, until),
            "second_review": _second_review(conn, since, until),
            "reports": _reports(conn, since, until),
            "preservation": _preservation(conn, since, until),
        }
    if actor is not None:
        record_event(
            engine,
            actor=actor,
            action="export.metrics",
            details={"since": out["period"]["since"], "until": out["period"]["until"]},
        )
    return out


def _flatten(prefix: list[str], value: Any, rows: list[list[str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten([*prefix, str(k)], v, rows)
    else:
        rows.append([prefix[0], ".".join(prefix[1:]), "" if value is None else str(value)])


def to_csv(metrics: dict[str, Any]) -> str:
    """One ``section,metric,value`` row per number (``metric`` is a dotted path)."""
    rows: list[list[str]] = []
    for section in ("signals", "decisions", "second_review", "reports", "preservation"):
        _flatten([section], metrics[section], rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["section", "metric", "value"])
    w.writerow(["period", "since", metrics["period"]["since"] or ""])
    w.writerow(["period", "until", metrics["period"]["until"] or ""])
    w.writerows(rows)
    return buf.getvalue()
