"""SQLAlchemy Core tables of the exchange layer (migration ``0011_exchanges`` is the truth).

* ``exchanges`` -- one configured exchange: its type, the bank it feeds, its
  non-secret settings (JSON), **where** its credentials live (an environment
  variable name or a file path; never the secret itself), the checkpoint (JSON)
  with a version counter for optimistic concurrency, the fetch lease that keeps
  one fetch per exchange running across instances, and its status counters.
* ``exchange_records`` -- the exchange's native records, one row per
  (record key, signal): NCMEC ``member-entry``, StopNCII ``signalType:hash``,
  ThreatExchange ``type:indicator``. Updates and deletions are applied against
  these rows, so a hash shared by two records stays in the bank until both go.
* ``exchange_staged`` -- the bulk path's append-only staging of large fetches
  (records waiting to be materialised into the two tables above and the bank).
* ``exchange_quarantine`` -- pages or records that could not be parsed: the
  error, a short excerpt and a digest of the body (never a whole page).
* ``peer_feeds`` / ``peer_feed_items`` / ``peer_subscribers`` / ``peer_opinions``
  -- Sentinelle-to-Sentinelle publishing: which banks are shared (opt-in), the
  append-only sequence of shared items (adds and withdrawals), the subscribers'
  API keys (hashed) and the opinions (false positive / confirmed) they report.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..store.models import UTCDateTime

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

exchanges = sa.Table(
    "exchanges",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("bank_id", sa.Integer(), nullable=False),
    sa.Column("config", sa.Text(), nullable=False),
    sa.Column("credential_ref", sa.Text(), nullable=True),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("interval_s", sa.Integer(), nullable=False),
    sa.Column("checkpoint", sa.Text(), nullable=True),
    sa.Column("checkpoint_version", sa.BigInteger(), nullable=False),
    sa.Column("progress_at", UTCDateTime(), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("fetch_owner", sa.String(200), nullable=True),
    sa.Column("fetch_lease_until", UTCDateTime(), nullable=True),
    sa.Column("last_fetch_started_at", UTCDateTime(), nullable=True),
    sa.Column("last_fetch_ok_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("last_error_at", UTCDateTime(), nullable=True),
    sa.Column("consecutive_failures", sa.Integer(), nullable=False),
    sa.Column("records_seen", sa.BigInteger(), nullable=False),
    sa.Column("entries_added", sa.BigInteger(), nullable=False),
    sa.Column("entries_deleted", sa.BigInteger(), nullable=False),
    sa.Column("unknown_types", sa.BigInteger(), nullable=False),
    sa.Column("skipped_tombstoned", sa.BigInteger(), nullable=False),
    sa.Column("malformed", sa.BigInteger(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

exchange_records = sa.Table(
    "exchange_records",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("exchange_id", sa.BigInteger(), nullable=False),
    sa.Column("record_key", sa.String(255), nullable=False),
    sa.Column("signal_type", sa.String(16), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("owner", sa.Text(), nullable=True),
    sa.Column("category", sa.Text(), nullable=True),
    sa.Column("tags", sa.Text(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("exchange_id", "record_key", "signal_type", name="uq_exchange_record"),
    sa.Index("ix_exchange_records_hash", "exchange_id", "signal_type", "hash"),
)

#: Bulk path staging (migration 0015): one row per (record, signal) of a staged page,
#: in stream order (``id``); ``rec`` is the id of the record's first row, so the
#: last record of a key wins; a row with ``signal_type`` NULL stands for a record
#: with no bankable signal (a deletion or an emptied record). No secondary index.
exchange_staged = sa.Table(
    "exchange_staged",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=False),
    sa.Column("exchange_id", sa.BigInteger(), nullable=False),
    sa.Column("rec", sa.BigInteger(), nullable=False),
    sa.Column("record_key", sa.String(255), nullable=False),
    sa.Column("signal_type", sa.String(16), nullable=True),
    sa.Column("hash", sa.String(64), nullable=True),
    sa.Column("owner", sa.Text(), nullable=True),
    sa.Column("category", sa.Text(), nullable=True),
    sa.Column("tags", sa.Text(), nullable=True),
    sa.Column("note", sa.Text(), nullable=True),
)

exchange_quarantine = sa.Table(
    "exchange_quarantine",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("exchange_id", sa.BigInteger(), nullable=False, index=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("error", sa.Text(), nullable=False),
    sa.Column("excerpt", sa.Text(), nullable=True),
    sa.Column("body_sha256", sa.String(64), nullable=True),
    sa.Column("checkpoint", sa.Text(), nullable=True),
)

peer_feeds = sa.Table(
    "peer_feeds",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("bank_id", sa.Integer(), nullable=False, unique=True),
    sa.Column("category", sa.String(64), nullable=True),
    sa.Column("expiry_days", sa.Integer(), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

peer_feed_items = sa.Table(
    "peer_feed_items",
    metadata,
    sa.Column("seq", BigId, primary_key=True),
    sa.Column("feed_id", sa.BigInteger(), nullable=False),
    sa.Column("entry_id", sa.BigInteger(), nullable=True),
    sa.Column("signal_type", sa.String(16), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("category", sa.String(64), nullable=True),
    sa.Column("op", sa.String(8), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index("ix_peer_feed_items_feed", "feed_id", "seq"),
    sa.Index("ix_peer_feed_items_hash", "feed_id", "signal_type", "hash"),
)

peer_subscribers = sa.Table(
    "peer_subscribers",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

peer_opinions = sa.Table(
    "peer_opinions",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("feed_id", sa.BigInteger(), nullable=False),
    sa.Column("subscriber_id", sa.BigInteger(), nullable=False),
    sa.Column("signal_type", sa.String(16), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("opinion", sa.String(16), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("feed_id", "subscriber_id", "signal_type", "hash", name="uq_peer_opinion"),
)
