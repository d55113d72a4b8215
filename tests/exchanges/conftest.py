"""Fixtures for the exchange tests: a migrated database and credentials in the environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture()
def xstore(db_url: str):  # type: ignore[no-untyped-def]
    from sentinelle.exchanges.store import ExchangeStore
    from sentinelle.store.db import open_engine

    engine = open_engine(db_url)
    try:
        yield ExchangeStore(engine)
    finally:
        engine.dispose()


@pytest.fixture()
def ncmec_clock(monkeypatch):  # type: ignore[no-untyped-def]
    """NCMEC windows are cut against this clock (6 h after T0); tests move ``state["now"]``."""
    from xhelpers import T0

    from sentinelle.exchanges import ncmec

    state = {"now": float(T0 + 6 * 3600)}
    monkeypatch.setattr(ncmec, "now", lambda: state["now"])
    return state
