"""`make run`'s demo triage case: built from benign rendered scenes by the real triage,
shown in the console's triage queue (issue 12 "done when")."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from console_support import PASSWORD, console_env, login_csrf
from fastapi.testclient import TestClient

from sentinelle.banks import BankStore
from sentinelle.cli.demo_media import DEMO_BANK, build_demo
from sentinelle.cli.triage_demo import DEMO_CASE, setup_triage_demo
from sentinelle.formats.enroll import entries_from_paths
from sentinelle.review import accounts
from sentinelle.service.app import create_app
from sentinelle.service.settings import Settings
from sentinelle.triage import store


@pytest.fixture()
def demo(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    console_env(monkeypatch)
    app = create_app(Settings(database_url=sqlite_url), start_background=False)
    state = app.state.sentinelle
    originals, _inbox = build_demo(tmp_path, n_known=4, n_other=0)
    bs = BankStore(state.engine)
    bs.create_bank(DEMO_BANK)
    entries, failed = entries_from_paths(sorted(originals.iterdir()), augment=True)
    assert not failed
    bs.add_entries(DEMO_BANK, entries)
    state.matcher.refresh()
    yield app, state, tmp_path
    state.engine.dispose()


def test_demo_triage_case_has_every_tier_and_shows_in_the_console(demo) -> None:
    app, state, demo_dir = demo
    case_id = setup_triage_demo(state.engine, state.matcher, demo_dir)
    assert case_id is not None
    assert setup_triage_demo(state.engine, state.matcher, demo_dir) == case_id  # reused
    assert "Content-Security-Policy" in (demo_dir / "triage-report.html").read_text()
    vics = json.loads((demo_dir / "triage-case.vics.json").read_text())
    assert vics["value"][0]["CaseNumber"] == DEMO_CASE
    case = store.get_case(state.engine, DEMO_CASE)
    tiers = store.case_summary(state.engine, case.id)["tiers"]
    assert tiers.get("camera_new", 0) >= 1 and tiers.get("known", 0) >= 1
    assert tiers.get("ai_new", 0) >= 1 and tiers.get("unknown_new", 0) >= 1
    groups = store.list_groups(state.engine, case.id)
    # every camera-new group ranks above every known group
    worst_camera = max(g.rank for g in groups if g.tier == "camera_new")
    best_known = min(g.rank for g in groups if g.tier == "known")
    assert worst_camera < best_known
    assert store.file_errors(state.engine, case.id)  # the broken file
    accounts.create_user(state.engine, "sam", PASSWORD, "specialist")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = c.get("/console/login")
        c.post(
            "/console/login",
            data={"username": "sam", "password": PASSWORD, "csrf_token": login_csrf(r.text)},
        )
        page = c.get("/console/triage").text
        assert DEMO_CASE in page
        q = c.get(f"/console/triage/{case_id}").text
        assert len(re.findall(r'data-rank="\d+"', q)) == len(groups)
        first = groups[0]
        r = c.get(f"/console/triage/groups/{first.id}/preview")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
