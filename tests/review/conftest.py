"""Fixtures of the review tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2id with small cost parameters: these tests are not about its cost."""
    from argon2 import PasswordHasher

    from sentinelle.review import accounts as acc

    monkeypatch.setattr(
        acc, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
