"""The HTML triage report in a real browser (Playwright driving Debian's Chromium):
blurred by default, reveal one group at a time, Esc hides, no request leaves the file,
the CSP lets the pinned script run and nothing else. Screenshots go to
``$SENTINELLE_TEST_ARTIFACTS`` (default ``tests/artifacts``) ``/triage-report/``.

Chromium: ``$SENTINELLE_CHROMIUM`` or ``/usr/bin/chromium``; a missing browser FAILS the
test, ``SENTINELLE_TEST_BROWSER=off`` skips it knowingly (as the console's browser test).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from triage_cases import TriageWorld, build_case

from sentinelle.store.db import open_engine
from sentinelle.triage import store
from sentinelle.triage.report_html import write_report

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SENTINELLE_CHROMIUM", "/usr/bin/chromium")


def _artifacts() -> Path:
    base = os.environ.get("SENTINELLE_TEST_ARTIFACTS", "").strip()
    out = (Path(base) if base else REPO / "tests" / "artifacts") / "triage-report"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture()
def browser() -> Iterator[object]:
    if os.environ.get("SENTINELLE_TEST_BROWSER", "").lower() == "off":
        reason = os.environ.get("SENTINELLE_TEST_SKIP_REASON", "").strip()
        pytest.skip(reason or "browser tests disabled (SENTINELLE_TEST_BROWSER=off)")
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's `chromium`, set "
            "SENTINELLE_CHROMIUM, or SENTINELLE_TEST_BROWSER=off to skip"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def world(sqlite_url: str, tmp_path: Path) -> Iterator[TriageWorld]:
    eng = open_engine(sqlite_url)
    yield build_case(eng, tmp_path)
    eng.dispose()


def test_reveal_one_at_a_time_in_chromium(world: TriageWorld, browser, tmp_path: Path) -> None:
    out = write_report(world.engine, world.case.name, tmp_path / "report.html")
    html = out.read_text()
    sharp = json.loads(re.search(r'id="sharp">(.*?)</script>', html, re.S).group(1))
    keys = [store.get_group(world.engine, g).key for g in world.group_ids]
    a, b = keys[0], keys[2]
    shots = _artifacts()
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("request", lambda r: requests.append(r.url))
    page.goto(out.as_uri())

    def src(key: str) -> list[str]:
        return page.eval_on_selector_all(
            f'img[data-group="{key}"]', "els => els.map(e => e.getAttribute('src'))"
        )

    def revealed() -> list[str]:
        return page.eval_on_selector_all(
            "img.revealed", "els => [...new Set(els.map(e => e.dataset.group))]"
        )

    blurred_a, blurred_b = src(a)[0], src(b)[0]
    assert blurred_a != sharp[a] and revealed() == []
    assert len(src(a)) == 2  # the queue and the series view show the same group
    page.screenshot(path=str(shots / "1-blurred.png"), full_page=True)
    page.click(f'#g-{a} button[data-reveal="{a}"]')
    assert src(a) == [sharp[a], sharp[a]] and revealed() == [a]
    assert src(b) == [blurred_b]
    assert page.get_attribute(f'#g-{a} button[data-reveal="{a}"]', "aria-pressed") == "true"
    # still grayscale until "colour"
    assert page.eval_on_selector(f"#g-{a} img", "e => getComputedStyle(e).filter") == (
        "grayscale(1)"
    )
    page.click(f'#g-{a} button[data-colour="{a}"]')
    assert page.eval_on_selector(f"#g-{a} img", "e => getComputedStyle(e).filter") == "none"
    page.screenshot(path=str(shots / "2-revealed-a.png"), full_page=True)
    # revealing another hides the first: one at a time
    page.click(f'#g-{b} button[data-reveal="{b}"]')
    assert revealed() == [b] and src(a) == [blurred_a, blurred_a] and src(b) == [sharp[b]]
    assert page.is_hidden(f'#g-{a} button[data-colour="{a}"]')
    # a second click on the same group hides it
    page.click(f'#g-{b} button[data-reveal="{b}"]')
    assert revealed() == [] and src(b) == [blurred_b]
    # Esc hides too
    page.click(f'#g-{a} button[data-reveal="{a}"]')
    assert revealed() == [a]
    page.keyboard.press("Escape")
    assert revealed() == [] and src(a) == [blurred_a, blurred_a]
    page.screenshot(path=str(shots / "3-hidden-again.png"), full_page=True)
    # nothing but the file itself and data: images was requested; no CSP violation
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    assert problems == []


def test_reveal_hides_itself_after_the_timeout(world: TriageWorld, browser, tmp_path: Path) -> None:
    out = write_report(world.engine, world.case.name, tmp_path / "report.html")
    # the page's own timeout, shortened for the test (the attribute the script reads)
    text = out.read_text().replace('data-reveal-seconds="20"', 'data-reveal-seconds="1"')
    out.write_text(text)
    key = store.get_group(world.engine, world.group_ids[0]).key
    page = browser.new_context().new_page()
    page.goto(out.as_uri())
    page.click(f'#g-{key} button[data-reveal="{key}"]')
    assert page.eval_on_selector_all("img.revealed", "els => els.length") == 2
    page.wait_for_function("() => document.querySelectorAll('img.revealed').length === 0")
