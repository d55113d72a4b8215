"""Spelling variants of lexicon terms, generated once when the lexicons are compiled.

A lexicon lists each term in one plain spelling; this module derives the other spellings a
prompt may use for the same word, so that nobody has to list them by hand (and so that a
held-out variant nobody wrote down is still caught):

* **Inflection** (:func:`inflected_forms`): a language's ``[morphology]`` table lists its
  case and number ``endings`` and its ``diminutives``. A one-word term (or the last word of
  a phrase) is cut into *stem + own inflection ending* in every way the table allows, and
  each stem is given every ending: ``голая -> гол -> голыми, голой``; ``dziecko ->
  dziecku, dzieckiem``. Diminutive suffixes are only ever *added* (``nena -> nenitas``),
  never cut off: a diminutive is often a word of its own (``Höschen`` is not ``Hose``), and
  they are added only to minor and nudity terms, whose diminutives are forms of the same
  word (a diminutive of a sexual term is another word: ``viol -> violette``).
  ``alternations`` apply the consonant changes of the stem's last letter (``дівчинк- ->
  дівчинц-``, ``dziewczynk- -> dziewczync-``, ``çocuk -> çocuğ``).
  A ``stem*`` term stays a prefix: its own ending is cut off only where at least five
  letters stay (``neonato* -> neonat*``) so a short prefix never swallows everyday words.
* **Readings and romanisations** (:func:`script_variants`): Japanese terms get their
  hiragana reading and Hepburn romaji (``幼女 -> ようじょ, youjo``; romaji terms get their
  kana, ``hadaka -> はだか``), Chinese terms their toneless pinyin (``色情 -> seqing``),
  Russian and Ukrainian terms their Latin transliteration (``девочк* -> devochk*``).
  Readings come from ``pykakasi`` and ``jaconv``, pinyin and transliteration from
  ``anyascii``; without those packages the variants are simply not generated.
* **Arabizi** (:func:`arabizi_forms`): Arabic written in Latin letters, with digits for
  the sounds Latin lacks (``ع -> 3``, ``ح -> 7``, ``خ -> 5``, ``ق -> 9``, ``ء -> 2``).
  Arabic script leaves short vowels unwritten, so one optional short vowel (``a i u``)
  is tried between two written consonants: ``طفلة -> tifla, tfla``; ``عارية -> 3arya``.

Variants are plain strings in the *base* normalisation; the caller compiles them through
the same skeleton as every other term.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from .normalize import normalize, skeleton

_MIN_PREFIX_STEM = 5  # a prefix term cut down by its ending keeps at least this many letters
_MIN_ROMAN = 4  # shortest romanised variant (shorter ones collide with everyday words)
_MIN_KANA = 3  # shortest generated kana reading (katakana folds to hiragana)


@dataclass(frozen=True)
class Morphology:
    """A language's inflection table (``[morphology]`` in its lexicon file)."""

    endings: tuple[str, ...]
    min_stem: int = 3
    alternations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    diminutives: tuple[str, ...] = ()  # only added to a stem, never cut off


def parse_morphology(table: object) -> Morphology | None:
    """Validate a ``[morphology]`` table; raises ``ValueError`` with the reason."""
    if table in (None, {}):
        return None
    if not isinstance(table, dict):
        raise ValueError("[morphology] must be a table")
    if set(table) - {"endings", "diminutives", "min_stem", "alternations"}:
        raise ValueError("[morphology] may only hold endings, diminutives, min_stem, alternations")
    endings = table.get("endings", [])
    diminutives = table.get("diminutives", [])
    for name, items in (("endings", endings), ("diminutives", diminutives)):
        if not isinstance(items, list) or not all(isinstance(e, str) and e for e in items):
            raise ValueError(f"[morphology] {name} must be a list of non-empty strings")
    min_stem = table.get("min_stem", 3)
    if not isinstance(min_stem, int) or min_stem < 2:
        raise ValueError("[morphology] min_stem must be an integer >= 2")
    alt = table.get("alternations", {})
    if not isinstance(alt, dict):
        raise ValueError("[morphology] alternations must be a table")
    alternations: dict[str, tuple[str, ...]] = {}
    for old, new in alt.items():
        news = [new] if isinstance(new, str) else new
        if not isinstance(news, list) or not all(isinstance(n, str) and n for n in news):
            raise ValueError(f"[morphology] alternation {old!r} must be a string or list")
        alternations[normalize(old)] = tuple(normalize(n) for n in news)
    norm = tuple(sorted({normalize(e) for e in endings} - {""}, key=len, reverse=True))
    dim = tuple(sorted({normalize(e) for e in diminutives} - {""}, key=len, reverse=True))
    return Morphology(norm, min_stem, alternations, dim)


def _stems(word: str, morph: Morphology, min_len: int) -> set[str]:
    """``word`` cut before each of its own endings (and with alternations applied)."""
    stems = {word}
    for own in morph.endings:
        if word.endswith(own) and len(word) - len(own) >= min_len:
            stems.add(word[: -len(own)])
    for stem in list(stems):
        for old, news in morph.alternations.items():
            if stem.endswith(old):
                stems.update(stem[: -len(old)] + n for n in news)
    return stems


def inflected_forms(
    text: str, morph: Morphology, prefix: bool, diminutives: bool = True
) -> list[str]:
    """Other inflected spellings of a term (see the module docstring).

    For a prefix term the result are shorter prefixes; otherwise whole words.
    ``diminutives``: also add the table's diminutive suffixes to every stem.
    """
    norm = normalize(text)
    head, _, last = norm.rpartition(" ")
    head = head + " " if head else ""
    if prefix:
        out = _stems(last, morph, max(_MIN_PREFIX_STEM, morph.min_stem)) - {last}
        return sorted(head + s for s in out)
    stems = _stems(last, morph, morph.min_stem)
    bare = {skeleton(s) for s in stems} - {skeleton(last)}
    # a form that folds back to a bare stem (``bais + s -> baiss -> bais``) is no word
    suffixes = morph.endings + (morph.diminutives if diminutives else ())
    forms = {f for s in stems for e in suffixes if skeleton(f := s + e) not in bare}
    forms.discard(last)
    return sorted(head + f for f in forms)


# --- scripts ---------------------------------------------------------------------------


def _is_kana_or_kanji(s: str) -> bool:
    return any(0x3040 <= ord(c) <= 0x30FF or 0x3400 <= ord(c) <= 0x9FFF for c in s)


def _is_han(s: str) -> bool:
    return all(0x3400 <= ord(c) <= 0x9FFF or 0xF900 <= ord(c) <= 0xFAFF for c in s)


@lru_cache(maxsize=1)
def _kakasi():  # pragma: no cover - depends on the optional package being installed
    try:
        import pykakasi
    except ImportError:
        return None
    return pykakasi.kakasi()


def _japanese(text: str) -> set[str]:
    out: set[str] = set()
    if _is_kana_or_kanji(text):
        kks = _kakasi()
        if kks is None:
            return out
        parts = kks.convert(text)
        hira = "".join(p["hira"] for p in parts)
        if len(hira) >= _MIN_KANA:  # "いん" (淫) is inside katakana loanwords: デザイン
            out.add(hira)
        roman = "".join(p["hepburn"] for p in parts)
        if roman.isascii() and roman.isalpha():
            # long vowels are written several ways: shoujo, shojo, shōjo
            out |= {roman, roman.replace("ou", "o").replace("uu", "u")}
    elif text.isascii() and text.replace(" ", "").isalpha():
        try:
            import jaconv
        except ImportError:  # pragma: no cover
            return out
        kana = jaconv.alphabet2kana(text.replace(" ", ""))
        if all(0x3040 <= ord(c) <= 0x309F or c == "ー" for c in kana):
            out.add(kana)
    return out


def _anyascii(text: str) -> str | None:
    try:
        from anyascii import anyascii
    except ImportError:  # pragma: no cover
        return None
    return anyascii(text).lower()


def _chinese(text: str) -> set[str]:
    if len(text) < 2 or not _is_han(text):
        return set()
    roman = _anyascii(text)
    return {roman} if roman and roman.isalpha() else set()


def _cyrillic_latin(text: str) -> set[str]:
    roman = _anyascii(text)
    if not roman or not roman.replace(" ", "").isalpha():
        return set()
    return {roman}


# Arabizi: each Arabic letter (base normalisation: ``ة -> ه``, ``أ -> ا``) as written in
# Latin chat; the vowel letters ``ا و ي`` and a final ``ه`` spell vowels, the rest consonants.
_ARABIZI = {
    "ا": ("a",), "ب": ("b",), "ت": ("t",), "ث": ("th", "t"), "ج": ("j",), "ح": ("7", "h"),
    "خ": ("5", "kh"), "د": ("d",), "ذ": ("dh", "z"), "ر": ("r",), "ز": ("z",), "س": ("s",),
    "ش": ("sh", "ch"), "ص": ("s", "9"), "ض": ("d",), "ط": ("t", "6"), "ظ": ("z",),
    "ع": ("3",), "غ": ("gh",), "ف": ("f",), "ق": ("q", "9", "k"), "ك": ("k",), "ل": ("l",),
    "م": ("m",), "ن": ("n",), "ه": ("h",), "و": ("w", "u", "ou", "o"), "ي": ("y", "i", "iy"),
    "ء": ("2",), "ئ": ("2",), "ؤ": ("2",),
}  # fmt: skip
_ARABIZI_VOWELS = frozenset("اوي")
_ARABIZI_FINAL_H = ("a", "ah", "e")  # ة (folded to ه) at the end of a word
_ARABIZI_SHORT = ("a", "i", "u")  # the unwritten short vowels of Arabic
_ARABIZI_INITIAL_ALIF = ("a", "e", "i")
_ARABIZI_MAX = 4096  # variants per word; longer words keep their unvowelled forms only


def arabizi_forms(text: str) -> set[str]:
    """Arabizi spellings of a one-word Arabic term (see the module docstring).

    At most one unwritten short vowel is supplied, never between the last two consonants
    of a word ending in a consonant (``سكس`` gives ``seks``-like ``siks`` but not ``skis``):
    more vowels would turn short terms into everyday Latin words.
    """
    word = normalize(text)
    if " " in word or not word or any(c not in _ARABIZI for c in word):
        return set()
    last = len(word) - 1
    parts: list[tuple[str, ...]] = []
    gaps: list[int] = []  # part index where an unwritten vowel may go
    for k, c in enumerate(word):
        if k == 0 and c == "ا":
            opts = _ARABIZI_INITIAL_ALIF
        elif c == "ه" and k == last and k > 0:
            opts = _ARABIZI_FINAL_H
        else:
            opts = _ARABIZI[c]
        consonants = c not in _ARABIZI_VOWELS and k > 0 and word[k - 1] not in _ARABIZI_VOWELS
        final_h = c == "ه" and k == last
        if consonants and not final_h and not (k == last and c not in _ARABIZI_VOWELS):
            gaps.append(len(parts))
        parts.append(opts)
    out: set[str] = set()
    for gap in [None, *gaps]:
        forms = {""}
        for i, opts in enumerate(parts):
            if i == gap:
                forms = {f + v for f in forms for v in _ARABIZI_SHORT}
            forms = {f + o for f in forms for o in opts}
            if len(forms) > _ARABIZI_MAX:
                return out
        out |= forms
    return {f for f in out if len(f) >= _MIN_ROMAN}


def script_variants(text: str, language: str | None) -> list[str]:
    """Readings, romanisations and transliterations of one term (base normalisation)."""
    norm = normalize(text)
    if language == "ja":
        out = _japanese(norm)
    elif language == "zh":
        out = _chinese(norm)
    elif language in ("ru", "uk"):
        out = _cyrillic_latin(norm)
    else:
        return []
    out.discard(norm)
    return sorted(v for v in out if not v.isascii() or len(v.replace(" ", "")) >= _MIN_ROMAN)


def all_variants(
    text: str,
    language: str | None,
    morph: Morphology | None,
    prefix: bool,
    diminutives: bool = True,
) -> Iterable[tuple[str, str]]:
    """``(variant, kind)`` pairs: kind ``stem`` (inflection), ``script`` (reading) or
    ``arabizi`` (Arabic in Latin letters and digits). ``diminutives``: whether the
    morphology's diminutive suffixes apply (minor and nudity terms)."""
    if morph is not None:
        for form in inflected_forms(text, morph, prefix, diminutives):
            yield form, "stem"
    for form in script_variants(text, language):
        yield form, "script"
    if language == "ar":
        for form in sorted(arabizi_forms(text)):
            yield form, "arabizi"
