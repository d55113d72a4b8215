"""Find ages written in a prompt: ``12yo``, ``12 y/o``, ``twelve-year-old``, ``douze ans``,
``12歳``, ``十二岁``, ``열두 살``, ``12 лет``, ``age 12``...

An age under 18 is a minor signal. The vocabulary (units such as ``years old``, ``ans``,
``歳``; words placed before the number such as ``aged``; number words) lives in the
``[ages]`` table of each language's lexicon; this module only compiles it into one regular
expression over the *base* view (where full-width and Arabic-Indic digits are already
ASCII, see :mod:`sentinelle.guard.normalize`).

Compound numbers are respected: ``twenty-one years old`` or ``vingt et un ans`` is not
read as ``one`` / ``un``. Chinese, Japanese and Sino-Korean numerals (``十二``, ``십이``)
are parsed as well.

Limits count too: ``under 16``, ``moins de 15 ans``, ``18歳未満`` (the ``under`` words
before a number and ``under_after`` words after it) mean an age below the number.

:meth:`AgeFinder.find_spans` also reads the prompt's *age view*
(:func:`~sentinelle.guard.normalize.skeleton_view` with ``keep_numbers``), where letters
split by spaces or dots are rejoined and leetspeak is undone around the number:
``1 2 y o``, ``t.w.e.l.v.e y.o``, ``11-y34r-0ld``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .lexicon import LexiconError, LexiconFile
from .normalize import View, normalize, skeleton_view

MINOR_AGE = 18
_SEP = re.compile(r"[\s\-]+")


@dataclass(frozen=True, slots=True)
class AgeHit:
    """An age found in the base view: its value and view positions ``[start, end)``."""

    age: int
    start: int
    end: int
    language: str | None


def _alternation(words: Iterable[str]) -> str:
    """Regex alternation, longest first; spaces and hyphens in a phrase are flexible."""
    parts = []
    for w in sorted(set(words), key=len, reverse=True):
        esc = re.escape(w.casefold())
        esc = esc.replace(r"\ ", r"[\s\-]*").replace(r"\-", r"[\s\-]*")
        parts.append(esc)
    return "|".join(parts) if parts else r"(?!x)x"


def _is_cjk(s: str) -> bool:
    """Units in scripts whose words take attached endings or no spaces (Arabic, CJK)."""
    return any(ord(c) >= 0x0600 for c in s)


class AgeFinder:
    """One compiled matcher for every language's age vocabulary."""

    def __init__(self, files: Iterable[LexiconFile]) -> None:
        self.numbers: dict[str, tuple[int, str | None]] = {}
        self.tens: dict[str, int] = {}
        units: dict[str, str | None] = {}
        before: dict[str, str | None] = {}
        under: dict[str, str | None] = {}
        under_after: dict[str, str | None] = {}
        cjk_digits: dict[str, int] = {}
        cjk_tens: set[str] = set()
        for f in files:
            a = f.ages
            if not a:
                continue
            try:
                for w in a.get("units", []):
                    units.setdefault(self._norm(w), f.language)
                for w in a.get("before", []):
                    before.setdefault(self._norm(w), f.language)
                for w in a.get("under", []):
                    under.setdefault(self._norm(w), f.language)
                for w in a.get("under_after", []):
                    under_after.setdefault(self._norm(w), f.language)
                for w, v in a.get("numbers", {}).items():
                    self.numbers.setdefault(self._norm(w), (int(v), f.language))
                for w, v in a.get("tens", {}).items():
                    self.tens.setdefault(self._norm(w), int(v))
                for i, c in enumerate(a.get("cjk_digits", "")):
                    cjk_digits[self._norm(c)] = i + 1
                for c in a.get("cjk_ten", ""):
                    cjk_tens.add(self._norm(c))
            except (TypeError, ValueError, AttributeError) as exc:
                raise LexiconError(f"{f.name}: bad [ages] table: {exc}") from None
        self.units = units
        self.before = before
        self.cjk_digits = cjk_digits
        self.cjk_tens = cjk_tens
        cjk_chars = "".join(re.escape(c) for c in [*cjk_digits, *cjk_tens])
        num_words = _alternation(self.numbers)
        tens_words = _alternation(self.tens)
        # Digits may follow a CJK character ("她12岁") but not a Latin/Cyrillic letter or
        # digit; number words need a full word boundary; CJK numerals need none.
        num = (
            r"(?P<num>(?<![0-9a-z\u00c0-\u052f.,])\d{1,3}"
            rf"|(?<![^\W_])(?:(?P<tens>{tens_words})[\s\-]*(?:(?:et|e|y|und|i)[\s\-]+)?)?"
            rf"(?P<word>{num_words})" + (rf"|[{cjk_chars}]{{1,4}}" if cjk_chars else "") + ")"
        )
        latin_units = [u for u in units if not _is_cjk(u)]
        cjk_units = [u for u in units if _is_cjk(u)]
        unit = rf"(?P<unit>(?:{_alternation(latin_units)})(?![^\W\d_])"
        if cjk_units:
            unit += rf"|{_alternation(cjk_units)}"
        unit += ")"
        lead = rf"(?P<before>(?<![^\W\d_])(?:{_alternation(before)}))[\s:\-]*"
        self._after = re.compile(rf"{num}[\s\-]*{unit}")
        self._before = re.compile(rf"{lead}(?P<bnum>\d{{1,2}}|{num_words})(?![^\W_])")
        self.under = under
        self.under_after = under_after
        limit = rf"(?P<lnum>\d{{1,2}}|{num_words})"
        words = [w for w in under if len(w) > 1]
        letters = [w for w in under if len(w) == 1]  # "u18": only glued to the number
        self._under = re.compile(
            rf"(?<![^\W\d_])(?:(?P<under>{_alternation(words)})[\s:\-]*"
            rf"(?:(?:the\s+)?age\s+of\s+)?|(?P<letter>{_alternation(letters)})(?=\d))"
            rf"{limit}(?![^\W_])"
        )
        self._under_after = re.compile(
            rf"(?<![0-9])(?P<lnum>\d{{1,2}})[\s\-]*(?:{unit})?[\s\-]*"
            rf"(?P<under>{_alternation(under_after)})"
        )

    @staticmethod
    def _norm(word: str) -> str:
        w = _key(normalize(str(word)))
        if not w:
            raise LexiconError(f"age word {word!r} normalises to nothing")
        return w

    def _value(self, m: re.Match[str]) -> int | None:
        raw = m.group("num")
        if raw.isdigit():
            return int(raw)
        if m.group("word"):
            value = self.numbers.get(_key(m.group("word")), (None, None))[0]
            if value is None:
                return None
            if m.group("tens"):
                value += self.tens.get(_key(m.group("tens")), 0)
            return value
        return self._cjk_value(raw)

    def _cjk_value(self, raw: str) -> int | None:
        """Value of ``十二``, ``二十``, ``七``, ``십이``... (None if not a numeral)."""
        total, current = 0, 0
        for c in raw:
            if c in self.cjk_tens:
                total += (current or 1) * 10
                current = 0
            elif c in self.cjk_digits:
                current = self.cjk_digits[c]
            else:
                return None
        return total + current

    def _limits(self, text: str) -> list[AgeHit]:
        """``under 16`` / ``18歳未満``: an age below the limit (the limit minus one)."""
        hits: list[AgeHit] = []
        for rx, langs in ((self._under, self.under), (self._under_after, self.under_after)):
            for m in rx.finditer(text):
                raw = m.group("lnum")
                value = int(raw) if raw.isdigit() else self.numbers.get(_key(raw), (None,))[0]
                if value is not None and value > 0:
                    word = m.group("under") or m.groupdict().get("letter") or ""
                    lang = langs.get(_key(word))
                    hits.append(AgeHit(value - 1, m.start(), m.end(), lang))
        return hits

    def find_spans(self, base: View) -> list[tuple[AgeHit, tuple[int, int]]]:
        """Every age in a prompt's base view and its age view, with original spans."""
        out: list[tuple[AgeHit, tuple[int, int]]] = []
        seen: set[tuple[int, int, int]] = set()
        views = [base]
        if base.text:
            age_view = skeleton_view(base, keep_numbers=True)
            if age_view.text != base.text:
                views.append(age_view)
        for view in views:
            for hit in self.find(view.text):
                span = view.original_span(hit.start, hit.end)
                if (hit.age, *span) not in seen:
                    seen.add((hit.age, *span))
                    out.append((hit, span))
        return out

    def find(self, text: str) -> list[AgeHit]:
        """Every age in a base-view ``text`` (any value; the caller compares to 18)."""
        hits: list[AgeHit] = []
        for m in self._after.finditer(text):
            value = self._value(m)
            if value is not None:
                lang = self.units.get(_key(m.group("unit")))
                hits.append(AgeHit(value, m.start(), m.end(), lang))
        for m in self._before.finditer(text):
            raw = m.group("bnum")
            value = int(raw) if raw.isdigit() else self.numbers.get(_key(raw), (None, None))[0]
            if value is not None:
                lang = self.before.get(_key(m.group("before")))
                hits.append(AgeHit(value, m.start(), m.end(), lang))
        if self.under or self.under_after:
            hits.extend(self._limits(text))
        return hits


def _key(phrase: str) -> str:
    """Canonical form of a matched phrase: runs of spaces and hyphens become one space."""
    return _SEP.sub(" ", phrase).strip()
