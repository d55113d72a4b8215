"""The lexicon files: present for every required language, well-formed, versioned, and
each one actually able to block (its own minor term next to its own nudity term)."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from sentinelle.guard import PromptGuard
from sentinelle.guard.ages import AgeFinder
from sentinelle.guard.lexicon import LexiconError, Lexicons, load_files, parse_lexicon
from sentinelle.guard.normalize import base_view, skeleton_view

REQUIRED = [
    *("en", "fr", "es", "de", "it", "pt", "nl", "pl"),
    *("ru", "uk", "tr", "ar", "ja", "zh", "ko"),
]


def _docs() -> dict[str, dict]:
    folder = resources.files("sentinelle.guard") / "lexicons"
    return {
        p.name: tomllib.loads(p.read_text("utf-8"))
        for p in folder.iterdir()
        if p.name.endswith(".toml")
    }


def test_every_required_language_has_a_versioned_reviewed_file() -> None:
    docs = _docs()
    langs = {d["meta"]["language"] for d in docs.values()}
    assert set(REQUIRED) <= langs
    for name, d in docs.items():
        meta = d["meta"]
        assert name == f"{meta['language']}.toml" or meta["language"] == "und"
        assert meta["version"].count(".") == 2
        assert len(meta["review"]) > 20
    readme = resources.files("sentinelle.guard") / "lexicons" / "README.md"
    assert "Format" in readme.read_text("utf-8")


def test_all_files_compile_and_digest_is_stable() -> None:
    files, digest = load_files()
    files2, digest2 = load_files()
    assert digest == digest2 and len(digest) == 64
    lex = Lexicons(files, digest)
    assert lex.size > 800
    assert set(REQUIRED) <= set(lex.languages)


@pytest.mark.parametrize("lang", REQUIRED)
def test_each_language_blocks_its_own_terms(lang: str) -> None:
    d = _docs()[f"{lang}.toml"]
    guard = PromptGuard()
    minors = [t.rstrip("*") for t in d["minor"]["strong"]]
    nudes = [t.rstrip("*") for t in d["nudity"]["strong"]]
    for minor in minors[:5]:
        for nude in nudes[:3]:
            r = guard.check(f"{nude} {minor}")
            assert r.decision == "block", (lang, nude, minor, r.to_dict())
            assert lang in {e["language"] for e in r.evidence}


@pytest.mark.parametrize("lang", REQUIRED)
def test_each_language_code_words_block_alone(lang: str) -> None:
    d = _docs()[f"{lang}.toml"]
    guard = PromptGuard()
    for term in d["minor_sexual"]["strong"]:
        assert guard.check(term.rstrip("*")).decision == "block", (lang, term)


def test_safe_phrases_suppress_only_inside_them() -> None:
    guard = PromptGuard()
    assert guard.check("a naked mole rat and a kid").decision == "allow"
    assert guard.check("a naked kid and a naked mole rat").decision == "block"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\xff\xfe", "UTF-8"),
        (b"[meta]\nlanguage = 'xx'\n", "needs language"),
        (b"[meta]\nlanguage='xx'\nversion='1'\nreview='r'\n[minor]\nstrong=[1]\n", "term"),
        (b"[meta]\nlanguage='xx'\nversion='1'\nreview='r'\n[minor]\nmaybe=['a']\n", "strong"),
        (b"[meta]\nlanguage='xx'\nversion='1'\nreview='r'\n[minor]\nstrong=['...']\n", "nothing"),
        (b"[meta]\nlanguage='xx'\nversion='1'\nreview='r'\n[safe]\nphrases=3\n", "safe"),
        (b"safe=3\n[meta]\nlanguage='xx'\nversion='1'\nreview='r'\n", "safe"),
        (b"[meta]\nlanguage='xx'\nversion='1'\nreview='r'\n[ages]\nunits=['y']\nx=1\n", ""),
    ],
)
def test_malformed_lexicons_are_rejected_clearly(data: bytes, fragment: str) -> None:
    with pytest.raises(LexiconError) as err:
        Lexicons([parse_lexicon(data, "bad.toml")])
        AgeFinder([parse_lexicon(data, "bad.toml")])
        raise LexiconError("accepted")  # the last case parses; it must not crash either
    assert err.value.code == "bad_lexicon"
    assert fragment in err.value.message


def test_custom_lexicon_set_is_used() -> None:
    data = (
        b"[meta]\nlanguage='en'\nversion='0.0.1'\nreview='test'\n"
        b"[minor]\nstrong=['wug']\n[nudity]\nstrong=['blick']\n"
    )
    lex = Lexicons([parse_lexicon(data)], "0" * 64)
    guard = PromptGuard(lexicons=lex)
    assert guard.check("a blick wug").decision == "block"
    assert guard.check("naked kid").decision == "allow"  # not in this lexicon
    view = skeleton_view(base_view("b l i c k wug"))
    assert {h.term.text for h in lex.scan(view, "b l i c k wug")} == {"blick", "wug"}


# --- G1c: generated variants (sentinelle.guard.variants) -------------------------------

_MORPH_LEXICON = (
    "[meta]\nlanguage='ru'\nversion='0'\nreview='test'\n"
    "[minor]\nstrong=['девочка']\n[nudity]\nstrong=['голая']\n"
    "[morphology]\nmin_stem=3\nendings=['а','у','ой','ую','ыми','ая']\n"
    "alternations={'к'=['ч']}\n"
).encode()


def test_inflected_forms_come_from_the_morphology_table() -> None:
    lex = Lexicons([parse_lexicon(_MORPH_LEXICON)], "0" * 64)
    guard = PromptGuard(lexicons=lex)
    assert guard.check("девочку голыми").decision == "block"
    ev = guard.check("девочкой голую").evidence
    assert {e["normalized"] for e in ev} == {"девочка", "голая"}
    assert any(e["rule"].startswith("word+stem") for e in ev)
    # the bare stem alone ("гол" = a goal) is not a form
    assert guard.check("девочка гол").decision == "allow"


def test_inflected_forms_helper() -> None:
    from sentinelle.guard.variants import inflected_forms, parse_morphology

    morph = parse_morphology({"endings": ["a", "ita", "itas"], "min_stem": 3})
    assert morph is not None
    assert "nenitas" in inflected_forms("nena", morph, prefix=False)
    assert "nen" not in inflected_forms("nena", morph, prefix=False)
    # prefix terms shrink only where five letters stay
    assert inflected_forms("neonata", morph, prefix=True) == ["neonat"]
    assert inflected_forms("nova", morph, prefix=True) == []


@pytest.mark.parametrize(
    "table",
    [
        "endings='a'",
        "endings=['']",
        "min_stem=1",
        "alternations=[1]",
        "alternations={'k'=3}",
    ],
)
def test_malformed_morphology_is_rejected(table: str) -> None:
    data = f"[meta]\nlanguage='xx'\nversion='1'\nreview='r'\n[morphology]\n{table}\n".encode()
    with pytest.raises(LexiconError) as err:
        parse_lexicon(data, "bad.toml")
    assert "morphology" in err.value.message


def test_script_variants_readings_and_transliterations() -> None:
    from sentinelle.guard.variants import script_variants

    assert "ようじょ" in script_variants("幼女", "ja")
    assert {"youjo", "yojo"} <= set(script_variants("幼女", "ja"))
    assert script_variants("hadaka", "ja") == ["はだか"]
    assert script_variants("色情", "zh") == ["seqing"]
    assert script_variants("голая", "ru") == ["golaya"]
    assert script_variants("裸", "zh") == []  # one syllable: too short to be safe
    assert script_variants("naked", "en") == []


def test_default_lexicons_match_variants_nobody_listed() -> None:
    guard = PromptGuard()
    for text in ("ようじょ はだか", "ertong seqing", "golaya devochka", "x rated kids"):
        assert guard.check(text).decision == "block", text


def test_compound_heads_count_but_not_inside_other_words() -> None:
    guard = PromptGuard()
    ev = guard.check("schoolkids").evidence
    assert [e["rule"] for e in ev] == ["compound:1"]
    # stems and other languages' terms are not compound heads ("motorcycle" vs "cycki")
    assert guard.check("a motorcycle parked in a lobby").decision == "allow"
    assert guard.check("a casserole with tennis balls").decision == "allow"


def test_safe_phrase_that_folds_to_a_term_protects_nothing() -> None:
    assert PromptGuard().check("男孩 赤裸").decision == "block"
