"""Fixtures shared by the guard tests (``db_url`` comes from ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from sentinelle.guard import PromptGuard
from sentinelle.store.db import open_engine

REPO = Path(__file__).resolve().parents[2]
SHARED_PROMPTS = REPO.parent / "shared" / "prompts"


@pytest.fixture(scope="session")
def guard() -> PromptGuard:
    """The default prompt guard (lexicons compiled once for the session)."""
    return PromptGuard()


@pytest.fixture()
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database on SQLite, then PostgreSQL."""
    eng = open_engine(db_url)
    yield eng
    eng.dispose()
