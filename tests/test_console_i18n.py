"""The console in French and English: catalog, templates, every page rendered in French.

Three nets, each able to fail on its own:

1. the French catalog is complete: every msgid has a French msgstr (every plural
   form), none fuzzy, the same ``%(name)s`` placeholders, and the catalog holds
   exactly what the sources mark today (a string marked in a template or with
   ``N_`` but never translated fails here);
2. no template has visible text outside a translation call: each template is
   parsed by Jinja2, its text nodes and literal strings put back into an HTML
   skeleton (translated calls and expressions replaced by markers) and every
   visible text node and human-facing attribute (``title``, ``alt``,
   ``placeholder``, ``aria-label``) checked for words;
3. every console page, rendered for real (real app, real database, each role)
   with French chosen in the user's settings, shows none of the catalog's
   English msgids (chunks of more than :data:`MIN_CHUNK` characters that differ
   from their translation) and no English function words: this catches
   untranslated Python messages (flashes, labels, errors) as well.

A self-check runs each net on English input and asserts it does flag it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from console_support import PASSWORD, build_console, console_env, login_csrf, page_csrf
from fastapi.testclient import TestClient
from jinja2 import nodes

from sentinelle.console import i18n, labels
from sentinelle.console.views import TEMPLATES
from sentinelle.review import config, exposure

BASE = "http://127.0.0.1"
SRC = Path(i18n.__file__).resolve().parents[1]  # src/sentinelle
MIN_CHUNK = 10
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
#: Words that are the same in both languages or are names (never translated).
NEUTRAL_WORDS = {
    "Sentinelle", "CyberTipline", "XSD", "TOTP", "SHA", "HMAC", "UTC", "JSON", "CSV", "XML",
    "MAC", "KiB", "English", "Français",
}  # fmt: skip
#: English function words that never occur in French UI text.
ENGLISH_WORDS = {
    "the", "and", "you", "your", "with", "this", "that", "from", "for", "is", "are", "has",
    "have", "not", "was", "of", "to", "be", "been", "no", "yet", "here", "by", "or", "all",
}  # fmt: skip


# ====================================================================== helpers
def french_catalog():
    with i18n.catalog_path("fr").open("rb") as f:
        return read_po(f, locale="fr")


def _ids(message) -> tuple[str, ...]:
    return tuple(message.id) if isinstance(message.id, tuple | list) else (message.id,)


def _strings(message) -> tuple[str, ...]:
    s = message.string
    return tuple(s) if isinstance(s, tuple | list) else (s,)


def extracted_messages() -> set[str | tuple[str, ...]]:
    """What the sources mark for translation today (same mapping as ``pybabel extract``)."""
    with (i18n.LOCALE_DIR / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: set[str | tuple[str, ...]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(SRC), method_map, options_map
    ):
        found.add(tuple(message) if isinstance(message, tuple | list) else message)
    return found


class _Visible(HTMLParser):
    """Visible text and human-facing attributes of an HTML document or fragment."""

    HIDDEN = {"script", "style", "code", "pre", "textarea"}
    ATTRS = {"title", "alt", "placeholder", "aria-label"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag in self.HIDDEN:
            self._hidden += 1
        for name, value in attrs:
            shown_value = tag == "input" and ("type", "submit") in attrs and name == "value"
            if value and (name in self.ATTRS or shown_value):
                self.parts.append(value)

    def handle_endtag(self, tag) -> None:
        if tag in self.HIDDEN and self._hidden:
            self._hidden -= 1

    def handle_data(self, data) -> None:
        if not self._hidden and data.strip():
            self.parts.append(data)


def visible_text(html: str) -> list[str]:
    parser = _Visible()
    parser.feed(html)
    parser.close()
    return [" ".join(p.split()) for p in parser.parts]


def _chunks(msgid: str) -> list[str]:
    """The literal pieces of a msgid between placeholders and HTML tags."""
    pieces = re.split(r"%\(\w+\)[sd]|<[^>]+>", msgid)
    return [" ".join(p.split()).strip(" .,:;()·") for p in pieces]


def english_leaks(html: str, catalog) -> list[str]:
    """English msgid chunks (> MIN_CHUNK chars, differing from French) and English
    function words found in the visible text of ``html``."""
    text = visible_text(html)
    joined = "\n".join(text)
    french = "\n".join(" ".join(s.split()) for m in catalog if m.id for s in _strings(m))
    leaks = []
    for m in catalog:
        if not m.id:
            continue
        for msgid, msgstr in zip(_ids(m), _strings(m), strict=False):
            if msgid == msgstr:
                continue
            for chunk in _chunks(msgid):
                if len(chunk) > MIN_CHUNK and chunk in joined and chunk not in french:
                    leaks.append(f"msgid chunk {chunk!r}")
    for part in text:
        words = set(re.findall(r"\w+", part))  # whole words: "notée" is not "not"
        hits = sorted(w for w in words if w in ENGLISH_WORDS)
        if hits:
            leaks.append(f"English words {hits} in {part!r}")
    return leaks


# -------------------------------------------------------- template skeletons
_TRANSLATE_CALLS = {"gettext", "ngettext", "pgettext", "npgettext", "_"}
_T, _X = "\x01", "\x02"  # translated text / any other expression


def _is_translation(node: nodes.Node) -> bool:
    return (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Name)
        and node.node.name in _TRANSLATE_CALLS
    )


def _expr(node: nodes.Node, out: list[str]) -> None:
    """An output expression: literal strings are text, translation calls are not."""
    if _is_translation(node):
        out.append(_T)
    elif isinstance(node, nodes.Const):
        if isinstance(node.value, str):
            out.append(node.value)
    elif isinstance(node, nodes.CondExpr):
        _expr(node.expr1, out)
        out.append(" ")
        if node.expr2 is not None:
            _expr(node.expr2, out)
    elif isinstance(node, nodes.Or | nodes.And):  # name or "nobody": either may show
        _expr(node.left, out)
        out.append(" ")
        _expr(node.right, out)
    elif isinstance(node, nodes.MarkSafe | nodes.MarkSafeIfAutoescape):
        _expr(node.expr, out)
    elif isinstance(node, nodes.Mod):  # "..." % {...}: the left side is what shows
        _expr(node.left, out)
    elif isinstance(node, nodes.Concat):
        for n in node.nodes:
            _expr(n, out)
    elif isinstance(node, nodes.Filter) and node.node is not None and not node.args:
        _expr(node.node, out)  # "text"|upper shows the text; with arguments: a format
    else:
        out.append(_X)


def _walk(node: nodes.Node, out: list[str]) -> None:
    if isinstance(node, nodes.Output):
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                out.append(child.data)
            else:
                _expr(child, out)
        return
    if isinstance(node, nodes.Assign | nodes.AssignBlock | nodes.Include | nodes.Extends):
        return
    for child in node.iter_child_nodes():
        if isinstance(child, nodes.Stmt | nodes.Template | nodes.Output):
            _walk(child, out)


def untranslated_template_text(source: str) -> list[str]:
    """Words of ``source`` (a template) that would show outside a translation call."""
    out: list[str] = []
    _walk(TEMPLATES.env.parse(source), out)
    found = []
    for part in visible_text("".join(out)):
        part = part.replace(_T, " ").replace(_X, " ")
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]", part)]
        words = [w for w in words if w not in NEUTRAL_WORDS]
        if words:
            found.append(part.strip())
    return found


def console_templates() -> dict[str, str]:
    root = SRC / "templates" / "console"
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(root.glob("*.html"))}


# ====================================================================== catalog
def test_every_msgid_has_a_french_translation_with_the_same_placeholders() -> None:
    catalog = french_catalog()
    assert catalog.num_plurals >= 2
    messages = [m for m in catalog if m.id]
    assert len(messages) > 250  # the whole console, not a sample
    problems = []
    for m in messages:
        strings = _strings(m)
        if m.fuzzy:
            problems.append(f"fuzzy: {m.id!r}")
        if isinstance(m.id, tuple | list) and len(strings) != catalog.num_plurals:
            problems.append(f"plural forms: {m.id!r}")
        for s in strings:
            if not s or not s.strip():
                problems.append(f"empty: {m.id!r}")
        wanted = {p for i in _ids(m) for p in PLACEHOLDER.findall(i)}
        for s in strings:
            if set(PLACEHOLDER.findall(s)) != wanted:
                problems.append(f"placeholders differ: {m.id!r} -> {s!r}")
    assert not problems, "\n".join(problems)


def test_the_catalog_holds_exactly_what_the_sources_mark() -> None:
    in_catalog = {tuple(m.id) if isinstance(m.id, list | tuple) else m.id for m in french_catalog()}
    in_catalog.discard("")
    extracted = extracted_messages()
    missing = sorted(map(str, extracted - in_catalog))
    stale = sorted(map(str, in_catalog - extracted))
    assert not missing, "marked but not in the French catalog (run pybabel update):\n" + "\n".join(
        missing
    )
    assert not stale, "in the catalog but no longer in the sources:\n" + "\n".join(stale)
    # the Python-side messages are marked too: labels, error texts, flashes, queue tabs
    for text in (*labels.CATEGORY_LABELS.values(), *labels.ERROR_MESSAGES.values()):
        assert text in extracted
    for group in labels.LABELS.values():
        assert set(group.values()) <= extracted


def test_every_error_code_raised_by_the_console_has_a_french_text() -> None:
    """Codes the console's own modules raise are shown in French, not as a generic sentence
    (codes of the service layers fall back to it, next to the code itself)."""
    raised = set()
    for path in (SRC / "console").rglob("*.py"):
        raised |= set(re.findall(r'code="([a-z_]+)"', path.read_text(encoding="utf-8")))
    assert "csrf_failed" in raised and "bad_assignee" in raised
    assert sorted(raised - set(labels.ERROR_MESSAGES)) == []
    with i18n.use_locale("fr"):
        assert labels.error_message("bad_verdict", "verdict must be ...") == (
            "Choisissez une décision\u00a0: confirmer ou rejeter."
        )
        assert labels.error_message("no_such_code", "x") == "L'action n'a pas pu aboutir."
    with i18n.use_locale("en"):  # English pages show the precise message itself
        assert labels.error_message("bad_verdict", "verdict must be one of") == (
            "verdict must be one of"
        )


def test_the_compiled_catalog_translates_at_run_time() -> None:
    with i18n.use_locale("fr"):
        assert i18n.gettext("Queue") == "File d'attente"
        assert i18n.ngettext("%(num)s problem", "%(num)s problems", 2) == "%(num)s problèmes"
        assert labels.label("role", "reviewer") == "analyste"
        assert labels.label("category", "custom-x") == "custom-x"  # the reviewer's own words
    with i18n.use_locale("en"):
        assert i18n.gettext("Queue") == "Queue"
    with i18n.use_locale("xx"):  # unknown: English
        assert i18n.current_locale() == "en"
    assert set(exposure.LOCALES) == set(i18n.LOCALES)  # what a user can save, the console speaks


# ==================================================================== templates
def test_no_template_shows_text_outside_a_translation_call() -> None:
    templates = console_templates()
    assert "queue.html" in templates and "base.html" in templates
    problems = {
        name: found for name, src in templates.items() if (found := untranslated_template_text(src))
    }
    assert not problems, problems


def test_the_template_check_flags_untranslated_text() -> None:
    assert untranslated_template_text("<p>Hello world</p>") == ["Hello world"]
    assert untranslated_template_text('<span title="Some tip">{{ _("x") }}</span>')
    assert untranslated_template_text('<p>{{ name or "nobody" }}</p>')
    assert untranslated_template_text("<p>{% if a %}Waiting{% endif %}</p>")
    assert untranslated_template_text('<input value="Go" type="submit">')
    assert not untranslated_template_text('<button name="a" value="yes" type="submit"></button>')
    assert not untranslated_template_text('<p>{{ _("Hello world") }} #{{ n }} · 12</p>')
    assert not untranslated_template_text("<p>{% trans %}Hello {{ n }}{% endtrans %}</p>")
    assert not untranslated_template_text('<p class="{{ "danger" if x }}"><code>cmd run</code></p>')
    assert not untranslated_template_text("<p>Sentinelle · XSD</p>")


# ================================================================ formatting
def test_dates_and_numbers_follow_the_locale() -> None:
    when = datetime(2026, 12, 3, 7, 5, 9, tzinfo=UTC)
    with i18n.use_locale("fr"):
        assert i18n.format_datetime(when) == "3 déc. 2026, 07:05"
        assert i18n.format_datetime(when, seconds=True).endswith("07:05:09")
        assert i18n.format_date(when) == "3 déc. 2026"
        assert i18n.format_decimal(0.97) == "0,97"
        assert i18n.format_number(12345) == "12\u202f345"
    with i18n.use_locale("en"):
        assert i18n.format_datetime(when) == "2026-12-03 07:05"
        assert i18n.format_date(when.replace(tzinfo=None)) == "2026-12-03"
        assert i18n.format_decimal(0.97) == "0.97"
        assert i18n.format_number(12345) == "12,345"
    assert i18n.format_datetime(None) == "" and i18n.format_decimal("n/a") == "n/a"


# ===================================================================== pages
@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    console_env(monkeypatch)
    w = build_console(f"sqlite:///{tmp_path / 'console.db'}", tmp_path)
    yield w
    w.engine.dispose()


def _login(c: TestClient, username: str) -> str:
    r = c.get("/console/login")
    r = c.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "csrf_token": login_csrf(r.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return page_csrf(c.get("/console/password").text)


def _choose(c: TestClient, csrf: str, locale: str) -> None:
    r = c.post(
        "/console/settings",
        data={"csrf_token": csrf, "locale": locale, "blur_level": "24", "grayscale": "on"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def _hx(csrf: str) -> dict[str, str]:
    return {"X-CSRF-Token": csrf, "HX-Request": "true"}


class Pages:
    """Every page and fragment seen in a run, checked at the end."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def add(self, name: str, r) -> str:
        assert r.status_code < 500, (name, r.status_code)
        assert "text/html" in r.headers.get("content-type", ""), name
        self.seen[name] = r.text
        return r.text


def test_english_is_the_default_and_the_choice_is_saved(world) -> None:
    with TestClient(world.app, base_url=BASE) as c:
        page = c.get("/console/login").text
        assert '<html lang="en">' in page and "Log in" in page
        csrf = _login(c, "rita")
        r = c.get("/console/queue")
        assert '<html lang="en">' in r.text and r.headers["content-language"] == "en"
        assert exposure.get_settings(world.engine, world.users["reviewer"].id).locale is None
        bad = c.post("/console/settings", data={"csrf_token": csrf, "locale": "xx"})
        assert bad.status_code == 422 and 'data-code="bad_setting"' in bad.text
        _choose(c, csrf, "fr")
        assert exposure.get_settings(world.engine, world.users["reviewer"].id).locale == "fr"
        r = c.get("/console/settings?flash=settings")
        assert '<html lang="fr">' in r.text and r.headers["content-language"] == "fr"
        assert "Réglages enregistrés." in r.text  # the flash, in the new language
        assert '<option value="fr" lang="fr" selected>' in r.text
        c.post("/console/logout", data={"csrf_token": page_csrf(r.text)})
        # before login the cookie remembers the language; ?lang= switches it
        assert "Se connecter" in c.get("/console/login").text
        assert "Log in" in c.get("/console/login?lang=en").text
        assert "Log in" in c.get("/console/login").text
    with TestClient(world.app, base_url=BASE) as other:  # another browser: the saved choice
        _login(other, "rita")
        assert '<html lang="fr">' in other.get("/console/queue").text
    with TestClient(world.app, base_url=BASE) as fresh:  # a user who never chose: English
        _login(fresh, "sam")
        assert '<html lang="en">' in fresh.get("/console/queue").text


def test_no_console_page_shows_english_in_french(world) -> None:
    """Every page and fragment, for every role, in French: no English UI text."""
    config.set_config(world.engine, "second_review", True, actor="cli")
    pages = Pages()
    case = world.case_id
    with TestClient(world.app, base_url=BASE) as c:
        pages.add("login (fr via ?lang)", c.get("/console/login?lang=fr"))
        bad = c.post(
            "/console/login",
            data={
                "username": "rita",
                "password": "wrong password!",
                "csrf_token": login_csrf(c.get("/console/login").text),
            },
        )
        pages.add("login error", bad)

    # reviewer: queue, case, reveal / reblur, decide, break banner, errors, pass
    with TestClient(world.app, base_url=BASE) as c:
        csrf = _login(c, "rita")
        _choose(c, csrf, "fr")
        exposure.update_settings(world.engine, world.users["reviewer"].id, break_after_items=1)
        pages.add("settings (flash)", c.get("/console/settings?flash=settings"))
        for status in ("open", "awaiting_approval", "closed"):
            pages.add(f"queue {status}", c.get(f"/console/queue?status={status}"))
        for flash in ("passed", "empty", "break"):
            pages.add(f"queue flash {flash}", c.get(f"/console/queue?flash={flash}"))
        c.post(f"/console/cases/{case}/take", data={"csrf_token": csrf})
        pages.add("case", c.get(f"/console/cases/{case}"))
        pages.add("reveal", c.post(f"/console/items/{world.video_item}/reveal", headers=_hx(csrf)))
        pages.add("reblur", c.post(f"/console/items/{world.video_item}/reblur", headers=_hx(csrf)))
        pages.add("case with break banner", c.get(f"/console/cases/{case}"))
        pages.add(
            "decide error",
            c.post(
                f"/console/items/{world.match_item}/decide",
                headers=_hx(csrf),
                data={"verdict": "maybe"},
            ),
        )
        pages.add(
            "decide (second review pending)",
            c.post(
                f"/console/items/{world.match_item}/decide",
                headers=_hx(csrf),
                data={"verdict": "confirm", "category": "A1"},
            ),
        )
        pages.add(
            "decide custom",
            c.post(
                f"/console/items/{world.guard_item}/decide",
                headers=_hx(csrf),
                data={"verdict": "reject", "category": "custom", "custom_category": "cartoon"},
            ),
        )
        pages.add("not found", c.get("/console/cases/999999"))
        pages.add("forbidden", c.get("/console/users"))
        pages.add("password", c.get("/console/password"))
        pages.add(
            "settings error",
            c.post("/console/settings", data={"csrf_token": csrf, "daily_cap": "many"}),
        )
        pages.add(
            "password error",
            c.post(
                "/console/password",
                data={
                    "csrf_token": csrf,
                    "current_password": "x",
                    "new_password": "a" * 12,
                    "new_password_again": "b" * 12,
                },
            ),
        )
        pages.add("case after decisions", c.get(f"/console/cases/{case}"))

    # specialist: second review, approvals in the queue, the report draft
    with TestClient(world.app, base_url=BASE) as c:
        csrf = _login(c, "sam")
        _choose(c, csrf, "fr")
        pages.add("queue with approvals", c.get("/console/queue"))
        page = pages.add("case (to approve)", c.get(f"/console/cases/{case}"))
        decision = re.search(r"/console/decisions/(\d+)/approve", page).group(1)
        c.post(f"/console/decisions/{decision}/approve", data={"csrf_token": csrf, "accept": "yes"})
        page = pages.add("case (approved)", c.get(f"/console/cases/{case}"))
        draft = re.search(r'href="/console/reports/(\d+)"', page).group(1)
        pages.add("report draft", c.get(f"/console/reports/{draft}"))

    # legal: report, holds (place, extend, release), audit, metrics
    with TestClient(world.app, base_url=BASE) as c:
        csrf = _login(c, "lena")
        _choose(c, csrf, "fr")
        pages.add("report (legal)", c.get(f"/console/reports/{draft}"))
        pages.add("metrics", c.get("/console/metrics"))
        r = c.post(
            "/console/holds/legal",
            data={"csrf_token": csrf, "case_id": str(case), "reason": "réquisition 42"},
            follow_redirects=False,
        )
        pages.add("holds flash", c.get(r.headers["location"]))
        pages.add(
            "hold error",
            c.post(
                "/console/holds/legal", data={"csrf_token": csrf, "case_id": "abc", "reason": "x"}
            ),
        )
        pages.add("holds one case", c.get(f"/console/holds?case={case}"))
        for flash in ("released", "extended"):
            pages.add(f"holds flash {flash}", c.get(f"/console/holds?flash={flash}"))
        pages.add("audit", c.get("/console/audit"))
        pages.add("audit filtered", c.get("/console/audit?action=hold"))
        pages.add("audit verify", c.post("/console/audit/verify", headers=_hx(csrf)))
        pages.add("audit verify page", c.post("/console/audit/verify", data={"csrf_token": csrf}))

    # admin: users (create, reset, errors), destruction and its proof
    with TestClient(world.app, base_url=BASE) as c:
        csrf = _login(c, "adam")
        _choose(c, csrf, "fr")
        pages.add("users", c.get("/console/users"))
        pages.add(
            "user created",
            c.post(
                "/console/users", data={"csrf_token": csrf, "username": "nina", "role": "reviewer"}
            ),
        )
        pages.add("user reset", c.post("/console/users/remy/password", data={"csrf_token": csrf}))
        pages.add(
            "user error",
            c.post(
                "/console/users", data={"csrf_token": csrf, "username": "!!", "role": "reviewer"}
            ),
        )
        pages.add("self change", c.post("/console/users/adam/disable", data={"csrf_token": csrf}))
        for flash in ("role", "disabled", "enabled"):
            pages.add(f"users flash {flash}", c.get(f"/console/users?flash={flash}"))
        pages.add("guard phrases", c.get("/console/guard/phrases"))
        phrase = {"csrf_token": csrf, "kind": "allow", "language": "en", "note": "essai"}
        r = c.post("/console/guard/phrases", data={**phrase, "phrase": "sunset photo"})
        pages.add("guard phrase added", r)
        pages.add(
            "guard phrase twice",
            c.post("/console/guard/phrases", data={**phrase, "phrase": "sunset photo"}),
        )
        pages.add(
            "guard phrase error", c.post("/console/guard/phrases", data={**phrase, "phrase": "!!"})
        )
        pages.add("holds (admin)", c.get("/console/holds"))
        pages.add(
            "destroy refused",
            c.post(
                f"/console/evidence/{case}/destroy",
                data={"csrf_token": csrf, "reason": "demande", "confirm": str(case)},
            ),
        )
        r = c.post(
            f"/console/evidence/{case}/destroy",
            data={
                "csrf_token": csrf,
                "reason": "décision de justice",
                "confirm": str(case),
                "force": "on",
            },
            follow_redirects=False,
        )
        pages.add("deletion proof", c.get(r.headers["location"]))
        pages.add("holds after destruction", c.get("/console/holds"))

    # a new user with a temporary password, in a browser that chose French
    with TestClient(world.app, base_url=BASE) as c:
        c.get("/console/login?lang=fr")
        temp = re.search(r"<code data-password>([^<]+)</code>", pages.seen["user created"]).group(1)
        r = c.post(
            "/console/login",
            data={
                "username": "nina",
                "password": temp,
                "csrf_token": login_csrf(c.get("/console/login").text),
            },
            follow_redirects=True,
        )
        pages.add("must change password", r)
        assert 'data-code="password_change_required"' in r.text

    catalog = french_catalog()
    problems = {}
    for name, html in pages.seen.items():
        if "<html" in html:
            assert '<html lang="fr">' in html, name
        if leaks := english_leaks(html, catalog):
            problems[name] = leaks
    assert not problems, problems
    # French really shows: words, dates and numbers
    assert "File d'attente" in pages.seen["queue open"]
    assert "Dossier n°" in pages.seen["case"]
    assert re.search(r"\d{1,2} [a-zéû]+\.? 20\d\d, \d\d:\d\d", pages.seen["case"])
    assert "0,97" in pages.seen["case"]  # the guard block's score
    assert "destruction forcée" in pages.seen["holds after destruction"]  # system-made reason
    assert len(pages.seen) >= 50


def test_the_page_check_flags_english_pages(world) -> None:
    """The same check on the English console must find English (the net can catch)."""
    with TestClient(world.app, base_url=BASE) as c:
        _login(c, "rita")
        leaks = english_leaks(c.get(f"/console/cases/{world.case_id}").text, french_catalog())
    assert len(leaks) > 10
    assert any("Take this case" in x for x in leaks)
