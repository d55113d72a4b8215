"""The console's exchanges page: state, last fetch, counts, errors and lag; fetch now,
disable and enable with CSRF and audit; admins only; French complete."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from console_support import PASSWORD, build_console, console_env, login_csrf, page_csrf
from fastapi.testclient import TestClient
from ncmec_server import Event, ListSource, NCMECServer
from xhelpers import no_sleep, secret_file

from sentinelle.audit import list_events
from sentinelle.exchanges import runner
from sentinelle.exchanges.credentials import make_ref
from sentinelle.exchanges.store import ExchangeStore
from sentinelle.exchanges.transport import HttpTransport
from sentinelle.jobs import queue

BASE = "http://127.0.0.1"
T0 = 1_700_000_000


def md5(i: int) -> str:
    return hashlib.md5(f"lantern-{i}".encode()).hexdigest()


@pytest.fixture()
def world(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    console_env(monkeypatch)
    w = build_console(db_url, tmp_path)
    yield w
    w.engine.dispose()


def _login(c: TestClient, username: str) -> str:
    r = c.get("/console/login")
    r = c.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "csrf_token": login_csrf(r.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return page_csrf(c.get("/console/settings").text)


def _exchanges(world, tmp_path: Path, srv: NCMECServer) -> ExchangeStore:  # type: ignore[no-untyped-def]
    """``ncmec``: fetched (counts, lag); ``broken``: its fetch failed (error shown)."""
    store = ExchangeStore(world.engine)
    creds = make_ref(file=secret_file(tmp_path, f"{srv.username}:{srv.password}"))
    store.add(
        "ncmec", "ncmec", config={"base_url": srv.url, "start_time": T0 - 10}, credential_ref=creds
    )
    store.add("broken", "ncmec", config={"base_url": "http://127.0.0.1:9"}, credential_ref=creds)
    with HttpTransport(sleep=no_sleep, backoff_s=0, retries=0) as http:
        assert runner.run_fetch(store, "ncmec", http=http, sleep=no_sleep).error is None
        assert runner.run_fetch(store, "broken", http=http, sleep=no_sleep).error
    return store


def _i18n_checks():  # type: ignore[no-untyped-def]
    """The French-page checks of ``tests/test_console_i18n.py`` (catalog, English leaks)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "test_console_i18n.py"
    spec = importlib.util.spec_from_file_location("_console_i18n_checks", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(html: str, name: str) -> str:
    m = re.search(rf'<tr id="exchange-{name}".*?</tr>', html, re.S)
    assert m, f"no row for {name}"
    return m.group(0)


def test_admin_sees_state_counts_errors_and_acts(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    events = [
        Event(T0 + i, "42", f"e{i}", fingerprints={"md5": md5(i), "pdna": "ab" * 72})
        for i in range(12)
    ]
    with NCMECServer(ListSource(events), page_size=5) as srv:
        store = _exchanges(world, tmp_path, srv)
        with TestClient(world.app, base_url=BASE) as c:
            csrf = _login(c, "adam")
            assert 'href="/console/exchanges"' in c.get("/console/queue").text
            page = c.get("/console/exchanges")
            assert page.status_code == 200
            ok = _row(page.text, "ncmec")
            assert 'data-state="up_to_date"' in ok and "up to date" in ok
            assert '<dd data-count="records_seen">12</dd>' in ok
            assert '<dd data-count="entries_added">12</dd>' in ok
            assert '<dd data-count="unknown_types">12</dd>' in ok  # PhotoDNA: not banked
            assert re.search(r'<td class="lag">\d+ minutes?</td>', ok)  # lag behind the remote
            assert "file:" in ok and "s3cret" not in page.text  # where, never the secret
            bad = _row(page.text, "broken")
            assert 'data-state="degraded"' in bad and 'class="last-error"' in bad
            assert "1 failed fetch in a row" in bad
            # fetch now: CSRF required, queued, audited
            assert c.post("/console/exchanges/ncmec/fetch", data={}).status_code == 403
            r = c.post("/console/exchanges/ncmec/fetch", data={"csrf_token": csrf})
            assert r.status_code == 200 and "Fetch queued" in r.text
            jobs = queue.list_jobs(world.engine, kind=runner.FETCH_JOB)
            assert [j.payload for j in jobs] == [{"exchange": "ncmec"}]
            # disable: no fetch button any more, state shown; enable again
            r = c.post("/console/exchanges/broken/disable", data={"csrf_token": csrf})
            assert r.status_code == 200 and "Exchange disabled" in r.text
            row = _row(r.text, "broken")
            assert 'data-enabled="false"' in row and "/broken/fetch" not in row
            assert not store.get("broken").enabled
            r = c.post("/console/exchanges/broken/fetch", data={"csrf_token": csrf})
            assert r.status_code == 400 and "exchange_disabled" in r.text
            r = c.post("/console/exchanges/broken/enable", data={"csrf_token": csrf})
            assert r.status_code == 200 and store.get("broken").enabled
            r = c.post("/console/exchanges/nope/disable", data={"csrf_token": csrf})
            assert r.status_code == 400 and "unknown_exchange" in r.text
    audited = [
        (e.action, e.target, e.actor)
        for e in list_events(world.engine, action="exchange.", limit=100)
    ]
    assert ("exchange.fetch_requested", "exchange:ncmec", "user:adam") in audited
    assert ("exchange.disable", "exchange:broken", "user:adam") in audited
    assert ("exchange.enable", "exchange:broken", "user:adam") in audited


def test_reviewer_cannot_see_or_act(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with NCMECServer(ListSource([])) as srv:
        store = _exchanges(world, tmp_path, srv)
        with TestClient(world.app, base_url=BASE) as c:
            csrf = _login(c, "rita")
            assert "/console/exchanges" not in c.get("/console/queue").text
            assert c.get("/console/exchanges").status_code == 403
            r = c.post("/console/exchanges/ncmec/disable", data={"csrf_token": csrf})
            assert r.status_code == 403
        assert store.get("ncmec").enabled
        assert queue.list_jobs(world.engine, kind=runner.FETCH_JOB) == []


def test_the_page_is_french_for_a_french_admin(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    i18n_checks = _i18n_checks()
    with NCMECServer(ListSource([Event(T0 + 1, "42", "e1", fingerprints={"md5": md5(1)})])) as srv:
        _exchanges(world, tmp_path, srv)
        with TestClient(world.app, base_url=BASE) as c:
            csrf = _login(c, "adam")
            r = c.post(
                "/console/settings",
                data={"csrf_token": csrf, "locale": "fr", "blur_level": "24", "grayscale": "on"},
                follow_redirects=False,
            )
            assert r.status_code == 303, r.text
            pages = {
                "list": c.get("/console/exchanges"),
                "flash": c.post("/console/exchanges/broken/disable", data={"csrf_token": csrf}),
                "error": c.post("/console/exchanges/nope/enable", data={"csrf_token": csrf}),
            }
    catalog = i18n_checks.french_catalog()
    for name, r in pages.items():
        assert '<html lang="fr">' in r.text, name
        assert not i18n_checks.english_leaks(r.text, catalog), (
            name,
            i18n_checks.english_leaks(r.text, catalog),
        )
    assert "Échanges d'empreintes" in pages["list"].text and "à jour" in pages["list"].text
    assert "Échange désactivé" in pages["flash"].text
