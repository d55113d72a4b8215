"""Alembic environment for Sentinelle.

Run programmatically by :func:`sentinelle.store.db.run_migrations`, which passes
an open connection in ``config.attributes["connection"]`` (no ``alembic.ini`` or
URL needed at run time). For hand use during development::

    alembic -c src/sentinelle/store/alembic.ini revision -m "..."
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from sentinelle.store.models import Base

target_metadata = Base.metadata
config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # command-line use: URL from alembic.ini / SENTINELLE_DATABASE_URL
    from sentinelle.store.db import database_url, normalize_url

    url = normalize_url(config.get_main_option("sqlalchemy.url") or database_url())
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()
