"""SQLAlchemy Core description of the triage tables (created by migration 0014).

The Alembic migration is the source of truth; keep these in sync with it.

* ``triage_cases`` -- one investigation (``name`` unique), its priority weights and
  grouping settings as JSON (shown in every output, so the order can be checked).
* ``triage_media`` -- one distinct content (SHA-256) of a case: crypto and perceptual
  hashes, the capture cues read from its metadata (``meta`` JSON: EXIF make, model,
  serial, capture time, GPS, quantisation-table digest), its provenance verdict and the
  near-duplicate group it belongs to. Exact copies share one row.
* ``triage_files`` -- one physical copy: its display ``path`` (an archive member is
  ``archive.zip!/dir/member.jpg``, nested archives chain ``!/``), ``kind`` (``file``,
  ``member`` of an archive, or ``archive``: the archive itself, written once all its
  members are done, so a rerun skips it whole), the file on disk it
  came from (``source_path``) and the member path inside it (``member_path``), size and
  mtime (resume), and a per-file error (``error_code``/``error_message``) when it could
  not be read or hashed. ``path_key`` (SHA-256 of ``path``) is the unique key.
* ``triage_groups`` -- near-duplicate ("visual") groups of media: ``status`` ``known``
  (matched a bank; ``bank_category`` and ``matches``) or ``new``; ``tier`` and
  ``priority`` with their ``reasons`` (JSON list); ``series_id`` for new material.
* ``triage_series`` -- new groups that belong together; ``key`` is the stable id
  (kept across reruns), ``name`` a series name (imported VICS/ICSE names are kept).
* ``triage_reviews`` -- the latest reviewer (console) or VICS-import decision per group
  (read and written by :mod:`sentinelle.triage.reviews`).
* ``triage_links`` -- why two groups are in one series: one row per (pair, cue) with a
  score and a short detail.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ..store.models import UTCDateTime

metadata = MetaData()
BigId = BigInteger().with_variant(Integer(), "sqlite")

triage_cases = Table(
    "triage_cases",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("settings", Text, nullable=False),  # JSON: weights, thresholds, sources
    Column("state", String(16), nullable=False),  # hashing | grouped
    sqlite_autoincrement=True,
)

triage_media = Table(
    "triage_media",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("case_id", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("md5", String(32), nullable=True),
    Column("sha1", String(40), nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(16), nullable=True),
    Column("format", String(16), nullable=True),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("pdq", String(64), nullable=True),
    Column("pdq_quality", Integer, nullable=True),
    Column("vpdq", Text, nullable=True),  # JSON [[frame, hash, quality, ts], ...]
    Column("meta", Text, nullable=True),  # JSON capture cues
    Column("provenance_verdict", String(32), nullable=True),
    Column("provenance_confidence", Float, nullable=True),
    Column("provenance", Text, nullable=True),  # JSON (the scan's provenance record)
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("group_id", BigInteger, nullable=True),
    Column("embedding", LargeBinary, nullable=True),  # scene embedding (float16), new only
    UniqueConstraint("case_id", "sha256", name="uq_triage_media_sha256"),
    sqlite_autoincrement=True,
)
Index("ix_triage_media_group", triage_media.c.case_id, triage_media.c.group_id)
Index("ix_triage_media_md5", triage_media.c.case_id, triage_media.c.md5)
# keyset reads of a case (migration 0017)
Index("ix_triage_media_case_id", triage_media.c.case_id, triage_media.c.id)

triage_files = Table(
    "triage_files",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("case_id", BigInteger, nullable=False),
    Column("path_key", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # file | member | archive (done marker)
    Column("path", Text, nullable=False),
    Column("source_path", Text, nullable=False),
    Column("member_path", Text, nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("media_id", BigInteger, nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("hashed_at", UTCDateTime, nullable=False),
    UniqueConstraint("case_id", "path_key", name="uq_triage_files_path"),
    sqlite_autoincrement=True,
)
Index("ix_triage_files_media", triage_files.c.case_id, triage_files.c.media_id)
Index("ix_triage_files_case_id", triage_files.c.case_id, triage_files.c.id)

triage_groups = Table(
    "triage_groups",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("case_id", BigInteger, nullable=False),
    Column("key", String(32), nullable=False),  # stable: from the smallest member SHA-256
    Column("media_type", String(16), nullable=True),
    Column("status", String(16), nullable=False),  # known | new
    Column("bank_category", String(64), nullable=True),
    Column("matches", Text, nullable=True),  # JSON: [{bank, category, signal, distance}]
    Column("series_id", BigInteger, nullable=True),
    Column("tier", String(16), nullable=False),  # camera_new | unknown_new | ai_new | known
    Column("priority", Float, nullable=False),
    Column("rank", Integer, nullable=False),  # 1 = first to review
    Column("reasons", Text, nullable=False),  # JSON list of {cue, weight, detail}
    Column("provenance_verdict", String(32), nullable=True),  # the group's strongest
    Column("n_media", Integer, nullable=False),
    Column("n_files", Integer, nullable=False),
    Column("representative_media_id", BigInteger, nullable=True),
    UniqueConstraint("case_id", "key", name="uq_triage_groups_key"),
    sqlite_autoincrement=True,
)
Index("ix_triage_groups_rank", triage_groups.c.case_id, triage_groups.c.rank)
Index("ix_triage_groups_series", triage_groups.c.case_id, triage_groups.c.series_id)
Index("ix_triage_groups_case_id", triage_groups.c.case_id, triage_groups.c.id)

triage_series = Table(
    "triage_series",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("case_id", BigInteger, nullable=False),
    Column("key", String(32), nullable=False),  # stable id, e.g. S-1a2b3c4d5e6f
    Column("name", Text, nullable=True),  # imported series names are kept verbatim
    Column("imported", Boolean, nullable=False),
    Column("n_groups", Integer, nullable=False),
    Column("priority", Float, nullable=False),
    Column("cues", Text, nullable=False),  # JSON {cue: number of links}
    UniqueConstraint("case_id", "key", name="uq_triage_series_key"),
    sqlite_autoincrement=True,
)

triage_links = Table(
    "triage_links",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("case_id", BigInteger, nullable=False),
    Column("series_id", BigInteger, nullable=True),
    Column("group_a", BigInteger, nullable=False),
    Column("group_b", BigInteger, nullable=False),
    Column("cue", String(32), nullable=False),
    Column("score", Float, nullable=False),
    Column("detail", Text, nullable=True),
    sqlite_autoincrement=True,
)
Index("ix_triage_links_series", triage_links.c.case_id, triage_links.c.series_id)

triage_reviews = Table(
    "triage_reviews",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("case_id", BigInteger, nullable=False),
    Column("group_id", BigInteger, nullable=False),
    Column("decision", String(32), nullable=False),  # confirmed_new | not_pertinent | ...
    Column("category", String(64), nullable=True),
    Column("bank", String(200), nullable=True),
    Column("source", String(16), nullable=False),  # console | vics
    Column("actor", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("note", Text, nullable=True),
    UniqueConstraint("case_id", "group_id", name="uq_triage_reviews_group"),
    sqlite_autoincrement=True,
)

ALL_TABLES = (
    triage_reviews,
    triage_links,
    triage_series,
    triage_groups,
    triage_files,
    triage_media,
    triage_cases,
)
