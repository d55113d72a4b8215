"""API key use is audited: one ``key.use`` entry per caller per window, written off the
request path; rejected keys become ``auth.key_rejected`` entries per source address."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from sentinelle.audit import list_events, record_event, verify_chain
from sentinelle.service import key_audit
from sentinelle.service.app import create_app
from sentinelle.service.key_audit import KeyUseAuditor, key_id_prefix
from sentinelle.service.keys import create_key, revoke_key
from sentinelle.service.settings import Settings
from sentinelle.store.db import open_engine

MATCH = "/v1/match/hashes"


class FakeClock:
    """Wall-clock stand-in so a test can cross an hour without waiting one."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _events(engine: Engine, action: str) -> list:
    return list(reversed(list_events(engine, action=action, limit=1000)))


@pytest.fixture()
def svc(db_url: str) -> Iterator[SimpleNamespace]:
    settings = Settings(
        database_url=db_url, key_cache_s=0.0, rate_limit=0.0, hma_allowlist=("10.9.0.0/16",)
    )
    app = create_app(settings, start_background=False)
    state = app.state.sentinelle
    clock = FakeClock()
    state.key_audit.clock = clock
    a, a_token = create_key(state.engine, "alpha", ["scan"])
    b, b_token = create_key(state.engine, "beta", ["scan"])
    with TestClient(app, client=("192.0.2.7", 40000)) as client:
        yield SimpleNamespace(
            app=app,
            state=state,
            engine=state.engine,
            auditor=state.key_audit,
            clock=clock,
            client=client,
            a=a,
            b=b,
            ha={"Authorization": f"Bearer {a_token}"},
            hb={"X-API-Key": b_token},
            a_token=a_token,
        )


def test_one_key_use_entry_per_key_per_window(svc: SimpleNamespace) -> None:
    c, eng = svc.client, svc.engine
    for _ in range(3):
        assert c.post(MATCH, json={"hashes": []}, headers=svc.ha).status_code == 200
    assert c.get("/v1/banks", headers=svc.ha).status_code == 403  # a use, if a refused one
    assert svc.auditor.flush()
    uses = _events(eng, "key.use")
    assert len(uses) == 1, [e.to_dict() for e in uses]
    first = uses[0]
    assert (first.actor, first.target) == (f"key:{svc.a.id}", None)
    assert first.details["count"] == 1 and first.details["routes"] == {MATCH: 1}
    assert first.details["first_seen"] == first.details["last_seen"]

    # a second key gets its own entry at once
    assert c.post(MATCH, json={"hashes": []}, headers=svc.hb).status_code == 200
    assert svc.auditor.flush()
    uses = _events(eng, "key.use")
    assert [e.actor for e in uses] == [f"key:{svc.a.id}", f"key:{svc.b.id}"]

    # an hour later the next use writes what happened since the first entry
    svc.clock.now += 3600.5
    assert c.post(MATCH, json={"hashes": []}, headers=svc.ha).status_code == 200
    assert svc.auditor.flush()
    uses = _events(eng, "key.use")
    assert len(uses) == 3
    later = uses[-1]
    assert later.actor == f"key:{svc.a.id}"
    assert later.details["count"] == 4
    assert later.details["routes"] == {MATCH: 3, "/v1/banks": 1}
    assert later.details["first_seen"] < later.details["last_seen"]
    secret = svc.a_token.split("_", 2)[2]  # snt_<id>_<secret>; the secret may hold "_"
    assert len(secret) >= 40 and secret not in str([e.to_dict() for e in uses])
    result = verify_chain(eng)
    assert result.ok, result.problems


def test_pending_counts_are_written_at_shutdown(db_url: str) -> None:
    app = create_app(Settings(database_url=db_url, rate_limit=0.0), start_background=False)
    eng = app.state.sentinelle.engine
    _, token = create_key(eng, "gamma", ["scan"])
    h = {"X-API-Key": token}
    with TestClient(app) as c:
        for _ in range(5):
            assert c.post(MATCH, json={"hashes": []}, headers=h).status_code == 200
    counts = [e.details["count"] for e in _events(eng, "key.use")]
    assert counts == [1, 4]  # the first use, then the rest flushed by the app's stoppers
    assert verify_chain(eng).ok


def test_rejected_keys_are_audited_per_source_address(svc: SimpleNamespace) -> None:
    c, eng = svc.client, svc.engine
    revoke_key(eng, svc.b.id)
    attempts = [
        svc.hb,  # revoked
        {"X-API-Key": f"snt_987654_{'A' * 43}"},  # unknown id
        {"Authorization": "Bearer snt_31_short"},  # id prefix parses, secret does not
        {"Authorization": "Bearer not-a-key-at-all"},
        {"X-API-Key": "\u00e9".encode("latin-1") * 5000},  # hostile: long non-ASCII junk
    ]
    for h in attempts:
        r = c.post(MATCH, json={"hashes": []}, headers=h)
        assert r.status_code in (400, 401), r.text
    assert svc.auditor.flush()
    rejected = _events(eng, "auth.key_rejected")
    assert len(rejected) == 1
    ev = rejected[0]
    assert (ev.actor, ev.target) == ("system", "ip:192.0.2.7")
    assert ev.details["count"] == 1 and ev.details["key_ids"] == [svc.b.id]
    assert not _events(eng, "key.use")

    svc.clock.now += 3601
    c.post(MATCH, json={"hashes": []}, headers={"X-API-Key": "snt_5_x"})
    assert svc.auditor.flush()
    later = _events(eng, "auth.key_rejected")[-1]
    assert later.details["count"] == len(attempts)  # the other attempts + this one
    assert later.details["key_ids"] == [5, 31, 987654]
    assert later.details["routes"] == {MATCH: len(attempts)}
    # no key material beyond the id prefix ever reaches the trail
    text = str([e.to_dict() for e in _events(eng, "auth")])
    assert "A" * 43 not in text and "short" not in text and "not-a-key" not in text
    assert "\u00e9" not in text and "\\xe9" not in text
    assert verify_chain(eng).ok


def test_allow_listed_callers_are_audited_like_keys(svc: SimpleNamespace) -> None:
    listed = TestClient(svc.app, client=("10.9.3.4", 5000))  # no key: the HMA allow-list
    for _ in range(2):
        assert listed.get("/c/signal_type").status_code == 200
    assert svc.auditor.flush()
    uses = _events(svc.engine, "key.use")
    assert [(e.actor, e.details["count"]) for e in uses] == [("key:allowlist:10.9.3.4", 1)]
    assert uses[0].details["routes"] == {"/c/signal_type": 1}
    svc.clock.now += 3600
    assert svc.auditor.flush()  # the quiet caller's window ended: its second use is written
    uses = _events(svc.engine, "key.use")
    assert [(e.actor, e.details["count"]) for e in uses][-1] == ("key:allowlist:10.9.3.4", 1)
    assert len(uses) == 2 and verify_chain(svc.engine).ok


def test_the_request_does_not_wait_for_the_audit_write(svc: SimpleNamespace) -> None:
    gate = threading.Event()

    def slow_record(*args: object, **kwargs: object) -> int:
        assert gate.wait(10)  # a database that takes its time
        return record_event(*args, **kwargs)

    svc.auditor._record = slow_record
    r = svc.client.post(MATCH, json={"hashes": []}, headers=svc.ha)
    assert r.status_code == 200  # answered while the writer is still blocked
    assert not svc.auditor.flush(timeout=0.2)
    assert _events(svc.engine, "key.use") == []
    gate.set()
    assert svc.auditor.flush()
    assert [e.actor for e in _events(svc.engine, "key.use")] == [f"key:{svc.a.id}"]


def test_full_queue_drops_and_counts_and_failures_do_not_kill_the_writer(
    sqlite_url: str,
) -> None:
    eng = open_engine(sqlite_url)
    gate = threading.Event()
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> int:
        assert gate.wait(10)
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database gone")
        return record_event(*args, **kwargs)

    aud = KeyUseAuditor(eng, queue_size=2, record=flaky)
    for i in range(6):  # the writer holds one, the queue two, the rest are dropped
        aud.note_use(f"key:{i}", "/v1/scan")
    assert aud.dropped >= 3
    gate.set()
    assert aud.flush()
    s = aud.stats()
    assert s["failed"] == 1 and s["written"] + s["failed"] + s["dropped"] == 6
    assert len(_events(eng, "key.use")) == s["written"]
    aud.note_use("key:99", "/v1/scan")  # the writer survived the failure
    assert aud.flush() and _events(eng, "key.use")[-1].actor == "key:99"
    aud.stop()
    assert verify_chain(eng).ok
    eng.dispose()


def test_many_rejecting_addresses_share_one_summary(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(key_audit, "MAX_TRACKED", 3)
    eng = open_engine(sqlite_url)
    aud = KeyUseAuditor(eng)
    for i in range(10):
        aud.note_rejected(f"198.51.100.{i}", "/v1/scan", "junk")
    aud.stop()
    targets = [e.target for e in _events(eng, "auth.key_rejected")]
    assert targets[:3] == ["ip:198.51.100.0", "ip:198.51.100.1", "ip:198.51.100.2"]
    assert set(targets[3:]) == {"ip:other"} and len(targets) == 5  # first + rest at stop
    counts = [e.details["count"] for e in _events(eng, "auth.key_rejected")]
    assert sum(counts) == 10
    eng.dispose()


def test_quiet_callers_are_summarised_when_their_window_ends(sqlite_url: str) -> None:
    eng = open_engine(sqlite_url)
    clock = FakeClock()
    aud = KeyUseAuditor(eng, clock=clock)
    for _ in range(3):
        aud.note_use("key:7", "/v1/scan")
    assert aud.flush()
    assert [e.details["count"] for e in _events(eng, "key.use")] == [1]
    clock.now += 3600
    assert aud.flush()  # the writer's sweep, run now instead of at its next tick
    assert [e.details["count"] for e in _events(eng, "key.use")] == [1, 2]
    clock.now += 3600
    assert aud.flush()  # idle for a whole window: forgotten, nothing written
    aud.note_use("key:7", "/v1/scan")  # ... so the next use is written at once
    assert aud.flush()
    assert [e.details["count"] for e in _events(eng, "key.use")] == [1, 2, 1]
    aud.stop()
    eng.dispose()


def test_key_id_prefix() -> None:
    assert key_id_prefix("snt_12_abc") == 12
    assert key_id_prefix("snt__abc") is None and key_id_prefix("xsnt_1_") is None
    assert key_id_prefix("snt_" + "9" * 19 + "_x") is None
