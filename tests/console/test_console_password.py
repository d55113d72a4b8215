"""First-login and self-service password change in the console, on SQLite and PostgreSQL.

Real app and database (``tests/support/console_support.py``), real argon2 hashes (cheap parameters):
an account created or reset by an administrator must replace its temporary password
before anything else of the console answers; the change needs the current password,
a new one of 12+ characters typed twice and different from the old one, and the
session's CSRF token; it clears the flag, keeps the session that made it, ends every
other session and is audited without any password in the trail.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from console_support import PASSWORD, build_console, console_env, login_csrf, page_csrf
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sentinelle.audit import list_events
from sentinelle.review import accounts
from sentinelle.review.errors import AuthError
from sentinelle.review.tables import users

BASE = "http://127.0.0.1"
NEW = "my own new passphrase"


@pytest.fixture()
def world(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    console_env(monkeypatch)
    w = build_console(db_url, tmp_path)
    yield w
    w.engine.dispose()


def client(world) -> TestClient:
    return TestClient(world.app, base_url=BASE)


def login(c: TestClient, username: str, password: str) -> None:
    r = c.get("/console/login")
    r = c.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": login_csrf(r.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def csrf_of(c: TestClient) -> str:
    r = c.get("/console/password")
    assert r.status_code == 200
    return page_csrf(r.text)


def code_of(html: str) -> str | None:
    m = re.search(r'role="alert" data-code="([a-z_]+)"', html)
    return m.group(1) if m else None


def change(c: TestClient, csrf: str, current: str, new: str, again: str | None = None):
    return c.post(
        "/console/password",
        data={
            "csrf_token": csrf,
            "current_password": current,
            "new_password": new,
            "new_password_again": new if again is None else again,
        },
        follow_redirects=False,
    )


def flag(world, username: str) -> bool:
    with world.engine.connect() as conn:
        return bool(
            conn.execute(
                sa.select(users.c.must_change_password).where(users.c.username == username)
            ).scalar_one()
        )


def admin_creates(world, username: str) -> str:
    """Create ``username`` through the admin's users page; the temporary password shown."""
    with client(world) as admin:
        login(admin, "adam", PASSWORD)
        csrf = page_csrf(admin.get("/console/users").text)
        r = admin.post(
            "/console/users",
            data={"csrf_token": csrf, "username": username, "role": "reviewer"},
        )
        assert r.status_code == 200, r.text
        m = re.search(r"<code data-password>([^<]+)</code>", r.text)
        assert m, "the temporary password is shown once"
        assert "must change password" in admin.get("/console/users").text
        return m.group(1)


def events(world, action: str) -> list:
    return [e for e in list_events(world.engine, limit=10_000) if e.action == action]


# ------------------------------------------------------------------ forced change
def test_temporary_password_forces_the_change_page_everywhere(world) -> None:
    temp = admin_creates(world, "nina")
    assert flag(world, "nina")
    with client(world) as c:
        login(c, "nina", temp)
        for path in ("/console/queue", "/console/settings", "/console/users", "/console/"):
            r = c.get(path, follow_redirects=False)
            if path == "/console/":  # home -> queue -> password
                r = c.get(r.headers["location"], follow_redirects=False)
            assert r.status_code == 303, path
            assert r.headers["location"] == "/console/password", path
        r = c.get("/console/queue", headers={"HX-Request": "true"}, follow_redirects=False)
        assert r.status_code == 403
        assert r.headers["hx-redirect"] == "/console/password"
        assert r.json()["error"]["code"] == "password_change_required"
        page = c.get("/console/password")
        assert page.status_code == 200
        assert 'data-code="password_change_required"' in page.text
        assert 'href="/console/queue"' not in page.text  # the menu offers nothing else
        csrf = page_csrf(page.text)
        # actions are refused too, even with a valid CSRF token
        r = c.post("/console/break", data={"csrf_token": csrf}, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/console/password")
        # logging out stays possible
        r = c.post("/console/logout", data={"csrf_token": csrf}, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/console/login")
        r = c.get("/console/password", follow_redirects=False)
        assert r.headers["location"].startswith("/console/login")


def test_admin_reset_sets_the_flag_again(world) -> None:
    with client(world) as admin:
        login(admin, "adam", PASSWORD)
        csrf = page_csrf(admin.get("/console/users").text)
        r = admin.post("/console/users/rita/password", data={"csrf_token": csrf})
        assert r.status_code == 200
        temp = re.search(r"<code data-password>([^<]+)</code>", r.text).group(1)
    assert flag(world, "rita")
    with client(world) as c:
        login(c, "rita", temp)
        r = c.get("/console/queue", follow_redirects=False)
        assert r.headers["location"] == "/console/password"
        assert change(c, csrf_of(c), temp, NEW).status_code == 303
        assert c.get("/console/queue").status_code == 200
    assert not flag(world, "rita")


# ------------------------------------------------------------------ refused changes
def test_wrong_current_password_is_refused_and_counts_towards_lockout(world) -> None:
    temp = admin_creates(world, "nina")
    with client(world) as c:
        login(c, "nina", temp)
        csrf = csrf_of(c)
        r = change(c, csrf, "not the password", NEW)
        assert r.status_code == 401
        assert code_of(r.text) == "invalid_credentials"
        assert NEW not in r.text and temp not in r.text  # never echoed back
        assert flag(world, "nina")
        failed = events(world, "auth.password_change_failed")
        assert [e.target for e in failed] == ["user:nina"]
        for _ in range(accounts.MAX_FAILED_LOGINS - 1):
            change(c, csrf, "not the password", NEW)
        r = change(c, csrf, temp, NEW)  # even the right one, once locked
        assert r.status_code == 403
        assert code_of(r.text) == "account_locked"
    with pytest.raises(AuthError) as e:
        accounts.login(world.engine, "nina", temp)
    assert e.value.code == "account_locked"


@pytest.mark.parametrize(
    ("new", "again", "code"),
    [
        ("short pass", None, "bad_password"),  # 10 characters
        (NEW, NEW + "!", "password_mismatch"),
        (PASSWORD, None, "password_unchanged"),
    ],
)
def test_bad_new_password_is_refused(world, new: str, again: str | None, code: str) -> None:
    with client(world) as c:
        login(c, "rita", PASSWORD)
        r = change(c, csrf_of(c), PASSWORD, new, again)
        assert r.status_code == 422, r.text
        assert code_of(r.text) == code
    accounts.login(world.engine, "rita", PASSWORD)  # unchanged
    assert not events(world, "auth.password_change")


def test_csrf_token_is_required(world) -> None:
    temp = admin_creates(world, "nina")
    with client(world) as c:
        login(c, "nina", temp)
        for token in ("", "0" * 64):
            r = change(c, token, temp, NEW)
            assert r.status_code == 403
            assert r.json()["error"]["code"] == "csrf_failed"
        # a foreign origin is refused even with the right token
        r = c.post(
            "/console/password",
            data={
                "csrf_token": csrf_of(c),
                "current_password": temp,
                "new_password": NEW,
                "new_password_again": NEW,
            },
            headers={"Origin": "https://evil.example"},
            follow_redirects=False,
        )
        assert r.status_code == 403
    assert flag(world, "nina")
    accounts.login(world.engine, "nina", temp)


def test_hostile_form_gets_a_structured_error(world) -> None:
    with client(world) as c:
        login(c, "rita", PASSWORD)
        csrf = csrf_of(c)
        r = c.post(
            "/console/password",
            data={"csrf_token": csrf, "current_password": "y" * 5000, "new_password": NEW},
        )
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "invalid_request"
        r = c.post(
            "/console/password",
            files={"current_password": ("a.txt", b"data")},
            data={"csrf_token": csrf},
        )
        assert 400 <= r.status_code < 500
    accounts.login(world.engine, "rita", PASSWORD)


# ------------------------------------------------------------------ success
def test_success_clears_the_flag_and_ends_other_sessions(world) -> None:
    temp = admin_creates(world, "nina")
    with client(world) as other, client(world) as c:
        login(other, "nina", temp)
        login(c, "nina", temp)
        r = change(c, csrf_of(c), temp, NEW)
        assert (r.status_code, r.headers["location"]) == (303, "/console/password?done=1")
        assert "Password changed" in c.get(r.headers["location"]).text
        assert not flag(world, "nina")
        # this session goes on, with the whole console open
        assert c.get("/console/queue", follow_redirects=False).status_code == 200
        # the other one is gone
        r = other.get("/console/queue", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    (ev,) = events(world, "auth.password_change")
    assert (ev.actor, ev.target) == ("user:nina", "user:nina")
    assert ev.details["was_temporary"] is True and ev.details["sessions_revoked"] == 1
    dumped = json.dumps(ev.details)
    assert NEW not in dumped and temp not in dumped
    with pytest.raises(AuthError):
        accounts.login(world.engine, "nina", temp)
    assert accounts.login(world.engine, "nina", NEW).user.must_change_password is False


def test_self_service_change_from_the_menu(world) -> None:
    with client(world) as c:
        login(c, "rita", PASSWORD)
        page = c.get("/console/queue")
        assert 'href="/console/password">Change password</a>' in page.text
        pw_page = c.get("/console/password")
        assert 'data-code="password_change_required"' not in pw_page.text
        assert change(c, page_csrf(pw_page.text), PASSWORD, NEW).status_code == 303
        assert c.get("/console/queue").status_code == 200
    (ev,) = events(world, "auth.password_change")
    assert ev.details["was_temporary"] is False
    accounts.login(world.engine, "rita", NEW)


# ------------------------------------------------------------------ CLI and library
def test_cli_temporary_flag(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    from sentinelle.cli.main import app
    from sentinelle.store.db import open_engine

    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", sqlite_url)
    r = CliRunner()
    args = ["user", "create", "jo", "--temporary", "--password-stdin"]
    assert r.invoke(app, args, input=PASSWORD + "\n").exit_code == 0
    e = open_engine(sqlite_url)
    assert accounts.get_user(e, "jo").must_change_password
    accounts.change_own_password(e, "jo", PASSWORD, NEW)
    assert not accounts.get_user(e, "jo").must_change_password
    args = ["user", "passwd", "jo", "--password-stdin"]
    assert r.invoke(app, args, input=PASSWORD + "\n").exit_code == 0
    assert not accounts.get_user(e, "jo").must_change_password
    args = ["user", "passwd", "jo", "--temporary", "--password-stdin"]
    assert r.invoke(app, args, input=NEW + "\n").exit_code == 0
    assert accounts.get_user(e, "jo").to_dict()["must_change_password"] is True
    e.dispose()
