"""The review console in a real browser: Playwright for Python driving Debian's Chromium.

A live service (uvicorn in a thread, on a free port of 127.0.0.1, temporary
SQLite database, benign media stored encrypted) is worked through the way a
reviewer would: log in, open the queue, open a case, reveal an item and blur it
again, check a revealed video is muted and not playing, decide, and open the
report draft to see it is valid against the XSD. A screenshot is kept at every
step, in ``$SENTINELLE_TEST_ARTIFACTS`` (default ``tests/artifacts``)
``/console-browser/``.

Chromium: ``$SENTINELLE_CHROMIUM`` or ``/usr/bin/chromium`` (``.ci/run`` installs
Debian's package; nothing is downloaded). A missing browser FAILS the test; set
``SENTINELLE_TEST_BROWSER=off`` to skip it knowingly (``scripts/setup-test-deps``, run by
``make test``, installs Chromium when it can and sets that, with its reason, when it cannot).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_support import PASSWORD, ConsoleWorld, build_console, console_env

from sentinelle.audit import list_events, verify_chain

REPO = Path(__file__).resolve().parents[3]
CHROMIUM = os.environ.get("SENTINELLE_CHROMIUM", "/usr/bin/chromium")


def _artifacts() -> Path:
    base = os.environ.get("SENTINELLE_TEST_ARTIFACTS", "").strip()
    out = (Path(base) if base else REPO / "tests" / "artifacts") / "console-browser"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture()
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ConsoleWorld, str]]:
    """The console served for real on 127.0.0.1:<free port>."""
    import uvicorn

    console_env(monkeypatch)
    world = build_console(f"sqlite:///{tmp_path / 'console.db'}", tmp_path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(world.app, log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the console server did not start")
        time.sleep(0.05)
    try:
        yield world, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        world.engine.dispose()


@pytest.fixture()
def browser() -> Iterator[object]:
    if os.environ.get("SENTINELLE_TEST_BROWSER", "").lower() == "off":
        # scripts/setup-test-deps sets off + the reason when Chromium cannot be installed
        reason = os.environ.get("SENTINELLE_TEST_SKIP_REASON", "").strip()
        pytest.skip(reason or "browser tests disabled (SENTINELLE_TEST_BROWSER=off)")
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's `chromium` (.ci/run does), "
            "set SENTINELLE_CHROMIUM, or SENTINELLE_TEST_BROWSER=off to skip"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def _reveals(world: ConsoleWorld) -> list:
    return [e for e in list_events(world.engine, limit=10_000) if e.action == "media.reveal"]


def test_review_flow_in_chromium(live: tuple[ConsoleWorld, str], browser) -> None:
    world, base = live
    shots = _artifacts()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )

    def shot(name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    # 1. log in
    page.goto(f"{base}/console/login")
    shot("01-login")
    page.fill("#username", "sam")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console/queue")
    cookie = next(c for c in context.cookies() if c["name"] == "sentinelle_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # invisible to scripts

    # 2. the queue
    assert page.locator("#queue").get_by_text("acct-42").is_visible()
    shot("02-queue")

    # 3. the case, media blurred
    page.click(f"#queue a[href='/console/cases/{world.case_id}']")
    page.wait_for_url(f"{base}/console/cases/{world.case_id}")
    media = page.locator(f"#media-{world.match_item}")
    img = media.locator("img")
    assert media.get_attribute("data-state") == "blurred"
    assert img.get_attribute("src") == f"/console/items/{world.match_item}/preview"
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle())
    shot("03-case-blurred")

    # 4. reveal: the item in the clear, logged
    media.get_by_role("button", name="Reveal").click()
    revealed = page.locator(f"#media-{world.match_item}[data-state=revealed]")
    revealed.wait_for()
    assert revealed.locator("img").get_attribute("src").startswith("data:image/jpeg;base64,")
    assert "1 revealed" in page.locator("#exposure").inner_text()
    reveals = _reveals(world)
    assert [e.target for e in reveals] == [f"item:{world.match_item}"]
    assert reveals[0].actor == "user:sam"
    shot("04-revealed")

    # 5. blur again
    revealed.get_by_role("button", name="Blur again").click()
    blurred = page.locator(f"#media-{world.match_item}[data-state=blurred]")
    blurred.wait_for()
    assert blurred.locator("img").get_attribute("src") == (
        f"/console/items/{world.match_item}/preview"
    )
    shot("05-reblurred")

    # 6. a video: key-frame strip; revealed, the player is muted and not playing
    page.locator(f"#media-{world.video_item}").get_by_role("button", name="Reveal").click()
    video = page.locator(f"#media-{world.video_item}[data-state=revealed] video")
    video.wait_for()
    state = video.evaluate("v => ({muted: v.muted, autoplay: v.autoplay, paused: v.paused})")
    assert state == {"muted": True, "autoplay": False, "paused": True}
    shot("06-video-revealed")
    page.locator(f"#media-{world.video_item}").get_by_role("button", name="Blur again").click()
    page.locator(f"#media-{world.video_item}[data-state=blurred]").wait_for()
    assert len(_reveals(world)) == 2

    # 7. decide: confirm, category A1, with notes
    form = page.locator(f"#decide-{world.match_item}")
    custom = form.locator("input[name=custom_category]")
    assert custom.is_disabled()  # only for "custom…" (console.js)
    form.locator("select[name=category]").select_option("custom")
    assert custom.is_enabled()
    form.locator("select[name=verdict]").select_option("confirm")
    form.locator("select[name=category]").select_option("A1")
    assert custom.is_disabled()
    assert page.locator("#case-items").inner_text().startswith("3 of 3 waiting")
    assert page.locator("#case-drafts").count() == 0
    form.locator("textarea[name=notes]").fill("matches the known bank entry")
    form.get_by_role("button", name="Record decision").click()
    page.locator(f"#item-{world.match_item}[data-status=confirmed]").wait_for()
    # the case header was refreshed with the answer (out of band), without a reload
    page.locator("#case-drafts").wait_for()
    assert page.locator("#case-items").inner_text().startswith("2 of 3 waiting")
    assert page.locator("#case-header").count() == 1
    shot("07-decided")

    # 8. the report draft, validated against the XSD
    page.click("#draft-link")
    page.wait_for_url(lambda url: url.startswith(f"{base}/console/reports/"))
    result = page.locator("#xsd-result")
    assert result.get_attribute("data-valid") == "true"
    assert "valid against the XSD" in result.inner_text()
    shot("08-report-draft")

    assert problems == [], problems  # no CSP violation, no script error
    assert verify_chain(world.engine).ok
    context.close()


def test_logged_out_browser_is_sent_to_login(live: tuple[ConsoleWorld, str], browser) -> None:
    world, base = live
    page = browser.new_page()
    page.goto(f"{base}/console/cases/{world.case_id}")
    page.wait_for_url(lambda url: url.startswith(f"{base}/console/login?next=/console/cases/"))
    page.fill("#username", "rita")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert page.locator("[data-code=invalid_credentials]").is_visible()
    page.screenshot(path=str(_artifacts() / "09-login-failed.png"))
    page.close()


def test_admin_pages_in_chromium(live: tuple[ConsoleWorld, str], browser) -> None:
    """An administrator opens preservation and the audit trail, and verifies the chain."""
    world, base = live
    shots = _artifacts()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.goto(f"{base}/console/login")
    page.fill("#username", "adam")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console/metrics")
    page.click("nav a[href='/console/holds']")
    page.locator(f"#case-{world.case_id}[data-state=unheld]").wait_for()
    shot = shots / "10-preservation.png"
    page.screenshot(path=str(shot), full_page=True)
    page.click("nav a[href='/console/audit']")
    page.locator("#audit").wait_for()
    page.click("#verify-chain")  # htmx: the result is swapped in, no reload
    result = page.locator("#verify-result")
    result.wait_for()
    assert result.get_attribute("data-ok") == "true"
    assert "Chain intact" in result.inner_text()
    page.screenshot(path=str(shots / "11-audit-verified.png"), full_page=True)
    assert problems == [], problems
    assert [e.actor for e in list_events(world.engine, action="audit.verify")] == ["user:adam"]
    context.close()


def test_french_console_in_chromium(live: tuple[ConsoleWorld, str], browser) -> None:
    """A reviewer switches the console to French on the settings page; htmx fragments
    (reveal, blur again, the exposure badge) and the login page follow."""
    world, base = live
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(f"{base}/console/login")
    page.fill("#username", "rita")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console/queue")
    page.click("nav a[href='/console/settings']")
    page.select_option("#locale", "fr")
    page.click("form[action='/console/settings'] button[type=submit]")
    page.wait_for_url(f"{base}/console/settings?flash=settings")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("nav a[href='/console/queue']").inner_text() == "File d'attente"
    page.goto(f"{base}/console/cases/{world.case_id}")
    media = page.locator(f"#media-{world.match_item}")
    media.get_by_role("button", name="Dévoiler").click()
    revealed = page.locator(f"#media-{world.match_item}[data-state=revealed]")
    revealed.wait_for()
    assert "dévoilés\u00a0: 1" in page.locator("#exposure").inner_text()
    revealed.get_by_role("button", name="Flouter à nouveau").click()
    page.locator(f"#media-{world.match_item}[data-state=blurred]").wait_for()
    page.screenshot(path=str(_artifacts() / "12-case-in-french.png"), full_page=True)
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url(f"{base}/console/login")
    assert page.get_by_role("button", name="Se connecter").is_visible()
    assert not problems, problems
    context.close()
