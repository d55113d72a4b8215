"""Bank configuration changes are audited (issue 6): store, HTTP API, job worker, CLI.

Every change goes through :class:`sentinelle.banks.BankStore`, which writes a
``sentinelle.audit`` row in the same transaction. Real databases (SQLite file and
PostgreSQL schema via ``db_url``), the real app through TestClient, the real job
worker and the real Typer CLI. Hashes are random benign test values.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sentinelle.audit import AuditError, AuditEvent, list_events, verify_chain
from sentinelle.banks import BankStore
from sentinelle.cli.bank_cmd import register
from sentinelle.errors import BankImportError
from sentinelle.formats.entry import EntryIn
from sentinelle.jobs import worker
from sentinelle.service.app import create_app
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings
from sentinelle.store.db import open_engine

RNG = random.Random(61)


def _pdq() -> str:
    return f"{RNG.getrandbits(256):064x}"


def _md5() -> str:
    return f"{RNG.getrandbits(128):032x}"


def _bank_events(engine) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    """Bank and config audit rows, oldest first (key.create etc. left out)."""
    events = list_events(engine, limit=10_000)
    keep = [e for e in events if e.action.startswith("bank.") or e.action == "config.change"]
    return keep[::-1]


def _no_hash_in_details(events: list[AuditEvent], hashes: list[str]) -> None:
    blob = json.dumps([e.details for e in events]) + " ".join(str(e.target) for e in events)
    for h in hashes:
        assert h not in blob, "audit details must never carry hash values"


# ------------------------------------------------------------------ store layer
def test_every_store_change_is_audited_in_order(db_url: str, tmp_path: Path) -> None:
    engine = open_engine(db_url)
    store = BankStore(engine)
    who = "key:7"
    store.create_bank("b", "desc", {"pdq": 20}, actor=who)
    store.set_threshold("b", "pdq", 20, actor=who)  # unchanged: no config.change row
    store.set_threshold("b", "pdq", 24, actor=who)
    store.set_bank_enabled("b", False, actor=who)
    store.set_bank_description("b", "a longer description", actor=who)
    hashes = [_pdq(), _pdq(), _md5()]
    rep = store.add_entries(
        "b",
        [EntryIn(signal_type="pdq", hash=hashes[0]), EntryIn(signal_type="pdq", hash=hashes[1])],
        actor=who,
    )
    assert rep.added == 2
    f = tmp_path / "in.csv"
    f.write_text(f"signal_type,hash\nmd5,{hashes[2]}\npdq,{hashes[0]}\n")
    store.import_file("b", f, "csv", actor="cli")
    eid = next(iter(store.iter_entries("b"))).id
    store.disable_entry(eid, actor=who)
    store.delete_entry(eid, "false positive", actor=who)
    store.rename_bank("b", "b2", actor=who)
    store.delete_bank("b2", actor="cli")

    events = _bank_events(engine)
    got = [(e.actor, e.action, e.target) for e in events]
    assert got == [
        (who, "bank.create", "bank:b"),
        (who, "config.change", "bank:b"),
        (who, "config.change", "bank:b"),
        (who, "config.change", "bank:b"),
        (who, "bank.import", "bank:b"),
        ("cli", "bank.import", "bank:b"),
        (who, "bank.entry_update", f"entry:{eid}"),
        (who, "bank.entry_delete", f"entry:{eid}"),
        (who, "config.change", "bank:b"),
        ("cli", "bank.delete", "bank:b2"),
    ]
    d = [e.details for e in events]
    assert d[0]["thresholds"]["pdq"] == 20
    assert {k: d[1][k] for k in ("setting", "old", "new")} == {
        "setting": "threshold.pdq",
        "old": 20,
        "new": 24,
    }
    assert (d[2]["setting"], d[2]["old"], d[2]["new"]) == ("enabled", True, False)
    assert (d[3]["setting"], d[3]["old"], d[3]["new"]) == ("description", 4, 20)  # lengths
    assert (d[4]["source"], d[4]["added"], d[4]["total"]) == ("entries", 2, 2)
    assert (d[5]["source"], d[5]["added"], d[5]["duplicates"]) == ("csv", 1, 1)
    assert d[6]["fields"] == ["disabled_until", "enabled"] and d[6]["op"] == "disable"
    assert d[7]["reason"] == "false positive" and d[7]["signal_type"] == "pdq"
    assert (d[8]["old"], d[8]["new"]) == ("b", "b2")
    assert d[9]["entries_deleted"] == 2
    _no_hash_in_details(events, hashes)
    assert verify_chain(engine).ok
    engine.dispose()


def test_rejected_changes_leave_no_audit_row_and_bad_actor_writes_nothing(
    db_url: str,
) -> None:
    engine = open_engine(db_url)
    store = BankStore(engine)
    store.create_bank("b")
    before = len(_bank_events(engine))
    with pytest.raises(BankImportError):  # a bad line: nothing imported, nothing audited
        store.add_entries("b", [EntryIn(signal_type="pdq", hash="nothex")], actor="cli")
    assert len(_bank_events(engine)) == before
    # The audit row is part of the change's transaction: refused actor -> no bank
    with pytest.raises(AuditError):
        store.create_bank("c", actor="mallory")
    assert [b.name for b in store.list_banks()] == ["b"]
    with pytest.raises(AuditError):
        store.set_threshold("b", "pdq", 10, actor="")
    assert store.get_bank("b").thresholds["pdq"] != 10
    assert len(_bank_events(engine)) == before
    engine.dispose()


# ------------------------------------------------------------------ HTTP API
def test_api_changes_are_audited_as_the_calling_key(db_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=db_url,
        rate_limit=0,
        extra={"spool_dir": str(tmp_path / "spool"), "import_sync_max_bytes": 256},
    )
    app = create_app(settings, start_background=False)
    state = app.state.sentinelle
    curate, ctoken = create_key(state.engine, "curator", ["curate"])
    admin, atoken = create_key(state.engine, "admin", ["admin"])
    ch = {"Authorization": f"Bearer {ctoken}"}
    hashes = [_pdq() for _ in range(12)]
    with TestClient(app) as c:
        assert c.post("/v1/banks", json={"name": "B"}, headers=ch).status_code == 201
        r = c.patch("/v1/banks/B", json={"thresholds": {"pdq": 12}, "enabled": False}, headers=ch)
        assert r.status_code == 200, r.text
        small = f"signal_type,hash\npdq,{hashes[0]}\n".encode()
        r = c.post("/v1/banks/B/import", params={"format": "csv"}, content=small, headers=ch)
        assert r.status_code == 200 and r.json()["status"] == "done", r.text
        big = ("signal_type,hash\n" + "".join(f"pdq,{h}\n" for h in hashes[1:])).encode()
        r = c.post("/v1/banks/B/import", params={"format": "csv"}, content=big, headers=ch)
        assert r.status_code == 202, r.text  # queued: the worker imports it later
        assert worker.run_until_idle(state, kinds=["bank_import"]) == 1
        r = c.delete("/v1/banks/B", headers={"Authorization": f"Bearer {atoken}"})
        assert r.status_code == 200
    events = _bank_events(state.engine)
    assert [(e.actor, e.action) for e in events] == [
        (f"key:{curate.id}", "bank.create"),
        (f"key:{curate.id}", "config.change"),
        (f"key:{curate.id}", "config.change"),
        (f"key:{curate.id}", "bank.import"),
        (f"key:{curate.id}", "bank.import"),  # the job runs as the key that queued it
        (f"key:{admin.id}", "bank.delete"),
    ]
    assert [e.details["setting"] for e in events[1:3]] == ["threshold.pdq", "enabled"]
    assert [e.details["added"] for e in events[3:5]] == [1, 11]
    _no_hash_in_details(events, hashes)
    assert verify_chain(state.engine).ok
    state.engine.dispose()


# ------------------------------------------------------------------ CLI
def test_cli_changes_are_audited_as_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", url)
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def run(*args: str) -> None:
        res = runner.invoke(app, ["bank", *args])
        assert res.exit_code == 0, (args, res.output, res.exception)

    h = _md5()
    f = tmp_path / "in.csv"
    f.write_text(f"signal_type,hash\nmd5,{h}\n")
    run("create", "ncmec", "--pdq-threshold", "28")
    run("import", "ncmec", str(f), "--format", "csv")
    run("threshold", "ncmec", "vpdq", "20")
    run("delete", "ncmec", "--yes")
    engine = open_engine(url)
    events = _bank_events(engine)
    assert [(e.actor, e.action) for e in events] == [
        ("cli", "bank.create"),
        ("cli", "bank.import"),
        ("cli", "config.change"),
        ("cli", "bank.delete"),
    ]
    assert events[2].details["setting"] == "threshold.vpdq"
    _no_hash_in_details(events, [h])
    engine.dispose()
