"""Terms that only count with support: contextual code words and cross-language words.

Some lexicon terms are ordinary words elsewhere, so a hit on them alone proves nothing
(lexicon format: ``lexicons/README.md``):

* a **contextual** term (``needs == "context"``, e.g. the code word ``cp``, also the Unix
  copy command and "CP violation" in physics) counts only when, within ``term.window``
  words, there is another signal (a minor, sexual or nudity term or an age under 18) or a
  *qualifier* of its language (``pics``, ``vids``, ``links``): ``cp pics`` and ``kids cp``
  count, ``cp command in linux`` does not;
* an **ambiguous** term (``needs == "language"``, e.g. German/Dutch ``kind``, English
  "kind") counts only when the prompt holds another signal of the *same* language
  (``Kind nackt``: ``nackt`` is German) or the prompt was identified as that language.

Distances are counted in words of the original prompt (runs of letters and digits), so
spaced-out text (``c p pics``) measures the same as plain text. Qualifier hits are only
support: they never reach the scores or the evidence.

Before any of that, every hit must be *in its language* (:func:`in_language`): a term
counts in the language it belongs to, when the prompt may be written in it (a plausible
language of :func:`sentinelle.guard.langid.plausible`) or when the term's own script says
so (a Cyrillic, Arabic, CJK or Hangul term found in a word of that script); or when the
word shows deliberate obfuscation (mixed scripts inside it, letters joined across
separators, leetspeak, invisible or compatibility characters: ``View.is_disguised``).
So Italian ``tette`` does not fire on French ``tête``, nor German ``pädo`` inside Spanish
``ocupado``; ``t.e.t.t.e`` or ``t3tte`` still fire in any prompt. A term glued into a
longer word (``nakedkids``) needs its partner in the same word to count too.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence

from .lexicon import Hit

_WORD = re.compile(r"\w+")
SIGNAL_CATEGORIES = frozenset(("minor", "sexual", "nudity", "minor_sexual", "minor_nudity"))


class _Words:
    """Maps character offsets of the original prompt to word indices."""

    def __init__(self, text: str) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for m in _WORD.finditer(text):
            self.starts.append(m.start())
            self.ends.append(m.end())

    def index_range(self, span: tuple[int, int]) -> tuple[int, int]:
        """``(first, last)`` indices of the words a span touches (a span between words
        gets the index of the next word for both)."""
        first = bisect.bisect_right(self.ends, span[0])
        last = max(first, bisect.bisect_left(self.starts, span[1]) - 1)
        return first, last


def _distance(a: tuple[int, int], b: tuple[int, int]) -> int:
    """Words from one range to the other (0 when they overlap, 1 when adjacent)."""
    return max(0, b[0] - a[1], a[0] - b[1])


def signal_languages(hits: Iterable[Hit], age_languages: Iterable[str | None]) -> dict[str, float]:
    """Votes for the prompt's language from the hits that count on their own and from the
    ages: the hint :func:`sentinelle.guard.langid.identify` uses for short prompts. A term
    found as written votes 1, a generated variant (an inflection, a transliteration) 0.5:
    ``nude`` is an English term as written and only an inflection of Italian ``nudo``."""
    best: dict[tuple[tuple[int, int], str], float] = {}  # one vote per span and language
    for h in hits:
        t = h.term
        if h.rule.startswith(("glued", "compound")):
            continue  # a piece of a longer word says nothing about the prompt's language
        if not t.needs and t.category in SIGNAL_CATEGORIES and t.language:
            k = (h.span, t.language)
            best[k] = max(best.get(k, 0.0), 0.5 if t.variant else 1.0)
    votes: dict[str, float] = {}
    for (_span, lang), weight in best.items():
        votes[lang] = votes.get(lang, 0.0) + weight
    for lang in age_languages:
        if lang:
            votes[lang] = votes.get(lang, 0.0) + 1.0
    return votes


def in_language(
    hit: Hit,
    languages: frozenset[str],
    ordinary: Mapping[str, frozenset[str]] | None = None,
) -> bool:
    """Whether ``hit`` counts in a prompt whose plausible languages are ``languages``
    (module docstring). ``ordinary``: term spellings that are ordinary words of lexicon
    languages (word lists, ``Lexicons.ordinary``); given, a whole-word term of another
    language also counts where it is no ordinary word of a plausible language (``rule 34``
    or ``hentai`` in a Russian prompt), never where it is one (``tette`` is French
    ``tête``)."""
    t = hit.term
    if t.needs == "context" or t.category not in SIGNAL_CATEGORIES:
        return True  # a code word needs support near it anyway (a qualifier of its language)
    if t.language is None or hit.disguised or t.script != "latin" or t.language in languages:
        return True
    if ordinary is None or not languages or not hit.rule.startswith(("word", "spaced")):
        return False  # parts of a word, prefixes and inflections: only in their language
    return not (ordinary.get(t.key, frozenset()) & languages)


def _glued_in_language(hit: Hit, hits: Sequence[Hit]) -> bool:
    """A word glued from two terms of one language (``bambinenude``) is that language's
    phrase with its space removed, whatever the prompt's language; pieces of different
    languages (``viole`` + ``tten`` in German ``violetten``) are an ordinary word."""
    own = hit.languages or frozenset((hit.term.language,))
    return any(
        o is not hit
        and o.word == hit.word
        and _complementary(hit, o)
        and (o.end <= hit.start or hit.end <= o.start)
        and own & (o.languages or {o.term.language})
        for o in hits
    )


_MINOR = ("minor", "minor_sexual", "minor_nudity")


def _complementary(a: Hit, b: Hit) -> bool:
    """A minor term and a sexual or nudity term (or a term meaning both)."""
    ca, cb = a.term.category, b.term.category
    return (ca in _MINOR) != (cb in _MINOR) or ca.startswith("minor_") or cb.startswith("minor_")


def _partnered(hits: list[Hit]) -> list[Hit]:
    """Glued hits (``nakedkids``) whose partner in the same word was dropped go too."""
    glued = [h for h in hits if h.rule.startswith("glued")]
    if not glued:
        return hits
    out = []
    for h in hits:
        if h.rule.startswith("glued") and not any(
            o is not h and o.word == h.word and _complementary(h, o) for o in hits
        ):
            continue
        out.append(h)
    return out


def resolve(
    hits: Sequence[Hit],
    original: str,
    *,
    language: str | None,
    age_spans: Sequence[tuple[tuple[int, int], str | None]] = (),
    languages: frozenset[str] | None = None,
    dropped: list[tuple[Hit, str]] | None = None,
    ordinary: Mapping[str, frozenset[str]] | None = None,
) -> list[Hit]:
    """The hits that count: hits in their language, of which plain hits, ambiguous hits
    with same-language support and contextual hits with nearby support (module
    docstring); qualifiers are dropped.

    ``age_spans``: ``(span, language)`` of every age under 18 found in the prompt.
    ``languages``: the prompt's plausible languages (None: every hit is in its language).
    ``dropped``: when a list, hits refused for their language get ``(hit, "language")``."""
    if languages is not None:
        keep = []
        for h in hits:
            if in_language(h, languages, ordinary) or (
                h.rule.startswith("glued") and _glued_in_language(h, hits)
            ):
                keep.append(h)
            elif dropped is not None and h.term.category in SIGNAL_CATEGORIES:
                dropped.append((h, "language"))
        hits = _partnered(keep)
    plain = [h for h in hits if not h.term.needs and h.term.category in SIGNAL_CATEGORIES]
    ambiguous = [h for h in hits if h.term.needs == "language"]
    contextual = [h for h in hits if h.term.needs == "context"]
    if not ambiguous and not contextual:
        return plain
    langs = {h.term.language for h in plain} | {lang for _, lang in age_spans}
    confirmed = [h for h in ambiguous if h.term.language in langs or h.term.language == language]
    kept = plain + confirmed
    if not contextual:
        return kept
    words = _Words(original)
    support = [words.index_range(h.span) for h in kept]
    support += [words.index_range(span) for span, _ in age_spans]
    qualifiers = [h for h in hits if h.term.category == "qualifier"]
    for h in contextual:
        own = words.index_range(h.span)
        near = [words.index_range(q.span) for q in qualifiers if q.term.language == h.term.language]
        if any(_distance(own, other) <= h.term.window for other in support + near):
            kept.append(h)
    return kept
