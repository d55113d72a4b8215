"""Deployment-level allow and deny phrase lists of the prompt guard (issue 10).

Revision ID: 0010
Revises: 0009

An operator fixes a false block (allow) or a missed term (deny) without a release:

* ``guard_phrases`` -- one row per phrase: ``language`` (an ISO 639-1 code of a lexicon
  language, or ``*`` for every language), ``phrase`` (stored *normalised*, the form the
  guard matches after :func:`sentinelle.guard.normalize.normalize`), ``kind``
  (``allow`` | ``deny``), an optional ``note``, who added it and when. A phrase is in at
  most one list per language (unique ``language, phrase``).
* ``guard_phrase_version`` -- at most one row (``id = 1``): a counter bumped in the same
  transaction as every add or remove, with who and when. The guard folds it into its
  ``policy_id`` (``...+phrases.v<N>``), so every decision names the list version it used.

``guard_attempts.policy_id`` grows from 100 to 200 characters: the policy id now also
names the list version (and, with the semantic layer on, the model).

Every change is also written to the audit trail (``guard.phrase.add`` /
``guard.phrase.remove``). Mirrored by :data:`sentinelle.guard.tables.guard_phrases` and
:data:`sentinelle.guard.tables.guard_phrase_version`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "guard_phrases",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("phrase", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),  # naive UTC, as 0004
        sa.CheckConstraint("kind IN ('allow', 'deny')", name="ck_guard_phrases_kind"),
        sa.UniqueConstraint("language", "phrase", name="uq_guard_phrases_language_phrase"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "guard_phrase_version",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_guard_phrase_version_single_row"),
    )
    with op.batch_alter_table("guard_attempts") as batch:
        batch.alter_column(
            "policy_id", existing_type=sa.String(100), type_=sa.String(200), existing_nullable=True
        )


def downgrade() -> None:
    with op.batch_alter_table("guard_attempts") as batch:
        batch.alter_column(
            "policy_id", existing_type=sa.String(200), type_=sa.String(100), existing_nullable=True
        )
    op.drop_table("guard_phrase_version")
    op.drop_table("guard_phrases")
