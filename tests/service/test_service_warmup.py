"""The prompt guard is warmed in the background at start-up (``create_app`` lifespan).

Warming loads the lexicons and readings off the request path, so the first
``/v1/guard/prompt`` call is not the slow one. It must never delay start-up or
break it, and apps built with ``start_background=False`` (most tests) skip it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sentinelle.service.app import create_app
from sentinelle.service.settings import Settings


def _app(tmp_path: Path, *, start_background: bool):
    url = f"sqlite:///{tmp_path / 'warm.db'}"
    return create_app(Settings(database_url=url, rate_limit=0.0), start_background=start_background)


def test_start_up_warms_the_prompt_guard_in_the_background(tmp_path: Path) -> None:
    from sentinelle.guard.lexicon import default_lexicons

    default_lexicons.cache_clear()  # as in a fresh process
    app = _app(tmp_path, start_background=True)
    with TestClient(app) as c:
        assert c.get("/v1/health").status_code == 200  # serving while it warms
        thread = app.state.sentinelle_warm_up
        assert thread is not None and thread.daemon
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert default_lexicons.cache_info().currsize == 1  # loaded, shared process-wide
        # the app's own guards (and their environment settings) are still built on first use
        assert getattr(app.state, "sentinelle_guards", None) is None


def test_a_failing_warm_up_is_logged_and_start_up_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from sentinelle.guard import PromptGuard

    def broken(self: PromptGuard, text: str) -> None:
        raise RuntimeError("lexicon file unreadable")

    monkeypatch.setattr(PromptGuard, "check", broken)
    app = _app(tmp_path, start_background=True)
    with caplog.at_level(logging.WARNING, logger="sentinelle.service"), TestClient(app) as c:
        app.state.sentinelle_warm_up.join(timeout=120)
        assert c.get("/v1/health").status_code == 200
    failed = [r for r in caplog.records if r.getMessage() == "prompt guard warm-up failed"]
    assert len(failed) == 1 and "lexicon file unreadable" in failed[0].fields["error"]


def test_no_warm_up_without_background_work(tmp_path: Path) -> None:
    app = _app(tmp_path, start_background=False)
    with TestClient(app) as c:
        assert c.get("/v1/health").status_code == 200
    assert getattr(app.state, "sentinelle_warm_up", None) is None
    assert getattr(app.state, "sentinelle_guards", None) is None
