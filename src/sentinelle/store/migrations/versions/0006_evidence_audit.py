"""Encrypted evidence, preservation holds, deletion log, audit trail.

Revision ID: 0006
Revises: 0005

Tables:

* ``audit_log`` -- append-only, hash-chained audit entries. ``id`` is the
  sequence number (1, 2, 3... with no gaps); ``hash`` is SHA-256 over a canonical
  JSON of (seq, at, actor, action, target, details, prev_hash). Triggers reject
  UPDATE and DELETE on both PostgreSQL and SQLite.
* ``audit_head`` -- one row (id 1): the last sequence number and hash, updated in
  the same transaction as every append. It is the anchor that lets
  ``verify_chain`` notice the deletion of the newest entries; ``mac`` is an
  optional HMAC of (seq, hash) under ``SENTINELLE_AUDIT_KEY``. Created here with
  seq 0, so deleting it is noticed too.
* ``evidence_keys`` -- one per-case AES-256 data key, wrapped (AES-GCM) by the
  master key; ``wrapped_key`` is NULL once the case is crypto-shredded.
* ``evidence_blobs`` -- AES-256-GCM ciphertexts of media kept for review and
  reporting; ciphertext, nonce and encrypted file name are NULL once destroyed.
* ``preservation_holds`` -- retention holds (started by a CyberTipline finish
  receipt, length per jurisdiction) and legal holds (no end until released).
* ``deletion_log`` -- one row per destroyed case with its proof record.

``case_id`` columns are plain indexed integers (no foreign key to ``cases``):
evidence must outlive neither more nor less than its holds, whatever happens to
the review tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GENESIS = "0" * 64

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION sentinelle_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.String(500), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.bulk_insert(
        head,
        [{"id": 1, "seq": 0, "hash": GENESIS, "mac": None, "updated_at": _now()}],
    )
    op.create_table(
        "evidence_keys",
        sa.Column("case_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("master_key_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "evidence_blobs",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=True),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("filename_ct", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_evidence_blobs_case_id", "evidence_blobs", ["case_id"])
    op.create_table(
        "preservation_holds",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("jurisdiction", sa.String(16), nullable=True),
        sa.Column("report_id", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("released_at", sa.DateTime(), nullable=True),
        sa.Column("released_by", sa.String(200), nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=True),
        sa.UniqueConstraint(
            "kind", "case_id", "report_id", "jurisdiction", name="uq_preservation_holds_report"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_preservation_holds_case_id", "preservation_holds", ["case_id"])
    op.create_table(
        "deletion_log",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("proof", sa.Text(), nullable=False),
        sa.Column("proof_sha256", sa.String(64), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_deletion_log_case_id", "deletion_log", ["case_id"])
    _create_append_only_triggers()


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(tzinfo=None)


def _create_append_only_triggers() -> None:
    """Refuse UPDATE/DELETE on ``audit_log`` and DELETE of the ``audit_head`` row."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION sentinelle_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_head_keep BEFORE DELETE OR TRUNCATE ON audit_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION sentinelle_audit_append_only()"
        )
    elif dialect == "sqlite":
        for name, event, table in (
            ("audit_log_no_update", "UPDATE", "audit_log"),
            ("audit_log_no_delete", "DELETE", "audit_log"),
            ("audit_head_keep", "DELETE", "audit_head"),
        ):
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def _drop_append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_head_keep ON audit_head")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS sentinelle_audit_append_only()")
    elif dialect == "sqlite":
        for name in ("audit_log_no_update", "audit_log_no_delete", "audit_head_keep"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_index("ix_deletion_log_case_id", table_name="deletion_log")
    op.drop_table("deletion_log")
    op.drop_index("ix_preservation_holds_case_id", table_name="preservation_holds")
    op.drop_table("preservation_holds")
    op.drop_index("ix_evidence_blobs_case_id", table_name="evidence_blobs")
    op.drop_table("evidence_blobs")
    op.drop_table("evidence_keys")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index("ix_audit_log_actor", table_name="audit_log")
    op.drop_index("ix_audit_log_action", table_name="audit_log")
    op.drop_table("audit_log")
