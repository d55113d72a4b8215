"""The prompt guard: decides whether a text-to-image prompt may be generated.

    from sentinelle.guard import PromptGuard
    result = PromptGuard().check("a child eating cake")
    result.decision          # "allow" | "review" | "block"
    result.to_dict()         # text, decision, categories, evidence, language, policy_id

Pipeline for one prompt (all compiled state is built once and shared):

1. :func:`~sentinelle.guard.normalize.base_view` and
   :func:`~sentinelle.guard.normalize.skeleton_view` undo evasion tricks;
2. one Aho-Corasick pass over the skeleton finds the terms of every language
   (:mod:`sentinelle.guard.lexicon`), one regex pass over the base view finds ages
   (:mod:`sentinelle.guard.ages`);
3. the language is identified (:mod:`sentinelle.guard.langid`, with the languages of the
   terms that fired as a hint), then terms that need support are resolved
   (:mod:`sentinelle.guard.context`): contextual code words need a nearby signal or
   qualifier, cross-language ambiguous words a signal of their own language;
4. scores per signal are the strongest weight seen (strong terms 1.0, ambiguous 0.6, an
   age under 18 is a strong minor signal) and are combined into the five categories:

   * ``minor_present``: any minor signal;
   * ``minor_sexual`` / ``minor_nudity``: a minor signal *and* a sexual / nudity signal
     (the smaller of the two scores), or a term that means both by itself;
   * ``sexual_adult`` / ``nudity_adult``: the sexual / nudity score when no minor signal
     is present (otherwise it has moved to the ``minor_*`` categories);

5. :class:`~sentinelle.guard.policy.GuardPolicy` turns the scores into the decision;
6. the optional semantic layer may only *raise* that decision;
7. the deployment's phrase lists (:mod:`sentinelle.guard.phrases`), when given, apply on
   the normalised text: an allow phrase switches off the plain (not obfuscated) lexicon
   hits inside it before step 4, a deny phrase blocks.

:meth:`PromptGuard.explain` also returns the matches that were *refused*, and why
(``script``: a look-alike reading of a word written in one script; ``language``: a term
of a language the prompt is not written in, without obfuscation; ``word``: an ordinary
word written plainly that only folds to the term, ``baisse`` for ``baise``; ``allow``:
inside an allow phrase), so an operator can see why a prompt passed or was blocked.

Evidence lists which normalised terms fired, where (``span``: ``[start, end)`` offsets in
the original text, so the text itself need not be copied into logs), in which language
and under which rule.
"""

from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass
from typing import Any

from .ages import MINOR_AGE, AgeFinder
from .config import GuardConfigError, GuardInputError
from .context import resolve, signal_languages
from .langid import plausible
from .lexicon import Hit, Lexicons, default_lexicons
from .normalize import View, base_view, skeleton_view
from .phrases import PhraseLists
from .policy import GuardPolicy, most_severe

CATEGORY_NAMES = ("minor_sexual", "minor_nudity", "minor_present", "sexual_adult", "nudity_adult")
DEFAULT_MAX_CHARS = 10_000
# One AgeFinder per Lexicons object; weak keys, so a discarded custom Lexicons neither
# leaks its finder nor hands it to a later object that reuses its id().
_AGE_CACHE: weakref.WeakKeyDictionary[Lexicons, AgeFinder] = weakref.WeakKeyDictionary()
# Evidence rule suffix of terms that needed support (see sentinelle.guard.context).
_NEEDS_RULE = {"": "", "context": "+context", "language": "+language"}


@dataclass(frozen=True)
class PromptResult:
    """What the guard decided about one prompt (see the module docstring)."""

    text: str
    decision: str
    categories: dict[str, float]
    evidence: list[dict[str, Any]]
    language: str | None
    policy_id: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict with exactly the contract keys."""
        return {
            "text": self.text,
            "decision": self.decision,
            "categories": dict(self.categories),
            "evidence": [dict(e) for e in self.evidence],
            "language": self.language,
            "policy_id": self.policy_id,
        }


def _age_finder(lexicons: Lexicons) -> AgeFinder:
    finder = _AGE_CACHE.get(lexicons)
    if finder is None:
        finder = _AGE_CACHE[lexicons] = AgeFinder(lexicons.files)
    return finder


class PromptGuard:
    """Checks prompts; thread-safe and cheap to construct after the first one.

    ``policy``: :class:`GuardPolicy` (default: the defaults, *not* the environment; use
    ``GuardPolicy.from_env()`` for that). ``semantic``: also run the optional embedding
    layer (needs the ``sentinelle[semantic]`` extra). ``max_chars``: longer prompts are
    refused with :class:`~sentinelle.guard.config.GuardInputError` ``prompt_too_long``.
    """

    def __init__(
        self,
        policy: GuardPolicy | None = None,
        semantic: bool = False,
        *,
        lexicons: Lexicons | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
        phrases: PhraseLists | None = None,
    ) -> None:
        self.policy = policy or GuardPolicy()
        self.lexicons = lexicons or default_lexicons()
        self.ages = _age_finder(self.lexicons)
        self.max_chars = max_chars
        self.phrases = phrases
        self._base_policy_id = self.policy.policy_id(self.lexicons.version)
        self.policy_id = self._base_policy_id + (phrases.tag if phrases is not None else "")
        self.semantic = None
        if semantic:
            try:
                from .semantic import SemanticLayer  # imports numpy only; the model is an extra
            except ImportError:
                raise GuardConfigError(
                    "the semantic layer is not available in this installation",
                    "semantic_unavailable",
                ) from None
            self.semantic = SemanticLayer.default()
            self._base_policy_id += f";semantic={self.semantic.version}"
            self.policy_id += f";semantic={self.semantic.version}"

    def with_phrases(self, phrases: PhraseLists | None) -> PromptGuard:
        """The same guard applying the deployment's phrase lists ``phrases`` (cheap)."""
        if phrases is self.phrases:
            return self
        other = copy.copy(self)
        other.phrases = phrases
        other.policy_id = self._base_policy_id + (phrases.tag if phrases is not None else "")
        return other

    def explain(self, text: str) -> tuple[PromptResult, list[dict[str, Any]]]:
        """The result and the matches that were refused: ``span``, ``normalized``,
        ``category``, ``language``, ``rule`` and ``reason`` (module docstring)."""
        dropped: list[tuple[Hit, str]] = []
        result = self.check(text, _dropped=dropped)
        refused = [
            {
                "span": [h.span[0], h.span[1]],
                "normalized": h.term.text,
                "category": h.term.category,
                "language": h.term.language,
                "rule": f"{h.rule}:{h.term.weight:g}",
                "reason": reason,
            }
            for h, reason in sorted(dropped, key=lambda d: d[0].span)
        ]
        return result, refused

    def check(self, text: str, *, _dropped: list[tuple[Hit, str]] | None = None) -> PromptResult:
        """Decide about one prompt."""
        if not isinstance(text, str):
            raise GuardInputError(
                f"prompt must be a string, not {type(text).__name__}", "bad_prompt"
            )
        if len(text) > self.max_chars:
            raise GuardInputError(
                f"prompt is {len(text)} characters long; the limit is {self.max_chars}",
                "prompt_too_long",
            )
        return self._check(text, _dropped)

    def _check(self, text: str, dropped: list[tuple[Hit, str]] | None) -> PromptResult:
        base = base_view(text)
        skel = skeleton_view(base)
        hits = self.lexicons.scan(skel, text, dropped)
        ages = [(age, span) for age, span in self.ages.find_spans(base) if age.age < MINOR_AGE]
        hint = signal_languages(hits, (age.language for age, _ in ages))
        language, languages = plausible(base.text, self.lexicons.languages, hint)
        age_spans = [(span, age.language) for age, span in ages]
        phrases = self.phrases
        if phrases is not None and phrases.entries:
            hits = _allow(hits, phrases, base, languages, dropped)
        hits = resolve(
            hits,
            text,
            language=language,
            age_spans=age_spans,
            languages=languages,
            dropped=dropped,
            ordinary=self.lexicons.ordinary,
        )
        evidence, scores = self._evidence(hits, ages, language)
        categories = _categories(scores, self.policy.minor_threshold)
        decision = self.policy.decide(categories)
        if phrases is not None and phrases.entries:
            for entry, span in phrases.denied(base, skel, languages):
                decision = "block"
                evidence.append(
                    {
                        "span": [span[0], span[1]],
                        "normalized": entry.phrase,
                        "category": "deny",
                        "language": None if entry.language == "*" else entry.language,
                        "rule": f"deny:v{phrases.version}",
                    }
                )
        if self.semantic is not None and decision != "block":
            raised, semantic_evidence = self.semantic.assess(
                base.text,
                categories,
                minor_threshold=self.policy.minor_threshold,
                span=[0, len(text)],
            )
            if semantic_evidence:
                evidence.append(semantic_evidence)
            decision = most_severe(decision, raised)
        return PromptResult(text, decision, categories, evidence, language, self.policy_id)

    def _evidence(
        self, hits: list[Hit], ages: list[tuple[Any, tuple[int, int]]], language: str | None
    ) -> tuple[list[dict[str, Any]], dict[str, float]]:
        scores = dict.fromkeys(("minor", "sexual", "nudity", "minor_sexual", "minor_nudity"), 0.0)
        best: dict[tuple[int, int, str], Hit] = {}

        def rank(h: Hit) -> tuple[float, bool, bool, bool]:
            # strongest, then in the prompt's language, then needing no support, then as
            # written rather than a generated variant
            t = h.term
            return (t.weight, t.language == language, not t.needs, not t.variant)

        for h in hits:
            k = (h.span[0], h.span[1], h.term.category)
            old = best.get(k)
            if old is None or rank(h) > rank(old):
                best[k] = h
        kept = list(best.values())
        # A hit inside a longer hit of the same category adds nothing ("裸" in "裸体").
        kept = [
            h
            for h in kept
            if not any(
                o is not h
                and o.term.category == h.term.category
                and o.term.weight >= h.term.weight
                and o.span[0] <= h.span[0]
                and h.span[1] <= o.span[1]
                and o.span != h.span
                for o in kept
            )
        ]
        evidence: list[dict[str, Any]] = []
        for h in sorted(kept, key=lambda h: (h.span, h.term.category)):
            scores[h.term.category] = max(scores[h.term.category], h.term.weight)
            evidence.append(
                {
                    "span": [h.span[0], h.span[1]],
                    "normalized": h.term.text,
                    "category": h.term.category,
                    "language": h.term.language,
                    "rule": f"{h.rule}{_NEEDS_RULE[h.term.needs]}:{h.term.weight:g}",
                }
            )
        for age, (start, end) in ages:
            scores["minor"] = 1.0
            evidence.append(
                {
                    "span": [start, end],
                    "normalized": f"age:{age.age}",
                    "category": "minor",
                    "language": age.language,
                    "rule": "age:1",
                }
            )
        return evidence, scores


def _allow(
    hits: list[Hit],
    phrases: PhraseLists,
    base: View,
    languages: frozenset[str],
    dropped: list[tuple[Hit, str]] | None,
) -> list[Hit]:
    """Hits inside an allow phrase go, unless their word shows obfuscation."""
    spans = phrases.allowed_spans(base, languages)
    if not spans:
        return hits
    keep = []
    for h in hits:
        if not h.disguised and any(s <= h.span[0] and h.span[1] <= e for s, e in spans):
            if dropped is not None and h.term.category not in ("safe", "qualifier"):
                dropped.append((h, f"allow:v{phrases.version}"))
            continue
        keep.append(h)
    return keep


def _categories(scores: dict[str, float], minor_threshold: float) -> dict[str, float]:
    """The five contract categories from the raw signal scores."""
    code_s, code_n = scores["minor_sexual"], scores["minor_nudity"]
    minor = max(scores["minor"], code_s, code_n)
    sexual, nudity = scores["sexual"], scores["nudity"]
    has_minor = minor >= minor_threshold
    return {
        "minor_sexual": round(max(code_s, min(minor, sexual)), 3),
        "minor_nudity": round(max(code_n, min(minor, nudity)), 3),
        "minor_present": round(minor, 3),
        "sexual_adult": 0.0 if has_minor else round(sexual, 3),
        "nudity_adult": 0.0 if has_minor else round(nudity, 3),
    }
