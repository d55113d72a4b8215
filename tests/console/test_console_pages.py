"""The review console's pages over HTTP (TestClient), on SQLite and PostgreSQL.

Each test drives the real app with a real database and benign media stored
encrypted (see ``tests/support/console_support.py``): login and sessions, CSRF and origin
checks, role checks, blurred previews, audited reveals against the daily cap,
muted video, decisions, passing a case, report drafts with XSD validation,
settings, and hostile input (clear structured errors, never a crash).
"""

from __future__ import annotations

import base64
import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from console_support import (
    PASSWORD,
    build_console,
    console_env,
    login_csrf,
    page_csrf,
)
from fastapi.testclient import TestClient
from PIL import Image

from sentinelle.audit import list_events, verify_chain
from sentinelle.review import config, exposure
from sentinelle.review.tables import case_items, case_passes
from sentinelle.service.app import create_app
from sentinelle.service.settings import Settings

BASE = "http://127.0.0.1"


@pytest.fixture()
def world(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    console_env(monkeypatch)
    w = build_console(db_url, tmp_path)
    yield w
    w.engine.dispose()


def _client(world) -> TestClient:
    return TestClient(world.app, base_url=BASE)


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the session's CSRF token."""
    r = client.get("/console/login")
    assert r.status_code == 200
    r = client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": login_csrf(r.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return page_csrf(client.get("/console/settings").text)


def hx(csrf: str) -> dict[str, str]:
    return {"X-CSRF-Token": csrf, "HX-Request": "true"}


def events(world, action: str) -> list:
    return [e for e in list_events(world.engine, limit=10_000) if e.action == action]


def error_code(html: str) -> str | None:
    m = re.search(r'data-code="([a-z_]+)"', html)
    return m.group(1) if m else None


# ------------------------------------------------------------------ login
def test_login_sets_a_strict_httponly_cookie_and_logout_revokes_it(world) -> None:
    with _client(world) as c:
        r = c.get("/console/login")
        assert "csrf_token" in r.text
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
        assert r.headers["cache-control"] == "no-store"
        r = c.post(
            "/console/login",
            data={"username": "rita", "password": PASSWORD, "csrf_token": login_csrf(r.text)},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/console/queue"
        cookie = next(
            h for h in r.headers.get_list("set-cookie") if h.startswith("sentinelle_session=")
        )
        low = cookie.lower()
        assert "httponly" in low and "samesite=strict" in low and "path=/console" in low
        assert "secure" not in low  # plain HTTP on loopback only (make run)
        csrf = page_csrf(c.get("/console/queue").text)
        old_cookie = c.cookies.get("sentinelle_session")
        r = c.post("/console/logout", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
        # the old session token is dead even if a copy of the cookie survives
        c.cookies.set("sentinelle_session", old_cookie, domain="127.0.0.1", path="/console")
        r = c.get("/console/queue", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")


def test_cookie_is_secure_off_loopback(world) -> None:
    with TestClient(world.app, base_url="https://review.example.org") as c:
        r = c.get("/console/login")
        r = c.post(
            "/console/login",
            data={"username": "rita", "password": PASSWORD, "csrf_token": login_csrf(r.text)},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert "secure" in r.headers["set-cookie"].lower()


def test_bad_logins_get_clear_codes(world) -> None:
    with _client(world) as c:
        token = login_csrf(c.get("/console/login").text)
        r = c.post(
            "/console/login",
            data={"username": "rita", "password": "wrong password!", "csrf_token": token},
        )
        assert r.status_code == 401 and error_code(r.text) == "invalid_credentials"
        # no login CSRF token -> refused before any password check
        r = c.post("/console/login", data={"username": "rita", "password": PASSWORD})
        assert r.status_code == 403 and error_code(r.text) == "csrf_failed"
        # another site posting the form (Origin) -> refused
        token = login_csrf(c.get("/console/login").text)
        r = c.post(
            "/console/login",
            data={"username": "rita", "password": PASSWORD, "csrf_token": token},
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403 and error_code(r.text) == "csrf_failed"
        # hostile sizes: a clear 422, never a crash
        r = c.post(
            "/console/login",
            data={"username": "x" * 5000, "password": PASSWORD, "csrf_token": token},
        )
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "invalid_request"
    assert events(world, "auth.login_failed")


def test_login_with_totp_and_open_redirects_refused(world) -> None:
    import pyotp

    from sentinelle.review import accounts

    secret, _uri = accounts.start_totp(world.engine, "sam")
    accounts.confirm_totp(world.engine, "sam", pyotp.TOTP(secret).now())
    with _client(world) as c:
        token = login_csrf(c.get("/console/login").text)
        r = c.post(
            "/console/login",
            data={"username": "sam", "password": PASSWORD, "csrf_token": token},
        )
        assert r.status_code == 401 and error_code(r.text) == "totp_required"
        token = login_csrf(r.text)
        code = pyotp.TOTP(secret).at(time.time() + 30)  # next step (the current one is used)
        r = c.post(
            "/console/login",
            data={
                "username": "sam",
                "password": PASSWORD,
                "totp": code,
                "csrf_token": token,
                "next": "https://evil.example/phish",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/console/queue"


def test_pages_need_a_session(world) -> None:
    with _client(world) as c:
        r = c.get(f"/console/cases/{world.case_id}", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == f"/console/login?next=/console/cases/{world.case_id}"
        r = c.get(f"/console/items/{world.match_item}/preview", follow_redirects=False)
        assert r.status_code == 303
        r = c.post(f"/console/items/{world.match_item}/reveal", headers={"HX-Request": "true"})
        assert r.status_code == 401 and r.headers["hx-redirect"] == "/console/login"
        c.cookies.set("sentinelle_session", "forged-" + "a" * 40, domain="127.0.0.1")
        r = c.get("/console/queue", follow_redirects=False)
        assert r.status_code == 303


# --------------------------------------------------------- queue and case
def test_queue_and_case_show_every_signal(world) -> None:
    with _client(world) as c:
        login(c, "rita")
        r = c.get("/console/queue")
        assert r.status_code == 200 and "acct-42" in r.text
        r = c.get(f"/console/cases/{world.case_id}")
        assert r.status_code == 200
        page = r.text
        assert "known" in page and "distance" in page  # bank, entry, distance
        assert "minor_sexual 0.97" in page and "default-v1" in page  # guard block
        assert "no_evidence" in page  # provenance verdict
        # media is never inline on the page: blurred previews by URL, no data: images
        assert f'src="/console/items/{world.match_item}/preview"' in page
        assert "data:image" not in page
        assert 'data-state="blurred"' in page
    assert any(e.target == f"case:{world.case_id}" for e in events(world, "case.view"))


def test_take_next_and_pass_without_penalty(world) -> None:
    with _client(world) as c:
        csrf = login(c, "rita")
        r = c.post("/console/queue/next", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/console/cases/{world.case_id}"
        page = c.get(f"/console/cases/{world.case_id}").text
        assert "Pass to a colleague" in page
        assert f'<option value="{world.users["reviewer2"].id}">' in page
        before = exposure.exposure_status(world.engine, world.users["reviewer"].id)
        r = c.post(
            f"/console/cases/{world.case_id}/pass",
            data={"csrf_token": csrf, "to_user": str(world.users["reviewer2"].id), "reason": ""},
            follow_redirects=False,
        )
        assert r.status_code == 303 and "flash=passed" in r.headers["location"]
        assert "Nothing is counted against you" in c.get(r.headers["location"]).text
        after = exposure.exposure_status(world.engine, world.users["reviewer"].id)
        assert after.items_viewed == before.items_viewed
        with world.engine.connect() as conn:
            rows = conn.execute(sa.select(case_passes)).all()
        assert len(rows) == 1 and rows[0].to_user_id == world.users["reviewer2"].id
        # rita no longer holds it: passing again is a clear conflict
        r = c.post(f"/console/cases/{world.case_id}/pass", data={"csrf_token": csrf})
        assert r.status_code == 409 and error_code(r.text) == "not_assigned"


# ------------------------------------------------------------------ media
def _high_freq(img: Image.Image) -> float:
    a = np.asarray(img.convert("L"), dtype=np.float32)
    return float(np.abs(np.diff(a, axis=1)).mean())


def test_preview_is_blurred_grayscale_and_never_cached(world) -> None:
    with _client(world) as c:
        login(c, "rita")
        r = c.get(f"/console/items/{world.match_item}/preview")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.headers["cache-control"] == "no-store"
        preview = Image.open(io.BytesIO(r.content))
        assert preview.mode == "L"
        sharp = Image.open(io.BytesIO(world.photo_jpeg)).resize(preview.size)
        assert _high_freq(preview) < 0.25 * _high_freq(sharp)
        # video: a strip of key frames, blurred too
        r = c.get(f"/console/items/{world.video_item}/preview")
        assert r.status_code == 200
        strip = Image.open(io.BytesIO(r.content))
        assert strip.width > 2 * strip.height
        # an item without media, an unknown item
        r = c.get(f"/console/items/{world.guard_item}/preview")
        assert r.status_code == 404 and r.headers["x-error-code"] == "no_media"
        r = c.get("/console/items/999999/preview")
        assert r.status_code == 404 and r.headers["x-error-code"] == "unknown_item"


def test_reveal_is_audited_counted_and_reblurs(world) -> None:
    with _client(world) as c:
        csrf = login(c, "rita")
        r = c.post(f"/console/items/{world.match_item}/reveal", headers=hx(csrf))
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"
        assert 'data-state="revealed"' in r.text
        m = re.search(r'src="data:image/jpeg;base64,([^"]+)"', r.text)
        assert m
        revealed = Image.open(io.BytesIO(base64.b64decode(m.group(1))))
        sharp = Image.open(io.BytesIO(world.photo_jpeg)).resize(revealed.size)
        assert _high_freq(revealed) > 0.6 * _high_freq(sharp)  # really in the clear
        assert 'id="exposure" hx-swap-oob="true"' in r.text  # header counter updated
        st = exposure.exposure_status(world.engine, world.users["reviewer"].id)
        assert (st.items_viewed, st.reveals) == (1, 1)
        r = c.post(f"/console/items/{world.match_item}/reblur", headers=hx(csrf))
        assert r.status_code == 200 and 'data-state="blurred"' in r.text
        assert "data:image" not in r.text
    reveals = events(world, "media.reveal")
    assert [e.target for e in reveals] == [f"item:{world.match_item}"]
    assert reveals[0].actor == "user:rita"
    assert verify_chain(world.engine).ok


def test_reveal_refused_past_the_daily_cap(world) -> None:
    config.set_config(world.engine, "daily_exposure_cap", 1, actor="cli")
    with _client(world) as c:
        csrf = login(c, "rita")
        assert c.post(f"/console/items/{world.match_item}/reveal", headers=hx(csrf)).is_success
        r = c.post(f"/console/items/{world.video_item}/reveal", headers=hx(csrf))
        assert r.status_code == 429 and error_code(r.text) == "exposure_cap_reached"
        assert r.headers["hx-retarget"] == "#alerts"
        assert "data:image" not in r.text
        page = c.get(f"/console/cases/{world.case_id}").text
        assert "reached today" in page and 'class="exposure full"' in page
    assert len(events(world, "media.reveal")) == 1


def test_revealed_video_is_muted_without_autoplay_and_grant_bound(world) -> None:
    with _client(world) as c:
        csrf = login(c, "rita")
        r = c.post(f"/console/items/{world.video_item}/reveal", headers=hx(csrf))
        assert r.status_code == 200
        video = re.search(r"<video[^>]*>", r.text).group(0)
        assert " muted " in video and "autoplay" not in video and 'preload="none"' in video
        src = re.search(r'<source src="([^"]+)" type="video/mp4">', r.text).group(1)
        src = src.replace("&amp;", "&")
        r = c.get(src)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        assert r.content[4:8] == b"ftyp"
        # no grant, a forged grant, a grant for another item
        assert c.get(f"/console/items/{world.video_item}/video").status_code == 403
        bad = re.sub(r"grant=\d+\.", "grant=9999999999.", src)
        assert c.get(bad).status_code == 403
        other = src.replace(f"/items/{world.video_item}/", f"/items/{world.match_item}/")
        assert c.get(other).status_code == 403
    with _client(world) as c2:  # another user's session cannot use the link
        login(c2, "remy")
        assert c2.get(src).status_code == 403


def test_roles_are_enforced_server_side(world) -> None:
    with _client(world) as c:
        csrf = login(c, "adam")  # admin: manages users, does not see cases or media
        r = c.get(f"/console/cases/{world.case_id}")
        assert r.status_code == 403 and error_code(r.text) == "forbidden"
        r = c.get(f"/console/items/{world.match_item}/preview")
        assert r.status_code == 403
        r = c.post(f"/console/items/{world.match_item}/reveal", headers=hx(csrf))
        assert r.status_code == 403
    with _client(world) as c:
        csrf = login(c, "lena")  # legal: sees the case, reveals only when granted
        assert c.get(f"/console/cases/{world.case_id}").status_code == 200
        r = c.post(f"/console/items/{world.match_item}/reveal", headers=hx(csrf))
        assert r.status_code == 403 and error_code(r.text) == "forbidden"
        r = c.post(
            f"/console/items/{world.match_item}/decide",
            headers=hx(csrf),
            data={"verdict": "confirm", "category": "A1"},
        )
        assert r.status_code == 403
    assert not events(world, "media.reveal")


def test_posts_need_the_csrf_token_and_same_origin(world) -> None:
    with _client(world) as c:
        csrf = login(c, "rita")
        url = f"/console/items/{world.match_item}/reveal"
        assert c.post(url).status_code == 403
        r = c.post(url, headers={"X-CSRF-Token": "0" * 64})
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
        r = c.post(url, headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"})
        assert r.status_code == 403
        assert c.post(url, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert len(events(world, "media.reveal")) == 1


# -------------------------------------------------------------- decisions
def test_decide_confirm_opens_an_xsd_valid_report_draft(world) -> None:
    with _client(world) as c:
        csrf = login(c, "rita")
        r = c.post(
            f"/console/items/{world.match_item}/decide",
            headers=hx(csrf),
            data={"verdict": "confirm", "category": "A1", "notes": "matches the bank"},
        )
        assert r.status_code == 200, r.text
        assert 'data-status="confirmed"' in r.text
        assert "report draft #" not in r.text  # reviewers do not see drafts
    with _client(world) as c:
        login(c, "lena")  # legal sees the draft and its validation
        page = c.get(f"/console/cases/{world.case_id}").text
        draft_id = int(re.search(r'href="/console/reports/(\d+)"', page).group(1))
        r = c.get(f"/console/reports/{draft_id}")
        assert r.status_code == 200
        assert 'data-valid="true"' in r.text and "valid against the XSD" in r.text
        assert "originalFileHash" in r.text or "&lt;fileDetails" in r.text or "acct-42" in r.text
        assert c.get("/console/reports/999999").status_code == 404
    assert events(world, "decision.create")


def test_decide_rejects_bad_input_with_codes(world) -> None:
    with _client(world) as c:
        csrf = login(c, "rita")
        url = f"/console/items/{world.match_item}/decide"
        r = c.post(url, headers=hx(csrf), data={"verdict": "maybe"})
        assert r.status_code == 422 and error_code(r.text) == "bad_verdict"
        r = c.post(url, headers=hx(csrf), data={"verdict": "confirm"})
        assert r.status_code == 422  # a confirmation needs a category
        r = c.post(
            url,
            headers=hx(csrf),
            data={"verdict": "reject", "category": "custom", "custom_category": "cartoon"},
        )
        assert r.status_code == 200 and 'data-status="rejected"' in r.text
        r = c.post(url, headers=hx(csrf), data={"verdict": "reject"})
        assert r.status_code == 409 and error_code(r.text) == "already_decided"
        r = c.post("/console/items/999999/decide", headers=hx(csrf), data={"verdict": "reject"})
        assert r.status_code == 404
    with world.engine.connect() as conn:
        status = conn.execute(
            sa.select(case_items.c.status).where(case_items.c.id == world.match_item)
        ).scalar()
    assert status == "rejected"


def test_second_review_approval_by_a_specialist(world) -> None:
    config.set_config(world.engine, "second_review", True, actor="cli")
    with _client(world) as c:
        csrf = login(c, "rita")
        r = c.post(
            f"/console/items/{world.match_item}/decide",
            headers=hx(csrf),
            data={"verdict": "confirm", "category": "B1"},
        )
        assert r.status_code == 200 and "awaiting" in r.text
        decision_id = int(re.search(r'data-decision="(\d+)"', r.text).group(1))
    with _client(world) as c:
        csrf = login(c, "sam")
        assert "second review" in c.get("/console/queue").text
        r = c.post(
            f"/console/decisions/{decision_id}/approve",
            data={"csrf_token": csrf, "accept": "yes"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert 'data-status="confirmed"' in c.get(r.headers["location"]).text


def _split_oob(html: str) -> tuple[str, str]:
    """(swapped item, out-of-band case header) of a decision's htmx answer."""
    at = html.index('<div class="panel" id="case-header" hx-swap-oob="true">')
    return html[:at], html[at:]


def _case_items(world) -> list[int]:
    with world.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(case_items.c.id)
                .where(case_items.c.case_id == world.case_id)
                .order_by(case_items.c.id)
            ).scalars()
        )


def test_decide_answer_refreshes_the_case_header_out_of_band(world) -> None:
    items = _case_items(world)
    n = len(items)
    with _client(world) as c:
        csrf = login(c, "sam")  # specialist: decides, passes, and sees report drafts
        page = c.get(f"/console/cases/{world.case_id}").text
        assert 'id="take-form"' in page and f"{n} of {n} waiting" in page
        c.post(f"/console/cases/{world.case_id}/take", data={"csrf_token": csrf})
        r = c.post(
            f"/console/items/{world.match_item}/decide",
            headers=hx(csrf),
            data={"verdict": "confirm", "category": "A1"},
        )
        assert r.status_code == 200, r.text
        item_html, header = _split_oob(r.text)
        assert 'data-status="confirmed"' in item_html and 'id="case-header"' not in item_html
        assert f"{n - 1} of {n} waiting" in header
        assert '<dd id="case-assignee">sam</dd>' in header
        assert 'id="case-status">assigned<' in header
        assert 'id="pass-form"' in header and 'id="take-form"' not in header
        draft = re.search(r'href="/console/reports/(\d+)"', header)
        assert draft and 'id="case-drafts"' in header  # the draft the confirmation opened
        for item in items:
            if item != world.match_item:
                r = c.post(
                    f"/console/items/{item}/decide", headers=hx(csrf), data={"verdict": "reject"}
                )
                assert r.status_code == 200, r.text
        _item_html, header = _split_oob(r.text)
        assert 'id="case-status">closed<' in header and f"0 of {n} waiting" in header
        # a closed case offers neither taking nor passing it, in the answer and on reload
        for html in (header, c.get(f"/console/cases/{world.case_id}").text):
            assert "Pass this case" not in html and 'id="pass-form"' not in html
            assert "Take this case" not in html
        # the empty "Waiting" tab points to where the cases are
        queue = c.get("/console/queue").text
        empty = re.search(r'<p class="panel muted" id="queue-empty">(.*?)</p>', queue, re.S)
        assert empty, "an empty tab says so"
        assert '<a href="/console/queue?status=closed">Closed (1)</a>' in empty.group(1)
        assert "Awaiting approval" not in empty.group(1)  # empty tabs are not suggested


def test_non_htmx_decision_redirects_to_the_case(world) -> None:
    with _client(world) as c:
        csrf = login(c, "rita")
        r = c.post(
            f"/console/items/{world.guard_item}/decide",
            data={"csrf_token": csrf, "verdict": "reject"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == f"/console/cases/{world.case_id}"


def test_case_and_queue_wording(world) -> None:
    n = len(_case_items(world))
    with _client(world) as c:
        login(c, "rita")
        page = c.get(f"/console/cases/{world.case_id}").text
        assert "1 hash match," in page and "hash matches" not in page
        assert "1 guard signal," in page and "1 provenance verdict)" in page
        assert f"{n} of {n} waiting" in page
        prio = re.search(r'<span class="help" id="case-priority" title="([^"]+)">30<', page)
        assert prio and "hash match 30" in prio.group(1) and "highest" in prio.group(1)
        # industry classification codes carry their meaning
        for code, meaning in (
            ("A1", "prepubescent minor / sex act"),
            ("A2", "prepubescent minor / lascivious exhibition"),
            ("B1", "pubescent minor / sex act"),
            ("B2", "pubescent minor / lascivious exhibition"),
        ):
            assert f'<option value="{code}" title="{code}: {meaning}">{code} · {meaning}' in page
        # the custom box is off until "custom…" is chosen (console.js), and says so
        custom = re.search(rf'<input id="custom-{world.match_item}"[^>]*>', page).group(0)
        assert " disabled" in custom and f'data-custom-for="category-{world.match_item}"' in custom
        assert '<script src="/console/static/console.js" defer></script>' in page
        js = c.get("/console/static/console.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        assert b"data-custom-for" in js.content
        queue = c.get("/console/queue").text
        assert f"<td>{n} of {n} waiting</td>" in queue and "waiting /" not in queue
        assert re.search(r'<td title="[^"]*hash match 30[^"]*">30</td>', queue)
        assert 'id="queue-empty"' not in queue
        closed = c.get("/console/queue?status=closed").text
        assert "Nothing here." in closed
        assert '<a href="/console/queue?status=open">Waiting (1)</a>' in closed


def test_custom_category_is_used_only_when_chosen(world) -> None:
    """A stale custom text sent with a standard category is ignored (server side too)."""
    with _client(world) as c:
        csrf = login(c, "sam")
        r = c.post(
            f"/console/items/{world.match_item}/decide",
            headers=hx(csrf),
            data={"verdict": "confirm", "category": "B2", "custom_category": "leftover"},
        )
        assert r.status_code == 200, r.text
        assert 'title="pubescent minor / lascivious exhibition">B2</span>' in r.text
        assert "leftover" not in r.text


def _confirm_and_open_report(world, c: TestClient) -> str:
    csrf = login(c, "sam")
    r = c.post(
        f"/console/items/{world.match_item}/decide",
        headers=hx(csrf),
        data={"verdict": "confirm", "category": "A2"},
    )
    draft = int(re.search(r'href="/console/reports/(\d+)"', r.text).group(1))
    page = c.get(f"/console/reports/{draft}")
    assert page.status_code == 200
    return page.text


def test_report_page_shows_the_file_details_and_which_xsd(world) -> None:
    from console_support import XSD

    with _client(world) as c:
        page = _confirm_and_open_report(world, c)
    assert 'data-valid="true"' in page
    source = re.search(r'<dd id="xsd-source" data-origin="([^"]+)"><code>([^<]+)</code>', page)
    assert source and source.groups() == ("SENTINELLE_CYBERTIP_XSD", str(XSD))
    files = re.findall(r'<pre class="xml" id="file-xml-\d+">(.*?)</pre>', page, re.S)
    assert len(files) == 1
    details = files[0]
    assert details.lstrip().startswith("&lt;?xml") or details.lstrip().startswith("&lt;fileDetails")
    assert "&lt;fileDetails" in details and "&lt;fileId&gt;pending&lt;/fileId&gt;" in details
    assert world.photo_jpeg not in page.encode()  # details only, never media


def test_report_page_names_the_cached_xsd(
    world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from console_support import XSD

    cached = tmp_path / "cache" / "cybertip-test.xsd"
    cached.parent.mkdir()
    cached.write_bytes(XSD.read_bytes())
    monkeypatch.setenv("SENTINELLE_CYBERTIP_XSD", "")
    monkeypatch.setenv("SENTINELLE_CYBERTIP_XSD_CACHE", str(cached))
    with _client(world) as c:
        page = _confirm_and_open_report(world, c)
        assert 'data-valid="true"' in page
        assert 'data-origin="cached from the API&#39;s /xsd"' in page
        assert f"<code>{cached}</code>" in page
        cached.unlink()  # no XSD at all: a clear code, not a crash
        draft = re.search(r"Report draft #(\d+)", page).group(1)
        r = c.get(f"/console/reports/{draft}")
        assert r.status_code == 400 and error_code(r.text) == "xsd_unavailable"


# -------------------------------------------------------- settings, break
def test_settings_change_the_previews(world) -> None:
    with _client(world) as c:
        csrf = login(c, "rita")
        r = c.post(
            "/console/settings",
            data={"csrf_token": csrf, "blur_level": "60", "mute_audio": "on"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        s = exposure.get_settings(world.engine, world.users["reviewer"].id)
        assert (s.blur_level, s.grayscale, s.mute_audio) == (60, False, True)
        preview = Image.open(
            io.BytesIO(c.get(f"/console/items/{world.match_item}/preview").content)
        )
        assert preview.mode == "RGB"  # grayscale off
        r = c.post("/console/settings", data={"csrf_token": csrf, "blur_level": "lots"})
        assert r.status_code == 422 and error_code(r.text) == "bad_setting"
        r = c.post("/console/settings", data={"csrf_token": csrf, "blur_level": "500"})
        assert r.status_code == 422


def test_break_reminder_shows_and_resets(world) -> None:
    exposure.update_settings(world.engine, world.users["reviewer"].id, break_after_items=1)
    with _client(world) as c:
        csrf = login(c, "rita")
        c.post(f"/console/items/{world.match_item}/reveal", headers=hx(csrf))
        assert 'id="break-banner"' in c.get("/console/queue").text
        r = c.post("/console/break", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
        assert 'id="break-banner"' not in c.get("/console/queue").text


def test_static_files_and_hostile_paths(world) -> None:
    with _client(world) as c:
        r = c.get("/console/static/htmx.min.js")
        assert r.status_code == 200 and b"htmx" in r.content[:200]
        assert c.get("/console/static/console.css").status_code == 200
        assert c.get("/console/static/..%2f..%2fpyproject.toml").status_code == 404
        assert c.get("/console/static/secret.txt").status_code == 404
        login(c, "rita")
        assert c.get("/console/cases/not-a-number").status_code == 422
        assert c.get("/console/cases/99999999").status_code == 404
        assert c.get("/console/queue?status=bogus").status_code == 200


def test_metrics_export_for_legal_only_and_audited(world) -> None:
    with _client(world) as c:
        login(c, "rita")
        assert c.get("/console/metrics").status_code == 403
        assert c.get("/console/metrics/export.json").status_code == 403
    with _client(world) as c:
        login(c, "lena")
        assert "Download JSON" in c.get("/console/metrics").text
        r = c.get("/console/metrics/export.json")
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        assert r.json()["signals"]
        r = c.get("/console/metrics/export.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert c.get("/console/metrics/export.xml").status_code == 404
    exports = events(world, "export.metrics")
    assert [e.actor for e in exports] == ["user:lena", "user:lena"]


def test_demo_gives_a_new_user_a_reviewable_case(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `make run` promises: log in with the printed credentials, see the demo
    case from a benign bank match, review it behind blur, get an XSD-valid draft."""
    from sentinelle.cli.serve_cmd import _demo_setup
    from sentinelle.console.demo import setup_console_demo

    for name in (
        "SENTINELLE_MASTER_KEY",
        "SENTINELLE_MASTER_KEY_FILE",
        "SENTINELLE_REPORTER_EMAIL",
        "SENTINELLE_CYBERTIP_XSD",
    ):
        monkeypatch.setenv(name, "")  # restored (unset) after the test
        monkeypatch.delenv(name)
    from rich.console import Console

    app = create_app(Settings(database_url=db_url), start_background=False)
    state = app.state.sentinelle
    _demo_setup(Console(file=io.StringIO()), tmp_path / "demo", state.engine)
    state.matcher.refresh()
    demo = setup_console_demo(state.engine, state.matcher, tmp_path / "demo")
    assert demo.case_id is not None, demo.note
    assert (tmp_path / "demo" / "master.key").stat().st_mode & 0o077 == 0
    again = setup_console_demo(state.engine, state.matcher, tmp_path / "demo")
    assert again.case_id == demo.case_id and again.password != demo.password
    with TestClient(app, base_url=BASE) as c:
        csrf = login(c, again.username, again.password)
        page = c.get(f"/console/cases/{demo.case_id}").text
        assert "demo-account-001" in page and "demo-known" in page
        item = int(re.search(r'id="media-(\d+)" data-state="blurred"', page).group(1))
        assert c.get(f"/console/items/{item}/preview").status_code == 200
        assert c.post(f"/console/items/{item}/reveal", headers=hx(csrf)).status_code == 200
        r = c.post(
            f"/console/items/{item}/decide",
            headers=hx(csrf),
            data={"verdict": "confirm", "category": "A2"},
        )
        draft = int(re.search(r'href="/console/reports/(\d+)"', r.text).group(1))
        assert 'data-valid="true"' in c.get(f"/console/reports/{draft}").text
    state.close()


def test_without_a_master_key_media_is_unavailable_not_a_crash(
    world, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENTINELLE_MASTER_KEY")
    with _client(world) as c:
        csrf = login(c, "rita")
        r = c.get(f"/console/items/{world.match_item}/preview")
        assert r.status_code == 503 and r.headers["x-error-code"] == "no_master_key"
        r = c.post(f"/console/items/{world.match_item}/reveal", headers=hx(csrf))
        assert r.status_code == 503 and error_code(r.text) == "no_master_key"
        assert c.get(f"/console/cases/{world.case_id}").status_code == 200
    assert not events(world, "media.reveal")


@pytest.mark.parametrize(
    "path",
    [
        "/console/cases/99999999999999999999999",
        "/console/items/99999999999999999999999/preview",
        "/console/reports/99999999999999999999999",
        "/console/cases/0",
    ],
)
def test_out_of_range_ids_are_422_not_a_server_error(world, path: str) -> None:
    with _client(world) as c:
        login(c, "sam")
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 422, r.text[:200]
        assert r.json()["error"]["code"] == "invalid_request"


def test_out_of_range_ids_in_posts_are_clear_errors(world) -> None:
    """A decision id past 64 bits, or a colleague id that is no number or past
    64 bits, is a structured error, never a database overflow (500)."""
    with _client(world) as c:
        csrf = login(c, "sam")
        r = c.post(
            "/console/decisions/99999999999999999999999/approve",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
        c.post(f"/console/cases/{world.case_id}/take", data={"csrf_token": csrf})
        for bad in ("99999999999999999999", "-3", "bob"):
            r = c.post(
                f"/console/cases/{world.case_id}/pass",
                data={"csrf_token": csrf, "to_user": bad},
                follow_redirects=False,
            )
            assert r.status_code == 400 and error_code(r.text) == "bad_assignee", bad
