"""Load the per-language lexicons and match them against a normalised prompt.

Each language has one TOML file in ``sentinelle/guard/lexicons/`` (format, versioning and
review status: ``lexicons/README.md``). Every term is compiled once through
:func:`sentinelle.guard.normalize.skeleton` into a single Aho-Corasick automaton, so one
linear pass over the prompt's skeleton finds every term of every language at once.

How a hit is accepted depends on the term's script:

* scripts written without spaces (Chinese, Japanese kana, Korean Hangul, Thai) and Arabic
  (whose prefixes and suffixes attach to the word) match as substrings;
* all others match whole words; a term written ``stem*`` matches any word starting with
  the stem (``nud*``: nude, nudes, nudity);
* inside a run of spaced-out letters (``s e x y g i r l``) word boundaries were erased on
  purpose, so terms match anywhere in the run;
* in a word glued together from several terms (``nakedkids``) a minor term and a sexual or
  nudity term that both occur inside it are accepted together;
* a strong term of at least four letters at the end of a longer word is the head of a
  compound (``schoolkids``, ``tienermeisjes``) and counts on its own;
* a hit whose original text is a plain, shorter word than the term (``ten`` matching the
  skeleton of ``teen``) is a different word, not an evasion, and is dropped;
* any hit lying inside a *safe phrase* (``naked eye``, ``naked mole rat``) is dropped;
  ``[[safe.senses]]`` tables generate such phrases for the object and colour senses of a
  word (``nude`` + ``lipstick``, ``naked`` + ``tree``).

Two kinds of terms only count with support (resolved in :mod:`sentinelle.guard.context`
once every hit of the prompt is known):

* ``contextual`` terms are code words that are also ordinary words or abbreviations
  (``cp``): they count only within ``[context] window`` words of another signal (a minor,
  sexual or nudity term, an age under 18) or of a *qualifier* (``pics``, ``links``);
* ``ambiguous`` terms are words of one language that are ordinary words in another
  (German ``kind`` is English "kind"): they count only when another signal of the same
  language occurs in the prompt, or when the prompt is identified as that language.

Besides its own spelling, every term is also searched in the variants
:mod:`sentinelle.guard.variants` derives from it (inflected forms from the language's
``[morphology]`` table, kana readings, romaji, pinyin, Latin transliteration) and, for
hyphenated terms, with the hyphen written as a space (``x-rated``: ``x rated``). Evidence
names the lexicon term and says which kind of variant fired (``word+stem``).
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources

import ahocorasick

from ..errors import SentinelleError
from .normalize import View, scripts, skeleton, term_skeletons
from .variants import Morphology, all_variants, parse_morphology

CATEGORIES = ("minor", "sexual", "nudity", "minor_sexual", "minor_nudity")
WEIGHTS = {"strong": 1.0, "weak": 0.6, "contextual": 1.0, "ambiguous": 1.0}
# What a term needs before it counts (see the module docstring), by strength key.
NEEDS = {"strong": "", "weak": "", "contextual": "context", "ambiguous": "language"}
DEFAULT_CONTEXT_WINDOW = 2  # words between a contextual term and its supporting signal
_MIN_PARTIAL = 3  # shortest term accepted inside a glued-together word
_MIN_INFLECT = 4  # shortest word term that tolerates an inflection ending
_MIN_COMPOUND_HEAD = 4  # shortest term accepted as the head of a compound word
_MIN_COMPOUND_MODIFIER = 3  # and the letters that must come before it in the word
_COMPOUND_LANGUAGES = frozenset(("en", "de", "nl"))  # languages that glue nouns together
_MAX_SPELLED = 3  # contextual code words this short also match spelled out (``c p``)
_MIN_SPLIT_PART = 4  # letters on each side of a compound term written as two words
_COMPOUND_RESTS = frozenset(("", "s", "es", "e", "en", "n", "er"))  # after a compound head
_DIMINUTIVE_CATEGORIES = frozenset(("minor", "nudity", "minor_nudity"))
# Endings (in skeleton form: repeats collapsed, l -> i) a whole-word term may carry:
# plurals and common inflections ("girls", "nakedness", "девочку"),
# but not arbitrary continuations ("minority" is not "minor"). Shorter English terms take
# only ``-ed`` and only when spelled plainly (``sexed``); an ``-e`` term also takes ``-d``.
_ENDINGS = frozenset(
    ("s", "es", "e", "a", "i", "o", "y", "en", "er", "ie", "as", "os", "is", "ed", "nes")
    + ("ing", "ies", "ers", "ne", "na", "ni", "ns", "а", "у", "ы", "и", "е", "ой", "ей")
    + ("ов", "ам", "ами", "ах", "ая", "ую", "ые", "ое", "ого", "ом", "ою", "ям", "ях")
)


class LexiconError(SentinelleError):
    """A lexicon file is malformed (code ``bad_lexicon``)."""

    code = "bad_lexicon"


@dataclass(frozen=True, slots=True)
class Term:
    """One lexicon entry, compiled."""

    text: str  # as written in the lexicon, without a trailing ``*``
    category: str  # minor | sexual | nudity | minor_sexual | minor_nudity | safe | qualifier
    weight: float
    language: str | None  # None for language-neutral symbols and emoji
    mode: str  # word | prefix | substring
    key: str  # skeleton form searched for
    variant: str = ""  # "" (as written), stem, script or spacing (see module docstring)
    form: str = ""  # the variant's spelling ("" when it is ``text`` itself)
    needs: str = ""  # "" (counts alone) | "context" | "language" (module docstring)
    window: int = 0  # for needs == "context": how many words away support may be
    endings: frozenset[str] = frozenset()  # skeleton endings a whole-word term may take
    script: str = "latin"  # script of the spelling searched: latin | cyrillic | other


@dataclass(frozen=True, slots=True)
class Hit:
    """A term found in a prompt: view positions ``[start, end)`` and the original span."""

    term: Term
    start: int
    end: int
    span: tuple[int, int]
    rule: str  # word | prefix | substring | spaced | glued
    disguised: bool = False  # the word shows deliberate obfuscation (normalize.View)
    word: int = -1  # number of the skeleton word holding the start
    languages: frozenset[str] = frozenset()  # glued hits: every language spelling the piece


@dataclass(frozen=True)
class LexiconFile:
    """The parsed content of one lexicon file."""

    language: str | None
    version: str
    review: str
    terms: tuple[Term, ...]
    ages: dict = field(default_factory=dict)
    name: str = ""
    morphology: Morphology | None = None


def _is_substring_script(ch: str) -> bool:
    o = ord(ch)
    return (
        0x0600 <= o <= 0x06FF  # Arabic
        or 0x0E00 <= o <= 0x0E7F  # Thai
        or 0x1100 <= o <= 0x11FF  # Hangul jamo
        or 0x3040 <= o <= 0x30FF  # kana
        or 0x3400 <= o <= 0x9FFF  # CJK ideographs
        or 0xAC00 <= o <= 0xD7AF  # Hangul syllables
        or 0xF900 <= o <= 0xFAFF
        or o >= 0x1F000  # emoji
        or 0x2600 <= o <= 0x27BF
    )


def compile_term(
    raw: str,
    category: str,
    weight: float,
    language: str | None,
    needs: str = "",
    window: int = 0,
) -> Term:
    """Compile one lexicon string (``stem*`` for a prefix) into a :class:`Term`."""
    if not isinstance(raw, str) or not raw.strip():
        raise LexiconError(f"empty or non-string term {raw!r} ({language})")
    text = raw.strip()
    prefix = text.endswith("*")
    if prefix:
        text = text[:-1].rstrip()
    key = skeleton(text)
    if not key:
        raise LexiconError(f"term {raw!r} ({language}) normalises to nothing")
    mode = "substring" if _is_substring_script(key[0]) else "prefix" if prefix else "word"
    return Term(text, category, weight, language, mode, key, needs=needs, window=window)


def parse_lexicon(data: bytes, name: str = "<lexicon>") -> LexiconFile:
    """Parse and validate one TOML lexicon (raises :class:`LexiconError`)."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LexiconError(f"{name}: not valid UTF-8 TOML: {exc}") from None
    meta = doc.get("meta")
    if not isinstance(meta, dict) or not {"language", "version", "review"} <= set(meta):
        raise LexiconError(f"{name}: [meta] needs language, version and review")
    lang = meta["language"] or None
    if lang == "und":
        lang = None
    window, qualifiers = _context(doc.get("context", {}), name)
    terms: list[Term] = []
    for category in CATEGORIES:
        section = doc.get(category, {})
        if not isinstance(section, dict):
            raise LexiconError(f"{name}: [{category}] must be a table")
        for strength, items in section.items():
            if strength not in WEIGHTS or not _is_str_list(items):
                raise LexiconError(
                    f"{name}: [{category}] {strength!r} must be a list of terms under one of "
                    f"{', '.join(WEIGHTS)}"
                )
            needs = NEEDS[strength]
            terms.extend(
                compile_term(
                    t, category, WEIGHTS[strength], lang, needs, window if needs == "context" else 0
                )
                for t in items
            )
    terms.extend(compile_term(t, "qualifier", 0.0, lang) for t in qualifiers)
    terms.extend(compile_term(t, "safe", 0.0, lang) for t in _safe_phrases(doc.get("safe"), name))
    ages = doc.get("ages", {})
    if not isinstance(ages, dict):
        raise LexiconError(f"{name}: [ages] must be a table")
    try:
        morph = parse_morphology(doc.get("morphology"))
    except ValueError as exc:
        raise LexiconError(f"{name}: {exc}") from None
    return LexiconFile(
        lang, str(meta["version"]), str(meta["review"]), tuple(terms), ages, name, morph
    )


def _is_str_list(items: object) -> bool:
    return isinstance(items, list) and all(isinstance(t, str) for t in items)


def _context(table: object, name: str) -> tuple[int, list[str]]:
    """``[context]``: the window (in words) and the qualifier words of contextual terms."""
    if not isinstance(table, dict) or set(table) - {"window", "qualifiers"}:
        raise LexiconError(f"{name}: [context] may only hold window and qualifiers")
    window = table.get("window", DEFAULT_CONTEXT_WINDOW)
    if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= 10:
        raise LexiconError(f"{name}: [context] window must be an integer from 1 to 10")
    qualifiers = table.get("qualifiers", [])
    if not _is_str_list(qualifiers):
        raise LexiconError(f"{name}: [context] qualifiers must be a list of words")
    return window, qualifiers


def _safe_phrases(table: object, name: str) -> list[str]:
    """``[safe]`` phrases plus those generated by its ``[[safe.senses]]`` tables: every
    ``terms`` word followed by every ``nouns`` entry (``nude`` + ``lipstick``), and every
    ``before`` entry followed by every ``terms`` word, for languages that put the
    adjective after the noun (``pieds`` + ``nus``: barefoot; ``torse`` + ``nu``)."""
    if table is None:
        return []
    if not isinstance(table, dict) or set(table) - {"phrases", "senses"}:
        raise LexiconError(f"{name}: [safe] may only hold phrases and senses")
    phrases = table.get("phrases", [])
    senses = table.get("senses", [])
    if not _is_str_list(phrases):
        raise LexiconError(f"{name}: [safe] phrases must be a list")
    if not isinstance(senses, list):
        raise LexiconError(f"{name}: [[safe.senses]] must be an array of tables")
    out = list(phrases)
    for sense in senses:
        if (
            not isinstance(sense, dict)
            or "terms" not in sense
            or not sense.keys() & {"nouns", "before"}
            or set(sense) - {"terms", "nouns", "before"}
            or not all(_is_str_list(v) for v in sense.values())
        ):
            raise LexiconError(
                f"{name}: each [[safe.senses]] needs a terms list and nouns or before lists"
            )
        terms = [t.strip() for t in sense["terms"]]
        out.extend(f"{t} {n.strip()}" for t in terms for n in sense.get("nouns", []))
        out.extend(f"{n.strip()} {t}" for t in terms for n in sense.get("before", []))
    return out


def _variant_terms(term: Term, morph: Morphology | None) -> list[tuple[str, Term]]:
    """``(spelling, term)`` for the variants of one lexicon term (module docstring)."""
    if term.category in ("safe", "qualifier"):
        return []
    prefix = term.mode == "prefix"
    out: list[tuple[str, Term]] = []
    seen = {term.key}
    diminutives = term.category in _DIMINUTIVE_CATEGORIES
    pairs = list(all_variants(term.text, term.language, morph, prefix, diminutives))
    if "-" in term.text:
        pairs.append((term.text.replace("-", " "), "spacing"))
    if term.needs == "context" and term.key.isalpha() and len(term.key) <= _MAX_SPELLED:
        # a short code word spelled out (``c p``): too short for the spaced-letters rule
        # (three letters or more), and still a contextual term that needs its support
        pairs.append((" ".join(term.key), "spacing"))
    pairs.extend((form, "split") for form in _compound_splits(term))
    for form, kind in pairs:
        key = skeleton(form)
        if not key or key in seen:
            continue
        seen.add(key)
        mode = "substring" if _is_substring_script(key[0]) else "prefix" if prefix else "word"
        script = _script_of(form)
        out.append(
            (form, replace(term, mode=mode, key=key, variant=kind, form=form, script=script))
        )
    return out


def _script_of(spelling: str) -> str:
    """``cyrillic``, ``latin`` (Latin letters, digits, symbols) or ``other`` (scripts
    matched as substrings: Arabic, CJK, Hangul, Thai, emoji)."""
    if any(_is_substring_script(c) for c in spelling):
        return "other"
    return "cyrillic" if scripts(spelling)[1] else "latin"


def _endings(f: LexiconFile, category: str) -> frozenset[str]:
    """Skeleton endings a whole-word term of ``f`` may carry in a prompt: the language's
    own inflection endings (and diminutives for minor/nudity terms); languages without a
    ``[morphology]`` table take the generic plural/inflection endings."""
    morph = f.morphology
    if morph is None:
        return _ENDINGS
    extra = morph.diminutives if category in _DIMINUTIVE_CATEGORIES else ()
    return frozenset(skeleton(e) for e in (*morph.endings, *extra)) - {""}


def _compound_splits(term: Term) -> list[str]:
    """A one-word term of a compounding language written as two words (``jail bait``).

    Every cut leaving at least ``_MIN_SPLIT_PART`` letters on each side is generated: the
    wrong cuts (``jai lbait``) are not words and never occur in a prompt. Only minor terms
    are split: a split sexual term can be an everyday pair of words (``only fans``,
    ``deep throat``), while a split minor term alone never blocks anything.
    """
    if term.language not in _COMPOUND_LANGUAGES or term.mode != "word" or term.needs:
        return []
    if term.category not in ("minor", "minor_sexual", "minor_nudity"):
        return []
    key = term.text.lower()
    if not key.isalpha() or not key.isascii() or len(key) < 2 * _MIN_SPLIT_PART:
        return []
    return [f"{key[:k]} {key[k:]}" for k in range(_MIN_SPLIT_PART, len(key) - _MIN_SPLIT_PART + 1)]


class Lexicons:
    """Every lexicon compiled into one automaton; see the module docstring."""

    def __init__(self, files: Iterable[LexiconFile], digest: str = "") -> None:
        self.files = tuple(files)
        self.digest = digest
        self.languages = tuple(sorted({f.language for f in self.files if f.language}))
        by_key: dict[str, list[Term]] = {}
        for f in self.files:
            for t in f.terms:
                t = replace(t, endings=_endings(f, t.category), script=_script_of(t.text))
                for spelling, term in [(t.text, t), *_variant_terms(t, f.morphology)]:
                    keys = term_skeletons(spelling) if term.key != spelling else [term.key]
                    for key in keys:
                        bucket = by_key.setdefault(key, [])
                        if term not in bucket:
                            bucket.append(term)
        for terms in by_key.values():
            # a generated variant spelled like an ambiguous word of its own language
            # ("nagie" inflected as "naga") is that word: it needs the same support
            shy = {t.language for t in terms if t.needs == "language" and not t.variant}
            if shy:
                terms[:] = [t for t in terms if not (t.variant and t.language in shy)]
            # a safe phrase that folds to a term itself ("赤裸裸" -> "赤裸") protects nothing
            if any(t.category == "safe" for t in terms) and any(
                t.category != "safe" for t in terms
            ):
                terms[:] = [t for t in terms if t.category != "safe"]
        self._automaton = ahocorasick.Automaton()
        for key, terms in by_key.items():
            self._automaton.add_word(key, (key, tuple(terms)))
        # Multi-word terms also match with their spaces removed, but only where the
        # boundaries were erased on purpose (spaced-out or glued text).
        for key, terms in list(by_key.items()):
            joined = key.replace(" ", "")
            if joined != key and joined not in by_key:
                self._automaton.add_word(joined, (joined, tuple(terms)))
                by_key[joined] = list(terms)
        if by_key:
            self._automaton.make_automaton()
        self.size = sum(len(f.terms) for f in self.files)

    @property
    def version(self) -> str:
        """Short identifier of the exact lexicon content (changes with any edit)."""
        return self.digest[:12]

    def scan(
        self, view: View, original: str, dropped: list[tuple[Hit, str]] | None = None
    ) -> list[Hit]:
        """Accepted hits of every term in a skeleton ``view`` of ``original``.

        ``dropped``: when a list, raw matches refused for a reason an operator may want
        to see (``script``: a look-alike reading of a word written in one script) are
        appended to it as ``(hit, reason)``."""
        text = view.text
        if not text or not self.size:
            return []
        starts, ends = view.starts, view.ends
        hits: list[Hit] = []
        partial: dict[int, list[Hit]] = {}
        safe: list[tuple[int, int]] = []
        for last, (key, terms) in self._automaton.iter(text):
            end = last + 1
            start = end - len(key)
            span = view.original_span(start, end)
            matched = original[span[0] : span[1]]
            spelling = min((t.form or t.text for t in terms), key=len)
            if _different_word(matched, spelling):
                continue
            spaced_key = " " in terms[0].key
            word = view.word_of(start)
            disguised = view.is_disguised(start) or view.is_disguised(end - 1)
            latin = cyrillic = None
            for term in terms:
                if term.variant == "arabizi" and not _digits_kept(term.form, original, span):
                    continue
                if term.script != "other" and not view.mixed_script:
                    # look-alike folding reads a word in another script only where the
                    # text mixes scripts; a word written in one script is that word
                    if latin is None:
                        latin, cyrillic = scripts(matched)
                    if not (cyrillic if term.script == "cyrillic" else latin or not cyrillic):
                        if dropped is not None and term.category != "safe":
                            dropped.append(
                                (Hit(term, start, end, span, "word", False, word), "script")
                            )
                        continue
                rule = _accept(term, view, start, end, starts, ends)
                if rule and spaced_key and " " not in key:
                    # a multi-word term found without its spaces: only in spaced-out text
                    relaxed = view.is_relaxed(start) and view.is_relaxed(end - 1)
                    rule = "spaced" if relaxed else ""
                if term.category == "safe":
                    if rule:
                        safe.append((start, end))
                    continue
                if not rule and _is_compound_head(term, view, start, end, key):
                    rule = "compound"
                if rule:
                    if term.variant:
                        rule = f"{rule}+{term.variant}"
                    hits.append(Hit(term, start, end, span, rule, disguised, word))
                elif (
                    len(key) >= _MIN_PARTIAL
                    and term.mode != "substring"
                    and term.variant != "arabizi"
                    and word >= 0
                    and view.word_of(end - 1) == word
                ):
                    langs = frozenset(t.language for t in terms if t.language)
                    partial.setdefault(word, []).append(
                        Hit(term, start, end, span, "glued", disguised, word, langs)
                    )
        if partial:
            by_word: dict[int, list[Hit]] = {}
            for h in hits:
                by_word.setdefault(h.word, []).append(h)
            for g, group_hits in partial.items():
                hits.extend(_glued(group_hits, by_word.get(g, [])))
        if safe:
            hits = [h for h in hits if not any(s <= h.start and h.end <= e for s, e in safe)]
        return hits


def _accept(
    term: Term,
    view: View,
    start: int,
    end: int,
    starts: frozenset[int],
    ends: frozenset[int],
) -> str:
    """The rule under which a raw automaton hit counts ("" when it does not)."""
    if term.mode == "substring":
        return "substring"
    if view.relaxed_words and view.is_relaxed(start) and view.is_relaxed(end - 1):
        return "spaced"
    if start not in starts:
        return ""
    if term.mode == "prefix":
        return "prefix"
    if end in ends:
        return "word"
    if term.variant in ("stem", "arabizi"):  # these forms are generated in full
        return ""
    rest = view.text[end : _word_end(view, end - 1)]
    if len(term.key) >= _MIN_INFLECT and (
        rest in term.endings or (rest == "d" and term.key.endswith("e"))  # underage-d
    ):
        return "inflected"
    if rest == "ed" and term.language == "en" and term.text.lower() == term.key:
        return "inflected"  # a short English word in the past tense: sex-ed
    return ""


def _word_end(view: View, pos: int) -> int:
    """View position where the word holding ``pos`` ends."""
    g = view.word_of(pos)
    return view.word_starts[g + 1] - 1 if g + 1 < len(view.word_starts) else len(view.text)


def _is_compound_head(term: Term, view: View, start: int, end: int, key: str) -> bool:
    """A strong term closing a longer word (``schoolkids``): the head of a compound."""
    if term.mode == "substring" or term.weight < 1.0 or len(key) < _MIN_COMPOUND_HEAD:
        return False
    if term.language not in _COMPOUND_LANGUAGES or term.variant not in ("", "spacing"):
        return False
    if " " in key or start in view.starts:
        return False
    g = view.word_of(start)
    if g < 0 or start - view.word_starts[g] < _MIN_COMPOUND_MODIFIER:
        return False
    return term.mode == "prefix" or view.text[end : _word_end(view, end - 1)] in _COMPOUND_RESTS


def _digits_kept(form: str, original: str, span: tuple[int, int]) -> bool:
    """An Arabizi spelling with digits (``3ari``) only counts where the prompt wrote digits:
    the skeleton reads ``3`` as ``e``, so ``3ary`` would otherwise meet ``eary``-like
    English words."""
    return not any(c.isdigit() for c in form) or any(
        c.isdigit() for c in original[span[0] : span[1]]
    )


def _different_word(original: str, term_text: str) -> bool:
    """True when ``original`` is a plain word shorter than the term (``ten`` vs ``teen``)."""
    if len(original) >= len(term_text) or not original.isalpha():
        return False
    return all(a != b for a, b in zip(original, original[1:], strict=False))


def _glued(partial: list[Hit], accepted: list[Hit]) -> list[Hit]:
    """Partial hits inside one glued word (``nakedkids``): kept only where a minor term
    meets a sexual or nudity term in the same word (``accepted`` hits count as partners)."""
    minor_cats = ("minor", "minor_sexual", "minor_nudity")
    other_cats = ("sexual", "nudity", "minor_sexual", "minor_nudity")
    pool = partial + accepted
    keep: dict[int, Hit] = {}
    for h in partial:
        wanted = other_cats if h.term.category in minor_cats else minor_cats
        if h.term.category not in minor_cats + other_cats:
            continue
        for o in pool:
            if o is not h and o.term.category in wanted and (h.end <= o.start or o.end <= h.start):
                keep[id(h)] = h
                break
    return list(keep.values())


def load_files() -> tuple[list[LexiconFile], str]:
    """Parse every bundled lexicon; returns the files and a digest of their bytes."""
    folder = resources.files("sentinelle.guard") / "lexicons"
    digest = hashlib.sha256()
    files: list[LexiconFile] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".toml"):
            continue
        data = entry.read_bytes()
        digest.update(entry.name.encode() + b"\0" + data)
        files.append(parse_lexicon(data, entry.name))
    if not files:
        raise LexiconError("no lexicon files found in sentinelle/guard/lexicons")
    return files, digest.hexdigest()


@lru_cache(maxsize=1)
def default_lexicons() -> Lexicons:
    """The bundled lexicons, compiled once per process."""
    files, digest = load_files()
    return Lexicons(files, digest)
