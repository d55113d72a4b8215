"""Flood guard: shared counters, pausing, alerts, resume; SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from sentinelle.actions import config, dispatch, flood
from sentinelle.cli.main import app as cli_app
from sentinelle.formats.entry import EntryIn
from sentinelle.jobs import queue, worker
from sentinelle.service.settings import Settings
from sentinelle.service.state import build_state


def _state(url):
    return build_state(Settings(database_url=url, extra={"flood_flush_interval_s": 0}))


@pytest.fixture()
def state(db_url):
    st = _state(db_url)
    yield st
    st.close()


def _bank(state, name="fg", n=2, **flood_kw):
    state.store.create_bank(name)
    hashes = [secrets.token_hex(32) for _ in range(n)]
    state.store.add_entries(name, [EntryIn(signal_type="pdq", hash=h) for h in hashes])
    if flood_kw:
        config.set_actions(state.engine, name, **flood_kw)
    state.matcher.refresh()
    return hashes


def _match(state, h):
    (ms,) = state.matcher.match_pdq([h])
    return ms


def test_sliding_window_estimate():
    assert flood.estimate(10, 0, 0, 60) == 10
    assert flood.estimate(10, 60, 30, 60) == 40  # half the previous window still counts
    assert flood.estimate(10, 60, 60, 60) == 10
    assert flood.estimate(10, 60, 999, 60) == 10
    assert flood.estimate(0, 60, -5, 60) == 60


def test_flood_pauses_entry_alerts_and_matcher_drops_it(state, caplog):
    hot, cold = _bank(state, flood_max=5, flood_window_s=600, flood_pause_s=3600)
    entry_id = _match(state, hot)[0].entry_id
    for _ in range(5):  # at the limit: fine
        out = dispatch.on_matches(state, _match(state, hot), context={})
        assert out.paused_entries == [] and not out.errors
    with caplog.at_level("WARNING", logger="sentinelle.flood"):
        out = dispatch.on_matches(state, _match(state, hot), context={})
    assert out.paused_entries == [entry_id]
    (alert,) = out.alerts
    assert alert["kind"] == "flood_guard" and alert["bank"] == "fg"
    assert alert["entry_id"] == entry_id and alert["count"] == 6 and alert["window_s"] == 600
    assert any("paused entry" in r.getMessage() for r in caplog.records)
    assert hot not in caplog.text  # no hashes in logs

    entry = state.store.get_entry(entry_id)
    assert entry.enabled and entry.disabled_until is not None  # paused, not disabled
    # The current response still reported the match; future ones do not.
    state.matcher.refresh()
    assert _match(state, hot) == []
    assert _match(state, cold)  # other entries unaffected
    (stored,) = flood.list_alerts(state.engine)
    assert stored.entry_id == entry_id and not stored.acknowledged

    # Further matches (stale indexes elsewhere) neither re-pause nor re-alert.
    ms = [m for m in _match(state, cold)]
    fake = [type(ms[0])(bank="fg", entry_id=entry_id, entry_hash=hot, signal="pdq", distance=0)]
    assert dispatch.on_matches(state, fake, context={}).alerts == []
    assert len(flood.list_alerts(state.engine)) == 1

    # When the pause ends, the resume job brings the entry back (via the change log).
    (job,) = queue.list_jobs(state.engine, kind=flood.RESUME_JOB)
    assert job.status == "pending"
    assert not worker.run_once(state, [flood.RESUME_JOB])  # not due yet
    assert worker.run_once(state, [flood.RESUME_JOB], now=job.run_at + timedelta(seconds=1))
    assert queue.get_job(state.engine, job.id).result == {"resumed": True}
    state.matcher.refresh()
    assert [m.entry_id for m in _match(state, hot)] == [entry_id]


def test_counts_are_shared_between_instances(db_url):
    a = _state(db_url)
    b = _state(db_url)  # a second "instance": own engine, store and matcher
    try:
        (hot,) = _bank(a, n=1, flood_max=9, flood_window_s=600)
        b.matcher.refresh()
        results = []
        barrier = threading.Barrier(2)

        def hammer(st):
            barrier.wait()
            for _ in range(10):
                results.append(dispatch.on_matches(st, _match(st, hot), context={}))

        ts = [threading.Thread(target=hammer, args=(s,)) for s in (a, b)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        # 20 matches in total, 10 per instance: neither alone went over 9, together they did,
        # and exactly one instance paused the entry and raised the alert.
        assert sum(len(r.paused_entries) for r in results) == 1
        assert len(flood.list_alerts(a.engine)) == 1
        assert not any(r.errors for r in results)
        b.matcher.refresh()
        assert _match(b, hot) == []
    finally:
        a.close()
        b.close()


def test_operator_disabled_entry_is_left_alone(state):
    (hot,) = _bank(state, n=1, flood_max=1, flood_window_s=600)
    ms = _match(state, hot)
    state.store.disable_entry(ms[0].entry_id)  # operator: disabled for good
    for _ in range(3):
        assert dispatch.on_matches(state, ms, context={}).paused_entries == []
    e = state.store.get_entry(ms[0].entry_id)
    assert not e.enabled and e.disabled_until is None  # not turned into a timed pause
    assert flood.list_alerts(state.engine) == []


def test_flood_max_zero_disables_guard_and_each_request_counts_once(state):
    (hot,) = _bank(state, n=1, flood_max=0)
    ms = _match(state, hot)
    for _ in range(20):
        assert dispatch.on_matches(state, ms, context={}).paused_entries == []
    config.set_actions(state.engine, "fg", flood_max=3, flood_window_s=600)
    config.invalidate_cache(state.engine)
    # One request matching the same entry through several views counts once.
    for _ in range(3):
        assert dispatch.on_matches(state, ms * 4, context={}).paused_entries == []
    assert dispatch.on_matches(state, ms, context={}).paused_entries == [ms[0].entry_id]


def test_buffered_counts_flush_later(state):
    (hot,) = _bank(state, n=1)
    ms = _match(state, hot)
    guard = flood.FloodGuard(state.store, flush_interval_s=3600)
    fs = {"fg": config.FloodSettings(2, 600, 60)}
    counts = {ms[0].entry_id: ("fg", 1)}
    for _ in range(3):
        assert guard.record(counts, fs).paused_entries == []  # buffered, not written
    assert flood.list_alerts(state.engine) == []
    assert guard.flush().paused_entries == [ms[0].entry_id]


def test_prune_and_acknowledge(state):
    (hot,) = _bank(state, n=1, flood_max=1, flood_window_s=60)
    ms = _match(state, hot)
    dispatch.on_matches(state, ms, context={})
    dispatch.on_matches(state, ms, context={})
    (alert,) = flood.list_alerts(state.engine)
    assert flood.prune_counters(state.engine) == 0  # current window kept
    assert flood.prune_counters(state.engine, now_s=time.time() + 3 * 60 + 60) >= 1
    runner = CliRunner()
    env = {"SENTINELLE_DATABASE_URL": state.settings.database_url}
    res = runner.invoke(cli_app, ["actions", "alerts", "--json"], env=env)
    assert res.exit_code == 0 and f'"id": {alert.id}' in res.output
    res = runner.invoke(cli_app, ["actions", "ack", str(alert.id)], env=env)
    assert res.exit_code == 0
    assert flood.list_alerts(state.engine, acknowledged=False) == []
    assert len(flood.list_alerts(state.engine, acknowledged=True)) == 1
    res = runner.invoke(cli_app, ["actions", "ack", "99999"], env=env)
    assert res.exit_code == 1 and "unknown_alert" in res.output


def test_resume_job_respects_later_changes(state):
    (hot,) = _bank(state, n=1, flood_max=1, flood_window_s=600)
    ms = _match(state, hot)
    dispatch.on_matches(state, ms, context={})
    dispatch.on_matches(state, ms, context={})
    (job,) = queue.list_jobs(state.engine, kind=flood.RESUME_JOB)
    state.store.disable_entry(ms[0].entry_id)  # an operator disabled it meanwhile
    assert worker.run_once(state, [flood.RESUME_JOB], now=job.run_at + timedelta(seconds=1))
    assert queue.get_job(state.engine, job.id).result == {"resumed": False}
    assert not state.store.get_entry(ms[0].entry_id).enabled
    bad = queue.enqueue(state.engine, flood.RESUME_JOB, {"entry_id": "x"})
    assert worker.run_once(state, [flood.RESUME_JOB])
    assert queue.get_job(state.engine, bad).status == "dead"
