"""Text normalisation that undoes the tricks people use to slip past keyword filters.

Two views of a prompt are built, each a string plus, for every character, the index of the
original character it came from (so evidence can point back at the prompt):

``base_view`` -- what a careful reader sees:
  * Unicode NFKC (full-width letters and digits, ligatures, mathematical bold 𝐬𝐞𝐱, circled
    Ⓢ, superscripts... become plain characters);
  * case folding, then diacritics stripped from Latin, Greek and Cyrillic letters
    (``é -> e``, ``й -> и``) plus a few letters NFD cannot split (``ı ł ø đ æ œ``);
  * zero-width and control characters, variation selectors, skin-tone modifiers, Hangul
    fillers and Arabic tatweel removed; every kind of space folded to one ASCII space;
  * Arabic letter variants unified (``أ إ آ -> ا``, ``ى -> ي``, ``ة -> ه``) and katakana
    folded to hiragana (``ヌード -> ぬーど``), so one lexicon spelling covers both.

``skeleton_view`` -- the base view with evasion undone, word by word:
  * emoji glued inside a word are dropped (``na🔥ked``);
  * letters split by punctuation are rejoined (``s.e.x``, ``n-a-k-e-d``), and runs of at
    least three one-letter words are joined (``s e x``); such joined runs are marked
    *relaxed* because the evader erased the word boundaries;
  * look-alike letters are folded per word: a word with genuinely Cyrillic letters keeps
    its script and Latin intruders are turned into their Cyrillic twins (``гoлая``), any
    other word is folded to Latin (``ѕех``, ``nαked``); so genuine Russian or Ukrainian
    text stays matchable while mixed-script disguises collapse;
  * leetspeak digits and symbols become letters (``s3x``, ``p0rn``, ``$ex``, ``@``);
  * repeated letters collapse to one (``seeexxx -> sex``);
  * then ``l`` becomes ``i`` (``1 | ! I`` already did), since they stand in for each other
    (after collapsing, so ``tilts`` stays ``tiits`` and does not meet ``tits``).

The lexicons are compiled through the very same :func:`skeleton` function, so whatever
folding happens to a prompt also happened to every term it is compared with.

Per-character work is cached, so a prompt costs a few dictionary look-ups per character.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

_CACHE_LIMIT = 65_536
_fold_cache: dict[str, str] = {}

# Letters NFD does not decompose, and a few multi-letter folds.
_SPECIAL = {
    "ı": "i",
    "ł": "l",
    "ø": "o",
    "đ": "d",
    "ħ": "h",
    "ŀ": "l",
    "æ": "ae",
    "œ": "oe",
    "þ": "th",
    "ß": "ss",
    "ſ": "s",
    # Arabic: tatweel (elongation) and letter variants.
    "\u0640": "",
    "أ": "ا",
    "إ": "ا",
    "آ": "ا",
    "ٱ": "ا",
    "ى": "ي",
    "ة": "ه",
    # Hangul fillers look like nothing at all.
    "\u3164": "",
    "\u115f": "",
    "\u1160": "",
    "\uffa0": "",
    "\u2800": " ",  # braille blank
    # Latin small capitals and IPA look-alikes, which NFKC leaves alone.
    **dict(zip("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢɑɡɩ", "abcdefghijklmnoprstuvwyzagi", strict=True)),
}


# Emoji used as letters ("se❌", "n⭕de").
_EMOJI_LETTERS = {"⭕": "o", "❌": "x", "❎": "x", "✖": "x", "➕": "t", "💲": "s"}


def _compute_fold(c: str) -> str:
    """Fold one original character to zero or more base-view characters."""
    if c in "\t\n\r\x0b\x0c":
        return " "
    out: list[str] = []
    for d in unicodedata.normalize("NFKC", c).casefold():
        special = _SPECIAL.get(d)
        if special is not None:
            out.append(special)
            continue
        cat = unicodedata.category(d)
        if cat[0] == "Z":
            out.append(" ")
            continue
        if cat[0] == "C" or cat in ("Mn", "Me", "Sk") or d == "\u200d":
            continue  # controls, zero-width, marks, skin tones, variation selectors
        o = ord(d)
        if 0x1F1E6 <= o <= 0x1F1FF:  # regional indicators 🇸🇪🇽
            d = chr(o - 0x1F1E6 + 0x61)
        elif 0x1F150 <= o <= 0x1F169 or 0x1F170 <= o <= 0x1F189:  # 🅐 🅰 ...
            d = chr((o - 0x1F150) % 0x20 + 0x61)
        elif d.isdecimal() and not d.isascii():  # Arabic-Indic, Devanagari... digits
            d = str(unicodedata.decimal(d))
        elif d in _EMOJI_LETTERS:
            d = _EMOJI_LETTERS[d]
        elif 0x30A1 <= o <= 0x30F6 or o in (0x30FD, 0x30FE):  # katakana -> hiragana
            d = chr(o - 0x60)
        elif o < 0x0530 or 0x1E00 <= o < 0x2000:  # Latin, Greek, Cyrillic (+ extended)
            dec = unicodedata.normalize("NFD", d)
            if len(dec) > 1:
                d = "".join(x for x in dec if unicodedata.category(x) != "Mn")
                d = "".join(_SPECIAL.get(x, x) for x in d)
        out.append(d)
    return "".join(out)


def fold_char(c: str) -> str:
    """Base-view folding of one character (cached)."""
    r = _fold_cache.get(c)
    if r is None:
        r = _compute_fold(c)
        if len(_fold_cache) < _CACHE_LIMIT:
            _fold_cache[c] = r
    return r


@dataclass(frozen=True, slots=True)
class View:
    """A normalised string; ``origin[i]`` is the original index of ``text[i]``.

    Skeleton views also know their words: ``starts``/``ends`` are the positions where a
    word starts or ends, ``word_starts`` the same starts in order, and
    ``relaxed_words`` the numbers of the words made of joined one-letter words.
    """

    text: str
    origin: Sequence[int]
    starts: frozenset[int] = frozenset()
    ends: frozenset[int] = frozenset()
    word_starts: tuple[int, ...] = ()
    relaxed_words: frozenset[int] = frozenset()
    origin_last: Sequence[int] | None = None  # last original index merged into a character
    marked: frozenset[int] = frozenset()  # base view: characters with invisible/compat tricks
    disguised_words: frozenset[int] = frozenset()  # skeleton: words showing an evasion trick
    mixed_script: bool = False  # skeleton: the text mixes Latin with Cyrillic/Greek letters
    source: str = ""  # base view: the original text

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Original ``[start, end)`` covering view characters ``start..end-1``."""
        last = self.origin if self.origin_last is None else self.origin_last
        return self.origin[start], last[end - 1] + 1

    def word_of(self, pos: int) -> int:
        """Number of the word that holds view position ``pos`` (-1 before the first)."""
        return bisect_right(self.word_starts, pos) - 1

    def word_range(self, g: int) -> tuple[int, int]:
        """View positions ``[start, end)`` of word number ``g``."""
        start = self.word_starts[g]
        end = self.word_starts[g + 1] - 1 if g + 1 < len(self.word_starts) else len(self.text)
        return start, end

    def is_disguised(self, pos: int) -> bool:
        """True when the word holding ``pos`` shows deliberate obfuscation (see
        :func:`skeleton_view`): letters joined across separators, mixed scripts, leetspeak,
        a letter run of three or more, invisible or compatibility characters inside."""
        return bool(self.disguised_words) and self.word_of(pos) in self.disguised_words

    def is_relaxed(self, pos: int) -> bool:
        """True when ``pos`` lies in a run of joined one-letter words (``s e x``)."""
        return bool(self.relaxed_words) and self.word_of(pos) in self.relaxed_words


def base_view(text: str) -> View:
    """NFKC, case, diacritics, invisible characters and spaces normalised (see module)."""
    if (
        text.isascii()
        and text.isprintable()
        and "  " not in text
        and text[:1] != " "
        and text[-1:] != " "
    ):  # fast path: plain ASCII needs lower-casing only
        return View(text.lower(), range(len(text)), source=text)
    chars: list[str] = []
    origin: list[int] = []
    marked: list[int] = []
    pending = False  # an invisible character was dropped: mark the next letter
    last_space = True  # drop leading spaces
    for i, c in enumerate(text):
        trick = False
        if c.isascii():
            f = " " if c in " \t\n\r\x0b\x0c" else c.lower()
            if not c.isprintable() and f != " ":
                f, trick = "", True
        else:
            f = fold_char(c)
            trick = _is_trick(c, f)
        if not f:
            if trick:
                if chars and not last_space:
                    marked.append(len(chars) - 1)
                pending = True
            continue
        for d in f:
            if d == " ":
                pending = False
                if last_space:
                    continue
                last_space = True
            else:
                last_space = False
                if trick or pending:
                    marked.append(len(chars))
                    pending = False
            chars.append(d)
            origin.append(i)
    if chars and chars[-1] == " ":
        chars.pop()
        origin.pop()
    return View("".join(chars), tuple(origin), marked=frozenset(marked), source=text)


_TRICK_CACHE: dict[str, bool] = {}
_PLAIN_SPECIAL = frozenset("ıłøđħŀæœþßſ")


def _is_trick(c: str, folded: str) -> bool:
    """True for a character that only an evader puts where a letter belongs: one NFKC
    changes (full-width, mathematical, circled, superscript letters, ligatures), a small
    capital, an emoji or regional indicator read as a letter, or an invisible character
    dropped from inside a word (zero-width, bidi controls, variation selectors, Hangul
    fillers, tatweel, overlay marks). Accented letters, other scripts and ordinary
    combining accents are ordinary writing."""
    r = _TRICK_CACHE.get(c)
    if r is not None:
        return r
    o = ord(c)
    if not folded:
        cat = unicodedata.category(c)
        r = (
            cat in ("Cf", "Cc", "Me")
            or 0xFE00 <= o <= 0xFE0F
            or 0xE0100 <= o <= 0xE01EF
            or 0x0334 <= o <= 0x0338
            or 0x20D0 <= o <= 0x20FF
            or c in "\u0640\u3164\u115f\u1160\uffa0"
        )
    elif unicodedata.normalize("NFKC", c) != c:
        r = True
    elif folded.isascii() and folded.isalpha():
        r = not (c in _PLAIN_SPECIAL or unicodedata.normalize("NFD", c)[0].isascii())
    else:
        r = False
    if len(_TRICK_CACHE) < _CACHE_LIMIT:
        _TRICK_CACHE[c] = r
    return r


# --- skeleton --------------------------------------------------------------------------

_LEET_SYMBOLS = "@$|!€£¢"
_TOKEN = re.compile(
    r"[@$|!€£¢]*[^\W_]+(?:[@$|!€£¢+]+[^\W_]+)*[$@]*"
    r"|[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF]",  # each emoji is a word
)
_PUNCT_GAP = re.compile(r"[^\w\s]{1,3}|_{1,3}")
_SPACED_GAP = re.compile(r"[\s\W_]{1,3}")

# Cyrillic and Greek letters that look like Latin ones (after case folding).
_TO_LATIN = {
    "а": "a", "в": "b", "с": "c", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i",
    "ј": "j", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "т": "t", "у": "y",
    "х": "x", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "г": "r", "п": "n",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "γ": "y", "μ": "u", "ς": "c",
    "σ": "o", "ϲ": "c", "ϳ": "j",
}  # fmt: skip
# Leetspeak digits and symbols, applied to words that are folded to Latin.
_LEET = {
    "0": "o", "1": "i", "2": "z", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t",
    "8": "b", "9": "g", "@": "a", "$": "s", "|": "i", "!": "i", "€": "e", "£": "l",
    "¢": "c", "+": "t",
}  # fmt: skip
_LATIN_FINAL = {**_TO_LATIN, **_LEET}
# Latin look-alikes (and leet digits) inside a genuinely Cyrillic word.
_TO_CYRILLIC = {
    "a": "а", "b": "в", "c": "с", "e": "е", "h": "н", "k": "к", "m": "м", "o": "о",
    "p": "р", "t": "т", "x": "х", "y": "у", "i": "і", "0": "о", "3": "з", "4": "ч",
    "6": "б", "@": "а", "$": "с", "u": "и", "n": "п", "r": "г",
}  # fmt: skip
_CYR_STRONG = re.compile(
    "[" + "".join(sorted({chr(o) for o in range(0x0400, 0x0530)} - set(_TO_LATIN))) + "]"
)
_LATIN_TABLE = str.maketrans(_LATIN_FINAL)
_CYRILLIC_TABLE = str.maketrans(_TO_CYRILLIC)
_REPEAT = re.compile(r"(.)\1")


def _fold_word(word: str, force_cyrillic: bool = False) -> str:
    """Script-aware look-alike and leet folding of one word (see module docstring)."""
    if force_cyrillic or _CYR_STRONG.search(word):
        return word.translate(_CYRILLIC_TABLE)
    return word.translate(_LATIN_TABLE)


_ORDINARY_JOIN = re.compile(r"[-'’/]")
_MIN_JOINED_WORD = 3


def _ordinary_join(text: str, group: Sequence[tuple[int, int]]) -> bool:
    """Words joined by a hyphen, apostrophe or slash (``pink-violetten``, ``l'enfant``)
    are ordinary writing; letters split apart (``n-a-k-e-d``, ``na.ked``) are not."""
    if any(e - s < _MIN_JOINED_WORD for s, e in group[1:-1]):
        return False
    if group[0][1] - group[0][0] < 1 or group[-1][1] - group[-1][0] < 2:
        return False
    return all(
        _ORDINARY_JOIN.fullmatch(text, a[1], b[0]) for a, b in zip(group, group[1:], strict=False)
    )


def _collapse(word: str, origin: Sequence[int]) -> tuple[str, Sequence[int], Sequence[int]]:
    """Collapse runs of one repeated character; origins of each run's first and last."""
    if _REPEAT.search(word) is None:
        return word, origin, origin
    out_c: list[str] = []
    out_o: list[int] = []
    out_last: list[int] = []
    prev = ""
    for c, o in zip(word, origin, strict=True):
        if c == prev:
            out_last[-1] = o
            continue
        out_c.append(c)
        out_o.append(o)
        out_last.append(o)
        prev = c
    return "".join(out_c), out_o, out_last


def _is_letter_token(text: str, start: int, end: int) -> bool:
    """One letter, or two in a script written without spaces or with joined letters
    (``よう`` or ``عا`` left over where only some gaps were zero-width characters)."""
    size = end - start
    if size == 1:
        return True
    first = text[start]
    return size == 2 and ("\u0600" <= first <= "\u06ff" or "\u3040" <= first <= "\u9fff")


def _unspaced(c: str) -> bool:
    """Arabic, kana, CJK ideographs or Hangul: scripts whose terms match as substrings."""
    return "\u0600" <= c <= "\u06ff" or "\u3040" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af"


def _joins_unspaced(text: str, a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Join two tokens of a substring-matched script across a gap when one has at most
    two letters (``ع ا ر ي ة`` or ``누 드`` split unevenly) or both are kana/ideographs
    (no spaces in Chinese or Japanese, so a space there is only ever an evasion)."""
    ca, cb = text[a[0]], text[b[0]]
    if not (_unspaced(ca) and _unspaced(cb)):
        return False
    if not _SPACED_GAP.fullmatch(text, a[1], b[0]):
        return False
    if "\u3040" <= ca <= "\u9fff" and "\u3040" <= cb <= "\u9fff":
        return True
    return min(a[1] - a[0], b[1] - b[0]) <= 2


def _is_emoji(text: str, start: int, end: int) -> bool:
    return end - start == 1 and text[start] >= "\u2600" and not text[start].isalnum()


def _drop_inline_emoji(tokens: list[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """Drop emoji glued inside a word (``na🔥ked``): the letters around them are then
    joined like letters around punctuation, and the emoji itself is noise."""
    if len(tokens) < 3 or text.isascii():
        return tokens
    out: list[tuple[int, int]] = []
    for k, (s, e) in enumerate(tokens):
        if (
            0 < k < len(tokens) - 1
            and _is_emoji(text, s, e)
            and tokens[k - 1][1] == s
            and tokens[k + 1][0] == e
            and not _is_emoji(text, *tokens[k - 1])
            and not _is_emoji(text, *tokens[k + 1])
        ):
            continue
        out.append((s, e))
    return out


_LEAD_NUMBER = re.compile(r"[1-9][0-9]*")


def _fold_keep_number(word: str) -> str:
    """Look-alike and leet folding that keeps a word's leading number (``11y34r -> 11year``)."""
    m = _LEAD_NUMBER.match(word)
    lead = m.group() if m else ""
    rest = word[len(lead) :]
    if not any(c.isalpha() for c in rest):
        return word
    return lead + _fold_word(rest)


def skeleton_view(base: View, force_cyrillic: bool = False, *, keep_numbers: bool = False) -> View:
    """The evasion-resistant view of an already base-normalised text (see module).

    ``keep_numbers`` builds the *age view* instead: words are rejoined and look-alikes and
    leet folded as usual, but a word's leading number is kept, repeated letters are not
    collapsed and ``l`` stays ``l``, so ``1 2 y o`` and ``11-y34r-0ld`` read as ages.
    """
    text = base.text
    tokens = _drop_inline_emoji([(m.start(), m.end()) for m in _TOKEN.finditer(text)], text)
    # Group tokens: punctuation-joined, or runs of >= 3 one-character tokens.
    groups: list[list[tuple[int, int]]] = []
    relaxed_groups: set[int] = set()
    i = 0
    n = len(tokens)
    while i < n:
        s, e = tokens[i]
        # A run of one-character tokens separated by short non-word gaps?
        j = i
        while (
            j + 1 < n
            and _is_letter_token(text, *tokens[j])
            and _is_letter_token(text, *tokens[j + 1])
            and _SPACED_GAP.fullmatch(text, tokens[j][1], tokens[j + 1][0])
        ):
            j += 1
        if j - i >= 2:  # spaced-out letters; a glued tail may follow (``n a k e d.kids``)
            relaxed_groups.add(len(groups))
            group = tokens[i : j + 1]
            i = j
        else:
            group = [(s, e)]
        while i + 1 < n and (
            _PUNCT_GAP.fullmatch(text, tokens[i][1], tokens[i + 1][0])
            or _joins_unspaced(text, tokens[i], tokens[i + 1])
        ):
            i += 1
            group.append(tokens[i])
        groups.append(group)
        i += 1

    parts: list[str] = []
    origin: list[int] = []
    origin_last: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    disguised: list[int] = []
    pos = 0
    base_origin = base.origin
    marked = base.marked
    latin = other = False
    for g, group in enumerate(groups):
        if len(group) == 1:
            s, e = group[0]
            word = text[s:e]
            word_origin: Sequence[int] = base_origin[s:e]
            if marked and any(k in marked for k in range(s, e)):
                disguised.append(g)
        else:
            word = "".join(text[s:e] for s, e in group)
            word_origin = [base_origin[k] for s, e in group for k in range(s, e)]
            if g in relaxed_groups or not _ordinary_join(text, group):
                disguised.append(g)  # letters joined across separators or emoji
        if word.isascii():
            latin = True
        else:
            w_latin, w_other = scripts(word)
            latin |= w_latin
            other |= w_other
            if w_latin and w_other:
                disguised.append(g)  # mixed scripts inside one word
        if _TRICKY.search(word):
            disguised.append(g)  # leetspeak next to letters, or a letter run of 3+
        if keep_numbers:
            folded, word_last = _fold_keep_number(word), word_origin
        else:
            folded, word_origin, word_last = _collapse(
                _fold_word(word, force_cyrillic), word_origin
            )
            folded = folded.replace("l", "i")  # l/I/1 stand in for each other
        if parts:
            parts.append(" ")
            origin.append(origin_last[-1])
            origin_last.append(origin_last[-1])
            pos += 1
        starts.append(pos)
        parts.append(folded)
        origin.extend(word_origin)
        origin_last.extend(word_last)
        pos += len(folded)
        ends.append(pos)
    return View(
        "".join(parts),
        origin,
        frozenset(starts),
        frozenset(ends),
        tuple(starts),
        frozenset(relaxed_groups),
        origin_last,
        disguised_words=frozenset(disguised) | frozenset(relaxed_groups),
        mixed_script=latin and other,
    )


# Leet digits or symbols between letters (``s3x``, ``n@ked``), opening a word (``$ex``)
# or closing one (``porn0``), or a run of three or more of one letter (``seeex``). A
# leading number (``12yo``, ``3d``, ``4k``) is ordinary writing.
_TRICKY = re.compile(
    r"[^\W\d_][0-9@$|!€£¢+]+[^\W\d_]|^[@$|!€£¢][^\W\d_]|[^\W\d_]{2}[0-9@$|!€£¢]+$"
    r"|([^\W\d_])\1\1"
)


def scripts(word: str) -> tuple[bool, bool]:
    """Whether ``word`` holds Latin letters, and Cyrillic or Greek letters (any case,
    full-width and other compatibility forms included; digits and symbols are neither)."""
    has_latin = has_other = False
    for c in word:
        k = _SCRIPT_CACHE.get(c)
        if k is None:
            k = _char_script(c)
            if len(_SCRIPT_CACHE) < _CACHE_LIMIT:
                _SCRIPT_CACHE[c] = k
        if k == "L":
            has_latin = True
        elif k == "C":
            has_other = True
    return has_latin, has_other


_SCRIPT_CACHE: dict[str, str] = {}


def _char_script(c: str) -> str:
    """``L`` (Latin letter), ``C`` (Cyrillic or Greek letter) or ``""``."""
    d = unicodedata.normalize("NFKC", c)[:1] or c
    if ("a" <= d <= "z") or ("A" <= d <= "Z"):
        return "L"
    if not d.isalpha():
        return ""
    if "\u0370" <= d <= "\u052f":
        return "C"
    name = unicodedata.name(d, "")
    if "LATIN" in name:
        return "L"
    return "C" if "CYRILLIC" in name or "GREEK" in name else ""


def skeleton(text: str) -> str:
    """Skeleton of a lexicon term or any string (used to compile the lexicons)."""
    return skeleton_view(base_view(text)).text


def term_skeletons(text: str) -> list[str]:
    """Every skeleton a prompt word containing the term could produce.

    A Cyrillic term made only of Latin look-alikes (``порн``) folds to Latin, but inside
    a longer word with genuinely Cyrillic letters (``порнография``) the prompt keeps
    Cyrillic; so such terms are searched in both forms.
    """
    first = skeleton(text)
    out = [first]
    if any("\u0400" <= c <= "\u052f" for c in text):
        cyr = skeleton_view(base_view(text), force_cyrillic=True).text
        if cyr and cyr != first:
            out.append(cyr)
    return out


def normalize(text: str) -> str:
    """Base normalisation of ``text`` (NFKC, case, diacritics, invisible characters)."""
    return base_view(text).text
