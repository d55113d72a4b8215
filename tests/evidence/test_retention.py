"""Preservation holds and scheduled deletion, on SQLite and PostgreSQL.

Time is passed explicitly (``now``), so a year of retention takes no time to test.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from sentinelle.audit import list_events, verify_chain
from sentinelle.cli.main import app
from sentinelle.evidence import (
    EvidenceError,
    EvidenceStore,
    deletion_records,
    extend_hold,
    list_holds,
    place_legal_hold,
    release_hold,
    retention_days,
    run_retention,
    start_hold,
)
from sentinelle.store.db import open_engine

MASTER = secrets.token_bytes(32)
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture()
def store(engine: Engine) -> EvidenceStore:
    return EvidenceStore(engine, MASTER)


def _evidence(store: EvidenceStore, case_id: int) -> int:
    return store.put(case_id, b"benign bytes %d" % case_id, media_type="image/png", actor="system")


def test_retention_periods_per_jurisdiction() -> None:
    assert retention_days("US", {}) == 365
    assert retention_days("ca", {}) == 21
    assert retention_days("UK", {}) == 365 and retention_days("GB", {}) == 365
    env = {"SENTINELLE_RETENTION_DAYS": "CA=30, AU=90"}
    assert retention_days("CA", env) == 30 and retention_days("AU", env) == 90
    assert retention_days("US", env) == 365
    for bad in ("", "FR"):
        with pytest.raises(EvidenceError) as ei:
            retention_days(bad, {})
        assert ei.value.code == "unknown_jurisdiction"
    for spec in ("CA", "CA=0", "CA=x", "C1=5", "CA=99999"):
        with pytest.raises(EvidenceError) as ei:
            retention_days("CA", {"SENTINELLE_RETENTION_DAYS": spec})
        assert ei.value.code == "bad_hold"


def test_start_hold_is_idempotent_and_audited(engine: Engine) -> None:
    hid = start_hold(engine, case_id=3, report_id=41, jurisdiction="us", started_at=T0)
    assert start_hold(engine, case_id=3, report_id=41, jurisdiction="US", started_at=T0) == hid
    other = start_hold(engine, case_id=3, report_id=41, jurisdiction="CA", started_at=T0)
    assert other != hid
    h = {x.id: x for x in list_holds(engine, case_id=3)}
    assert h[hid].expires_at == T0 + timedelta(days=365) and h[hid].jurisdiction == "US"
    assert h[other].expires_at == T0 + timedelta(days=21)
    assert h[hid].kind == "retention" and h[hid].report_id == 41
    evs = list_events(engine, action="hold.start")
    assert len(evs) == 2 and evs[-1].details["jurisdiction"] == "US"
    with pytest.raises(EvidenceError) as ei:
        start_hold(engine, case_id=3, report_id=41, jurisdiction="XX", started_at=T0)
    assert ei.value.code == "unknown_jurisdiction"
    # Inside the caller's transaction: rolled back with it.
    with pytest.raises(RuntimeError), engine.begin() as conn:
        start_hold(conn, case_id=4, report_id=1, jurisdiction="UK", started_at=T0)
        raise RuntimeError
    assert list_holds(engine, case_id=4) == []


def test_scheduled_deletion_follows_the_holds(store: EvidenceStore, engine: Engine) -> None:
    _evidence(store, 1)  # CA report: 21 days
    _evidence(store, 2)  # US report: 1 year
    _evidence(store, 3)  # never reported: no hold, never deleted by the schedule
    _evidence(store, 4)  # CA report + legal hold
    start_hold(engine, case_id=1, report_id=10, jurisdiction="CA", started_at=T0)
    start_hold(engine, case_id=2, report_id=20, jurisdiction="US", started_at=T0)
    start_hold(engine, case_id=4, report_id=40, jurisdiction="CA", started_at=T0)
    legal = place_legal_hold(engine, case_id=4, actor="user:legal", reason="subpoena")

    assert run_retention(engine, T0 + timedelta(days=20)).due == []
    run = run_retention(engine, T0 + timedelta(days=21, seconds=1))
    assert run.due == [1] and [p["case_id"] for p in run.destroyed] == [1]
    assert run.destroyed[0]["kind"] == "scheduled" and not run.failed
    assert run_retention(engine, T0 + timedelta(days=22)).due == []  # nothing twice

    release_hold(engine, legal, actor="user:legal", reason="subpoena closed")
    assert run_retention(engine, T0 + timedelta(days=22)).due == [4]
    assert run_retention(engine, T0 + timedelta(days=364)).due == []
    dry = run_retention(engine, T0 + timedelta(days=366), dry_run=True)
    assert dry.due == [2] and dry.destroyed == []
    assert [p["case_id"] for p in run_retention(engine, T0 + timedelta(days=366)).destroyed] == [2]

    assert sorted(r["case_id"] for r in deletion_records(engine)) == [1, 2, 4]
    assert all(r["kind"] == "scheduled" for r in deletion_records(engine))
    assert store.list_case(3)[0].destroyed_at is None
    assert verify_chain(engine).ok


def test_extensions_and_releases(store: EvidenceStore, engine: Engine) -> None:
    _evidence(store, 5)
    hid = start_hold(engine, case_id=5, report_id=50, jurisdiction="CA", started_at=T0)
    h = extend_hold(engine, hid, actor="user:legal", reason="police request", days=30)
    assert h.expires_at == T0 + timedelta(days=51)
    until = T0 + timedelta(days=90)
    assert extend_hold(engine, hid, actor="cli", reason="again", until=until).expires_at == until
    assert run_retention(engine, T0 + timedelta(days=60)).due == []
    for kwargs, code in [
        ({"days": 0}, "bad_hold"),
        ({"days": None}, "bad_hold"),
        ({"days": 1, "until": until}, "bad_hold"),
        ({"until": T0}, "bad_hold"),  # would shorten it
        ({"days": 1, "reason": ""}, "bad_hold"),
    ]:
        kw = {"actor": "cli", "reason": "r", **kwargs}
        with pytest.raises(EvidenceError) as ei:
            extend_hold(engine, hid, **kw)  # type: ignore[arg-type]
        assert ei.value.code == code, kwargs
    legal = place_legal_hold(engine, case_id=5, actor="cli", reason="hold it")
    with pytest.raises(EvidenceError) as ei:
        extend_hold(engine, legal, actor="cli", reason="r", days=1)
    assert ei.value.code == "bad_hold"
    release_hold(engine, legal, actor="cli", reason="done")
    with pytest.raises(EvidenceError) as ei:
        release_hold(engine, legal, actor="cli", reason="again")
    assert ei.value.code == "bad_hold"
    for fn in (release_hold, extend_hold):
        with pytest.raises(EvidenceError) as ei:
            fn(engine, 9999, actor="cli", reason="r", **({"days": 1} if fn is extend_hold else {}))
        assert ei.value.code == "unknown_hold"
    with pytest.raises(EvidenceError) as ei:
        place_legal_hold(engine, case_id=5, actor="cli", reason=" ")
    assert ei.value.code == "bad_hold"
    actions = [e.action for e in reversed(list_events(engine, action="hold"))]
    assert actions == [
        "hold.start",
        "hold.extend",
        "hold.extend",
        "hold.legal",
        "hold.release",
    ]


def test_job_worker_runs_retention_periodically(store: EvidenceStore, engine: Engine) -> None:
    from sentinelle.evidence.retention import register_periodic_task
    from sentinelle.jobs.worker import run_periodic

    _evidence(store, 6)
    hid = start_hold(engine, case_id=6, report_id=60, jurisdiction="US", started_at=T0)
    release_hold(engine, hid, actor="cli", reason="report retracted")
    register_periodic_task()
    run_periodic(SimpleNamespace(engine=engine), force=True)
    assert [r["case_id"] for r in deletion_records(engine)] == [6]


def test_cli_holds(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", db_url)
    eng = open_engine(db_url)
    EvidenceStore(eng, MASTER).put(7, b"benign", media_type="image/png", actor="cli")
    hid = start_hold(eng, case_id=7, report_id=70, jurisdiction="CA", started_at=T0)
    run = CliRunner().invoke
    r = run(app, ["retention", "extend", str(hid), "--days", "10", "--reason", "LE request"])
    assert r.exit_code == 0 and "2025-04-01" in r.output
    r = run(app, ["retention", "extend", str(hid), "--until", "2025-01-01", "--reason", "x"])
    assert r.exit_code == 1 and "bad_hold" in r.output
    r = run(app, ["retention", "list", "--case", "7", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["jurisdiction"] == "CA"
    r = run(app, ["retention", "run", "--now", "2025-03-30T00:00:00", "--dry-run"])
    assert r.exit_code == 0 and json.loads(r.stdout)["due"] == []
    r = run(app, ["retention", "run", "--now", "2025-04-02T00:00:00"])
    assert r.exit_code == 0, r.output
    assert [d["case_id"] for d in json.loads(r.stdout)["destroyed"]] == [7]
    r = run(app, ["retention", "release", "999", "--reason", "x"])
    assert r.exit_code == 1 and "unknown_hold" in r.output
    eng.dispose()
