"""Durable job queue and worker, on SQLite and PostgreSQL (``db_url``)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

from sentinelle.jobs import queue, worker
from sentinelle.service.settings import Settings
from sentinelle.service.state import build_state
from sentinelle.store.db import create_engine_for, open_engine
from sentinelle.store.models import utcnow


@pytest.fixture()
def state(db_url):
    st = build_state(Settings(database_url=db_url))
    yield st
    st.close()


# ----------------------------------------------------------------- queue
def test_enqueue_claim_complete_roundtrip(engine):
    jid = queue.enqueue(engine, "t", {"n": 1, "s": "é"})
    job = queue.claim(engine, "w1")
    assert job is not None and job.id == jid
    assert job.status == "running" and job.attempts == 1 and job.locked_by == "w1"
    assert job.payload == {"n": 1, "s": "é"}
    assert queue.claim(engine, "w2") is None  # held
    assert queue.complete(engine, jid, {"ok": True}, worker_id="w1")
    done = queue.get_job(engine, jid)
    assert done.status == "done" and done.result == {"ok": True} and done.locked_by is None
    assert queue.counts(engine)["done"] == 1
    assert not queue.complete(engine, jid)  # not running any more


def test_dedupe_key_and_kind_filter(engine):
    a = queue.enqueue(engine, "a", {"x": 1}, dedupe_key="same")
    assert queue.enqueue(engine, "a", {"x": 2}, dedupe_key="same") == a
    b = queue.enqueue(engine, "b", {})
    assert queue.claim(engine, "w", kinds=["b"]).id == b
    assert queue.claim(engine, "w", kinds=[]) is None
    assert queue.claim(engine, "w", kinds=["zzz"]) is None
    assert queue.claim(engine, "w", kinds=["a"]).id == a


@pytest.mark.parametrize(
    "kind,payload,kw",
    [
        ("", {}, {}),
        ("k" * 65, {}, {}),
        ("k", [1, 2], {}),
        ("k", {"x": float("nan")}, {}),
        ("k", {"x": object()}, {}),
        ("k", {}, {"max_attempts": 0}),
        ("k", {}, {"dedupe_key": ""}),
        ("k", {"big": "x" * 1_000_001}, {}),
    ],
)
def test_enqueue_rejects_bad_jobs(sqlite_url, kind, payload, kw):
    engine = open_engine(sqlite_url)
    with pytest.raises(queue.JobError) as ei:
        queue.enqueue(engine, kind, payload, **kw)
    assert ei.value.code == "bad_job"
    assert queue.list_jobs(engine) == []


def test_run_at_in_future_is_not_claimed(engine):
    later = utcnow() + timedelta(hours=1)
    jid = queue.enqueue(engine, "t", {}, run_at=later)
    assert queue.claim(engine, "w") is None
    assert queue.claim(engine, "w", now=later + timedelta(seconds=1)).id == jid


def test_expired_lease_is_reclaimed_and_old_worker_is_fenced(engine):
    jid = queue.enqueue(engine, "t", {}, max_attempts=3)
    first = queue.claim(engine, "crashed", lease_s=30)
    assert first.id == jid
    # Before the lease ends nobody else gets it; after, another worker does.
    assert queue.claim(engine, "w2", now=utcnow() + timedelta(seconds=10)) is None
    second = queue.claim(engine, "w2", lease_s=30, now=utcnow() + timedelta(seconds=31))
    assert second.id == jid and second.attempts == 2 and second.locked_by == "w2"
    # The lost worker can neither complete nor fail the job any more.
    assert not queue.complete(engine, jid, {"from": "crashed"}, worker_id="crashed")
    assert queue.fail(engine, jid, "late", worker_id="crashed") is None
    assert queue.complete(engine, jid, {"from": "w2"}, worker_id="w2")
    assert queue.get_job(engine, jid).result == {"from": "w2"}


def test_expired_lease_after_last_attempt_goes_dead(engine):
    jid = queue.enqueue(engine, "t", {}, max_attempts=1)
    assert queue.claim(engine, "crashed", lease_s=1).id == jid
    assert queue.claim(engine, "w2", now=utcnow() + timedelta(seconds=5)) is None
    job = queue.get_job(engine, jid)
    assert job.status == "dead" and "lease expired" in job.last_error


def test_extend_lease(engine):
    jid = queue.enqueue(engine, "t", {})
    queue.claim(engine, "w1", lease_s=1)
    assert queue.extend_lease(engine, jid, "w1", lease_s=600)
    assert not queue.extend_lease(engine, jid, "other", lease_s=600)
    assert queue.claim(engine, "w2", now=utcnow() + timedelta(seconds=60)) is None


def test_backoff_is_exponential_capped_and_jittered():
    for attempt in range(1, 12):
        d = queue.backoff_delay(attempt, base_s=2, cap_s=100)
        full = min(100, 2 * 2 ** (attempt - 1))
        assert full * 0.5 <= d <= full
    assert queue.backoff_delay(10_000, base_s=2, cap_s=100) <= 100


def test_retries_then_dead_letter_then_replay(engine):
    jid = queue.enqueue(engine, "t", {"p": 1}, max_attempts=3)
    now = utcnow()
    for attempt in (1, 2):
        job = queue.claim(engine, "w", now=now)
        assert job.id == jid and job.attempts == attempt
        before = utcnow()
        assert queue.fail(engine, jid, f"boom {attempt}", worker_id="w", base_s=10) == "pending"
        j = queue.get_job(engine, jid)
        delay = (j.run_at - before).total_seconds()
        full = 10 * 2 ** (attempt - 1)
        assert full * 0.5 - 1 <= delay <= full + 1
        assert j.last_error == f"boom {attempt}"
        assert queue.claim(engine, "w") is None  # backing off
        now = j.run_at + timedelta(seconds=1)
    assert queue.claim(engine, "w", now=now).attempts == 3
    assert queue.fail(engine, jid, "boom 3", worker_id="w") == "dead"
    dead = queue.list_jobs(engine, status="dead")
    assert [j.id for j in dead] == [jid] and dead[0].last_error == "boom 3"
    assert queue.claim(engine, "w", now=now + timedelta(days=1)) is None

    queue.replay(engine, jid)
    j = queue.get_job(engine, jid)
    assert j.status == "pending" and j.attempts == 0
    assert queue.claim(engine, "w").id == jid
    with pytest.raises(queue.JobError) as ei:
        queue.replay(engine, jid)  # running: not replayable
    assert ei.value.code == "job_not_replayable"
    with pytest.raises(queue.JobError) as ei:
        queue.replay(engine, 999_999)
    assert ei.value.code == "unknown_job"


def test_fail_without_retry_is_dead_at_once(engine):
    jid = queue.enqueue(engine, "t", {}, max_attempts=5)
    queue.claim(engine, "w")
    assert queue.fail(engine, jid, "x" * 10_000, retry=False) == "dead"
    assert len(queue.get_job(engine, jid).last_error) == queue.MAX_ERROR


def test_list_jobs_filters(engine):
    queue.enqueue(engine, "a", {})
    queue.enqueue(engine, "b", {})
    assert [j.kind for j in queue.list_jobs(engine)] == ["b", "a"]
    assert [j.kind for j in queue.list_jobs(engine, kind="a")] == ["a"]
    assert queue.list_jobs(engine, status="done") == []
    with pytest.raises(queue.JobError):
        queue.list_jobs(engine, status="nonsense")


# ----------------------------------------------------------- exclusivity
def _drain(url: str, name: str, sink: list[int]) -> None:
    eng = create_engine_for(url)  # a separate engine: its own connections
    try:
        idle = 0
        while idle < 3:
            job = queue.claim(eng, name, lease_s=300)
            if job is None:
                idle += 1
                time.sleep(0.01)
                continue
            idle = 0
            sink.append(job.id)
            assert queue.complete(eng, job.id, {"by": name}, worker_id=name)
    finally:
        eng.dispose()


def test_competing_threads_run_each_job_exactly_once(engine, db_url):
    ids = {queue.enqueue(engine, "t", {"i": i}) for i in range(150)}
    sinks: list[list[int]] = [[] for _ in range(4)]
    threads = [threading.Thread(target=_drain, args=(db_url, f"w{i}", sinks[i])) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    seen = Counter(j for s in sinks for j in s)
    assert set(seen) == ids and max(seen.values()) == 1
    assert queue.counts(engine) == {"pending": 0, "running": 0, "done": 150, "dead": 0}


def _proc_drain(url: str, name: str, out) -> None:  # type: ignore[no-untyped-def]
    sink: list[int] = []
    _drain(url, name, sink)
    out.put(sink)


def test_competing_processes_run_each_job_exactly_once(engine, db_url):
    ids = {queue.enqueue(engine, "t", {"i": i}) for i in range(120)}
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_proc_drain, args=(db_url, f"p{i}", out)) for i in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    seen = Counter(j for s in results for j in s)
    assert set(seen) == ids and max(seen.values()) == 1
    done = queue.list_jobs(engine, status="done", limit=1000)
    assert {j.result["by"] for j in done} <= {"p0", "p1"}


# ----------------------------------------------------------------- worker
def test_worker_runs_handlers_and_records_outcomes(state):
    calls: list[int] = []

    def ok(st, job):
        assert st is state
        calls.append(job.payload["n"])
        return {"double": job.payload["n"] * 2}

    def flaky(st, job):
        raise RuntimeError("secret payload detail")

    def fatal(st, job):
        raise worker.PermanentJobError("cannot ever work")

    worker.register_handler("t_ok", ok)
    worker.register_handler("t_flaky", flaky)
    worker.register_handler("t_fatal", fatal)
    kinds = ["t_ok", "t_flaky", "t_fatal"]
    a = queue.enqueue(state.engine, "t_ok", {"n": 21})
    b = queue.enqueue(state.engine, "t_flaky", {}, max_attempts=2)
    c = queue.enqueue(state.engine, "t_fatal", {})
    u = queue.enqueue(state.engine, "t_unhandled", {})
    assert worker.run_until_idle(state, kinds) == 3
    assert queue.get_job(state.engine, a).result == {"double": 42} and calls == [21]
    jb = queue.get_job(state.engine, b)
    assert jb.status == "pending" and jb.last_error == "RuntimeError: secret payload detail"
    assert worker.run_once(state, kinds, now=jb.run_at + timedelta(seconds=1))
    assert queue.get_job(state.engine, b).status == "dead"
    jc = queue.get_job(state.engine, c)
    assert jc.status == "dead" and jc.attempts == 1 and "cannot ever work" in jc.last_error
    assert queue.get_job(state.engine, u).status == "pending"  # no handler: never claimed


def test_heartbeat_keeps_a_long_job_leased(state):
    started = threading.Event()
    grabbed: list[object] = []

    def slow(st, job):
        started.set()
        time.sleep(1.2)
        return {"ok": True}

    worker.register_handler("t_slow", slow)
    jid = queue.enqueue(state.engine, "t_slow", {})
    t = threading.Thread(target=worker.run_once, args=(state, ["t_slow"]), kwargs={"lease_s": 0.6})
    t.start()
    assert started.wait(10)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # the lease would have expired twice without it
        grabbed.append(queue.claim(state.engine, "thief", ["t_slow"]))
        time.sleep(0.1)
    t.join(10)
    assert grabbed and all(g is None for g in grabbed)
    j = queue.get_job(state.engine, jid)
    assert j.status == "done" and j.attempts == 1


def test_start_worker_thread_processes_and_stops(state):
    done = threading.Event()

    def h(st, job):
        if job.payload["i"] == 4:
            done.set()
        return None

    worker.register_handler("t_bg", h)
    for i in range(5):
        queue.enqueue(state.engine, "t_bg", {"i": i})
    stop = worker.start_worker(state, poll_s=0.05)
    try:
        assert done.wait(20)
    finally:
        stop()
    deadline = time.monotonic() + 5
    while queue.counts(state.engine)["done"] < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert queue.counts(state.engine)["done"] == 5
    late = queue.enqueue(state.engine, "t_bg", {"i": 99})
    time.sleep(0.3)
    assert queue.get_job(state.engine, late).status == "pending"  # the thread has stopped
