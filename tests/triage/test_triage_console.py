"""The console's triage queue (issue 12): a case's groups as a specialist's queue, with
the console's reviewer protection (blur, roles, CSRF, audit, daily cap), and
"confirm new -> bank (-> exchange feed)" in one step. Real app, real SQLite, real files."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from console_support import PASSWORD, build_console, console_env, login_csrf, page_csrf
from fastapi.testclient import TestClient
from PIL import Image
from triage_cases import build_case

from sentinelle.audit import list_events, verify_chain
from sentinelle.banks import BankStore
from sentinelle.exchanges.publish import Publisher
from sentinelle.exchanges.tables import peer_feed_items
from sentinelle.review import config
from sentinelle.triage import reviews, store

BASE = "http://127.0.0.1"


@pytest.fixture()
def world(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    console_env(monkeypatch)
    w = build_console(sqlite_url, tmp_path)
    t = build_case(w.engine, tmp_path, bank="known")
    yield w, t
    w.engine.dispose()


def login(c: TestClient, username: str) -> str:
    r = c.get("/console/login")
    r = c.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "csrf_token": login_csrf(r.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return page_csrf(c.get("/console/settings").text)


def hx(csrf: str) -> dict[str, str]:
    return {"X-CSRF-Token": csrf, "HX-Request": "true"}


def error_code(html: str) -> str | None:
    m = re.search(r'data-code="([a-z_]+)"', html)
    return m.group(1) if m else None


def events(engine, action: str) -> list:
    return [e for e in list_events(engine, limit=1000) if e.action == action]


def test_specialist_sees_the_queue_in_rank_order(world) -> None:
    w, t = world
    with TestClient(w.app, base_url=BASE) as c:
        login(c, "sam")
        page = c.get("/console/triage").text
        assert "op-test" in page and f'href="/console/triage/{t.case.id}"' in page
        q = c.get(f"/console/triage/{t.case.id}")
        assert q.status_code == 200
        ranks = [int(x) for x in re.findall(r'data-rank="(\d+)"', q.text)]
        assert ranks == [1, 2, 3, 4, 5]
        assert "possible real victim" in q.text and "EXIF camera Canon EOS 5D" in q.text
        assert "S-lake" in q.text
        # previews only, never the picture in the clear
        assert "data:image" not in q.text
        assert f'src="/console/triage/groups/{t.group_ids[0]}/preview"' in q.text
        # the known group cannot be "confirmed new"
        known = q.text[q.text.index(f'id="group-{t.group_ids[4]}"') :]
        assert 'value="confirmed_new"' not in known.split("</section>")[0]
    assert events(w.engine, "triage.view")


def test_preview_is_blurred_grayscale_and_not_cached(world) -> None:
    w, t = world
    with TestClient(w.app, base_url=BASE) as c:
        login(c, "sam")
        r = c.get(f"/console/triage/groups/{t.group_ids[0]}/preview")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert "no-store" in r.headers["cache-control"]
        im = Image.open(io.BytesIO(r.content))
        assert im.mode == "L"
        missing = c.get("/console/triage/groups/999999/preview")
        assert missing.status_code >= 400 and missing.headers["x-error-code"] == "unknown_group"


@pytest.mark.parametrize("username", ["rita", "lena", "adam"])
def test_roles_without_triage_are_refused(world, username: str) -> None:
    w, t = world
    with TestClient(w.app, base_url=BASE) as c:
        csrf = login(c, username)
        r = c.get(f"/console/triage/{t.case.id}")
        assert r.status_code == 403 and error_code(r.text) == "forbidden"
        assert c.get(f"/console/triage/groups/{t.group_ids[0]}/preview").status_code == 403
        r = c.post(f"/console/triage/groups/{t.group_ids[0]}/reveal", headers=hx(csrf))
        assert r.status_code == 403 and "data:image" not in r.text
        r = c.post(
            f"/console/triage/groups/{t.group_ids[0]}/decide",
            data={"csrf_token": csrf, "decision": "confirmed_new", "bank": "known"},
        )
        assert r.status_code == 403
    assert reviews.list_reviews(w.engine, t.case.id) == []
    assert events(w.engine, "media.reveal") == []


def test_reveal_needs_csrf_is_audited_and_counted(world) -> None:
    w, t = world
    gid = t.group_ids[0]
    with TestClient(w.app, base_url=BASE) as c:
        csrf = login(c, "sam")
        r = c.post(f"/console/triage/groups/{gid}/reveal", headers={"HX-Request": "true"})
        assert r.status_code == 403 and "data:image" not in r.text
        assert events(w.engine, "media.reveal") == []
        r = c.post(f"/console/triage/groups/{gid}/reveal", headers=hx(csrf))
        assert r.status_code == 200 and 'src="data:image/jpeg;base64,' in r.text
        assert 'data-state="revealed"' in r.text and "hx-swap-oob" in r.text
        assert "no-store" in r.headers.get("cache-control", "")
        back = c.post(f"/console/triage/groups/{gid}/reblur", headers=hx(csrf))
        assert 'data-state="blurred"' in back.text and "data:image" not in back.text
    (ev,) = events(w.engine, "media.reveal")
    assert ev.actor == "user:sam" and ev.target == f"triage_group:{gid}"
    assert verify_chain(w.engine).ok


def test_reveal_refused_past_the_daily_cap(world) -> None:
    w, t = world
    config.set_config(w.engine, "daily_exposure_cap", 1, actor="cli")
    with TestClient(w.app, base_url=BASE) as c:
        csrf = login(c, "sam")
        assert c.post(
            f"/console/triage/groups/{t.group_ids[0]}/reveal", headers=hx(csrf)
        ).is_success
        r = c.post(f"/console/triage/groups/{t.group_ids[1]}/reveal", headers=hx(csrf))
        assert r.status_code == 429 and error_code(r.text) == "exposure_cap_reached"
        assert "data:image" not in r.text
    assert len(events(w.engine, "media.reveal")) == 1


def test_confirm_new_adds_to_the_bank_and_shares_when_published(world) -> None:
    w, t = world
    store.set_series_name(w.engine, t.case.id, "S-lake", "Lake house")
    Publisher(w.engine).share_bank("known", category="test", expiry_days=30, actor="cli")
    gid = t.group_ids[0]
    with TestClient(w.app, base_url=BASE) as c:
        csrf = login(c, "sam")
        r = c.post(
            f"/console/triage/groups/{gid}/decide",
            data={
                "csrf_token": csrf,
                "decision": "confirmed_new",
                "bank": "known",
                "category": "A1",
                "note": "confirmed in triage",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        assert r.headers["location"].startswith(f"/console/triage/{t.case.id}?flash=shared")
        page = c.get(f"/console/triage/{t.case.id}?show=all").text
        assert "shared with its exchange" not in page  # no flash without the query
        assert "Confirmed new, added to a bank" in page
        pending = c.get(f"/console/triage/{t.case.id}").text
        assert f'id="group-{gid}"' not in pending  # decided: off the waiting queue
    media = store.group_media(w.engine, gid)
    sha = media[0].sha256
    added = [e for e in BankStore(w.engine).iter_entries("known") if e.media_ref == sha]
    assert {e.signal_type for e in added} == {"md5", "sha1", "sha256", "pdq"}
    assert all(e.category == "A1" and e.series == "Lake house" for e in added)
    with w.engine.connect() as conn:
        shared = conn.execute(sa.select(peer_feed_items.c.entry_id)).scalars().all()
    assert {e.id for e in added} <= set(shared)
    rv = reviews.get_review(w.engine, t.case.id, gid)
    assert rv is not None and (rv.decision, rv.bank, rv.category) == (
        "confirmed_new",
        "known",
        "A1",
    )
    (ev,) = events(w.engine, "triage.confirm")
    assert ev.details["added"] == 4 and ev.details["shared"] == 4


def test_confirm_without_exchange_and_other_decisions(world) -> None:
    w, t = world
    with TestClient(w.app, base_url=BASE) as c:
        csrf = login(c, "sam")
        r = c.post(
            f"/console/triage/groups/{t.group_ids[1]}/decide",
            data={"csrf_token": csrf, "decision": "confirmed_new", "bank": "known"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and "flash=confirmed" in r.headers["location"]
        r = c.post(
            f"/console/triage/groups/{t.group_ids[4]}/decide",
            data={"csrf_token": csrf, "decision": "known"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        # hostile / wrong input: clear errors, nothing written
        bad = [
            ({"decision": "confirmed_new", "bank": "known"}, t.group_ids[4], "not_new"),
            ({"decision": "confirmed_new", "bank": "nope"}, t.group_ids[2], "unknown_bank"),
            ({"decision": "confirmed_new", "bank": ""}, t.group_ids[2], "bank_required"),
            ({"decision": "delete_everything"}, t.group_ids[2], "bad_triage_decision"),
            ({"decision": "deferred", "category": "x" * 64 + "y"}, t.group_ids[2], None),
            ({"decision": "known"}, 999999, "unknown_group"),
        ]
        for data, gid, code in bad:
            r = c.post(f"/console/triage/groups/{gid}/decide", data={"csrf_token": csrf, **data})
            assert r.status_code in (400, 404, 422), (data, r.status_code)
            if code:
                assert error_code(r.text) == code, (data, r.text[:300])
        r = c.post(
            f"/console/triage/groups/{t.group_ids[2]}/decide",
            data={"decision": "known"},  # no CSRF token
        )
        assert r.status_code == 403
    decided = {r.group_id: r.decision for r in reviews.list_reviews(w.engine, t.case.id)}
    assert decided == {t.group_ids[1]: "confirmed_new", t.group_ids[4]: "known"}
    assert len(events(w.engine, "triage.decide")) == 1
