"""Language identification with py3langid (its model ships inside the wheel).

Used only to *report* the prompt's language and to pick the language of evidence when a
term exists in several lexicons; it never decides anything. The model is loaded once, on
first use (about 0.8 s), and restricted to the languages the lexicons cover, which makes
short prompts far less likely to be labelled with an unrelated language. One call costs
about 35 µs for a caption-length prompt.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

_lock = threading.Lock()
_identifiers: dict[tuple[str, ...], object] = {}


def _identifier(languages: tuple[str, ...]):
    ident = _identifiers.get(languages)
    if ident is None:
        with _lock:
            ident = _identifiers.get(languages)
            if ident is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
                supported = set(ident.nb_classes)
                ident.set_languages([lang for lang in languages if lang in supported] or None)
                _identifiers[languages] = ident
    return ident


def identify(text: str, languages: Iterable[str]) -> str | None:
    """ISO 639-1 code of ``text`` among ``languages``; None when it has no letters."""
    if not any(c.isalpha() for c in text):
        return None
    lang, _score = _identifier(tuple(sorted(languages))).classify(text)
    return str(lang)
