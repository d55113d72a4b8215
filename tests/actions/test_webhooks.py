"""Signed webhooks delivered to a real local HTTP receiver; retries, dead
letters, replay; per-bank action settings and the `sentinelle actions` CLI."""

from __future__ import annotations

import json
import secrets
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from sentinelle.actions import config, dispatch, webhooks
from sentinelle.cli.main import app as cli_app
from sentinelle.formats.entry import EntryIn
from sentinelle.jobs import queue, worker
from sentinelle.service.settings import Settings
from sentinelle.service.state import build_state

SECRET = "s3cret-for-tests-" + "x" * 16


class Receiver:
    """A real HTTP server on 127.0.0.1 that answers with scripted statuses and
    verifies every delivery's signature the way a customer would."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.script: list[int] = []  # statuses to answer, then 200
        self.requests: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = webhooks.verify_signature(
                    outer.secret,
                    self.headers.get("X-Sentinelle-Timestamp", ""),
                    body,
                    self.headers.get("X-Sentinelle-Signature", ""),
                )
                status = outer.script.pop(0) if outer.script else 200
                if not ok:
                    status = 401
                outer.requests.append(
                    {"headers": dict(self.headers), "body": body, "valid": ok, "status": status}
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture()
def state(db_url):
    st = build_state(Settings(database_url=db_url, extra={"flood_flush_interval_s": 0}))
    yield st
    st.close()


def _bank_with_entry(state, name="hooks") -> int:
    state.store.create_bank(name)
    h = secrets.token_hex(32)
    state.store.add_entries(name, [EntryIn(signal_type="pdq", hash=h, category="test")])
    state.matcher.refresh()
    (matches,) = state.matcher.match_pdq([h])
    assert matches
    return matches


def _drive(state, now=None) -> bool:
    return worker.run_once(state, [webhooks.JOB_KIND], now=now)


# ---------------------------------------------------------------- signing
def test_signature_verification_rules():
    body = b'{"a":1}'
    ts = 1_700_000_000
    sig = webhooks.sign(SECRET, ts, body)
    assert sig.startswith("v1=") and len(sig) == 3 + 64
    assert webhooks.verify_signature(SECRET, str(ts), body, sig, now=ts + 10)
    assert webhooks.verify_signature(SECRET, ts, body, f"v1=00ff, {sig}", now=ts)  # rotation
    assert not webhooks.verify_signature(SECRET, ts, body + b" ", sig, now=ts)  # tampered
    assert not webhooks.verify_signature("other-secret-123456", ts, body, sig, now=ts)
    assert not webhooks.verify_signature(SECRET, ts, body, sig, now=ts + 301)  # stale
    assert not webhooks.verify_signature(SECRET, ts, body, sig, now=ts - 301)  # future
    assert not webhooks.verify_signature(SECRET, ts + 1, body, sig, now=ts)  # ts not signed
    for bad_ts in ("", "abc", None, "1e9"):
        assert not webhooks.verify_signature(SECRET, bad_ts, body, sig, now=ts)
    for bad_sig in ("", "v1=", sig[3:], "v0=" + sig[3:], None):
        assert not webhooks.verify_signature(SECRET, ts, body, bad_sig, now=ts)


# --------------------------------------------------------------- config
def test_action_config_validation(state):
    state.store.create_bank("b")
    a = config.get_actions(state.engine, "b")
    assert not a.quarantine and not a.webhook_urls and a.flood == config.FloodSettings()
    for bad in ("ftp://x/y", "http://", "not a url", "http://user:pw@host/", "http://h:99999/"):
        with pytest.raises(config.ActionConfigError):
            config.set_actions(state.engine, "b", webhook_urls=[bad], webhook_secret=SECRET)
    with pytest.raises(config.ActionConfigError, match="secret"):
        config.set_actions(state.engine, "b", webhook_urls=["https://example.org/h"])
    with pytest.raises(config.ActionConfigError, match="secret"):
        config.set_actions(state.engine, "b", webhook_secret="short")
    with pytest.raises(config.ActionConfigError):
        config.set_actions(state.engine, "b", flood_window_s=0)
    with pytest.raises(config.ActionConfigError):
        config.set_actions(state.engine, "b", flood_max=-1)
    with pytest.raises(config.ActionConfigError) as ei:
        config.set_actions(state.engine, "nope", quarantine=True)
    assert ei.value.code == "unknown_bank"
    assert config.get_actions(state.engine, "b") == a  # nothing written

    a = config.set_actions(
        state.engine,
        "b",
        webhook_urls=["https://example.org/h"],
        webhook_secret=SECRET,
        quarantine=True,
        flood_max=5,
    )
    assert a.webhooks_active and a.quarantine and a.flood.max_matches == 5
    assert a.flood.window_s == config.DEFAULT_FLOOD_WINDOW_S and a.flood_overridden
    assert "secret" not in json.dumps(a.to_dict()).replace("has_secret", "")
    config.set_global_flood(state.engine, 7, 30, 99)
    a = config.set_actions(state.engine, "b", flood_max=None)
    assert a.flood == config.FloodSettings(7, 30, 99) and not a.flood_overridden
    assert config.set_actions(state.engine, "b", webhook_urls=[]).webhook_urls == ()


# -------------------------------------------------------------- delivery
def test_match_webhook_is_signed_and_carries_metadata_only(state, receiver):
    matches = _bank_with_entry(state)
    config.set_actions(
        state.engine, "hooks", webhook_urls=[receiver.url], webhook_secret=SECRET, quarantine=True
    )
    out = dispatch.on_matches(state, matches, context={"request_id": "req-1", "source": "test"})
    assert out.quarantine and out.webhooks_queued == 1 and not out.errors
    assert _drive(state)
    (req,) = receiver.requests
    assert req["valid"] and req["status"] == 200
    assert req["headers"]["Content-Type"] == "application/json"
    event = json.loads(req["body"])
    assert event["bank"] == "hooks" and event["request_id"] == "req-1"
    assert event["instance"] == state.instance_id and event["quarantine"] is True
    (m,) = event["matches"]
    assert m["entry_id"] == matches[0].entry_id and m["signal"] == "pdq" and m["distance"] == 0
    assert matches[0].entry_hash not in req["body"].decode()  # no hashes leave the service
    (job,) = queue.list_jobs(state.engine, kind="webhook")
    assert job.status == "done" and job.result["status"] == 200
    assert req["headers"]["X-Sentinelle-Delivery"] == str(job.id)


def test_no_webhook_no_quarantine_without_config(state, receiver):
    matches = _bank_with_entry(state)
    out = dispatch.on_matches(state, matches, context={})
    assert not out.quarantine and out.webhooks_queued == 0
    assert dispatch.on_matches(state, [], context={}).webhooks_queued == 0
    config.set_actions(
        state.engine, "hooks", webhook_urls=[receiver.url], webhook_secret=SECRET, enabled=False
    )
    config.invalidate_cache(state.engine)
    assert dispatch.on_matches(state, matches, context={}).webhooks_queued == 0


def test_server_errors_are_retried_with_backoff_then_delivered(state, receiver):
    matches = _bank_with_entry(state)
    config.set_actions(state.engine, "hooks", webhook_urls=[receiver.url], webhook_secret=SECRET)
    receiver.script = [500, 503]
    dispatch.on_matches(state, matches, context={"request_id": "r"})
    assert _drive(state)
    (job,) = queue.list_jobs(state.engine, kind="webhook")
    assert job.status == "pending" and "HTTP 500" in job.last_error
    assert not _drive(state)  # backing off: not runnable yet
    assert _drive(state, now=job.run_at + timedelta(seconds=1))
    job = queue.get_job(state.engine, job.id)
    assert job.status == "pending" and "HTTP 503" in job.last_error
    assert _drive(state, now=job.run_at + timedelta(seconds=1))
    job = queue.get_job(state.engine, job.id)
    assert job.status == "done" and job.attempts == 3
    assert [r["status"] for r in receiver.requests] == [500, 503, 200]
    assert all(r["valid"] for r in receiver.requests)
    ids = {json.loads(r["body"])["id"] for r in receiver.requests}
    assert len(ids) == 1  # the same event each time: receivers can deduplicate


def test_permanent_failure_dead_letter_replay_delivers(state, receiver):
    matches = _bank_with_entry(state)
    config.set_actions(state.engine, "hooks", webhook_urls=[receiver.url], webhook_secret=SECRET)
    receiver.script = [500] * webhooks.WEBHOOK_MAX_ATTEMPTS
    dispatch.on_matches(state, matches, context={"request_id": "r"})
    (job,) = queue.list_jobs(state.engine, kind="webhook")
    for _ in range(webhooks.WEBHOOK_MAX_ATTEMPTS):
        j = queue.get_job(state.engine, job.id)
        assert _drive(state, now=j.run_at + timedelta(seconds=1))
    dead = queue.list_jobs(state.engine, status="dead")
    assert [d.id for d in dead] == [job.id] and dead[0].attempts == webhooks.WEBHOOK_MAX_ATTEMPTS

    runner = CliRunner()
    env = {"SENTINELLE_DATABASE_URL": state.settings.database_url}
    res = runner.invoke(cli_app, ["actions", "dead-letters"], env=env)
    assert res.exit_code == 0 and str(job.id) in res.output and "webhook" in res.output
    res = runner.invoke(cli_app, ["actions", "replay", str(job.id)], env=env)
    assert res.exit_code == 0, res.output
    assert _drive(state)
    assert queue.get_job(state.engine, job.id).status == "done"
    assert receiver.requests[-1]["status"] == 200 and receiver.requests[-1]["valid"]
    res = runner.invoke(cli_app, ["actions", "replay", "424242"], env=env)
    assert res.exit_code == 1 and "unknown_job" in res.output


def test_client_errors_and_unreachable_receivers(state, receiver):
    matches = _bank_with_entry(state)
    config.set_actions(state.engine, "hooks", webhook_urls=[receiver.url], webhook_secret=SECRET)
    receiver.script = [404]
    dispatch.on_matches(state, matches, context={})
    assert _drive(state)
    (job,) = queue.list_jobs(state.engine, kind="webhook")
    assert job.status == "dead" and job.attempts == 1 and "404" in job.last_error

    # Connection refused: a closed port is retried, not dead at once.
    closed = Receiver()
    closed.close()
    config.set_actions(state.engine, "hooks", webhook_urls=[closed.url])
    config.invalidate_cache(state.engine)
    dispatch.on_matches(state, matches, context={})
    assert _drive(state)
    newest = queue.list_jobs(state.engine, kind="webhook")[0]
    assert newest.status == "pending" and "ConnectError" in newest.last_error


def test_wrong_secret_is_rejected_by_receiver(state, receiver):
    matches = _bank_with_entry(state)
    config.set_actions(
        state.engine, "hooks", webhook_urls=[receiver.url], webhook_secret="another-secret-0123"
    )
    dispatch.on_matches(state, matches, context={})
    assert _drive(state)
    assert receiver.requests[0]["valid"] is False and receiver.requests[0]["status"] == 401
    assert queue.list_jobs(state.engine, kind="webhook")[0].status == "dead"


def test_bad_webhook_job_payload_goes_dead(state):
    jid = queue.enqueue(state.engine, "webhook", {"bank": 3, "url": None})
    assert _drive(state)
    assert queue.get_job(state.engine, jid).status == "dead"
    jid = queue.enqueue(state.engine, "webhook", {"bank": "gone", "url": "http://x/", "event": {}})
    assert _drive(state)
    j = queue.get_job(state.engine, jid)
    assert j.status == "dead" and "no webhook secret" in j.last_error


def test_actions_cli_set_show(state, receiver):
    state.store.create_bank("cli")
    runner = CliRunner()
    env = {"SENTINELLE_DATABASE_URL": state.settings.database_url}
    res = runner.invoke(
        cli_app,
        ["actions", "set", "cli", "--webhook", receiver.url, "--generate-secret", "--quarantine"],
        env=env,
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        cli_app, ["actions", "set", "cli", "--flood-max", "3", "--flood-window", "10"], env=env
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli_app, ["actions", "show", "cli"], env=env)
    shown = json.loads(res.output)
    assert shown["quarantine"] and shown["webhook_urls"] == [receiver.url] and shown["has_secret"]
    assert shown["flood_guard"]["max"] == 3 and shown["flood_guard"]["window_s"] == 10
    res = runner.invoke(cli_app, ["actions", "set", "cli", "--webhook", "gopher://x"], env=env)
    assert res.exit_code == 1 and "bad_action_config" in res.output
    res = runner.invoke(cli_app, ["actions", "show", "missing"], env=env)
    assert res.exit_code == 1 and "unknown_bank" in res.output


# ------------------------------------------------------- through the service
def test_scan_route_quarantines_delivers_webhook_and_flood_guard_pauses(db_url, receiver):
    """End to end: the real app, its background worker and index sync."""
    import hashlib
    import io
    import time

    from fastapi.testclient import TestClient

    from sentinelle.actions import flood
    from sentinelle.cli.demo_media import render_scene
    from sentinelle.service.app import create_app
    from sentinelle.service.keys import create_key

    buf = io.BytesIO()
    render_scene(4242).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    settings = Settings(
        database_url=db_url,
        key_cache_s=0.0,
        sync_interval_s=0.1,
        rate_limit=0.0,
        extra={"flood_flush_interval_s": 0},
    )
    app = create_app(settings)
    st = app.state.sentinelle
    st.store.create_bank("e2e")
    st.store.add_entries("e2e", [EntryIn(signal_type="md5", hash=hashlib.md5(data).hexdigest())])
    config.set_actions(
        st.engine,
        "e2e",
        webhook_urls=[receiver.url],
        webhook_secret=SECRET,
        quarantine=True,
        flood_max=1,
        flood_window_s=600,
    )
    _, key = create_key(st.engine, "scanner", ["scan"])
    h = {"X-API-Key": key, "X-Request-ID": "e2e-1"}
    with TestClient(app) as client:
        deadline = time.monotonic() + 10
        while not st.matcher.match_exact("md5", hashlib.md5(data).hexdigest()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = client.post("/v1/scan", content=data, headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["quarantine"] is True and [m["bank"] for m in body["matches"]] == ["e2e"]
        assert body["actions"]["webhooks_queued"] == 1
        deadline = time.monotonic() + 15
        while not receiver.requests:  # the app's worker thread delivers it
            assert time.monotonic() < deadline, "webhook not delivered"
            time.sleep(0.05)
        (req,) = receiver.requests
        assert req["valid"] and json.loads(req["body"])["request_id"] == "e2e-1"
        assert hashlib.md5(data).hexdigest() not in req["body"].decode()

        # Second match within the window: over the limit (1) -> paused + alert.
        body = client.post("/v1/scan", content=data, headers=h).json()
        assert body["matches"] and len(body["actions"]["paused_entries"]) == 1
        assert flood.list_alerts(st.engine)[0].bank == "e2e"
        deadline = time.monotonic() + 5  # the index sync drops the paused entry
        while True:
            body = client.post("/v1/scan", content=data, headers=h).json()
            if not body["matches"]:
                break
            assert time.monotonic() < deadline, "paused entry still matching"
            time.sleep(0.1)
        assert body["quarantine"] is False
