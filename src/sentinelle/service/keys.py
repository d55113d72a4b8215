"""API keys: created and shown once, stored only as a hash, revocable, rotatable.

A key looks like ``snt_<id>_<secret>``: ``id`` is the row id (public, appears in
logs and ``key list``), ``secret`` 32 random bytes in URL-safe base64 (256 bits).
Only ``sha256(secret)`` is stored. A slow password hash (bcrypt, scrypt) is not
needed: it protects *guessable* secrets, and a 256-bit random secret cannot be
guessed, so a fast hash keeps verification cheap on every request. Hashes are
compared with :func:`hmac.compare_digest` (constant time).

Scopes: ``scan`` (hash/match/scan), ``curate`` (bank changes), ``metrics``
(``/metrics`` only), ``admin`` (everything; implies all the others).

Rotation creates a new key (new id and secret, same name, scopes and rate) and
revokes the old one in the same transaction.

:class:`KeyVerifier` caches a verified key for ``Settings.key_cache_s`` seconds
(default 2 s) so a request costs no database round-trip; a revocation therefore
reaches every instance within that time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from ..audit.chain import write_transaction
from ..errors import SentinelleError
from ..store.models import UTCDateTime, utcnow

KEY_PREFIX = "snt_"
SCOPES = ("scan", "curate", "metrics", "admin")
MAX_NAME = 200
_TOKEN_RE = re.compile(r"^snt_([0-9]{1,18})_([A-Za-z0-9_-]{43})$")

metadata = MetaData()
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("name", Text, nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", String(200), nullable=False),
    Column("rate_limit", Float, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("replaced_by", BigInteger, nullable=True),
    sqlite_autoincrement=True,
)


class KeyError_(SentinelleError):  # noqa: N801 - avoid shadowing the builtin KeyError
    """A key operation failed (unknown id, bad scope, bad name)."""

    code = "key_error"


@dataclass(frozen=True)
class ApiKeyRecord:
    """A stored key, without its secret."""

    id: int
    name: str
    scopes: frozenset[str]
    rate_limit: float | None
    created_at: datetime
    revoked_at: datetime | None
    replaced_by: int | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "rate_limit": self.rate_limit,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "replaced_by": self.replaced_by,
        }


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def parse_token(token: str) -> tuple[int, str] | None:
    """``snt_<id>_<secret>`` -> ``(id, secret)``; None if it is not shaped like a key."""
    m = _TOKEN_RE.match(token or "")
    if m is None:
        return None
    return int(m.group(1)), m.group(2)


def _new_secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    out = frozenset(s.strip().lower() for s in scopes if s and s.strip())
    bad = sorted(out - set(SCOPES))
    if bad:
        raise KeyError_(f"unknown scope(s) {', '.join(bad)}; choose from {', '.join(SCOPES)}")
    if not out:
        raise KeyError_("a key needs at least one scope")
    return out


def _check_rate(rate: float | None) -> float | None:
    if rate is None:
        return None
    if not (rate >= 0) or rate == float("inf"):
        raise KeyError_("rate must be a finite number >= 0 (0 = unlimited)")
    return float(rate)


def _record(r) -> ApiKeyRecord:  # type: ignore[no-untyped-def]
    return ApiKeyRecord(
        id=int(r.id),
        name=r.name,
        scopes=frozenset(r.scopes.split()),
        rate_limit=r.rate_limit,
        created_at=r.created_at,
        revoked_at=r.revoked_at,
        replaced_by=r.replaced_by,
    )


def _insert_key(conn, name: str, scopes: frozenset[str], rate: float | None):  # type: ignore[no-untyped-def]
    secret = _new_secret()
    kid = conn.execute(
        insert(api_keys).returning(api_keys.c.id),
        {
            "name": name,
            "secret_hash": hash_secret(secret),
            "scopes": " ".join(sorted(scopes)),
            "rate_limit": rate,
            "created_at": utcnow(),
        },
    ).scalar_one()
    return int(kid), f"{KEY_PREFIX}{kid}_{secret}"


def create_key(
    engine: Engine,
    name: str,
    scopes: Iterable[str],
    rate_limit: float | None = None,
    *,
    actor: str = "system",
) -> tuple[ApiKeyRecord, str]:
    """Create a key; returns its record and the full token (shown once, never stored).

    The creation is written to the audit trail (``key.create``) by ``actor``.
    """
    name = (name or "").strip()
    if not 1 <= len(name) <= MAX_NAME or any(ord(c) < 32 for c in name):
        raise KeyError_(f"key name must be 1-{MAX_NAME} printable characters")
    sc = check_scopes(scopes)
    rate = _check_rate(rate_limit)
    with write_transaction(engine) as conn:
        kid, token = _insert_key(conn, name, sc, rate)
        _audit(conn, actor, "key.create", kid, {"name": name, "scopes": sorted(sc)})
    rec = get_key(engine, kid)
    assert rec is not None
    return rec, token


def _audit(conn, actor: str, action: str, key_id: int, details: dict) -> None:  # type: ignore[no-untyped-def]
    """Record a key change in the audit trail, inside the change's transaction."""
    from ..audit import record_event

    record_event(conn, actor=actor, action=action, target=f"key:{key_id}", details=details)


def get_key(engine: Engine, key_id: int) -> ApiKeyRecord | None:
    with engine.connect() as conn:
        r = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
    return None if r is None else _record(r)


def list_keys(engine: Engine, include_revoked: bool = True) -> list[ApiKeyRecord]:
    q = select(api_keys).order_by(api_keys.c.id)
    if not include_revoked:
        q = q.where(api_keys.c.revoked_at.is_(None))
    with engine.connect() as conn:
        return [_record(r) for r in conn.execute(q)]


def revoke_key(engine: Engine, key_id: int, *, actor: str = "system") -> ApiKeyRecord:
    """Revoke a key (idempotent). Raises :class:`KeyError_` for an unknown id.

    An actual revocation is written to the audit trail (``key.revoke``)."""
    with write_transaction(engine) as conn:
        n = conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        ).rowcount
        if (
            not n
            and conn.execute(select(api_keys.c.id).where(api_keys.c.id == key_id)).first() is None
        ):
            raise KeyError_(f"no key with id {key_id}")
        if n:
            _audit(conn, actor, "key.revoke", key_id, {})
    rec = get_key(engine, key_id)
    assert rec is not None
    return rec


def rotate_key(engine: Engine, key_id: int, *, actor: str = "system") -> tuple[ApiKeyRecord, str]:
    """New key with the same name, scopes and rate; the old one is revoked atomically
    (audited as ``key.rotate``)."""
    with write_transaction(engine) as conn:
        r = conn.execute(select(api_keys).where(api_keys.c.id == key_id).with_for_update()).first()
        if r is None:
            raise KeyError_(f"no key with id {key_id}")
        if r.revoked_at is not None:
            raise KeyError_(f"key {key_id} is revoked; create a new key instead")
        kid, token = _insert_key(conn, r.name, frozenset(r.scopes.split()), r.rate_limit)
        n = conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow(), replaced_by=kid)
        ).rowcount
        if n != 1:  # rotated concurrently by someone else: undo ours
            raise KeyError_(f"key {key_id} was revoked concurrently")
        _audit(conn, actor, "key.rotate", key_id, {"new_key_id": kid})
    rec = get_key(engine, kid)
    assert rec is not None
    return rec, token


def verify_token(engine: Engine, token: str) -> ApiKeyRecord | None:
    """The active key this token belongs to, or None (unknown, wrong secret, revoked)."""
    parsed = parse_token(token)
    if parsed is None:
        return None
    kid, secret = parsed
    with engine.connect() as conn:
        r = conn.execute(select(api_keys).where(api_keys.c.id == kid)).first()
    if r is None:
        hmac.compare_digest(hash_secret(secret), "0" * 64)  # same work either way
        return None
    if not hmac.compare_digest(hash_secret(secret), r.secret_hash) or r.revoked_at is not None:
        return None
    return _record(r)


class KeyVerifier:
    """Verifies tokens with a short in-memory cache (per process).

    The cache maps key id -> (stored secret hash, record, expiry). A presented
    token is always compared (constant time) with the stored hash, so a cached
    entry never admits a different secret.
    """

    def __init__(self, engine: Engine, ttl_s: float = 2.0, max_entries: int = 10_000) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cache: dict[int, tuple[str | None, ApiKeyRecord | None, float]] = {}
        self._lock = threading.Lock()

    def _lookup(self, kid: int) -> tuple[str | None, ApiKeyRecord | None]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(kid)
            if hit is not None and hit[2] > now:
                return hit[0], hit[1]
        with self.engine.connect() as conn:
            r = conn.execute(select(api_keys).where(api_keys.c.id == kid)).first()
        stored = (r.secret_hash, _record(r)) if r is not None else (None, None)
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()  # bounded memory even under a flood of random ids
            self._cache[kid] = (stored[0], stored[1], now + self.ttl_s)
        return stored

    def verify(self, token: str) -> ApiKeyRecord | None:
        parsed = parse_token(token)
        if parsed is None:
            return None
        kid, secret = parsed
        stored_hash, rec = self._lookup(kid)
        ok = hmac.compare_digest(hash_secret(secret), stored_hash or "0" * 64)
        if not ok or rec is None or rec.revoked_at is not None:
            return None
        return rec

    def invalidate(self, key_id: int | None = None) -> None:
        with self._lock:
            if key_id is None:
                self._cache.clear()
            else:
                self._cache.pop(key_id, None)
