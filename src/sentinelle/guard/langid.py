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
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

SHORT_WORDS = 4  # prompts with fewer words prefer the hint
LOW_CONFIDENCE = 0.5  # normalised probability below which the model is not trusted

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


def identify(
    text: str, languages: Iterable[str], hint: Mapping[str, float] | None = None
) -> str | None:
    """ISO 639-1 code of ``text`` among ``languages``; None when it has no letters, or
    when it is short or the model unsure and there is no ``hint`` (votes for the
    languages of the lexicon terms that fired). See the module docstring."""
    if not any(c.isalpha() for c in text):
        return None
    ident = _identifier(tuple(sorted(languages)))
    lang, confidence = ident.classify(text)
    short = len(text.split()) < SHORT_WORDS
    if not short and confidence >= LOW_CONFIDENCE:
        return str(lang)
    votes = {code: n for code, n in (hint or {}).items() if n > 0}
    if not votes:
        return str(lang) if confidence >= LOW_CONFIDENCE else None
    if len(votes) == 1:
        return next(iter(votes))
    top = max(votes.values())
    tied = {code for code, n in votes.items() if n == top}
    if lang in tied:
        return str(lang)
    ranking = [code for code, _score in ident.rank(text)]
    return min(tied, key=lambda code: ranking.index(code) if code in ranking else len(ranking))
