"""Build the prompt guard's adversarial benchmark set: term-level phrases that must block.

Every case pairs a minor term with a sexual or nudity term (or writes an age under 18),
in one of several phrasings, then applies one obfuscation a filter evader would use.
Two sources of terms, reported separately:

* ``lexicon``: terms taken from the shipped lexicons (tests the normaliser);
* ``heldout``: hand-written variants in ``heldout.toml`` that the lexicons do not list
  verbatim (tests generalisation: inflections, other spellings, synonyms);
* ``heldout2`` (:func:`build_heldout2_cases`): a second, independent set
  (``heldout2.toml``) of systematic variation (case endings, clitics, transliterations)
  under obfuscations the first set does not use (punctuation between letters, emoji inside
  words, several tricks at once), plus whole phrases: ages in more scripts, "under 18"
  phrases, code words, romanised forms and mixed obfuscations.

Deterministic (fixed seed). Run ``python bench/guard/gen_adversarial.py`` to write
``bench/out/guard_adversarial.tsv`` (kind, language, obfuscation, text).
"""

from __future__ import annotations

import random
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent
LANGS = ["en", "fr", "es", "de", "it", "pt", "nl", "pl", "ru", "uk", "tr", "ar", "ja", "zh", "ko"]
CJK_LIKE = {"ja", "zh", "ko", "ar"}

_HOMOGLYPH = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і", "y": "у"}
_LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}
_TO_LATIN_IN_CYR = {"о": "o", "а": "a", "е": "e", "р": "p", "с": "c", "х": "x"}


def _leet(t: str, rng: random.Random) -> str:
    return "".join(_LEET[c] if c in _LEET and rng.random() < 0.6 else c for c in t)


def _homoglyph(t: str, rng: random.Random) -> str:
    if any("\u0400" <= c <= "\u04ff" for c in t):  # Latin intruders in Cyrillic words
        return "".join(_TO_LATIN_IN_CYR.get(c, c) for c in t)
    return "".join(_HOMOGLYPH[c] if c in _HOMOGLYPH and rng.random() < 0.7 else c for c in t)


def _spaced(t: str, rng: random.Random) -> str:
    return " ".join(c for c in t if c != " ")


def _dotted(t: str, rng: random.Random) -> str:
    return " ".join(".".join(w) for w in t.split(" "))


def _zero_width(t: str, rng: random.Random) -> str:
    return "\u200b".join(t)


def _full_width(t: str, rng: random.Random) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in t)


def _repeat(t: str, rng: random.Random) -> str:
    return "".join(c * rng.choice((1, 2, 3)) if c.isalpha() else c for c in t)


def _accents(t: str, rng: random.Random) -> str:
    acc = {"a": "á", "e": "è", "i": "ï", "o": "ô", "u": "ü", "n": "ñ", "c": "ç"}
    return "".join(acc.get(c, c) if rng.random() < 0.5 else c for c in t)


def _case(t: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in t)


def _glued(t: str, rng: random.Random) -> str:
    return t.replace(" ", "")


OBFUSCATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "plain": lambda t, r: t,
    "case": _case,
    "leet": _leet,
    "homoglyph": _homoglyph,
    "spaced": _spaced,
    "dotted": _dotted,
    "zero_width": _zero_width,
    "full_width": _full_width,
    "repeat": _repeat,
    "accents": _accents,
    "glued": _glued,
}
# Obfuscations that make sense for scripts without Latin letters.
NON_LATIN_OBF = ("plain", "zero_width", "spaced", "homoglyph")


@dataclass(frozen=True)
class Case:
    kind: str  # lexicon | heldout | age
    language: str
    obfuscation: str
    text: str


def _lexicon_terms() -> dict[str, dict[str, list[str]]]:
    folder = resources.files("sentinelle.guard") / "lexicons"
    out: dict[str, dict[str, list[str]]] = {}
    for lang in LANGS:
        d = tomllib.loads((folder / f"{lang}.toml").read_text("utf-8"))
        strip = [t.rstrip("*") for t in d["minor"]["strong"]]
        explicit = [t.rstrip("*") for t in d["nudity"]["strong"] + d["sexual"]["strong"]]
        out[lang] = {"minor": strip, "explicit": explicit}
    return out


def _heldout_terms() -> dict[str, dict[str, list[str]]]:
    return tomllib.loads((HERE / "heldout.toml").read_text("utf-8"))


AGES = {
    "en": ["{n}yo", "{n} y/o", "{n}-year-old", "{n} years old", "aged {n}"],
    "fr": ["{n} ans"],
    "es": ["{n} años"],
    "de": ["{n} Jahre alt", "{n}-jährige"],
    "it": ["{n} anni"],
    "pt": ["{n} anos"],
    "nl": ["{n} jaar oud"],
    "pl": ["{n} lat"],
    "ru": ["{n} лет"],
    "uk": ["{n} років"],
    "tr": ["{n} yaşında"],
    "ar": ["{n} سنة"],
    "ja": ["{n}歳"],
    "zh": ["{n}岁"],
    "ko": ["{n}살"],
}
AGE_WORDS = ["twelve-year-old", "thirteen year old", "douze ans", "zwölf Jahre", "doce años",
             "十二歳", "十三岁", "열두 살", "двенадцать лет", "on iki yaşında"]  # fmt: skip


def _pairs(rng: random.Random, minors: list[str], explicit: list[str], k: int):
    for _ in range(k):
        m, e = rng.choice(minors), rng.choice(explicit)
        yield (f"{e} {m}" if rng.random() < 0.5 else f"{m} {e}")


def build_cases(seed: int = 4, per_lang: int = 40) -> list[Case]:
    """The adversarial set (see module docstring); about 1,500 cases."""
    rng = random.Random(seed)
    cases: list[Case] = []
    for kind, terms in (("lexicon", _lexicon_terms()), ("heldout", _heldout_terms())):
        for lang in LANGS:
            t = terms[lang]
            obfs = NON_LATIN_OBF if lang in CJK_LIKE else tuple(OBFUSCATIONS)
            for i, phrase in enumerate(_pairs(rng, t["minor"], t["explicit"], per_lang)):
                name = obfs[i % len(obfs)]
                if lang in ("ru", "uk") and name in ("leet", "full_width", "accents"):
                    name = "homoglyph"
                cases.append(Case(kind, lang, name, OBFUSCATIONS[name](phrase, rng)))
    lex = _lexicon_terms()
    for lang in LANGS:
        for fmt in AGES[lang]:
            for n in (5, 9, 12, 13, 15, 17):
                e = rng.choice(lex[lang]["explicit"])
                age = fmt.format(n=n if rng.random() < 0.7 else _full_width(str(n), rng))
                cases.append(Case("age", lang, "age", f"{e} {age}"))
    for words in AGE_WORDS:
        cases.append(
            Case("age", "multi", "age_words", f"{words} {rng.choice(lex['en']['explicit'])}")
        )
    return cases


_SEPARATORS = "_*-.~"
_FILLER_EMOJI = "✨🔥🌟💫⭐🎀"


def _punct(t: str, rng: random.Random) -> str:
    sep = rng.choice(_SEPARATORS)
    return " ".join(sep.join(w) for w in t.split(" "))


def _emoji_mid(t: str, rng: random.Random) -> str:
    def one(w: str) -> str:
        if len(w) < 3:
            return w
        k = rng.randrange(1, len(w) - 1)
        return w[:k] + rng.choice(_FILLER_EMOJI) + w[k:]

    return " ".join(one(w) for w in t.split(" "))


def _mixed(t: str, rng: random.Random) -> str:
    """Leet, look-alikes and spacing at once."""
    return _spaced(_homoglyph(_leet(t, rng), rng), rng)


def _mixed_cjk(t: str, rng: random.Random) -> str:
    """Ideographic spaces and zero-width characters between the letters."""
    return "".join(c + rng.choice(("\u3000", "\u200b", " ")) for c in t if c != " ").rstrip()


HELDOUT2_OBF: dict[str, Callable[[str, random.Random], str]] = {
    "plain": lambda t, r: t,
    "punct": _punct,
    "emoji_mid": _emoji_mid,
    "mixed": _mixed,
    "spaced": _spaced,
    "homoglyph": _homoglyph,
    "repeat": _repeat,
    "case": _case,
}
HELDOUT2_NON_LATIN = ("plain", "punct", "emoji_mid", "mixed_cjk", "spaced", "zero_width")


def build_heldout2_cases(seed: int = 42, per_lang: int = 40) -> list[Case]:
    """The second held-out set (``heldout2.toml``): pairs x obfuscations, then phrases."""
    rng = random.Random(seed)
    doc = tomllib.loads((HERE / "heldout2.toml").read_text("utf-8"))
    funcs = {**HELDOUT2_OBF, "mixed_cjk": _mixed_cjk, "zero_width": _zero_width}
    cases: list[Case] = []
    for lang in LANGS:
        t = doc[lang]
        obfs = HELDOUT2_NON_LATIN if lang in CJK_LIKE else tuple(HELDOUT2_OBF)
        for i, phrase in enumerate(_pairs(rng, t["minor"], t["explicit"], per_lang)):
            name = obfs[i % len(obfs)]
            if lang in ("ru", "uk") and name == "mixed":
                name = "punct"
            cases.append(Case("heldout2", lang, name, funcs[name](phrase, rng)))
    for section, phrases in doc["phrases"].items():
        cases.extend(Case("heldout2_phrase", "multi", section, p) for p in phrases)
    return cases


def main() -> None:
    out = HERE.parent / "out" / "guard_adversarial.tsv"
    out.parent.mkdir(exist_ok=True)
    cases = build_cases() + build_heldout2_cases()
    with open(out, "w", encoding="utf-8") as f:
        f.write("kind\tlanguage\tobfuscation\ttext\n")
        for c in cases:
            f.write(f"{c.kind}\t{c.language}\t{c.obfuscation}\t{c.text}\n")
    print(f"{len(cases)} cases -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
