"""Console accounts: argon2 passwords, optional TOTP, lockout, hashed session tokens.

::

    from sentinelle.review import accounts

    u = accounts.create_user(engine, "alice", "a long passphrase", "reviewer", actor="cli")
    secret, uri = accounts.start_totp(engine, "alice")     # show the URI as a QR code
    accounts.confirm_totp(engine, "alice", "123456")       # enables TOTP
    s = accounts.login(engine, "alice", "a long passphrase", totp_code="654321")
    s.token                                                 # give to the browser (cookie)
    user = accounts.authenticate(engine, s.token)           # on every request -> User
    accounts.logout(engine, s.token)

Security properties:

* Passwords are hashed with argon2id (``argon2-cffi`` defaults, rehashed when the
  defaults change). An unknown user name costs the same argon2 verification as a
  wrong password and gets the same ``invalid_credentials`` error.
* After :data:`MAX_FAILED_LOGINS` consecutive failures (password or TOTP) the
  account is locked for :data:`LOCKOUT_MINUTES`; while locked, even the right
  password is refused (``account_locked``) without being checked.
* TOTP (RFC 6238, ``pyotp``, 30 s steps, one step of clock drift accepted); a
  code is accepted once only (the last used time step is stored).
* Session tokens are 256-bit random strings shown once; only their SHA-256 is
  stored. A session expires after ``session_ttl_minutes`` or
  ``session_idle_minutes`` without use (:mod:`.config`); disabling a user or
  changing their password revokes every session.
* A password chosen by somebody else (``temporary=True``: an administrator's
  reset, a new account) sets ``must_change_password``; the console then lets the
  user do nothing but :func:`change_own_password` (or log out). A wrong current
  password there counts as a failed login, so a stolen session cannot guess it.
* Logins, failed logins, user creation, role and password changes are audited.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.exc import IntegrityError

from ._db import ConnOrEngine, audit, dumps, loads, scope
from .config import get_config
from .errors import AuthError, Conflict, NotFound, ReviewError
from .roles import check_grants, check_role, permissions_for
from .tables import aware, user_sessions, user_settings, users, utcnow

MAX_FAILED_LOGINS = 5
LOCKOUT_MINUTES = 15
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
TOTP_ISSUER = "Sentinelle"
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("sentinelle-timing-equaliser")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    grants: frozenset[str]
    totp_enabled: bool
    disabled: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime
    must_change_password: bool = False

    @property
    def actor(self) -> str:
        """The audit actor string, ``user:<username>``."""
        return f"user:{self.username}"

    @property
    def permissions(self) -> frozenset[str]:
        return frozenset() if self.disabled else permissions_for(self.role, self.grants)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "grants": sorted(self.grants),
            "totp_enabled": self.totp_enabled,
            "disabled": self.disabled,
            "locked_until": _iso(self.locked_until),
            "last_login_at": _iso(self.last_login_at),
            "created_at": _iso(self.created_at),
            "must_change_password": self.must_change_password,
        }


@dataclass(frozen=True)
class Session:
    """A successful login. ``token`` exists only here: the database keeps its hash."""

    token: str
    user: User
    expires_at: datetime


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def _user(row: Any) -> User:
    return User(
        id=int(row.id),
        username=row.username,
        display_name=row.display_name,
        role=row.role,
        grants=frozenset(loads(row.grants, [])),
        totp_enabled=bool(row.totp_enabled),
        disabled=bool(row.disabled),
        locked_until=aware(row.locked_until),
        last_login_at=aware(row.last_login_at),
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        must_change_password=bool(row.must_change_password),
    )


def normalize_username(username: Any) -> str:
    name = username.strip().lower() if isinstance(username, str) else ""
    if not _USERNAME.fullmatch(name):
        raise ReviewError(
            "user name: 2-64 characters, a-z 0-9 . _ - (starting with a letter or digit)",
            code="bad_username",
        )
    return name


def check_password(password: Any) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ReviewError(
            f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters", code="bad_password"
        )
    return password


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---------------------------------------------------------------- user admin
def create_user(
    conn_or_engine: ConnOrEngine,
    username: str,
    password: str,
    role: str,
    *,
    display_name: str = "",
    actor: str = "cli",
    temporary: bool = False,
) -> User:
    """Create an account (and its default protection settings); audited ``user.create``.

    ``temporary=True``: the password was chosen for the user (by an administrator),
    who must replace it at first login (``must_change_password``).
    """
    name = normalize_username(username)
    check_password(password)
    role = check_role(role)
    if not isinstance(display_name, str) or len(display_name) > 200:
        raise ReviewError("display name: at most 200 characters", code="bad_display_name")
    now = utcnow()
    try:
        with scope(conn_or_engine) as conn:
            uid = conn.execute(
                users.insert().returning(users.c.id),
                {
                    "username": name,
                    "display_name": display_name.strip(),
                    "password_hash": _hasher.hash(password),
                    "role": role,
                    "grants": "[]",
                    "must_change_password": bool(temporary),
                    "created_at": now,
                    "updated_at": now,
                },
            ).scalar_one()
            conn.execute(user_settings.insert().values(user_id=uid, updated_at=now))
            audit(
                conn,
                actor=actor,
                action="user.create",
                target=f"user:{name}",
                details={"role": role, "temporary": bool(temporary)},
            )
            row = conn.execute(sa.select(users).where(users.c.id == uid)).one()
    except IntegrityError:
        raise Conflict(f"user {name!r} already exists", code="user_exists") from None
    return _user(row)


def get_user(conn_or_engine: ConnOrEngine, ref: int | str) -> User:
    """A user by id (int) or user name (str); :class:`NotFound` ``unknown_user``."""
    cond = users.c.id == ref if isinstance(ref, int) else users.c.username == str(ref).lower()
    with scope(conn_or_engine, write=False) as conn:
        row = conn.execute(sa.select(users).where(cond)).first()
    if row is None:
        raise NotFound(f"no user {ref!r}", code="unknown_user")
    return _user(row)


def list_users(conn_or_engine: ConnOrEngine, *, include_disabled: bool = True) -> list[User]:
    q = sa.select(users).order_by(users.c.username)
    if not include_disabled:
        q = q.where(users.c.disabled == sa.false())
    with scope(conn_or_engine, write=False) as conn:
        return [_user(r) for r in conn.execute(q)]


def _update(
    conn_or_engine: ConnOrEngine,
    username: str,
    values: dict[str, Any],
    *,
    actor: str,
    action: str | None,
    details: dict[str, Any] | None = None,
    revoke_sessions: bool = False,
) -> User:
    name = normalize_username(username)
    now = utcnow()
    with scope(conn_or_engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.username == name)).first()
        if row is None:
            raise NotFound(f"no user {name!r}", code="unknown_user")
        conn.execute(users.update().where(users.c.id == row.id).values(updated_at=now, **values))
        if revoke_sessions:
            conn.execute(
                user_sessions.update()
                .where(user_sessions.c.user_id == row.id, user_sessions.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        if action:
            audit(conn, actor=actor, action=action, target=f"user:{name}", details=details)
        row = conn.execute(sa.select(users).where(users.c.id == row.id)).one()
    return _user(row)


def set_role(conn_or_engine: ConnOrEngine, username: str, role: str, *, actor: str) -> User:
    """Change a user's role (audited ``user.role_change``; sessions are revoked)."""
    role = check_role(role)
    old = get_user(conn_or_engine, normalize_username(username)).role
    return _update(
        conn_or_engine,
        username,
        {"role": role},
        actor=actor,
        action="user.role_change",
        details={"old": old, "new": role},
        revoke_sessions=True,
    )


def set_grants(
    conn_or_engine: ConnOrEngine, username: str, grants: list[str], *, actor: str
) -> User:
    """Replace a user's extra grants (e.g. ``["media.reveal"]``); audited."""
    g = sorted(check_grants(grants))
    return _update(
        conn_or_engine,
        username,
        {"grants": dumps(g)},
        actor=actor,
        action="user.role_change",
        details={"grants": g},
        revoke_sessions=True,
    )


def set_disabled(
    conn_or_engine: ConnOrEngine, username: str, disabled: bool, *, actor: str
) -> User:
    """Disable (revoking every session) or re-enable an account."""
    return _update(
        conn_or_engine,
        username,
        {"disabled": bool(disabled)},
        actor=actor,
        action="user.disable" if disabled else "user.enable",
        revoke_sessions=bool(disabled),
    )


def set_password(
    conn_or_engine: ConnOrEngine,
    username: str,
    password: str,
    *,
    actor: str,
    temporary: bool = False,
) -> User:
    """New password set by an administrator; clears the lockout and revokes every session.

    ``temporary=True`` makes the user replace it at their next login
    (``must_change_password``); otherwise the flag is cleared.
    """
    check_password(password)
    return _update(
        conn_or_engine,
        username,
        {
            "password_hash": _hasher.hash(password),
            "failed_logins": 0,
            "locked_until": None,
            "must_change_password": bool(temporary),
        },
        actor=actor,
        action="user.password_change",
        details={"temporary": bool(temporary)},
        revoke_sessions=True,
    )


def change_own_password(
    conn_or_engine: ConnOrEngine,
    username: str,
    current: str,
    new: str,
    *,
    keep_token: str | None = None,
    client: str | None = None,
) -> User:
    """A user replaces their own password, proving the current one.

    Clears ``must_change_password`` and revokes every session of the user except
    the one whose token is ``keep_token`` (the session making the change).
    Audited ``auth.password_change`` (never a password).

    Errors: ``bad_password`` (422, length), ``password_unchanged`` (422, the new
    password equals the current one), ``invalid_credentials`` (401, wrong current
    password: counted as a failed login, so repeated guesses lock the account),
    ``account_locked`` (403), ``unknown_user`` (404).
    """
    name = normalize_username(username)
    check_password(new)
    cur = current if isinstance(current, str) and len(current) <= MAX_PASSWORD else ""
    now = utcnow()
    failure: ReviewError | None = None
    with scope(conn_or_engine) as conn:
        # locked like login(): concurrent wrong guesses must each count
        row = conn.execute(
            sa.select(users).where(users.c.username == name).with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"no user {name!r}", code="unknown_user")
        target = f"user:{name}"
        locked_until = aware(row.locked_until)
        if locked_until is not None and locked_until > now:
            failure = AuthError(
                f"account locked until {locked_until.isoformat()}",
                code="account_locked",
                status=403,
            )
        elif not _verify(row.password_hash, cur):
            failure = AuthError("the current password is wrong")
            failed = int(row.failed_logins) + 1
            values: dict[str, Any] = {"failed_logins": failed}
            if failed >= MAX_FAILED_LOGINS:
                values.update(
                    failed_logins=0, locked_until=now + timedelta(minutes=LOCKOUT_MINUTES)
                )
            conn.execute(users.update().where(users.c.id == row.id).values(**values))
            audit(
                conn,
                actor=target,
                action="auth.password_change_failed",
                target=target,
                details={"reason": "bad_password", "client": client},
            )
        elif _verify(row.password_hash, new):
            failure = ReviewError(
                "the new password must differ from the current one",
                code="password_unchanged",
                status=422,
            )
        else:
            conn.execute(
                users.update()
                .where(users.c.id == row.id)
                .values(
                    password_hash=_hasher.hash(new),
                    must_change_password=False,
                    failed_logins=0,
                    updated_at=now,
                )
            )
            others = user_sessions.c.revoked_at.is_(None) & (user_sessions.c.user_id == row.id)
            if keep_token is not None:
                others = others & (user_sessions.c.token_hash != token_hash(keep_token))
            revoked = conn.execute(
                user_sessions.update().where(others).values(revoked_at=now)
            ).rowcount
            audit(
                conn,
                actor=target,
                action="auth.password_change",
                target=target,
                details={
                    "was_temporary": bool(row.must_change_password),
                    "sessions_revoked": int(revoked or 0),
                    "client": client,
                },
            )
    if failure is not None:
        raise failure
    return get_user(conn_or_engine, name)


def unlock(conn_or_engine: ConnOrEngine, username: str, *, actor: str) -> User:
    return _update(
        conn_or_engine,
        username,
        {"failed_logins": 0, "locked_until": None},
        actor=actor,
        action="user.unlock",
    )


# ---------------------------------------------------------------------- TOTP
def start_totp(
    conn_or_engine: ConnOrEngine, username: str, *, actor: str = "cli"
) -> tuple[str, str]:
    """New TOTP secret (not active until :func:`confirm_totp`); returns (secret, otpauth URI)."""
    secret = pyotp.random_base32()
    u = _update(
        conn_or_engine,
        username,
        {"totp_secret": secret, "totp_enabled": False},
        actor=actor,
        action=None,
    )
    uri = pyotp.TOTP(secret).provisioning_uri(name=u.username, issuer_name=TOTP_ISSUER)
    return secret, uri


def _totp_step(secret: str, code: Any, last_step: int | None, now: float) -> int | None:
    """The time step ``code`` is valid for (current +- 1), None if invalid or replayed."""
    if not isinstance(code, str) or not re.fullmatch(r"\d{6}", code.strip()):
        return None
    totp = pyotp.TOTP(secret)
    step_now = int(now // totp.interval)
    for step in (step_now, step_now - 1, step_now + 1):
        if secrets.compare_digest(totp.at(step * totp.interval), code.strip()):
            if last_step is not None and step <= last_step:
                return None
            return step
    return None


def confirm_totp(
    conn_or_engine: ConnOrEngine, username: str, code: str, *, actor: str = "cli"
) -> User:
    """Enable TOTP once the user proves their app shows the right code."""
    name = normalize_username(username)
    with scope(conn_or_engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.username == name)).first()
        if row is None:
            raise NotFound(f"no user {name!r}", code="unknown_user")
        if not row.totp_secret:
            raise ReviewError("start TOTP enrolment first", code="bad_totp_state")
        step = _totp_step(row.totp_secret, code, None, time.time())
        if step is None:
            raise AuthError("wrong TOTP code", code="invalid_totp")
        conn.execute(
            users.update()
            .where(users.c.id == row.id)
            .values(totp_enabled=True, totp_last_step=step, updated_at=utcnow())
        )
        audit(conn, actor=actor, action="user.totp_enable", target=f"user:{name}")
    return get_user(conn_or_engine, name)


def disable_totp(conn_or_engine: ConnOrEngine, username: str, *, actor: str) -> User:
    return _update(
        conn_or_engine,
        username,
        {"totp_secret": None, "totp_enabled": False, "totp_last_step": None},
        actor=actor,
        action="user.totp_disable",
    )


# --------------------------------------------------------------------- login
def login(
    conn_or_engine: ConnOrEngine,
    username: str,
    password: str,
    *,
    totp_code: str | None = None,
    client: str | None = None,
) -> Session:
    """Check credentials (and TOTP when enabled); open a session.

    Errors (:class:`AuthError` / :class:`ReviewError`): ``invalid_credentials``,
    ``totp_required``, ``invalid_totp``, ``account_locked``, ``account_disabled``.
    Every outcome is audited (``auth.login`` / ``auth.login_failed``; never the
    password or code). ``client`` (e.g. an IP address) goes into the audit details.
    """
    name = username.strip().lower() if isinstance(username, str) else ""
    pw = password if isinstance(password, str) and len(password) <= MAX_PASSWORD else ""
    now = utcnow()
    failure: AuthError | None = None
    session: Session | None = None
    with scope(conn_or_engine) as conn:
        # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises): without
        # it, concurrent wrong guesses all read the same failure count and the lockout
        # never triggers (docs/SECURITY.md, "lockout under concurrent guesses").
        row = conn.execute(
            sa.select(users).where(users.c.username == name).with_for_update()
        ).first()
        if row is None:
            _verify(_DUMMY_HASH, pw)
            failure = AuthError("wrong user name or password")
            audit(
                conn,
                actor="system",
                action="auth.login_failed",
                target=None,
                details={"reason": "unknown_user", "client": client},
            )
        else:
            failure, session = _check_login(conn, row, pw, totp_code, client, now)
    if failure is not None:
        raise failure
    assert session is not None
    return session


def _verify(hash_: str, password: str) -> bool:
    try:
        return _hasher.verify(hash_, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _check_login(
    conn: Any, row: Any, pw: str, totp_code: str | None, client: str | None, now: datetime
) -> tuple[AuthError | None, Session | None]:
    """Verify one known user's login inside ``conn``; the failure is returned, not
    raised, so the failure counter and audit row commit with the transaction."""
    target = f"user:{row.username}"
    locked_until = aware(row.locked_until)
    reason: str | None = None
    error: AuthError | None = None
    if locked_until is not None and locked_until > now:
        reason = "locked"
        error = AuthError(
            f"account locked until {locked_until.isoformat()}", code="account_locked", status=403
        )
    elif row.disabled:
        reason = "disabled"
        error = AuthError("account disabled", code="account_disabled", status=403)
    elif not _verify(row.password_hash, pw):
        reason = "bad_password"
        error = AuthError("wrong user name or password")
    elif row.totp_enabled and not totp_code:
        # right password, code missing: ask for it without counting a failure
        audit(
            conn,
            actor=target,
            action="auth.login_failed",
            target=target,
            details={"reason": "totp_required", "client": client},
        )
        return AuthError("enter the code from your authenticator app", code="totp_required"), None
    step: int | None = None
    if error is None and row.totp_enabled:
        step = _totp_step(row.totp_secret, totp_code, row.totp_last_step, time.time())
        if step is None:
            reason = "bad_totp"
            error = AuthError("wrong or already used TOTP code", code="invalid_totp")
    if error is not None:
        values: dict[str, Any] = {}
        if reason in ("bad_password", "bad_totp"):
            failed = int(row.failed_logins) + 1
            values["failed_logins"] = failed
            if failed >= MAX_FAILED_LOGINS:
                values["locked_until"] = now + timedelta(minutes=LOCKOUT_MINUTES)
                values["failed_logins"] = 0
                reason = f"{reason}+locked"
            conn.execute(users.update().where(users.c.id == row.id).values(**values))
        audit(
            conn,
            actor=target,
            action="auth.login_failed",
            target=target,
            details={"reason": reason, "client": client},
        )
        return error, None
    values = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
    if step is not None:
        values["totp_last_step"] = step
    if _hasher.check_needs_rehash(row.password_hash):
        values["password_hash"] = _hasher.hash(pw)
    conn.execute(users.update().where(users.c.id == row.id).values(**values))
    cfg = get_config(conn)
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(minutes=int(cfg["session_ttl_minutes"]))
    conn.execute(
        user_sessions.insert().values(
            user_id=row.id,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=expires,
            last_seen_at=now,
        )
    )
    audit(conn, actor=target, action="auth.login", target=target, details={"client": client})
    user = _user(conn.execute(sa.select(users).where(users.c.id == row.id)).one())
    return None, Session(token=token, user=user, expires_at=expires)


def authenticate(conn_or_engine: ConnOrEngine, token: str | None) -> User:
    """The user of a live session token, else :class:`AuthError` ``invalid_session``.

    Refreshes ``last_seen_at`` (at most once a minute, to keep reads cheap).
    """
    if not isinstance(token, str) or not 20 <= len(token) <= 200:
        raise AuthError("not logged in", code="invalid_session")
    now = utcnow()
    with scope(conn_or_engine) as conn:
        row = conn.execute(
            sa.select(user_sessions, users)
            .join(users, users.c.id == user_sessions.c.user_id)
            .where(user_sessions.c.token_hash == token_hash(token))
        ).first()
        if row is None or row.revoked_at is not None or row.disabled:
            raise AuthError("not logged in", code="invalid_session")
        cfg = get_config(conn)
        idle = timedelta(minutes=int(cfg["session_idle_minutes"]))
        last_seen = aware(row.last_seen_at)
        assert last_seen is not None
        if aware(row.expires_at) <= now or last_seen + idle <= now:  # type: ignore[operator]
            raise AuthError("session expired; log in again", code="invalid_session")
        if now - last_seen > timedelta(minutes=1):
            conn.execute(
                user_sessions.update()
                .where(user_sessions.c.token_hash == token_hash(token))
                .values(last_seen_at=now)
            )
        user_row = conn.execute(sa.select(users).where(users.c.id == row.user_id)).one()
    return _user(user_row)


def logout(conn_or_engine: ConnOrEngine, token: str) -> bool:
    """Revoke one session; True if it was live."""
    if not isinstance(token, str):
        return False
    with scope(conn_or_engine) as conn:
        res = conn.execute(
            user_sessions.update()
            .where(
                user_sessions.c.token_hash == token_hash(token),
                user_sessions.c.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )
    return bool(res.rowcount)
