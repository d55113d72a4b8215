"""Tables of the guard's attempt log (created by migration ``0004_guard``; keep in sync).

* ``guard_attempts`` -- one row per blocked prompt or image: who (the caller-supplied
  account id, may be null), when, what fired (categories JSON), the prompt's keyed hash
  (column ``prompt_sha256``: HMAC-SHA256 under the installation's key, see
  :mod:`sentinelle.guard.hashkey`) and the image's SHA-256; the prompt text only when the
  operator enabled ``SENTINELLE_GUARD_LOG_PROMPTS``. Never image bytes.
* ``guard_accounts`` -- one row per account that was ever blocked: a running total and
  ``flagged_until``. Its row is the per-account lock that makes counting and flagging
  safe across threads, processes and instances (see :mod:`sentinelle.guard.attempts`).
* ``guard_flags`` -- one row each time an account crossed the escalation threshold
  (at most one per account per window); ``case_id`` is the review case the flag opened,
  when the review module recorded it.
* ``guard_hash_key`` (migration ``0008_guard_hash_key``) -- at most one row: the
  installation's random HMAC key for prompt hashes, unless the operator supplies one.
* ``guard_phrases`` / ``guard_phrase_version`` (migration ``0010_guard_phrase_lists``) --
  the deployment's allow and deny phrase lists per language (normalised phrases) and the
  one-row version counter folded into ``policy_id`` (see :mod:`sentinelle.guard.phrases`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ..store.models import UTCDateTime

metadata = MetaData()
BigId = BigInteger().with_variant(Integer(), "sqlite")

guard_attempts = Table(
    "guard_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", String(200), nullable=True),
    Column("source", String(16), nullable=False),  # "prompt" | "image"
    Column("decision", String(16), nullable=False),
    Column("prompt_sha256", String(64), nullable=True),  # HMAC-SHA256 hex (name kept)
    Column("media_sha256", String(64), nullable=True),
    Column("categories", Text, nullable=False),  # JSON object
    Column("policy_id", String(200), nullable=True),  # 100 until migration 0010
    Column("prompt_text", Text, nullable=True),  # only with SENTINELLE_GUARD_LOG_PROMPTS
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_guard_attempts_account_created", "account_id", "created_at"),
    Index("ix_guard_attempts_created", "created_at"),
    sqlite_autoincrement=True,
)

guard_accounts = Table(
    "guard_accounts",
    metadata,
    Column("account_id", String(200), primary_key=True),
    Column("blocks_total", Integer, nullable=False),
    Column("last_block_at", UTCDateTime, nullable=False),
    Column("flagged_until", UTCDateTime, nullable=True),
)

guard_flags = Table(
    "guard_flags",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", String(200), nullable=False),
    Column("blocks", Integer, nullable=False),  # blocks in the window when flagged
    Column("window_s", Integer, nullable=False),
    Column("first_block_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("case_id", BigInteger, nullable=True),  # review case (migration 0005), if any
    Column("signal", String(16), nullable=False),  # "recorded" | "unavailable" | "failed"
    Index("ix_guard_flags_account_created", "account_id", "created_at"),
    sqlite_autoincrement=True,
)

guard_hash_key = Table(
    "guard_hash_key",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("secret", String(64), nullable=False),  # 32 random bytes, hex
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("id = 1", name="ck_guard_hash_key_single_row"),
)

guard_phrases = Table(
    "guard_phrases",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("language", String(8), nullable=False),  # ISO 639-1 or "*"
    Column("phrase", String(200), nullable=False),  # normalised form
    Column("kind", String(8), nullable=False),  # "allow" | "deny"
    Column("note", String(500), nullable=True),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("kind IN ('allow', 'deny')", name="ck_guard_phrases_kind"),
    UniqueConstraint("language", "phrase", name="uq_guard_phrases_language_phrase"),
    sqlite_autoincrement=True,
)

guard_phrase_version = Table(
    "guard_phrase_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("version", Integer, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("id = 1", name="ck_guard_phrase_version_single_row"),
)
