"""Helpers shared by the command modules: the stderr console, error reporting, the engine.

Every command reports a :class:`~sentinelle.errors.SentinelleError` the same way: one red
line ``error [code]: message`` on stderr and exit status 1. Commands either wrap their work
in ``with handle_errors():`` or catch the error themselves and ``raise fail(e)`` when they must add
lines of their own (e.g. the issues of a rejected report).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import SentinelleError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def err_console() -> Console:
    """The stderr console for messages (stdout stays free for data a script may parse)."""
    return Console(stderr=True, highlight=False)


def print_error(e: SentinelleError) -> None:
    """Print ``error [code]: message`` in red on stderr (the message is markup-escaped)."""
    err_console().print(f"[red]error \\[{e.code}][/]: {escape(e.message)}")


def fail(e: SentinelleError) -> typer.Exit:
    """Print the error and return the exit (status 1) for the caller to ``raise``."""
    print_error(e)
    return typer.Exit(1)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn a :class:`SentinelleError` raised inside the block into :func:`fail`."""
    try:
        yield
    except SentinelleError as e:
        raise fail(e) from None


def db_engine() -> Engine:
    """The database engine from the environment (migrated on first open)."""
    from ..store.db import open_engine

    return open_engine()


def print_json(data: Any) -> None:
    """Print ``data`` on stdout as indented, key-sorted JSON (non-JSON values via ``str``)."""
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def parse_when(text: str | None) -> datetime | None:
    """Parse an ISO 8601 time option; a naive time is taken as UTC. ``None`` stays ``None``."""
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 time: {text!r}") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t
