"""Database connection and schema migration.

:func:`open_engine` is the one way to get an :class:`~sqlalchemy.engine.Engine`:
it normalizes the URL, configures SQLite for concurrent use (WAL journal,
foreign keys, busy timeout, explicit ``BEGIN``), and migrates the schema to the
latest Alembic revision. Migrations ship inside the package, so no
``alembic.ini`` is needed at run time; they are serialized across processes
(PostgreSQL: ``pg_advisory_lock``; SQLite: an exclusive lock on a
``<db>.migrate.lock`` file next to the database), so several workers may start
at once on a fresh database.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ..errors import SentinelleError

ENV_VAR = "SENTINELLE_DATABASE_URL"
DEFAULT_DATABASE_HELP = (
    f"set {ENV_VAR}; default sqlite:///./sentinelle.db (a SQLite file in the working "
    "directory); PostgreSQL: postgresql://user@host/db"
)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Key for ``pg_advisory_lock`` during migrations (arbitrary, fixed: "SNTLMIGR").
PG_MIGRATION_LOCK = 0x534E544C4D494752 & 0x7FFFFFFFFFFFFFFF
SQLITE_BUSY_TIMEOUT_MS = 30_000

_local_lock = threading.Lock()


class DatabaseError(SentinelleError):
    code = "database_error"


def database_url() -> str:
    """``$SENTINELLE_DATABASE_URL`` if set, else a SQLite file ``./sentinelle.db``."""
    url = os.environ.get(ENV_VAR, "").strip()
    if url:
        return url
    return f"sqlite:///{Path.cwd() / 'sentinelle.db'}"


def normalize_url(url: str) -> str:
    """Map ``postgres://`` / ``postgresql://`` to the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _configure_sqlite(engine: Engine) -> None:
    """Pragmas on every connection; take over transaction control from pysqlite.

    pysqlite's implicit transactions start late and break ``BEGIN IMMEDIATE``;
    we switch it to autocommit and emit ``BEGIN`` ourselves. A connection with
    execution option ``sqlite_begin="IMMEDIATE"`` takes the write lock up front,
    which avoids deadlocks between two writers that both started as readers.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            _set_wal(cur)
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _set_wal(cur) -> None:  # type: ignore[no-untyped-def]
    """Switch a fresh database to WAL. Switching needs an exclusive lock and can
    report "database is locked" without waiting when several processes open a
    new file at once, so retry for up to the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def create_engine_for(url: str | None = None) -> Engine:
    """Create (but do not migrate) an engine for ``url`` (default :func:`database_url`)."""
    raw = normalize_url(url or database_url())
    try:
        u = make_url(raw)
    except ArgumentError as e:
        raise DatabaseError(f"invalid database URL: {e}") from None
    try:
        if u.get_backend_name() == "sqlite":
            if u.database not in (None, "", ":memory:"):
                Path(u.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(u, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            _configure_sqlite(engine)
        else:
            engine = create_engine(u, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError) as e:
        raise DatabaseError(f"cannot use database {u.render_as_string()}: {e}") from None
    return engine


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive inter-process lock on ``path`` (POSIX ``flock``; Windows ``msvcrt``)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except ImportError:  # pragma: no cover - Windows
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    finally:
        os.close(fd)


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _upgrade(conn: Connection) -> None:
    command.upgrade(alembic_config(conn), "head")
    if conn.in_transaction():
        conn.commit()


def run_migrations(engine: Engine) -> None:
    """Bring the schema to the latest revision; safe to call concurrently."""
    head = head_revision()
    if current_revision(engine) == head:
        return
    with _local_lock:
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_MIGRATION_LOCK})
                conn.commit()
                try:
                    _upgrade(conn)
                finally:
                    conn.rollback()
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_MIGRATION_LOCK})
                    conn.commit()
        elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            lock_path = Path(str(engine.url.database) + ".migrate.lock")
            with _file_lock(lock_path), engine.connect() as conn:
                _upgrade(conn)
        else:
            with engine.connect() as conn:
                _upgrade(conn)


def open_engine(url: str | None = None) -> Engine:
    """Engine for ``url`` (default :func:`database_url`), schema migrated to head.

    Raises :class:`DatabaseError` if the database cannot be reached or migrated.
    """
    engine = create_engine_for(url)
    try:
        run_migrations(engine)
    except SQLAlchemyError as e:
        engine.dispose()
        raise DatabaseError(f"cannot open database: {e.__class__.__name__}: {e}") from None
    return engine
