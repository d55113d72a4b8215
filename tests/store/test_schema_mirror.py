"""Each hand-written ``tables.py`` mirrors the schema its Alembic migrations create.

Migrations (``store/migrations/versions``) are frozen history and the source of truth;
the ``Table`` objects in ``guard``/``review``/``audit``/``evidence``/``reports`` repeat
their column lists so queries can be built. This test catches the two drifting apart:
same tables, same columns, same nullability, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from sentinelle.audit.tables import metadata as audit_md
from sentinelle.evidence.tables import metadata as evidence_md
from sentinelle.exchanges.tables import metadata as exchanges_md
from sentinelle.guard.tables import metadata as guard_md
from sentinelle.reports.tables import metadata as reports_md
from sentinelle.review.tables import metadata as review_md
from sentinelle.store.db import open_engine

METADATAS = {
    "guard": guard_md,
    "review": review_md,
    "audit": audit_md,
    "evidence": evidence_md,
    "reports": reports_md,
    "exchanges": exchanges_md,
}


@pytest.mark.parametrize("package", sorted(METADATAS))
def test_tables_module_mirrors_the_migrated_schema(db_url: str, package: str) -> None:
    metadata = METADATAS[package]
    assert metadata.tables, package  # an empty MetaData would pass vacuously
    engine = open_engine(db_url)
    try:
        insp = sa.inspect(engine)
        migrated = set(insp.get_table_names())
        for name, table in metadata.tables.items():
            assert name in migrated, f"{package}: table {name} is not created by a migration"
            db = {c["name"]: c["nullable"] for c in insp.get_columns(name)}
            code = {c.name: c.nullable for c in table.columns}
            assert db.keys() == code.keys(), f"{package}.{name}: columns differ"
            assert db == code, f"{package}.{name}: nullability differs"
    finally:
        engine.dispose()
