"""Language identification with py3langid (its model ships inside the wheel).

Used to *report* the prompt's language, to pick the language of evidence when a term
exists in several lexicons and to confirm ``ambiguous`` lexicon terms
(:mod:`sentinelle.guard.context`); it never blocks anything by itself. The model is loaded
once, on first use, and restricted to the languages the lexicons cover.

A character n-gram model is unreliable on a few words ("a cat" scores Spanish, "nude"
Turkish), so the lexicon hits act as a hint: when the prompt has fewer than
:data:`SHORT_WORDS` words or the model's confidence is below :data:`LOW_CONFIDENCE`, the
language of the terms that fired wins (the most frequent; ties go to the model's
ranking). A short or unsure prompt with no hint gets ``None`` (undetermined) rather than
a guess.

:func:`plausible` also returns the *plausible languages* of a prompt, the languages whose
lexicon terms count as written (:mod:`sentinelle.guard.context`): every language the
model gives at least :data:`PLAUSIBLE` probability, and, on short or unsure prompts, the
languages of the terms that fired as whole words (a two-word prompt is too short to rule
any of them out).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

SHORT_WORDS = 4  # prompts with fewer words prefer the hint
LOW_CONFIDENCE = 0.5  # normalised probability below which the model is not trusted
PLAUSIBLE = 0.1  # normalised probability from which a language is plausible

_lock = threading.Lock()
_identifiers: dict[tuple[str, ...], object] = {}


def _identifier(languages: tuple[str, ...]):
    ident = _identifiers.get(languages)
    if ident is None:
        with _lock:
            ident = _identifiers.get(languages)
            if ident is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                supported = set(ident.nb_classes)
                ident.set_languages([lang for lang in languages if lang in supported] or None)
                _identifiers[languages] = ident
    return ident


def _words(text: str) -> int:
    """Words of ``text``; Chinese and Japanese write none of their spaces, so each two
    ideographs or kana count as one word there."""
    cjk = sum(1 for c in text if "\u3040" <= c <= "\u9fff")
    return len(text.split()) + cjk // 2


def identify(
    text: str, languages: Iterable[str], hint: Mapping[str, float] | None = None
) -> str | None:
    """ISO 639-1 code of ``text`` among ``languages``; None when it has no letters, or
    when it is short or the model unsure and there is no ``hint`` (votes for the
    languages of the lexicon terms that fired). See the module docstring."""
    return plausible(text, languages, hint)[0]


def plausible(
    text: str, languages: Iterable[str], hint: Mapping[str, float] | None = None
) -> tuple[str | None, frozenset[str]]:
    """``(language, plausible languages)`` of ``text`` (see the module docstring)."""
    if not any(c.isalpha() for c in text):
        return None, frozenset()
    ident = _identifier(tuple(sorted(languages)))
    ranked = ident.rank(text)
    lang, confidence = ranked[0]
    lang = str(lang)
    likely = {str(code) for code, p in ranked if p >= PLAUSIBLE}
    short = _words(text) < SHORT_WORDS
    if not short and confidence >= LOW_CONFIDENCE:
        return lang, frozenset(likely)
    votes = {code: n for code, n in (hint or {}).items() if n > 0}
    likely |= set(votes)
    if not votes:
        return (lang if confidence >= LOW_CONFIDENCE else None), frozenset(likely)
    if len(votes) == 1:
        return next(iter(votes)), frozenset(likely)
    top = max(votes.values())
    tied = {code for code, n in votes.items() if n == top}
    if lang in tied:
        return lang, frozenset(likely)
    ranking = [str(code) for code, _score in ranked]
    best = min(tied, key=lambda code: ranking.index(code) if code in ranking else len(ranking))
    return best, frozenset(likely)
