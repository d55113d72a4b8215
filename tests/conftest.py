"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinelle.plugins import load_plugins

# Job kinds, periodic tasks and hooks of the built-ins, registered as the service does at
# start-up (tests run the worker's functions directly).
load_plugins()

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared test data not found at {SHARED}")
    return SHARED


# --------------------------------------------------------------------------
# Database fixtures (bank store). ``db_url`` runs a test on a fresh SQLite file
# and on a fresh PostgreSQL schema. PostgreSQL being unreachable FAILS the
# test; set SENTINELLE_TEST_POSTGRES_URL=off to skip the PostgreSQL half.

import os  # noqa: E402
import uuid  # noqa: E402

PG_DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_server_url() -> str | None:
    """Server URL for PostgreSQL tests, or None when disabled with ``off``."""
    url = os.environ.get("SENTINELLE_TEST_POSTGRES_URL", "").strip() or PG_DEFAULT_URL
    if url.lower() == "off":
        return None
    return url


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bank.db'}"


@pytest.fixture()
def postgres_url() -> object:
    """URL of a fresh, empty schema (made the connection's search_path); dropped after."""
    server = postgres_server_url()
    if server is None:
        reason = os.environ.get("SENTINELLE_TEST_SKIP_REASON", "").strip()  # setup-test-deps
        pytest.skip(reason or "PostgreSQL tests disabled (SENTINELLE_TEST_POSTGRES_URL=off)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from sentinelle.store.db import normalize_url

    server = normalize_url(server)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as e:  # unreachable server must fail, not skip
        admin.dispose()
        pytest.fail(
            f"PostgreSQL not reachable at {server} ({e.__class__.__name__}: {e}); "
            "set SENTINELLE_TEST_POSTGRES_URL=off to skip PostgreSQL tests"
        )
    url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh isolated database URL: SQLite file, then PostgreSQL schema."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return request.getfixturevalue(name)


@pytest.fixture()
def engine(db_url: str):
    """An engine on the migrated ``db_url`` database (SQLite and PostgreSQL), disposed after."""
    from sentinelle.store.db import open_engine

    eng = open_engine(db_url)
    yield eng
    eng.dispose()
