"""Review-console accounts: passwords, lockout, TOTP, sessions, roles, CLI (issue 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from sentinelle.review import accounts
from sentinelle.review.accounts import MAX_FAILED_LOGINS
from sentinelle.review.errors import AuthError, ReviewError
from sentinelle.review.roles import MATRIX, PERMISSIONS, has_permission, require
from sentinelle.review.tables import user_sessions, users, utcnow
from sentinelle.store.db import open_engine

PW = "correct horse battery"


def _audit_actions(engine) -> list[str]:
    from sentinelle.audit import list_events

    return [ev.action for ev in reversed(list_events(engine, limit=1000))]


def test_create_login_authenticate_logout(engine) -> None:
    u = accounts.create_user(engine, " Alice ", PW, "reviewer", display_name="Alice A.")
    assert (u.username, u.role, u.totp_enabled, u.disabled) == ("alice", "reviewer", False, False)
    row = sa.select(users.c.password_hash).where(users.c.id == u.id)
    with engine.connect() as c:
        stored = c.execute(row).scalar_one()
    assert stored.startswith("$argon2id$") and PW not in stored

    s = accounts.login(engine, "ALICE", PW, client="203.0.113.9")
    assert len(s.token) >= 40 and s.expires_at > utcnow()
    with engine.connect() as c:
        hashes = c.execute(sa.select(user_sessions.c.token_hash)).scalars().all()
    assert hashes == [accounts.token_hash(s.token)]  # only the hash is stored
    assert accounts.authenticate(engine, s.token).id == u.id
    assert accounts.get_user(engine, u.id).last_login_at is not None

    assert accounts.logout(engine, s.token) is True
    with pytest.raises(AuthError) as ei:
        accounts.authenticate(engine, s.token)
    assert ei.value.code == "invalid_session" and ei.value.status == 401
    for bad in (None, "", "x" * 1000, "not-a-token-but-long-enough-to-look"):
        with pytest.raises(AuthError):
            accounts.authenticate(engine, bad)  # type: ignore[arg-type]


def test_input_validation_and_duplicates(engine) -> None:
    accounts.create_user(engine, "bob", PW, "legal")
    cases = [
        (("bob", PW, "legal"), "user_exists"),
        (("x", PW, "reviewer"), "bad_username"),
        (("bad name", PW, "reviewer"), "bad_username"),
        (("carol", "short", "reviewer"), "bad_password"),
        (("carol", PW, "superuser"), "bad_role"),
    ]
    for args, code in cases:
        with pytest.raises(ReviewError) as ei:
            accounts.create_user(engine, *args)
        assert ei.value.code == code
    with pytest.raises(ReviewError) as ei:
        accounts.get_user(engine, "nobody")
    assert ei.value.code == "unknown_user" and ei.value.status == 404


def test_wrong_password_unknown_user_and_lockout(engine) -> None:
    accounts.create_user(engine, "dana", PW, "reviewer")
    with pytest.raises(AuthError) as unknown:
        accounts.login(engine, "ghost", PW)
    with pytest.raises(AuthError) as wrong:
        accounts.login(engine, "dana", "wrong password!!")
    # same answer whether or not the user exists
    assert unknown.value.code == wrong.value.code == "invalid_credentials"
    assert unknown.value.message == wrong.value.message
    for _ in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(AuthError):
            accounts.login(engine, "dana", "wrong password!!")
    # now locked: even the right password is refused
    with pytest.raises(AuthError) as ei:
        accounts.login(engine, "dana", PW)
    assert ei.value.code == "account_locked" and ei.value.status == 403
    assert accounts.get_user(engine, "dana").locked_until is not None
    # the lock expires
    with engine.begin() as c:
        c.execute(users.update().values(locked_until=utcnow() - timedelta(seconds=1)))
    assert accounts.login(engine, "dana", PW).user.username == "dana"
    actions = _audit_actions(engine)
    assert actions.count("auth.login_failed") == MAX_FAILED_LOGINS + 2
    assert actions[-1] == "auth.login" and "user.create" in actions


def test_hostile_login_input(engine) -> None:
    accounts.create_user(engine, "erin", PW, "reviewer")
    for name, pw in [(None, PW), ("erin", None), ("erin", "x" * 100_000), ("é" * 500, PW)]:
        with pytest.raises(AuthError) as ei:
            accounts.login(engine, name, pw)  # type: ignore[arg-type]
        assert ei.value.code == "invalid_credentials"


def test_totp_enrolment_login_and_replay(engine) -> None:
    accounts.create_user(engine, "fay", PW, "specialist")
    secret, uri = accounts.start_totp(engine, "fay")
    assert uri.startswith("otpauth://totp/") and "Sentinelle" in uri
    with pytest.raises(AuthError) as ei:
        accounts.confirm_totp(
            engine, "fay", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
        )
    assert ei.value.code == "invalid_totp"
    totp = pyotp.TOTP(secret)
    # enrolment consumes its time step: the next login needs a later code (the
    # next step is accepted as clock drift)
    step = int(utcnow().timestamp() // 30)
    accounts.confirm_totp(engine, "fay", totp.at(step * 30))
    assert accounts.get_user(engine, "fay").totp_enabled

    with pytest.raises(AuthError) as ei:
        accounts.login(engine, "fay", PW)
    assert ei.value.code == "totp_required"
    with pytest.raises(AuthError) as ei:
        accounts.login(engine, "fay", PW, totp_code="12ab56")
    assert ei.value.code == "invalid_totp"
    code = totp.at((step + 1) * 30)
    assert accounts.login(engine, "fay", PW, totp_code=code).user.username == "fay"
    with pytest.raises(AuthError) as ei:  # a code works once
        accounts.login(engine, "fay", PW, totp_code=code)
    assert ei.value.code == "invalid_totp"
    # wrong password with a right code is still a wrong password
    with pytest.raises(AuthError) as ei:
        accounts.login(engine, "fay", "wrong password!!", totp_code=totp.at((step + 2) * 30))
    assert ei.value.code == "invalid_credentials"
    accounts.disable_totp(engine, "fay", actor="cli")
    assert accounts.login(engine, "fay", PW).user.totp_enabled is False


def test_session_expiry_and_revocation(engine) -> None:
    accounts.create_user(engine, "gus", PW, "reviewer")
    s1 = accounts.login(engine, "gus", PW)
    s2 = accounts.login(engine, "gus", PW)
    with engine.begin() as c:  # s1 idle for two hours
        c.execute(
            user_sessions.update()
            .where(user_sessions.c.token_hash == accounts.token_hash(s1.token))
            .values(last_seen_at=utcnow() - timedelta(hours=2))
        )
    with pytest.raises(AuthError):
        accounts.authenticate(engine, s1.token)
    assert accounts.authenticate(engine, s2.token).username == "gus"
    accounts.set_password(engine, "gus", "another long passphrase", actor="cli")
    with pytest.raises(AuthError):  # password change ends every session
        accounts.authenticate(engine, s2.token)
    s3 = accounts.login(engine, "gus", "another long passphrase")
    accounts.set_disabled(engine, "gus", True, actor="cli")
    with pytest.raises(AuthError):
        accounts.authenticate(engine, s3.token)
    with pytest.raises(AuthError) as ei:
        accounts.login(engine, "gus", "another long passphrase")
    assert ei.value.code == "account_disabled"
    accounts.set_disabled(engine, "gus", False, actor="cli")
    assert accounts.login(engine, "gus", "another long passphrase").user.username == "gus"


def test_role_change_grants_and_permission_matrix(engine) -> None:
    u = accounts.create_user(engine, "hal", PW, "legal")
    assert not u.can("media.reveal") and u.can("report.submit") and not u.can("decision.create")
    u = accounts.set_grants(engine, "hal", ["media.reveal"], actor="cli")
    assert u.can("media.reveal") and u.grants == {"media.reveal"}
    with pytest.raises(ReviewError) as ei:
        accounts.set_grants(engine, "hal", ["user.manage"], actor="cli")
    assert ei.value.code == "bad_grant"
    u = accounts.set_role(engine, "hal", "admin", actor="cli")
    assert u.role == "admin" and u.can("user.manage") and not u.can("case.view")
    assert u.can("media.reveal")  # the grant survives the role change
    actions = _audit_actions(engine)
    assert actions.count("user.role_change") == 2


def test_least_privilege_matrix() -> None:
    for role, perms in MATRIX.items():
        assert perms <= set(PERMISSIONS), role

    class U:
        def __init__(self, role: str, grants=(), disabled=False) -> None:
            self.role, self.grants, self.disabled = role, frozenset(grants), disabled

    reviewer, spec, legal, admin = U("reviewer"), U("specialist"), U("legal"), U("admin")
    assert has_permission(reviewer, "media.reveal") and has_permission(reviewer, "decision.create")
    assert not has_permission(reviewer, "decision.approve")
    assert not has_permission(reviewer, "report.submit")
    assert has_permission(spec, "decision.approve") and has_permission(
        spec, "decision.recategorize"
    )
    assert not has_permission(spec, "user.manage")
    assert has_permission(legal, "report.submit") and has_permission(legal, "decision.view")
    assert not has_permission(legal, "media.reveal")
    assert has_permission(U("legal", ["media.reveal"]), "media.reveal")
    assert not any(has_permission(admin, p) for p in ("case.view", "media.reveal", "queue.view"))
    assert has_permission(admin, "user.manage") and has_permission(admin, "config.change")
    assert not has_permission(U("specialist", disabled=True), "case.view")
    with pytest.raises(ReviewError) as ei:
        require(legal, "decision.create")
    assert ei.value.code == "forbidden" and ei.value.status == 403


def test_audit_chain_verifies_after_account_activity(engine) -> None:
    from sentinelle.audit import verify_chain

    accounts.create_user(engine, "ivy", PW, "reviewer")
    accounts.login(engine, "ivy", PW)
    with pytest.raises(AuthError):
        accounts.login(engine, "ivy", "nope nope nope")
    res = verify_chain(engine)
    assert res.ok and res.checked >= 3, res.problems


# ------------------------------------------------------------------------ CLI
def test_user_cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentinelle.cli.main import app

    monkeypatch.setenv("SENTINELLE_DATABASE_URL", sqlite_url)
    r = CliRunner()
    res = r.invoke(
        app, ["user", "create", "jo", "--role", "specialist", "--password-stdin"], input=PW + "\n"
    )
    assert res.exit_code == 0, res.output
    res = r.invoke(app, ["user", "create", "jo", "--password-stdin"], input=PW + "\n")
    assert res.exit_code == 1 and "user_exists" in res.output
    res = r.invoke(
        app, ["user", "create", "kim", "--role", "god", "--password-stdin"], input=PW + "\n"
    )
    assert res.exit_code == 1 and "bad_role" in res.output
    res = r.invoke(app, ["user", "role", "jo", "legal", "--grant", "media.reveal"])
    assert res.exit_code == 0, res.output
    res = r.invoke(app, ["user", "passwd", "jo", "--password-stdin"], input="new long password\n")
    assert res.exit_code == 0, res.output
    res = r.invoke(app, ["user", "disable", "jo"])
    assert res.exit_code == 0, res.output
    res = r.invoke(app, ["user", "list", "--json"])
    assert res.exit_code == 0, res.output
    import json

    (rec,) = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert (rec["username"], rec["role"], rec["grants"], rec["disabled"]) == (
        "jo",
        "legal",
        ["media.reveal"],
        True,
    )
    res = r.invoke(app, ["user", "passwd", "nobody", "--password-stdin"], input=PW + "\n")
    assert res.exit_code == 1 and "unknown_user" in res.output
    e = open_engine(sqlite_url)
    with pytest.raises(AuthError):  # disabled
        accounts.login(e, "jo", "new long password")
    e.dispose()


def test_user_cli_totp_enable(sqlite_url: str) -> None:
    """Drive `sentinelle user totp-enable` like a person: read the URI, type the code."""
    env = {**os.environ, "SENTINELLE_DATABASE_URL": sqlite_url}
    e = open_engine(sqlite_url)
    accounts.create_user(e, "lee", PW, "reviewer")
    cmd = [sys.executable, "-m", "sentinelle.cli.main", "user", "totp-enable", "lee"]
    p = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert p.stdout is not None and p.stdin is not None
    uri = p.stdout.readline().strip()
    assert uri.startswith("otpauth://totp/")
    code = pyotp.parse_uri(uri).now()
    out, err = p.communicate(code + "\n", timeout=60)
    assert p.returncode == 0, err
    assert accounts.get_user(e, "lee").totp_enabled
    e.dispose()
