"""The keyed hash the attempt log keeps instead of a blocked prompt's text.

A plain SHA-256 of a blocked prompt is not anonymous: blocked prompts are mostly short
combinations of lexicon words, so anyone holding the database could hash such
combinations until one matches. The log therefore stores ``HMAC-SHA256(key, prompt)``
(hex) under a per-installation key:

* ``SENTINELLE_GUARD_HASH_KEY`` when the operator sets it
  (:attr:`sentinelle.guard.config.GuardConfig.hash_key`: any secret of at least 32
  characters, e.g. ``openssl rand -base64 32``, used as its UTF-8 bytes), which lets
  several databases share one key;
* otherwise 32 random bytes generated the first time they are needed and kept in the
  ``guard_hash_key`` table (migration ``0008_guard_hash_key``). Concurrent first uses
  race on the single row's primary key; the loser reads the winner's key.

The same prompt under the same key always gives the same value, so repeated attempts
still group. The column keeps its historical name ``prompt_sha256``. Changing or losing
the key only breaks that grouping with older rows; nothing else depends on it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from .tables import guard_hash_key as HK


def prompt_hmac(key: bytes, text: str) -> str:
    """HMAC-SHA256 (hex) of a prompt's UTF-8 bytes under ``key``."""
    data = text.encode("utf-8", "surrogatepass")
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def stored_hash_key(engine: Engine) -> bytes:
    """The installation's key from ``guard_hash_key``, created on first use."""
    with engine.connect() as conn:
        secret = conn.execute(select(HK.c.secret).where(HK.c.id == 1)).scalar_one_or_none()
    if secret is None:
        try:
            with engine.begin() as conn:
                conn.execute(
                    insert(HK).values(
                        id=1, secret=secrets.token_hex(32), created_at=datetime.now(UTC)
                    )
                )
        except IntegrityError:
            pass  # another process or instance created it first: use theirs
        with engine.connect() as conn:
            secret = conn.execute(select(HK.c.secret).where(HK.c.id == 1)).scalar_one()
    return bytes.fromhex(secret)
