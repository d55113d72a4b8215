"""Small database helpers shared by the review modules.

* :func:`scope` -- accept an ``Engine`` (own transaction, committed on exit) or a
  ``Connection`` (the caller's transaction: nothing is committed here).
* :func:`audit` -- :func:`sentinelle.audit.record_event`, re-exported: pass the
  ``Connection`` of the change so the entry joins its transaction.
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

from ..audit.chain import record_event as audit  # noqa: F401 - re-exported
from ..audit.chain import write_transaction

log = logging.getLogger("sentinelle.review")

ConnOrEngine = Engine | Connection


@contextmanager
def scope(conn_or_engine: ConnOrEngine, *, write: bool = True) -> Iterator[Connection]:
    """A connection inside a transaction.

    With an Engine a new transaction is opened (SQLite: ``BEGIN IMMEDIATE`` when
    ``write``, so two writers never deadlock after both read) and committed on a
    clean exit. With a Connection the caller's transaction is used as is.
    Writes go through :func:`sentinelle.audit.chain.write_transaction`.
    """
    if write or isinstance(conn_or_engine, Connection):
        with write_transaction(conn_or_engine) as conn:
            yield conn
        return
    with conn_or_engine.connect() as conn, conn.begin():
        yield conn


def engine_of(conn_or_engine: ConnOrEngine) -> Engine:
    if isinstance(conn_or_engine, Connection):
        return conn_or_engine.engine
    return conn_or_engine


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)


def loads(text: str | None, default: Any = None) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default
