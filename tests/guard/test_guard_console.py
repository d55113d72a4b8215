"""The console page for the guard's phrase lists, over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from console_support import PASSWORD, build_console, console_env, login_csrf, page_csrf
from fastapi.testclient import TestClient

from sentinelle.audit import list_events
from sentinelle.guard import phrases as pl

BASE = "http://127.0.0.1"


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


def test_admin_adds_and_removes_phrases(world) -> None:  # type: ignore[no-untyped-def]
    with TestClient(world.app, base_url=BASE) as c:
        csrf = _login(c, "adam")
        assert 'href="/console/guard/phrases"' in c.get("/console/queue").text
        page = c.get("/console/guard/phrases")
        assert page.status_code == 200 and "No phrases." in page.text
        r = c.post(
            "/console/guard/phrases",
            data={
                "csrf_token": csrf,
                "kind": "allow",
                "language": "fr",
                "phrase": "Pieds  NUS",
                "note": "barefoot",
            },
        )
        assert r.status_code == 200 and "Phrase added" in r.text
        m = re.search(r'id="phrase-(\d+)" data-kind="allow" data-language="fr"', r.text)
        assert m and "<code>pieds nus</code>" in r.text
        r = c.post(
            "/console/guard/phrases",
            data={"csrf_token": csrf, "kind": "deny", "language": "zz", "phrase": "x"},
        )
        assert r.status_code == 400 and "bad_language" in r.text
        # no CSRF token: refused, nothing changed
        r = c.post(f"/console/guard/phrases/{m.group(1)}/remove", data={})
        assert r.status_code == 403
        assert pl.current_version(world.engine) == 1
        r = c.post(f"/console/guard/phrases/{m.group(1)}/remove", data={"csrf_token": csrf})
        assert r.status_code == 200 and "Phrase removed" in r.text
    assert pl.current_version(world.engine) == 2 and pl.list_entries(world.engine) == []
    actors = {e.actor for e in list_events(world.engine, action="guard.phrase")}
    assert actors == {"user:adam"}


def test_reviewer_cannot_see_or_change_phrases(world) -> None:  # type: ignore[no-untyped-def]
    with TestClient(world.app, base_url=BASE) as c:
        csrf = _login(c, "rita")
        assert "/console/guard/phrases" not in c.get("/console/queue").text
        assert c.get("/console/guard/phrases").status_code == 403
        r = c.post(
            "/console/guard/phrases",
            data={"csrf_token": csrf, "kind": "allow", "language": "fr", "phrase": "pont"},
        )
        assert r.status_code == 403
    assert pl.list_entries(world.engine) == []
