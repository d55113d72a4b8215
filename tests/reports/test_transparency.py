"""Transparency metrics from real review, report and preservation data (SQLite + PostgreSQL).

Cases, items and decisions are made through the review package's own API; the
finished CyberTipline reports are rows as the report lifecycle leaves them.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from sentinelle.audit import list_events, verify_chain
from sentinelle.cli.main import app
from sentinelle.evidence import start_hold
from sentinelle.reports.tables import reports
from sentinelle.reports.transparency import collect_metrics, to_csv
from sentinelle.review import accounts, decisions
from sentinelle.review.config import set_config
from sentinelle.review.intake import record_signal
from sentinelle.store.db import open_engine

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(hours=10)
PW = "correct horse battery staple"


def _hash_match(bank: str) -> dict:
    return {"bank": bank, "entry_id": 1, "distance": 4, "signal_type": "pdq", "hash": "f" * 64}


def _report(engine: Engine, case_id: int, finished_at: datetime | None, state: str) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                reports.insert().returning(reports.c.id),
                {
                    "case_id": case_id,
                    "environment": "test",
                    "state": state,
                    "report_xml": "<report/>",
                    "created_by": "user:legal",
                    "created_at": T0,
                    "updated_at": T0,
                    "finished_at": finished_at,
                },
            ).scalar_one()
        )


def _scenario(engine: Engine) -> None:
    rev1 = accounts.create_user(engine, "rev1", PW, "reviewer")
    rev2 = accounts.create_user(engine, "rev2", PW, "reviewer")
    spec = accounts.create_user(engine, "spec", PW, "specialist")
    case_a, a_hash = record_signal(
        engine,
        account_id="acct-a",
        kind="hash_match",
        summary=_hash_match("bank-a"),
        occurred_at=T0,
    )
    _, a_guard = record_signal(
        engine,
        account_id="acct-a",
        kind="guard_block",
        summary={"categories": {"minor_sexual": 0.9}, "prompt_sha256": "0" * 64, "policy_id": "p"},
        occurred_at=T0 + timedelta(hours=1),
    )
    case_b, b_hash = record_signal(
        engine,
        account_id="acct-b",
        kind="hash_match",
        summary=_hash_match("bank-b"),
        occurred_at=T0 + timedelta(hours=2),
    )
    _, c_prov = record_signal(
        engine,
        account_id="acct-c",
        kind="provenance",
        summary={"verdict": "ai_generated", "confidence": 0.9},
        occurred_at=T0 + timedelta(hours=3),
    )
    decisions.decide(engine, a_hash, rev1, verdict="confirm", category="A1")
    decisions.decide(engine, a_guard, rev1, verdict="reject")
    set_config(engine, "second_review", True, actor="cli")
    d_b = decisions.decide(engine, b_hash, rev2, verdict="confirm", category="B1")
    decisions.approve(engine, d_b.decision.id, spec, accept=True)
    d_c1 = decisions.decide(engine, c_prov, rev2, verdict="reject")
    decisions.approve(engine, d_c1.decision.id, spec, accept=False)  # overturned
    d_c2 = decisions.decide(engine, c_prov, rev2, verdict="confirm", category="B2")
    decisions.approve(engine, d_c2.decision.id, spec, accept=True)
    r_a = _report(engine, case_a, T0 + timedelta(hours=5), "finished")
    _report(engine, case_b, T0 + timedelta(hours=3), "finished")
    _report(engine, case_b, None, "draft")
    start_hold(engine, case_id=case_a, report_id=r_a, jurisdiction="US", started_at=T0)


def test_metrics_from_a_worked_queue(engine: Engine) -> None:
    _scenario(engine)
    m = collect_metrics(engine, actor="user:legal")
    assert m["signals"] == {
        "total": 4,
        "by_source": {"guard_block": 1, "hash_match": 2, "provenance": 1},
        "hash_matches_by_bank": {"bank-a": 1, "bank-b": 1},
    }
    d = m["decisions"]
    assert d["by_verdict"] == {"confirm": 3, "reject": 1}
    assert d["by_source_and_verdict"] == {
        "guard_block": {"reject": 1},
        "hash_match": {"confirm": 2},
        "provenance": {"confirm": 1},
    }
    assert d["confirmed_by_category"] == {"A1": 1, "B1": 1, "B2": 1}
    assert d["confirmed_by_category_and_source"]["B2"] == {"provenance": 1}
    assert m["second_review"] == {
        "second_reviews": 3,
        "upheld": 2,
        "returned": 1,
        "reversed": 1,
        "overturn_rate": 0.3333,
        "reversal_rate": 0.3333,
        "recategorized": 0,
    }
    r = m["reports"]
    assert r["by_state"] == {"draft": 1, "finished": 2} and r["finished"] == 2
    # case A: detected T0, finished T0+5h; case B: detected T0+2h, finished T0+3h
    assert r["detection_to_report"] == {
        "count": 2,
        "mean_h": 3.0,
        "median_h": 3.0,
        "p90_h": 5.0,
        "min_h": 1.0,
        "max_h": 5.0,
    }
    assert r["detection_to_first_decision"]["count"] == 2
    assert m["preservation"] == {"holds_started": {"retention": {"US": 1}}, "cases_destroyed": {}}
    (ev,) = list_events(engine, action="export.metrics")
    assert ev.actor == "user:legal"
    assert verify_chain(engine).ok
    json.dumps(m)  # JSON-able

    rows = list(csv.reader(io.StringIO(to_csv(m))))
    assert rows[0] == ["section", "metric", "value"]
    table = {(s, k): v for s, k, v in rows[1:]}
    assert table[("second_review", "overturn_rate")] == "0.3333"
    assert table[("decisions", "confirmed_by_category.A1")] == "1"
    assert table[("signals", "by_source.hash_match")] == "2"
    assert table[("reports", "detection_to_report.median_h")] == "3.0"


def test_period_bounds(engine: Engine) -> None:
    _scenario(engine)
    early = collect_metrics(engine, until=T0 + timedelta(hours=1, minutes=30))
    assert early["signals"]["by_source"] == {"guard_block": 1, "hash_match": 1}
    assert early["reports"]["finished"] == 0
    later = collect_metrics(engine, since=NOW + timedelta(hours=1))
    assert later["signals"]["total"] == 0 and later["decisions"]["by_verdict"] == {}
    assert later["second_review"]["overturn_rate"] is None
    assert later["reports"]["detection_to_report"]["count"] == 0
    mid = collect_metrics(engine, since=T0 + timedelta(hours=4), until=T0 + timedelta(hours=6))
    assert mid["reports"]["finished"] == 1
    assert mid["reports"]["detection_to_report"]["median_h"] == 5.0
    assert list_events(engine, action="export.metrics") == []  # no actor: not an export


def test_cli_export(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", db_url)
    eng = open_engine(db_url)
    _scenario(eng)
    run = CliRunner().invoke
    r = run(app, ["transparency", "export"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["signals"]["total"] == 4
    out = tmp_path / "m.csv"
    r = run(
        app,
        [
            "transparency",
            "export",
            "--format",
            "csv",
            "--out",
            str(out),
            "--since",
            (NOW + timedelta(hours=1)).isoformat(),
        ],
    )
    assert r.exit_code == 0
    assert "signals,total,0" in out.read_text()
    assert run(app, ["transparency", "export", "--format", "xml"]).exit_code != 0
    assert run(app, ["transparency", "export", "--since", "yesterday"]).exit_code != 0
    assert [e.actor for e in list_events(eng, action="export.metrics")] == ["cli", "cli"]
    eng.dispose()
