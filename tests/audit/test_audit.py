"""Audit trail: hash chain, tamper detection, append-only triggers, concurrency, CLI.

Every test runs on SQLite and on PostgreSQL (``db_url``). Tampering goes straight
to SQL (after switching the append-only triggers off, as an attacker with database
rights could) and ``verify_chain`` must notice it.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from sentinelle.audit import AuditError, list_events, record_event, verify_chain
from sentinelle.cli.main import app
from sentinelle.store.db import open_engine


def _fill(engine: Engine, n: int) -> None:
    for i in range(n):
        record_event(
            engine,
            actor="user:alice" if i % 2 else "system",
            action="case.view",
            target=f"case:{i}",
            details={"i": i, "note": "é"},
        )


@contextmanager
def _triggers_off(engine: Engine) -> Iterator[None]:
    """What an attacker with schema rights would do before editing the log."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE audit_head DISABLE TRIGGER USER"))
        else:
            for name in ("audit_log_no_update", "audit_log_no_delete", "audit_head_keep"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
    yield


def _sql(engine: Engine, stmt: str, **params: object) -> None:
    with _triggers_off(engine), engine.begin() as conn:
        conn.execute(text(stmt), params)


def test_chain_links_and_verifies(engine: Engine) -> None:
    res = verify_chain(engine)
    assert res.ok and res.checked == 0
    ids = [
        record_event(engine, actor="cli", action="key.create", target=7, details={"k": [1, 2]}),
        record_event(engine, actor="key:3", action="export.metrics"),
        record_event(engine, actor="user:bob", action="auth.login", details={"ip": "10.0.0.1"}),
    ]
    assert ids == [1, 2, 3]
    events = list_events(engine, limit=10)
    assert [e.id for e in events] == [3, 2, 1]
    assert events[2].prev_hash == "0" * 64
    assert events[1].prev_hash == events[2].hash and events[0].prev_hash == events[1].hash
    assert events[2].target == "7" and events[2].details == {"k": [1, 2]}
    assert [e.id for e in list_events(engine, action="auth")] == [3]
    assert [e.id for e in list_events(engine, actor="key:3")] == [2]
    res = verify_chain(engine)
    assert res.ok and res.checked == 3 and res.head_seq == 3 and res.problems == []


def test_append_only_triggers_refuse_update_and_delete(engine: Engine) -> None:
    _fill(engine, 2)
    for stmt in (
        "UPDATE audit_log SET actor = 'system' WHERE id = 1",
        "DELETE FROM audit_log WHERE id = 2",
        "DELETE FROM audit_head",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(stmt))
    assert verify_chain(engine).ok


@pytest.mark.parametrize(
    ("stmt", "expect"),
    [
        ("UPDATE audit_log SET details = :d WHERE id = 3", "entry 3: content"),
        ("UPDATE audit_log SET actor = 'user:mallory' WHERE id = 1", "entry 1: content"),
        ("UPDATE audit_log SET at = :t WHERE id = 2", "entry 2: content"),
        ("DELETE FROM audit_log WHERE id = 2", "entry 2 missing"),
        ("DELETE FROM audit_log WHERE id >= 4", "entries 4-5 missing"),
        ("DELETE FROM audit_log WHERE id = 1", "entry 1 missing"),
        ("DELETE FROM audit_log", "entries 1-5 missing"),
        ("DELETE FROM audit_head", "head row missing"),
    ],
)
def test_verify_detects_tampering(engine: Engine, stmt: str, expect: str) -> None:
    from datetime import datetime

    _fill(engine, 5)
    assert verify_chain(engine).ok
    _sql(engine, stmt, t=datetime(2020, 1, 1), d='{"i":99}')
    res = verify_chain(engine)
    assert not res.ok
    assert any(expect in p for p in res.problems), res.problems


def test_verify_detects_inserted_entries(engine: Engine) -> None:
    _fill(engine, 3)
    good = list_events(engine, limit=1)[0]
    # Appended at the end without going through the head.
    _sql(
        engine,
        "INSERT INTO audit_log (id, at, actor, action, target, details, prev_hash, hash) "
        "VALUES (4, :at, 'system', 'case.view', NULL, '{}', :prev, :h)",
        at=good.at.replace(tzinfo=None),
        prev=good.hash,
        h="f" * 64,
    )
    problems = verify_chain(engine).problems
    assert any("entry 4: content" in p for p in problems)
    assert any("beyond the head" in p for p in problems)


def test_verify_detects_a_rewritten_entry_with_a_fresh_hash(engine: Engine) -> None:
    """Recomputing the changed entry's own hash breaks the link from the next one."""
    from sentinelle.audit import entry_hash

    _fill(engine, 4)
    ev = next(e for e in list_events(engine) if e.id == 2)
    new_hash = entry_hash(2, ev.at, "user:mallory", ev.action, ev.target, "{}", ev.prev_hash)
    _sql(
        engine,
        "UPDATE audit_log SET actor = 'user:mallory', details = '{}', hash = :h WHERE id = 2",
        h=new_hash,
    )
    problems = verify_chain(engine).problems
    assert problems == [
        "entry 3: prev_hash does not match entry 2 (entry inserted, re-ordered or rewritten)"
    ]


def test_audit_key_catches_a_consistently_rewritten_tail(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting the newest entries and rolling the head back fools the plain chain,
    not the HMAC-anchored head."""
    monkeypatch.setenv("SENTINELLE_AUDIT_KEY", "k" * 32)
    _fill(engine, 4)
    res = verify_chain(engine)
    assert res.ok and res.anchored
    e2 = next(e for e in list_events(engine) if e.id == 2)
    _sql(engine, "DELETE FROM audit_log WHERE id > 2")
    _sql(engine, "UPDATE audit_head SET seq = 2, hash = :h", h=e2.hash)
    assert verify_chain(engine, key=b"").ok  # without the key: undetectable by design
    res = verify_chain(engine)
    assert not res.ok and any("head MAC invalid" in p for p in res.problems)


def test_record_event_joins_the_callers_transaction(engine: Engine) -> None:
    record_event(engine, actor="system", action="config.change")
    with pytest.raises(RuntimeError), engine.begin() as conn:
        record_event(conn, actor="cli", action="key.revoke", target="key:1")
        raise RuntimeError("roll back")
    assert [e.id for e in list_events(engine)] == [1]
    with engine.begin() as conn:
        assert record_event(conn, actor="cli", action="key.revoke") == 2
    res = verify_chain(engine)
    assert res.ok and res.checked == 2


BAD_EVENTS: list[dict] = [
    {"actor": "alice", "action": "case.view"},
    {"actor": "user:", "action": "case.view"},
    {"actor": "user:a\nb", "action": "case.view"},
    {"actor": "system", "action": "view"},
    {"actor": "system", "action": "Case.View"},
    {"actor": "system", "action": "case.view", "details": {"media": b"\x00\x01"}},
    {"actor": "system", "action": "case.view", "details": ["not", "a", "dict"]},
    {"actor": "system", "action": "case.view", "details": {"x": "y" * 20_000}},
    {"actor": "system", "action": "case.view", "target": "t" * 501},
    {"actor": "system", "action": "case.view", "target": 1.5},
]


def test_bad_events_are_refused(engine: Engine) -> None:
    for kwargs in BAD_EVENTS:
        with pytest.raises(AuditError) as ei:
            record_event(engine, **kwargs)
        assert ei.value.code == "bad_audit_event", kwargs
    assert verify_chain(engine).checked == 0


def test_missing_head_refuses_appends(engine: Engine) -> None:
    _fill(engine, 1)
    _sql(engine, "DELETE FROM audit_head")
    with pytest.raises(AuditError) as ei:
        record_event(engine, actor="system", action="case.view")
    assert ei.value.code == "audit_head_missing"


def _append_many(url: str, worker: int, n: int) -> None:
    eng = open_engine(url)
    for i in range(n):
        record_event(eng, actor=f"user:w{worker}", action="case.view", details={"i": i})
    eng.dispose()


def test_concurrent_appends_from_several_processes(engine: Engine, db_url: str) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(db_url, w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    res = verify_chain(engine)
    assert res.ok, res.problems
    assert res.checked == 60 and res.head_seq == 60


def test_cli_verify_and_tail(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", db_url)
    eng = open_engine(db_url)
    _fill(eng, 3)
    run = CliRunner().invoke
    r = run(app, ["audit", "verify"])
    assert r.exit_code == 0 and "3 entries verified" in r.output
    r = run(app, ["audit", "tail", "-n", "2", "--json"])
    assert r.exit_code == 0
    lines = r.output.strip().splitlines()
    assert len(lines) == 2 and '"id": 3' in lines[-1]
    _sql(eng, "UPDATE audit_log SET target = 'case:999' WHERE id = 2")
    r = run(app, ["audit", "verify"])
    assert r.exit_code == 1
    assert "DAMAGED" in r.output and "entry 2: content does not match" in r.output
    r = run(app, ["audit", "verify", "--json"])
    assert r.exit_code == 1 and '"ok": false' in r.output
    eng.dispose()


def test_key_changes_and_config_changes_are_audited(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", db_url)
    run = CliRunner().invoke
    assert run(app, ["key", "create", "uploader", "--scope", "scan"]).exit_code == 0
    assert run(app, ["key", "rotate", "1"]).exit_code == 0
    assert run(app, ["key", "revoke", "2"]).exit_code == 0
    r = run(
        app,
        [
            "actions",
            "set-global",
            "--flood-max",
            "5",
            "--flood-window",
            "60",
            "--flood-pause",
            "60",
        ],
    )
    assert r.exit_code == 0, r.output
    eng = open_engine(db_url)
    events = list(reversed(list_events(eng)))
    assert [(e.actor, e.action, e.target) for e in events] == [
        ("cli", "key.create", "key:1"),
        ("cli", "key.rotate", "key:1"),
        ("cli", "key.revoke", "key:2"),
        ("cli", "config.change", "actions:global"),
    ]
    assert events[0].details == {"name": "uploader", "scopes": ["scan"]}
    assert events[1].details == {"new_key_id": 2}
    assert verify_chain(eng).ok
    eng.dispose()
