"""Case intake, queues, assignment, passing on, the case view and the review API (issue 6).

Real databases (SQLite and PostgreSQL via ``db_url``), the real app over HTTP, benign
rendered images.
"""

from __future__ import annotations

import hashlib
import io
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sentinelle.cli.demo_media import render_scene
from sentinelle.formats.enroll import entries_from_paths
from sentinelle.review import accounts, cases, decisions, exposure
from sentinelle.review.errors import ReviewError
from sentinelle.review.intake import IntakeError, record_signal
from sentinelle.review.tables import case_items
from sentinelle.review.tables import cases as cases_t
from sentinelle.service.app import create_app
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings
from sentinelle.store.db import open_engine

PW = "correct horse battery"
SHA = "ab" * 32


def _match(bank: str = "ncmec", entry: int = 7, distance: int = 12) -> dict:
    return {
        "bank": bank,
        "entry_id": entry,
        "distance": distance,
        "signal_type": "pdq",
        "hash": "f" * 64,
    }


# ------------------------------------------------------------------ intake
def test_signals_gather_in_one_open_case_per_account(engine) -> None:
    c1, i1 = record_signal(
        engine,
        account_id="acct-1",
        kind="provenance",
        summary={"verdict": "ai_generated", "confidence": 0.9},
    )
    c2, i2 = record_signal(
        engine, account_id="acct-1", kind="hash_match", summary=_match(), media_sha256=SHA.upper()
    )
    c3, i3 = record_signal(
        engine, account_id="acct-1", kind="hash_match", summary=_match(), media_sha256=SHA
    )  # same file, same entry: not repeated
    c4, _ = record_signal(
        engine,
        account_id="acct-2",
        kind="guard_block",
        summary={"categories": {"minor_sexual": 0.99}, "policy_id": "p1"},
    )
    assert c1 == c2 == c3 != c4 and i2 == i3 and i1 != i2
    s = cases.get_summary(engine, c1)
    assert (s.account_id, s.status, s.priority, s.item_count) == ("acct-1", "open", 30, 2)
    with engine.connect() as c:
        row = c.execute(sa.select(case_items).where(case_items.c.id == i2)).one()
    assert (row.bank, row.entry_id, row.media_sha256) == ("ncmec", 7, SHA)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"account_id": ""}, "bad_account_id"),
        ({"account_id": "x" * 300}, "bad_account_id"),
        ({"account_id": "a\nb"}, "bad_account_id"),
        ({"account_id": 42}, "bad_account_id"),
        ({"kind": "rumour"}, "bad_signal_kind"),
        ({"summary": ["not", "a", "dict"]}, "bad_summary"),
        ({"summary": {"blob": "x" * 20_000}}, "bad_summary"),
        ({"summary": {"x": float("nan")}}, "bad_summary"),
        ({"summary": {"x": b"bytes"}}, "bad_summary"),
        ({"kind": "hash_match", "summary": {"entry_id": 1}}, "bad_summary"),
        ({"kind": "hash_match", "summary": {"bank": "b", "entry_id": "1"}}, "bad_summary"),
        ({"media_sha256": "xyz"}, "bad_media_sha256"),
        ({"media_blob_id": 0}, "bad_media_blob_id"),
        ({"occurred_at": datetime(2024, 1, 1)}, "bad_occurred_at"),  # naive
    ],
)
def test_bad_signals_are_refused(sqlite_url: str, kwargs: dict, code: str) -> None:
    e = open_engine(sqlite_url)
    args = {"account_id": "acct", "kind": "provenance", "summary": {"verdict": "x"}}
    args.update(kwargs)
    with pytest.raises(IntakeError) as ei:
        record_signal(e, **args)
    assert ei.value.code == code and ei.value.status == 422
    assert cases.queue_counts(e)["open"] == 0  # nothing half-written
    e.dispose()


def test_signal_in_callers_transaction_rolls_back_with_it(engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        record_signal(conn, account_id="acct-tx", kind="provenance", summary={"verdict": "x"})
        raise RuntimeError("caller fails after recording")
    assert cases.list_cases(engine, status=None) == []
    with engine.begin() as conn:
        cid, _ = record_signal(conn, account_id="acct-tx", kind="provenance", summary={})
    assert cases.get_summary(engine, cid).item_count == 1


def test_concurrent_signals_open_a_single_case(engine) -> None:
    barrier = threading.Barrier(6)
    out: list[int] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            out.append(
                record_signal(engine, account_id="busy", kind="guard_block", summary={"n": i})[0]
            )
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors and len(set(out)) == 1
    assert cases.get_summary(engine, out[0]).item_count == 6


# ------------------------------------------------------------- queue work
def test_queue_order_next_case_assignment_and_pass(engine) -> None:
    rev = accounts.create_user(engine, "rev", PW, "reviewer")
    rev2 = accounts.create_user(engine, "rev2", PW, "reviewer")
    spec = accounts.create_user(engine, "spec", PW, "specialist")
    admin = accounts.create_user(engine, "adm", PW, "admin")
    low, _ = record_signal(engine, account_id="low", kind="provenance", summary={})
    high, _ = record_signal(engine, account_id="high", kind="hash_match", summary=_match())
    mid, _ = record_signal(engine, account_id="mid", kind="guard_block", summary={})
    assert [c.id for c in cases.list_cases(engine)] == [high, mid, low]
    assert cases.queue_counts(engine) == {
        "open": 3,
        "assigned": 0,
        "awaiting_approval": 0,
        "closed": 0,
    }

    got = cases.next_case(engine, rev)
    assert got is not None and (got.id, got.status, got.assignee) == (high, "assigned", "rev")
    assert cases.next_case(engine, rev2).id == mid  # type: ignore[union-attr]
    assert [c.id for c in cases.list_cases(engine, status="open")] == [low]
    assert [c.id for c in cases.list_cases(engine, assigned_to=rev.id)] == [high]

    with pytest.raises(ReviewError) as ei:  # a reviewer may not hand cases to others
        cases.assign_case(engine, low, rev, assignee_id=rev2.id)
    assert ei.value.code == "forbidden"
    with pytest.raises(ReviewError) as ei:  # nor take a colleague's case
        cases.assign_case(engine, mid, rev)
    assert ei.value.code == "not_assigned"
    with pytest.raises(ReviewError) as ei:  # the admin does not review
        cases.next_case(engine, admin)
    assert ei.value.code == "forbidden"
    with pytest.raises(ReviewError) as ei:
        cases.assign_case(engine, low, spec, assignee_id=admin.id)
    assert ei.value.code == "bad_assignee"
    assert cases.assign_case(engine, low, spec, assignee_id=rev2.id).assignee == "rev2"

    # pass on without penalty: exposure untouched, the case is back in the queue
    exposure.record_exposure(engine, rev.id, viewed=3)
    before = exposure.exposure_status(engine, rev.id)
    with pytest.raises(ReviewError) as ei:
        cases.pass_case(engine, high, rev2)
    assert ei.value.code == "not_assigned"
    s = cases.pass_case(engine, high, rev, reason="need a pause")
    assert (s.status, s.assigned_to) == ("open", None)
    assert exposure.exposure_status(engine, rev.id).items_viewed == before.items_viewed == 3
    s = cases.assign_case(engine, high, rev)
    s = cases.pass_case(engine, high, rev, to_user_id=spec.id)
    assert (s.status, s.assignee) == ("assigned", "spec")
    view = cases.get_case(engine, high, spec)
    assert [p["reason"] for p in view.passes] == ["need a pause", ""]
    with pytest.raises(ReviewError) as ei:
        cases.list_cases(engine, status="weird")
    assert ei.value.code == "bad_status"
    with pytest.raises(ReviewError) as ei:
        cases.get_summary(engine, 999_999)
    assert ei.value.code == "unknown_case" and ei.value.status == 404


def test_concurrent_next_case_never_gives_one_case_twice(engine) -> None:
    users = [accounts.create_user(engine, f"r{i}", PW, "reviewer") for i in range(4)]
    for i in range(4):
        record_signal(engine, account_id=f"a{i}", kind="guard_block", summary={})
    barrier = threading.Barrier(4)
    got: list[int | None] = []

    def work(u) -> None:  # type: ignore[no-untyped-def]
        barrier.wait()
        c = cases.next_case(engine, u)
        got.append(None if c is None else c.id)

    ts = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert len(got) == 4 and None not in got and len(set(got)) == 4


def test_case_view_gathers_everything_about_the_account(engine) -> None:
    rev = accounts.create_user(engine, "viewer", PW, "reviewer")
    legal = accounts.create_user(engine, "lawyer", PW, "legal")
    admin = accounts.create_user(engine, "boss", PW, "admin")
    old_case, old_item = record_signal(
        engine, account_id="u1", kind="hash_match", summary=_match(entry=1, distance=0)
    )
    decisions.decide(engine, old_item, rev, verdict="reject", notes="benign")
    assert cases.get_summary(engine, old_case).status == "closed"

    t0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
    cid, hm = record_signal(
        engine,
        account_id="u1",
        kind="hash_match",
        summary=_match(bank="projectvic", entry=9, distance=31),
        media_sha256=SHA,
        media_blob_id=5,
        occurred_at=t0,
    )
    _, gb = record_signal(
        engine,
        account_id="u1",
        kind="guard_block",
        summary={
            "categories": {"minor_sexual": 0.98},
            "policy_id": "strict",
            "prompt_sha256": "cd" * 32,
        },
        occurred_at=t0 + timedelta(minutes=1),
    )
    _, pv = record_signal(
        engine,
        account_id="u1",
        kind="provenance",
        summary={"verdict": "ai_generated", "confidence": 0.8},
        occurred_at=t0 + timedelta(minutes=2),
    )
    assert cid != old_case

    v = cases.get_case(engine, cid, rev)
    assert [i.id for i in v.items] == [hm, gb, pv]
    (m,) = v.hash_matches
    assert (m.bank, m.entry_id, m.distance, m.media_blob_id) == ("projectvic", 9, 31, 5)
    assert m.occurred_at == t0
    assert [g.summary["policy_id"] for g in v.guard_blocks] == ["strict"]
    assert [p.summary["verdict"] for p in v.provenance] == ["ai_generated"]
    assert [c.id for c in v.prior_cases] == [old_case]
    (pd,) = v.prior_decisions
    assert (pd.verdict, pd.reviewer, pd.notes, pd.state) == ("reject", "viewer", "benign", "final")
    d = v.to_dict()
    assert d["case"]["account_id"] == "u1" and isinstance(d["items"][0]["occurred_at"], str)

    assert cases.get_case(engine, cid, legal).case.id == cid  # legal sees cases
    with pytest.raises(ReviewError) as ei:
        cases.get_case(engine, cid, admin)
    assert ei.value.code == "forbidden"

    from sentinelle.audit import list_events, verify_chain

    views = list_events(engine, action="case.view", limit=10)
    assert {e.actor for e in views} == {"user:viewer", "user:lawyer"}
    assert verify_chain(engine).ok


# ---------------------------------------------------------------- HTTP API
def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    render_scene(seed).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture()
def api(sqlite_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    app = create_app(Settings(database_url=sqlite_url, key_cache_s=0.0, rate_limit=0.0))
    state = app.state.sentinelle
    state.store.create_bank("known")
    p = tmp_path / "known.png"
    p.write_bytes(_png(4242))
    entries, failed = entries_from_paths([p], category="test")
    assert not failed
    state.store.add_entries("known", entries)
    state.matcher.refresh()
    _, curate = create_key(state.engine, "platform", ["curate"])
    _, scan = create_key(state.engine, "scanner", ["scan"])
    with TestClient(app) as client:
        yield client, state, p, {"X-API-Key": curate}, {"X-API-Key": scan}


def test_review_api_signals_and_cases(api) -> None:  # type: ignore[no-untyped-def]
    client, state, _, curate, scan = api
    body = {
        "account_id": "acct-9",
        "kind": "guard_escalation",
        "summary": {"blocks": 5, "window_s": 600},
        "occurred_at": "2024-06-01T10:00:00+00:00",
    }
    r = client.post("/v1/review/signals", json=body, headers=curate)
    assert r.status_code == 201, r.text
    cid = r.json()["case_id"]
    assert client.post("/v1/review/signals", json=body, headers=scan).status_code == 403
    assert client.post("/v1/review/signals", json=body).status_code == 401
    for bad, code in [
        ({**body, "kind": "gossip"}, "bad_signal_kind"),
        ({**body, "occurred_at": "2024-06-01T10:00:00"}, "bad_occurred_at"),
        ({**body, "media_sha256": "zz"}, "bad_media_sha256"),
        ({**body, "account_id": ""}, "invalid_request"),
        ({**body, "summary": "text"}, "invalid_request"),
    ]:
        r = client.post("/v1/review/signals", json=bad, headers=curate)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (bad, r.text)
    r = client.post("/v1/review/signals", content=b"{not json", headers=curate)
    assert 400 <= r.status_code < 500

    r = client.get("/v1/review/cases", headers=curate)
    assert r.status_code == 200
    assert [c["id"] for c in r.json()["cases"]] == [cid]
    assert r.json()["counts"]["open"] == 1
    r = client.get("/v1/review/cases?status=closed", headers=curate)
    assert r.json()["cases"] == []
    r = client.get("/v1/review/cases?status=nope", headers=curate)
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_status"
    assert client.get("/v1/review/cases?limit=0", headers=curate).status_code == 422
    r = client.get("/v1/review/false-positives", headers=curate)
    assert r.status_code == 200 and r.json() == {"entries": []}


def test_scan_with_account_id_files_matches_for_review(api) -> None:  # type: ignore[no-untyped-def]
    client, state, known, curate, scan = api
    data = known.read_bytes()
    r = client.post(
        "/v1/scan",
        files={"file": ("a.png", data, "image/png")},
        data={"account_id": "uploader-1"},
        headers=scan,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["matches"] and body["review"]["error"] is None
    cid = body["review"]["case_id"]
    view = cases.load_case(state.engine, cid)
    assert view.case.account_id == "uploader-1"
    # one item per matched bank entry (md5, sha256 and pdq entries of the file)
    entries = {m["entry_id"] for m in body["matches"]}
    assert {i.entry_id for i in view.hash_matches} == entries
    assert len(view.hash_matches) == len(entries) == len(body["review"]["item_ids"])
    sha = hashlib.sha256(data).hexdigest()
    assert all(i.bank == "known" and i.media_sha256 == sha for i in view.hash_matches)
    assert min(i.distance for i in view.hash_matches) == 0
    # raw body with the account id in the query string
    r = client.post("/v1/scan?account_id=uploader-1", content=_png(4242) + b"", headers=scan)
    assert r.json()["review"]["case_id"] == cid
    assert cases.get_summary(state.engine, cid).item_count == len(entries)  # not repeated
    # no match: no case, review null
    r = client.post(
        "/v1/scan",
        files={"file": ("b.png", _png(7), "image/png")},
        data={"account_id": "uploader-2"},
        headers=scan,
    )
    assert r.status_code == 200 and r.json()["matches"] == [] and r.json()["review"] is None
    assert cases.list_cases(state.engine, account_id="uploader-2", status=None) == []
    # no account id: the answer has no review key (unchanged shape)
    r = client.post("/v1/scan", files={"file": ("a.png", data, "image/png")}, headers=scan)
    assert "review" not in r.json()
    # hostile account ids
    r = client.post(
        "/v1/scan",
        files={"file": ("a.png", data, "image/png")},
        data={"account_id": "x" * 2000},
        headers=scan,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "field_too_long"
    r = client.post("/v1/scan?account_id=" + "y" * 300, content=data, headers=scan)
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_account_id"
    with state.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(cases_t)).scalar() == 1
