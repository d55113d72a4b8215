"""The console's languages: gettext catalogs (Babel), the request's locale, dates and numbers.

The console speaks English (the default, and the language of every msgid) and
French. Translations live in one gettext catalog per language,
``console/locale/<lang>/LC_MESSAGES/messages.po``; the ``.po`` file is the only
source and is compiled in memory (:func:`babel.messages.mofile.write_mo`) the
first time a language is used, so no compiled ``.mo`` can go stale.

Choosing the language: a logged-in user's choice is saved in their settings
(``user_settings.locale``, see :mod:`sentinelle.review.exposure`) and also kept
in the :data:`LOCALE_COOKIE` cookie, so the login page speaks it too. Without
either, English.

Rendering (:func:`sentinelle.console.views.render`) runs inside
:func:`use_locale`: the Jinja2 ``i18n`` extension (``{% trans %}``, ``_()``),
the filters :func:`format_datetime` / :func:`format_date` /
:func:`format_number` / :func:`format_decimal` and :func:`gettext` in Python all
read the active locale from a context variable, so one shared template
environment serves every language at once.

Messages made in Python (flash messages, labels, error texts) are marked with
:func:`N_` where they are defined and translated when shown. Updating the
catalog after changing a string::

    pybabel extract -F src/sentinelle/console/locale/babel.cfg -k N_ \\
        -o /tmp/messages.pot src/sentinelle
    pybabel update -i /tmp/messages.pot -d src/sentinelle/console/locale --no-fuzzy-matching

``tests/test_console_i18n.py`` fails while an extracted message has no French
translation.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

#: Languages the console speaks, with their names as shown in the language switch.
LOCALES: dict[str, str] = {"en": "English", "fr": "Français"}
DEFAULT_LOCALE = "en"
#: Remembers the last chosen language for pages shown before login.
LOCALE_COOKIE = "sentinelle_locale"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"

_active: ContextVar[str] = ContextVar("sentinelle_console_locale", default=DEFAULT_LOCALE)


def N_(message: str) -> str:  # noqa: N802 - the usual gettext marker name
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


def normalize(value: Any) -> str | None:
    """``value`` as one of :data:`LOCALES` (``fr_FR`` -> ``fr``), or None."""
    if not isinstance(value, str):
        return None
    lang = value.strip().replace("-", "_").split("_", 1)[0].lower()
    return lang if lang in LOCALES else None


def catalog_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> NullTranslations:
    """The compiled catalog of ``locale`` (English: the msgids themselves)."""
    if locale == DEFAULT_LOCALE or locale not in LOCALES:
        return NullTranslations()
    with catalog_path(locale).open("rb") as f:
        catalog = read_po(f, locale=locale, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def current_locale() -> str:
    return _active.get()


@contextmanager
def use_locale(locale: str | None) -> Iterator[str]:
    """Make ``locale`` (or English) the active language inside the block."""
    chosen = normalize(locale) or DEFAULT_LOCALE
    token = _active.set(chosen)
    try:
        yield chosen
    finally:
        _active.reset(token)


def gettext(message: str) -> str:
    return translations(_active.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_active.get()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return translations(_active.get()).pgettext(context, message)


def npgettext(context: str, singular: str, plural: str, n: int) -> str:
    return translations(_active.get()).npgettext(context, singular, plural, n)


# ---------------------------------------------------------------- dates and numbers
def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: Fixed CLDR patterns (date, minutes, seconds) per language; a language not listed here
#: gets its own CLDR medium date with a 24-hour UTC time. English keeps ISO 8601
#: (``2026-12-03 07:05``): the console's English users are international, and an
#: ISO date is the one no English reader misreads.
DATE_PATTERNS: dict[str, tuple[str, str, str]] = {
    "en": ("yyyy-MM-dd", "yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm:ss"),
}


def format_datetime(value: datetime | None, seconds: bool = False) -> str:
    """Date and 24-hour time in UTC as the locale writes them (``3 déc. 2026, 07:05``)."""
    if value is None:
        return ""
    lang = _active.get()
    when = _utc(value)
    fixed = DATE_PATTERNS.get(lang)
    if fixed is not None:
        return babel_dates.format_datetime(
            when, fixed[2 if seconds else 1], tzinfo=UTC, locale=lang
        )
    locale = Locale.parse(lang)
    day = babel_dates.format_skeleton("yMMMd", when, tzinfo=UTC, locale=locale)
    time = babel_dates.format_skeleton("Hms" if seconds else "Hm", when, tzinfo=UTC, locale=locale)
    return str(locale.datetime_formats["medium"]).format(time, day)


def format_date(value: date | datetime | None) -> str:
    """A date as the locale writes it (``2026-12-03``, ``3 déc. 2026``)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = _utc(value).date()
    lang = _active.get()
    fixed = DATE_PATTERNS.get(lang)
    if fixed is not None:
        return babel_dates.format_date(value, fixed[0], locale=lang)
    return babel_dates.format_skeleton("yMMMd", value, locale=lang)


def format_number(value: Any) -> str:
    """An integer or decimal with the locale's separators (``12 345,6`` in French)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    return babel_numbers.format_decimal(value, locale=_active.get())


def format_decimal(value: Any, digits: int = 2) -> str:
    """A number with exactly ``digits`` decimals (``0,97``); other values unchanged."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    pattern = "#,##0." + "0" * digits if digits > 0 else "#,##0"
    return babel_numbers.format_decimal(value, format=pattern, locale=_active.get())


def install(env: Any) -> None:
    """Add gettext (``{% trans %}``, ``_()``) and the locale filters to a Jinja2 environment."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=True, pgettext=pgettext, npgettext=npgettext
    )
    env.filters.update(
        datetime=format_datetime,
        date=format_date,
        number=format_number,
        decimal=format_decimal,
    )
    env.globals.update(current_locale=current_locale, locales=LOCALES)
