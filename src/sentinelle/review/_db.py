"""Small database helpers shared by the review modules.

* :func:`scope` -- accept an ``Engine`` (own transaction, committed on exit) or a
  ``Connection`` (the caller's transaction: nothing is committed here).
* :func:`audit` -- :func:`sentinelle.audit.record_event` inside the same
  transaction, or nothing while the audit module is absent.
* :func:`dumps` / :func:`loads` -- compact JSON for ``Text`` columns.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

log = logging.getLogger("sentinelle.review")

ConnOrEngine = Engine | Connection


@contextmanager
def scope(conn_or_engine: ConnOrEngine, *, write: bool = True) -> Iterator[Connection]:
    """A connection inside a transaction.

    With an Engine a new transaction is opened (SQLite: ``BEGIN IMMEDIATE`` when
    ``write``, so two writers never deadlock after both read) and committed on a
    clean exit. With a Connection the caller's transaction is used as is.
    """
    if isinstance(conn_or_engine, Connection):
        yield conn_or_engine
        return
    conn = conn_or_engine.connect()
    if write and conn_or_engine.dialect.name == "sqlite":
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
    try:
        with conn.begin():
            yield conn
    finally:
        conn.close()


def engine_of(conn_or_engine: ConnOrEngine) -> Engine:
    if isinstance(conn_or_engine, Connection):
        return conn_or_engine.engine
    return conn_or_engine


def audit(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> int | None:
    """Append an audit event in ``conn``'s transaction (no-op without ``sentinelle.audit``)."""
    try:
        from ..audit import record_event
    except ImportError:
        return None
    return record_event(conn, actor=actor, action=action, target=target, details=details)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)


def loads(text: str | None, default: Any = None) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default
