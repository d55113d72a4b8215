"""Hostile use, found by the adversarial pass in docs/SECURITY.md: each test failed before its fix.

* Lockout and TOTP replay under concurrent requests (PostgreSQL): 20 wrong guesses sent at
  once left the account unlocked (each read the same failure count), and one TOTP code
  opened 12 sessions when sent 12 times at once. Fixed by locking the user row.
* Rich markup in data (bank names, paths, messages): a bank named ``x[/]`` crashed
  ``bank list`` / ``bank show`` with a traceback, and a ``--jsonl`` path with ``[/]``
  crashed the scan summary after the scan had run.
* ``kill -9`` of a real ``sentinelle scan`` mid-run: the rerun completes, every file once.

Real databases (SQLite and PostgreSQL through ``db_url``), real CLI processes, real files.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from sentinelle.cli.main import app as cli
from sentinelle.review import accounts
from sentinelle.review.errors import AuthError
from sentinelle.review.tables import users
from sentinelle.store.db import open_engine

SHARED = Path(__file__).resolve().parents[2] / "shared"
PHOTOS = SHARED / "corpora" / "photos"
PW = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture()
def engine(db_url: str):  # type: ignore[no-untyped-def]
    e = open_engine(db_url)
    yield e
    e.dispose()


def _at_once(n: int, fn) -> list[object]:  # type: ignore[no-untyped-def]
    """Run ``fn`` in ``n`` threads released together; the results (or exceptions)."""
    barrier = threading.Barrier(n)
    out: list[object] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            r: object = fn()
        except Exception as e:  # noqa: BLE001
            r = e
        with lock:
            out.append(r)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


# ------------------------------------------------------------ concurrency on accounts


def test_lockout_holds_under_concurrent_guesses(engine) -> None:  # type: ignore[no-untyped-def]
    accounts.create_user(engine, "victim", PW, "reviewer")
    results = _at_once(20, lambda: accounts.login(engine, "victim", "a wrong guess"))
    codes = Counter(r.code for r in results if isinstance(r, AuthError))
    assert sum(codes.values()) == 20, results
    # exactly MAX_FAILED_LOGINS passwords were checked; every later guess met the lock
    assert codes["invalid_credentials"] == accounts.MAX_FAILED_LOGINS, codes
    assert codes["account_locked"] == 20 - accounts.MAX_FAILED_LOGINS
    with engine.connect() as c:
        assert c.execute(sa.select(users.c.locked_until)).scalar() is not None
    with pytest.raises(AuthError) as e:
        accounts.login(engine, "victim", PW)
    assert e.value.code == "account_locked"


def test_wrong_current_passwords_lock_under_concurrency(engine) -> None:  # type: ignore[no-untyped-def]
    """The change-password form is a password oracle for a stolen session: it locks too."""
    accounts.create_user(engine, "carl", PW, "reviewer")
    results = _at_once(
        12, lambda: accounts.change_own_password(engine, "carl", "a wrong guess", "new pass 12345")
    )
    codes = Counter(r.code for r in results if isinstance(r, AuthError))
    assert codes["invalid_credentials"] == accounts.MAX_FAILED_LOGINS, codes
    assert codes["account_locked"] == 12 - accounts.MAX_FAILED_LOGINS


def test_one_totp_code_opens_one_session_under_concurrency(engine) -> None:  # type: ignore[no-untyped-def]
    accounts.create_user(engine, "tess", PW, "reviewer")
    secret, _ = accounts.start_totp(engine, "tess")
    totp = pyotp.TOTP(secret)
    step = int(time.time() // totp.interval)
    accounts.confirm_totp(engine, "tess", totp.at((step - 1) * totp.interval))
    code = totp.at(step * totp.interval)
    results = _at_once(12, lambda: accounts.login(engine, "tess", PW, totp_code=code))
    sessions = [r for r in results if isinstance(r, accounts.Session)]
    refused = [r for r in results if isinstance(r, AuthError)]
    assert len(sessions) == 1, results  # a code is single-use, even when raced
    # replays count as failed logins, so a burst of them also locks the account
    assert len(refused) == 11 and {r.code for r in refused} <= {"invalid_totp", "account_locked"}


# ------------------------------------------------------------ markup in CLI output


def test_hostile_bank_names_and_paths_do_not_break_the_cli(tmp_path: Path) -> None:
    env = {"SENTINELLE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "COLUMNS": "250"}
    run = CliRunner().invoke
    for name in ("x[/]", "[bold red]fake[/]", "[link=https://evil.example]y"):
        res = run(cli, ["bank", "create", name], env=env)
        assert res.exit_code == 0, res.output
    res = run(cli, ["bank", "list"], env=env)
    assert res.exit_code == 0, res.output
    assert "x[/]" in res.output and "[bold red]fake[/]" in res.output  # shown as typed
    res = run(cli, ["bank", "show", "x[/]"], env=env)
    assert res.exit_code == 0 and "x[/]" in res.output, res.output
    res = run(cli, ["bank", "export", "x[/]", "-o", str(tmp_path / "x.csv")], env=env)
    assert res.exit_code == 0, res.output

    # a banked photo matched by a scan: the bank name and the paths reach the summary table
    photo = PHOTOS / "kodak24" / "kodim05.png"
    inbox = tmp_path / "in[box]"
    inbox.mkdir()
    shutil.copy(photo, inbox / "[red]copy[/red].png".replace("/", "_"))
    res = run(cli, ["bank", "add-media", "[bold red]fake[/]", str(photo)], env=env)
    assert res.exit_code == 0, res.output
    out = tmp_path / "out[" / "]x.jsonl"  # a directory named "out[": the path holds "[/]"
    args = ["scan", str(inbox), "--jsonl", str(out), "--workers", "1", "--no-provenance"]
    res = run(cli, args, env=env)
    assert res.exit_code == 0, res.output
    assert "bank [bold red]fake[/]" in res.output and "]x.jsonl" in res.output
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert rec["matches"] and rec["matches"][0]["bank"] == "[bold red]fake[/]"


# ------------------------------------------------------------ kill -9 during a scan


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_kill_9_during_scan_then_rerun_is_complete(tmp_path: Path) -> None:
    """A real ``sentinelle scan`` SIGKILLed once it has written records; the rerun carries
    the finished records over, re-hashes the rest and leaves one valid record per file."""
    photos = sorted((PHOTOS / "bsds500").glob("*.jpg"))[:300]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for p in photos:
        shutil.copy(p, inbox / p.name)
    out = tmp_path / "scan.jsonl"
    partial = out.with_name(out.name + ".partial")
    env = dict(os.environ, SENTINELLE_DATABASE_URL=f"sqlite:///{tmp_path / 'scan.db'}")
    cmd = [sys.executable, "-m", "sentinelle.cli.main", "scan", str(inbox), "--jsonl", str(out),
           "-q", "--workers", "1", "--no-provenance"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if partial.exists() and partial.read_bytes().count(b"\n") >= 20:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the scan finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and partial.exists()  # the final file is only ever complete
    done_before = partial.read_bytes().count(b"\n")
    assert 20 <= done_before < len(photos)

    res = subprocess.run(cmd, env=env, capture_output=True, timeout=600)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    by_path = Counter(r["path"] for r in recs)
    assert len(recs) == len(photos) and set(by_path.values()) == {1}
    assert not any(r.get("error") for r in recs)
    assert not partial.exists()


# ------------------------------------------------------------ console sessions

BASE = "http://127.0.0.1"


@pytest.fixture()
def world(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from console_support import build_console, console_env

    console_env(monkeypatch)
    w = build_console(db_url, tmp_path)
    yield w
    w.engine.dispose()


def _login(client, username: str) -> str:  # type: ignore[no-untyped-def]
    from console_support import PASSWORD, login_csrf, page_csrf

    r = client.get("/console/login")
    r = client.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "csrf_token": login_csrf(r.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return page_csrf(client.get("/console/settings").text)


def test_signed_media_link_is_dead_after_logout(world) -> None:  # type: ignore[no-untyped-def]
    import re

    from fastapi.testclient import TestClient

    with TestClient(world.app, base_url=BASE) as c:
        csrf = _login(c, "rita")
        r = c.post(f"/console/items/{world.video_item}/reveal", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200
        src = re.search(r'<source src="([^"]+)"', r.text).group(1).replace("&amp;", "&")
        assert c.get(src).status_code == 200  # the fresh link works while logged in
        cookie = c.cookies.get("sentinelle_session")
        r = c.post("/console/logout", headers={"X-CSRF-Token": csrf}, follow_redirects=False)
        assert r.status_code == 303
        # the same link, even with the old cookie replayed, yields no media
        c.cookies.set("sentinelle_session", cookie, domain="127.0.0.1", path="/console")
        r = c.get(src, follow_redirects=False)
        assert r.status_code in (303, 401, 403) and not r.content.startswith(b"\x00\x00")
        assert b"ftyp" not in r.content[:16]


def test_daily_exposure_cap_holds_under_concurrent_reveals(world) -> None:  # type: ignore[no-untyped-def]
    """Cap 2, eight reveals at once: before, all eight passed the check and were shown."""
    from fastapi.testclient import TestClient

    from sentinelle.review import exposure

    rita = world.users["reviewer"]
    exposure.update_settings(world.engine, rita.id, daily_cap=2)
    with TestClient(world.app, base_url=BASE) as c:
        csrf = _login(c, "rita")
        url = f"/console/items/{world.match_item}/reveal"
        headers = {"X-CSRF-Token": csrf, "HX-Request": "true"}
        results = _at_once(8, lambda: c.post(url, headers=headers))
    codes = sorted(r.status_code for r in results)  # type: ignore[attr-defined]
    assert codes == [200, 200] + [429] * 6, codes
    shown = [r for r in results if r.status_code == 200]  # type: ignore[attr-defined]
    assert all("data:image/jpeg;base64," in r.text for r in shown)
    refused = [r for r in results if r.status_code == 429]  # type: ignore[attr-defined]
    assert all("data:image/jpeg;base64," not in r.text for r in refused)  # nothing in the clear
    assert exposure.exposure_status(world.engine, rita.id).items_viewed == 2
    from sentinelle.audit import list_events

    reveals = [e for e in list_events(world.engine, limit=1000) if e.action == "media.reveal"]
    assert len(reveals) == 2  # refused reveals are not audited as reveals


def test_login_attempts_are_throttled_per_address(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """One address spraying one password over many accounts meets 429 after the burst."""
    import re

    from sentinelle.console.routes import review as review_routes

    # the refill (one attempt per 6 s) made slower, so a slow CI machine cannot earn a token
    monkeypatch.setattr(review_routes, "LOGIN_RATE_PER_S", 1e-6)

    from console_support import login_csrf
    from fastapi.testclient import TestClient

    from sentinelle.console.security import LOGIN_BURST

    statuses = []
    with TestClient(world.app, base_url=BASE) as c:
        for i in range(LOGIN_BURST + 3):
            token = login_csrf(c.get("/console/login").text)
            r = c.post(
                "/console/login",
                data={"username": f"user{i}", "password": "Summer2026!", "csrf_token": token},
                follow_redirects=False,
            )
            statuses.append(r.status_code)
        assert statuses[:LOGIN_BURST] == [401] * LOGIN_BURST, statuses
        assert statuses[LOGIN_BURST:] == [429] * 3
        assert int(r.headers["retry-after"]) >= 1
        assert re.search(r'data-code="login_rate_limited"', r.text)
        # even the right password waits: nothing is checked while throttled
        token = login_csrf(c.get("/console/login").text)
        r = c.post(
            "/console/login",
            data={"username": "rita", "password": "a long demo passphrase", "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 429
    with TestClient(world.app, base_url=BASE, client=("198.51.100.7", 50000)) as other:
        token = login_csrf(other.get("/console/login").text)
        r = other.post(
            "/console/login",
            data={"username": "rita", "password": "a long demo passphrase", "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303  # another address is not affected
