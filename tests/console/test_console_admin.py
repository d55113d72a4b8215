"""The console's preservation, audit and users pages over HTTP, on SQLite and PostgreSQL.

Real app, real database and benign media stored encrypted (``tests/support/console_support.py``):
server-side role checks on every page and action, CSRF on every POST, legal holds
blocking destruction, destruction recording its proof (deletion log + audit),
retention holds extended and released, a tampered audit row shown as a broken
chain, and account management through :mod:`sentinelle.review.accounts`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from console_support import PASSWORD, build_console, console_env, login_csrf, page_csrf
from fastapi.testclient import TestClient

from sentinelle.audit import list_events, verify_chain
from sentinelle.evidence import EvidenceError, EvidenceStore, list_holds, load_master_key
from sentinelle.evidence.preservation import start_hold
from sentinelle.evidence.tables import deletion_log
from sentinelle.review import accounts
from sentinelle.review.errors import AuthError, NotFound

BASE = "http://127.0.0.1"


@pytest.fixture()
def world(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    console_env(monkeypatch)
    w = build_console(db_url, tmp_path)
    yield w
    w.engine.dispose()


def client(world) -> TestClient:
    return TestClient(world.app, base_url=BASE)


def login(c: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the session's CSRF token."""
    r = c.get("/console/login")
    r = c.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": login_csrf(r.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return page_csrf(c.get("/console/settings").text)


def code_of(html: str) -> str | None:
    m = re.search(r'data-code="([a-z_]+)"', html)
    return m.group(1) if m else None


def events(world, action: str) -> list:
    return [e for e in list_events(world.engine, limit=10_000) if e.action == action]


def store(world) -> EvidenceStore:
    return EvidenceStore(world.engine, load_master_key(os.environ))


def match_blob(world) -> int:
    blobs = store(world).list_case(world.case_id)
    assert blobs
    return blobs[0].id


# ------------------------------------------------------------------ roles
ADMIN_PAGES = ("/console/holds", "/console/audit", "/console/users")


def test_reviewer_gets_403_on_every_admin_page_and_action(world) -> None:
    with client(world) as c:
        csrf = login(c, "rita")
        nav = c.get("/console/queue").text
        assert "/console/holds" not in nav and "/console/users" not in nav
        for url in (*ADMIN_PAGES, "/console/deletions/1"):
            r = c.get(url)
            assert r.status_code == 403 and code_of(r.text) == "forbidden", url
        posts = {
            "/console/holds/legal": {"case_id": str(world.case_id), "reason": "mine"},
            f"/console/evidence/{world.case_id}/destroy": {
                "reason": "mine",
                "confirm": str(world.case_id),
                "force": "on",
            },
            "/console/audit/verify": {},
            "/console/users": {"username": "evil", "role": "admin"},
            "/console/users/rita/role": {"role": "admin"},
            "/console/users/adam/disable": {},
            "/console/users/adam/password": {},
        }
        for url, data in posts.items():
            r = c.post(url, data={"csrf_token": csrf, **data})
            assert r.status_code == 403 and code_of(r.text) == "forbidden", url
    # nothing happened
    assert list_holds(world.engine) == []
    assert store(world).get(match_blob(world), actor="system")[0]
    assert accounts.get_user(world.engine, "rita").role == "reviewer"
    with pytest.raises(NotFound):
        accounts.get_user(world.engine, "evil")
    assert not accounts.get_user(world.engine, "adam").disabled


def test_each_role_gets_only_its_part(world) -> None:
    with client(world) as c:  # legal: holds and audit, no users, no destruction
        csrf = login(c, "lena")
        nav = c.get("/console/holds").text
        assert 'href="/console/holds"' in nav and 'href="/console/audit"' in nav
        assert 'href="/console/users"' not in nav
        assert "Place a legal hold" in nav and "Destroy on request" not in nav
        assert c.get("/console/audit").status_code == 200
        assert c.get("/console/users").status_code == 403
        r = c.post(
            f"/console/evidence/{world.case_id}/destroy",
            data={"csrf_token": csrf, "reason": "x", "confirm": str(world.case_id)},
        )
        assert r.status_code == 403 and code_of(r.text) == "forbidden"
    with client(world) as c:  # admin: destruction and users, but no hold changes
        csrf = login(c, "adam")
        page = c.get("/console/holds").text
        assert "Destroy on request" in page and "Place a legal hold" not in page
        r = c.post(
            "/console/holds/legal",
            data={"csrf_token": csrf, "case_id": str(world.case_id), "reason": "x"},
        )
        assert r.status_code == 403 and code_of(r.text) == "forbidden"
        assert c.get("/console/users").status_code == 200
    assert list_holds(world.engine) == []


# ------------------------------------------------------------------ CSRF
def test_every_admin_post_needs_the_csrf_token(world) -> None:
    posts = {
        "lena": [
            ("/console/holds/legal", {"case_id": str(world.case_id), "reason": "r"}),
            ("/console/holds/1/release", {"reason": "r"}),
            ("/console/holds/1/extend", {"days": "5", "reason": "r"}),
            ("/console/audit/verify", {}),
        ],
        "adam": [
            (
                f"/console/evidence/{world.case_id}/destroy",
                {"reason": "r", "confirm": str(world.case_id)},
            ),
            ("/console/users", {"username": "nina", "role": "reviewer"}),
            ("/console/users/rita/role", {"role": "admin"}),
            ("/console/users/rita/disable", {}),
            ("/console/users/rita/password", {}),
        ],
    }
    for who, calls in posts.items():
        with client(world) as c:
            csrf = login(c, who)
            for url, data in calls:
                assert c.post(url, data=data).status_code == 403, url
                r = c.post(url, data={**data, "csrf_token": "0" * 64})
                assert r.status_code == 403, url
                assert r.json()["error"]["code"] == "csrf_failed"
                r = c.post(
                    url,
                    data={**data, "csrf_token": csrf},
                    headers={"Origin": "https://evil.example"},
                )
                assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    assert list_holds(world.engine) == []
    assert store(world).get(match_blob(world), actor="system")[0]
    rita = accounts.get_user(world.engine, "rita")
    assert rita.role == "reviewer" and not rita.disabled
    assert [u.username for u in accounts.list_users(world.engine)].count("nina") == 0
    accounts.login(world.engine, "rita", PASSWORD)  # password untouched


# ------------------------------------------------------------------ preservation
def test_legal_hold_blocks_destruction_until_forced_with_a_proof(world) -> None:
    cid = str(world.case_id)
    with client(world) as legal:
        csrf = login(legal, "lena")
        r = legal.post(
            "/console/holds/legal",
            data={"csrf_token": csrf, "case_id": cid, "reason": "preservation request LE-2291"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/console/holds?flash=legal"
        page = legal.get(r.headers["location"]).text
        assert "Legal hold placed." in page and "preservation request LE-2291" in page
        assert f'id="case-{cid}" data-state="held"' in page and "acct-42" in page
    [hold] = list_holds(world.engine)
    assert hold.kind == "legal" and hold.created_by == "user:lena" and hold.expires_at is None
    assert events(world, "hold.legal")[0].actor == "user:lena"

    with client(world) as admin:
        csrf = login(admin, "adam")
        url = f"/console/evidence/{cid}/destroy"
        # refused under the hold: 409, evidence intact, the page explains
        r = admin.post(url, data={"csrf_token": csrf, "reason": "user request", "confirm": cid})
        assert r.status_code == 409 and code_of(r.text) == "under_hold"
        assert f"legal hold {hold.id}" in r.text
        assert store(world).get(match_blob(world), actor="system")[0]
        # a reason and the typed case number are required, even when forcing
        r = admin.post(url, data={"csrf_token": csrf, "reason": " ", "confirm": cid, "force": "on"})
        assert r.status_code == 422 and code_of(r.text) == "bad_hold"
        wrong = str(world.case_id + 1)
        r = admin.post(
            url, data={"csrf_token": csrf, "reason": "x", "confirm": wrong, "force": "on"}
        )
        assert r.status_code == 422 and code_of(r.text) == "bad_confirmation"
        assert events(world, "evidence.destroy") == []
        # forced, with a reason: destroyed, proof recorded and shown
        r = admin.post(
            url,
            data={"csrf_token": csrf, "reason": "court order 7", "confirm": cid, "force": "on"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/console/deletions/")
        proof_page = admin.get(r.headers["location"])
        assert proof_page.status_code == 200
        holds_page = admin.get("/console/holds").text
    with world.engine.connect() as conn:
        row = conn.execute(sa.select(deletion_log)).one()
    assert row.kind == "forced" and row.actor == "user:adam" and row.reason == "court order 7"
    assert f'<code id="proof-sha256">{row.proof_sha256}</code>' in proof_page.text
    assert "Evidence destroyed. The proof below is recorded." in proof_page.text
    assert "ciphertext_sha256" in proof_page.text and "forced past hold" in proof_page.text
    [audit] = events(world, "evidence.destroy")
    assert audit.actor == "user:adam" and audit.target == f"case:{cid}"
    assert audit.details["proof_sha256"] == row.proof_sha256
    assert audit.details["holds_overridden"] == [hold.id]
    assert f'id="case-{cid}" data-state="destroyed"' in holds_page
    assert row.proof_sha256[:16] in holds_page  # the deletion log lists it
    [released] = list_holds(world.engine)
    assert released.released_by == "user:adam" and not released.active()
    with pytest.raises(EvidenceError) as ei:
        store(world).get(match_blob(world), actor="system")
    assert ei.value.code == "evidence_destroyed"
    assert verify_chain(world.engine).ok


def test_retention_hold_extend_release_then_destroy_on_request(world) -> None:
    hid = start_hold(world.engine, case_id=world.case_id, report_id=1, jurisdiction="CA")
    [before] = list_holds(world.engine)
    cid = str(world.case_id)
    with client(world) as c:
        csrf = login(c, "lena")
        page = c.get("/console/holds").text
        assert "CA" in page and before.expires_at.strftime("%Y-%m-%d") in page
        assert (before.expires_at - before.started_at).days == 21
        # hostile / wrong input: clear codes, nothing changed
        for days, code in (("0", "bad_days"), ("abc", "bad_days"), ("99999999", "bad_days")):
            r = c.post(
                f"/console/holds/{hid}/extend",
                data={"csrf_token": csrf, "days": days, "reason": "LE request"},
            )
            assert r.status_code == 422 and code_of(r.text) == code
        r = c.post(f"/console/holds/{hid}/extend", data={"csrf_token": csrf, "days": "30"})
        assert r.status_code == 422 and code_of(r.text) == "bad_hold"  # reason required
        r = c.post(
            f"/console/holds/{hid}/extend",
            data={"csrf_token": csrf, "days": "30", "reason": "LE request 55"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and "flash=extended" in r.headers["location"]
        [after] = list_holds(world.engine)
        assert (after.expires_at - before.expires_at).days == 30
        assert after.expires_at.strftime("%Y-%m-%d") in c.get("/console/holds").text
        # release: reason required; then the case is due for deletion
        r = c.post(f"/console/holds/{hid}/release", data={"csrf_token": csrf, "reason": ""})
        assert r.status_code == 422 and code_of(r.text) == "bad_hold"
        r = c.post(
            f"/console/holds/{hid}/release",
            data={"csrf_token": csrf, "reason": "investigation closed"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        page = c.get("/console/holds").text
        assert "investigation closed" in page and f'id="case-{cid}" data-state="due"' in page
        r = c.post(f"/console/holds/{hid}/release", data={"csrf_token": csrf, "reason": "again"})
        assert r.status_code == 422 and code_of(r.text) == "bad_hold"  # already released
    assert [e.details["hold_id"] for e in events(world, "hold.extend")] == [hid]
    assert events(world, "hold.release")[0].actor == "user:lena"
    with client(world) as c:  # no active hold: destruction on request needs no force
        csrf = login(c, "adam")
        r = c.post(
            f"/console/evidence/{cid}/destroy",
            data={"csrf_token": csrf, "reason": "user asked", "confirm": cid},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert "request" in c.get(r.headers["location"]).text
        # again: already destroyed, a clear 410
        r = c.post(
            f"/console/evidence/{cid}/destroy",
            data={"csrf_token": csrf, "reason": "again", "confirm": cid},
        )
        assert r.status_code == 410 and code_of(r.text) == "evidence_destroyed"
    assert events(world, "evidence.destroy")[0].details["kind"] == "request"


def test_preservation_pages_refuse_bad_input_clearly(world) -> None:
    with client(world) as c:
        csrf = login(c, "lena")
        cases = [
            ({"case_id": "abc", "reason": "r"}, 422, "bad_case_id"),
            ({"case_id": "-4", "reason": "r"}, 422, "bad_case_id"),
            ({"case_id": "999999", "reason": "r"}, 404, "unknown_case"),
            ({"case_id": str(world.case_id), "reason": ""}, 422, "bad_hold"),
        ]
        for data, status, code in cases:
            r = c.post("/console/holds/legal", data={"csrf_token": csrf, **data})
            assert (r.status_code, code_of(r.text)) == (status, code), data
        r = c.post("/console/holds/424242/release", data={"csrf_token": csrf, "reason": "r"})
        assert r.status_code == 404 and code_of(r.text) == "unknown_hold"
        r = c.post(
            "/console/holds/legal",
            data={"csrf_token": csrf, "case_id": "1", "reason": "x" * 5000},
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
        r = c.get("/console/deletions/999")
        assert r.status_code == 404 and code_of(r.text) == "unknown_deletion"
        assert c.get("/console/holds?case=0").status_code == 422
        page = c.get(f"/console/holds?case={world.case_id}").text
        assert f"Showing case #{world.case_id}" in page
    with client(world) as c:
        csrf = login(c, "adam")
        r = c.post(
            "/console/evidence/999/destroy",
            data={"csrf_token": csrf, "reason": "r", "confirm": "999"},
        )
        assert r.status_code == 404 and code_of(r.text) == "no_evidence"
    assert list_holds(world.engine) == []


# ------------------------------------------------------------------ audit
def _tamper(engine, stmt: str) -> None:
    """What an attacker with schema rights would do: triggers off, then edit."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            for name in ("audit_log_no_update", "audit_log_no_delete"):
                conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}"))
        conn.execute(sa.text(stmt))


def test_audit_page_lists_entries_and_shows_a_broken_chain(world) -> None:
    with client(world) as c:
        csrf = login(c, "lena")
        c.post(
            "/console/holds/legal",
            data={"csrf_token": csrf, "case_id": str(world.case_id), "reason": "secret-ref-8812"},
        )
    with client(world) as c:
        csrf = login(c, "adam")
        r = c.get("/console/audit")
        assert r.status_code == 200
        page = r.text
        assert "user:lena" in page and "hold.legal" in page and f"case:{world.case_id}" in page
        assert "auth.login" in page and "audit.view" in page
        assert "secret-ref-8812" not in page  # details are never shown
        filtered = c.get("/console/audit", params={"action": "hold"}).text
        assert "hold.legal" in filtered and "auth.login" not in filtered
        assert "user:lena" not in c.get("/console/audit", params={"actor": "user:sam"}).text
        assert c.get("/console/audit?before=0").status_code == 422
        # intact chain
        r = c.post("/console/audit/verify", data={"csrf_token": csrf})
        assert r.status_code == 200 and 'data-ok="true"' in r.text and "Chain intact" in r.text
        # someone rewrites an entry behind the application's back
        _tamper(world.engine, "UPDATE audit_log SET actor = 'user:mallory' WHERE id = 2")
        r = c.post("/console/audit/verify", data={"csrf_token": csrf})
        assert r.status_code == 200 and "Chain broken" in r.text and 'data-ok="false"' in r.text
        assert "entry 2: content does not match its hash (changed)" in r.text
        # the htmx button gets just the result fragment
        r = c.post("/console/audit/verify", headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
        assert r.status_code == 200 and r.text.lstrip().startswith('<div id="verify-result"')
        assert "Chain broken" in r.text and "<html" not in r.text
    checks = events(world, "audit.verify")
    assert [e.details["ok"] for e in reversed(checks)] == [True, False, False]
    assert all(e.actor == "user:adam" for e in checks)


# ------------------------------------------------------------------ users
def test_admin_creates_changes_disables_and_resets_users(world) -> None:
    with client(world) as c:
        csrf = login(c, "adam")
        r = c.post(
            "/console/users",
            data={
                "csrf_token": csrf,
                "username": "Nina",
                "display_name": "Nina N",
                "role": "legal",
            },
        )
        assert r.status_code == 200 and "User created." in r.text
        temp = re.search(r"<code data-password>([^<]+)</code>", r.text).group(1)
        assert len(temp) >= 20 and r.headers["cache-control"] == "no-store"
        assert 'id="user-nina" data-role="legal"' in r.text
        assert temp not in c.get("/console/users").text  # shown once only
        own = "nina's own passphrase"
        with client(world) as nina:  # the temporary password only lets her choose her own
            login(nina, "nina", temp)
            r = nina.get("/console/holds", follow_redirects=False)
            assert r.headers["location"] == "/console/password"
            r = nina.post(
                "/console/password",
                data={
                    "csrf_token": page_csrf(nina.get("/console/password").text),
                    "current_password": temp,
                    "new_password": own,
                    "new_password_again": own,
                },
                follow_redirects=False,
            )
            assert r.status_code == 303
            assert nina.get("/console/holds").status_code == 200
            # role change: her session ends at once
            r = c.post(
                "/console/users/nina/role",
                data={"csrf_token": csrf, "role": "reviewer"},
                follow_redirects=False,
            )
            assert r.status_code == 303 and "flash=role" in r.headers["location"]
            assert nina.get("/console/holds", follow_redirects=False).status_code == 303
            login(nina, "nina", own)
            assert nina.get("/console/holds").status_code == 403
        assert accounts.get_user(world.engine, "nina").role == "reviewer"
        # disable, then enable
        r = c.post("/console/users/nina/disable", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
        with pytest.raises(AuthError) as ei:
            accounts.login(world.engine, "nina", own)
        assert ei.value.code == "account_disabled"
        assert (
            'id="user-nina" data-role="reviewer" data-disabled="true"'
            in c.get("/console/users").text
        )
        c.post("/console/users/nina/enable", data={"csrf_token": csrf})
        accounts.login(world.engine, "nina", own)
        # new temporary password: the old one stops working
        r = c.post("/console/users/nina/password", data={"csrf_token": csrf})
        assert r.status_code == 200
        new = re.search(r"<code data-password>([^<]+)</code>", r.text).group(1)
        assert new != temp
        assert accounts.login(world.engine, "nina", new).user.must_change_password
        with pytest.raises(AuthError):
            accounts.login(world.engine, "nina", own)
    nina_events = list_events(world.engine, limit=10_000, target="user:nina")
    actions = [e.action for e in nina_events]
    for a in (
        "user.create",
        "user.role_change",
        "user.disable",
        "user.enable",
        "user.password_change",
    ):
        assert a in actions, a
    assert all(e.actor == "user:adam" for e in nina_events if e.action.startswith("user."))
    with world.engine.connect() as conn:  # no password anywhere in the audit trail
        dump = " ".join(str(tuple(r)) for r in conn.execute(sa.text("SELECT * FROM audit_log")))
    assert temp not in dump and new not in dump and own not in dump


def test_user_admin_refuses_bad_input_and_self_lockout(world) -> None:
    with client(world) as c:
        csrf = login(c, "adam")
        bad = [
            ({"username": "rita", "role": "reviewer"}, 409, "user_exists"),
            ({"username": "x", "role": "reviewer"}, 422, "bad_username"),
            ({"username": "<script>", "role": "reviewer"}, 422, "bad_username"),
            ({"username": "okname", "role": "superuser"}, 422, "bad_role"),
        ]
        for data, status, code in bad:
            r = c.post("/console/users", data={"csrf_token": csrf, **data})
            assert (r.status_code, code_of(r.text)) == (status, code), data
            assert "data-password" not in r.text
            if data["username"] == "<script>":  # echoed back escaped, never as markup
                assert 'value="&lt;script&gt;"' in r.text
        for url in ("/console/users/adam/disable", "/console/users/adam/password"):
            r = c.post(url, data={"csrf_token": csrf})
            assert r.status_code == 409 and code_of(r.text) == "self_change", url
        r = c.post("/console/users/adam/role", data={"csrf_token": csrf, "role": "reviewer"})
        assert r.status_code == 409 and code_of(r.text) == "self_change"
        r = c.post("/console/users/ghost/role", data={"csrf_token": csrf, "role": "legal"})
        assert r.status_code == 404 and code_of(r.text) == "unknown_user"
        r = c.post("/console/users/rita/role", data={"csrf_token": csrf, "role": "root"})
        assert r.status_code == 422 and code_of(r.text) == "bad_role"
    adam = accounts.get_user(world.engine, "adam")
    assert adam.role == "admin" and not adam.disabled
    assert accounts.get_user(world.engine, "rita").role == "reviewer"
