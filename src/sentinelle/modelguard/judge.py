"""Judging what a model says about itself: allow / review / block, with evidence.

Every text field goes through the prompt guard (:class:`sentinelle.guard.PromptGuard`,
all its languages and evasion handling). What its result means depends on the field:

* **deliberate names** (output name, title, trigger words, dataset folder names, prompts
  stored in the file): a name the guard blocks blocks the model; the names are also
  checked *together*, since a minor term in the trigger word and a sexual term in the
  output name make the same model;
* **training tags** are weighed by how many training images carried them
  (``ss_tag_frequency``), out of the image count (``ss_num_train_images``, the dataset
  folders' ``img_count``, or at least the most frequent tag's count):

  - a tag that means sexualised minors by itself (the guard blocks it alone) blocks the
    model when at least ``ms_block_images`` images and ``ms_block_fraction`` of them
    carry such tags; fewer (one stray tag) is ``review``;
  - minor tags and sexual/nudity tags in the same training set: tags carry no per-image
    co-occurrence, but the two most frequent ones *must* share at least
    ``minor + sexual - images`` images. Proven sharing of ``overlap_block_fraction`` of
    the images blocks; both present on at least ``copresent_review_fraction`` of the
    images each is ``review``; a stray one is listed but allowed;
* **free text** (description, model card, comments) may quote what it forbids
  ("not for images of minors..."), so a block there is ``review``;
* a **pickle** that imports code-execution callables blocks; unknown imports are
  ``review``.

Adult-only sexual or nudity terms never raise the decision on their own (the model guard
is about minors; platforms apply their adult-content policy elsewhere): they are counted
in ``stats`` and listed in the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import SentinelleError
from .fields import TextField

DECISIONS = ("allow", "review", "block")
DELIBERATE = ("name", "trigger", "dataset", "prompt")


def most_severe(*decisions: str) -> str:
    return max(decisions, key=DECISIONS.index, default="allow")


@dataclass(frozen=True)
class JudgeThresholds:
    signal_score: float = 0.5  # a guard category score at or above this counts
    ms_block_images: int = 3
    ms_block_fraction: float = 0.02
    overlap_block_fraction: float = 0.05
    overlap_block_images: int = 3
    copresent_review_fraction: float = 0.05
    copresent_review_images: int = 2


@dataclass(frozen=True)
class Evidence:
    """A field that fired: ``role`` is ``minor_sexual``, ``minor``, ``sexual`` or ``adult``."""

    field: str
    kind: str
    text: str
    role: str
    guard_decision: str
    categories: dict[str, float]
    count: int | None = None
    context: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "field": self.field,
            "kind": self.kind,
            "text": self.text,
            "role": self.role,
            "guard_decision": self.guard_decision,
            "categories": self.categories,
        }
        if self.count is not None:
            d["count"] = self.count
        if self.context is not None:
            d["context"] = self.context
        return d


@dataclass
class Judgement:
    decision: str = "allow"
    reasons: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def raise_to(self, decision: str, reason: str) -> None:
        self.decision = most_severe(self.decision, decision)
        self.reasons.append(f"{decision}: {reason}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reasons": list(self.reasons),
            "evidence": [e.to_dict() for e in self.evidence],
            "stats": dict(self.stats),
        }


_SEVERITY = {"minor_sexual": 0, "minor": 1, "sexual": 2, "adult": 3}


class ModelJudge:
    """Turns a model's text fields into a :class:`Judgement` (thread-safe, reusable)."""

    def __init__(self, guard: Any = None, thresholds: JudgeThresholds | None = None) -> None:
        if guard is None:
            from ..guard import PromptGuard

            guard = PromptGuard()
        self.guard = guard
        self.t = thresholds or JudgeThresholds()

    # ------------------------------------------------------------------ one text
    def _check(self, text: str, cache: dict[str, Any]) -> Any:
        if text not in cache:
            try:
                cache[text] = self.guard.check(text[:10_000])
            except SentinelleError:
                cache[text] = None
        return cache[text]

    def _role(self, result: Any) -> tuple[str | None, float]:
        """(role, weight) of one guard result, or (None, 0) when nothing fired."""
        c, s = result.categories, self.t.signal_score
        ms = max(c.get("minor_sexual", 0.0), c.get("minor_nudity", 0.0))
        if ms >= s or result.decision == "block":
            return "minor_sexual", max(ms, 1.0 if result.decision == "block" else 0.0)
        minor = c.get("minor_present", 0.0)
        adult = max(c.get("sexual_adult", 0.0), c.get("nudity_adult", 0.0))
        if minor >= s:
            return "minor", minor
        if adult >= s:
            return "sexual", adult
        if result.decision == "review":
            return "adult", 0.0
        return None, 0.0

    # ------------------------------------------------------------------ a model
    def judge(
        self, fields: list[TextField], images: int | None = None, pickle_risk: str | None = None
    ) -> Judgement:
        j = Judgement()
        cache: dict[str, Any] = {}
        tags: list[tuple[TextField, str, float]] = []
        names: list[str] = []
        for f in fields:
            text = f.text.strip()
            if not text:
                continue
            r = self._check(text, cache)
            if r is None:
                continue
            role, weight = self._role(r)
            if f.kind in DELIBERATE and f.kind != "prompt":
                names.append(text)
            if role is None:
                continue
            cats = {k: round(v, 3) for k, v in r.categories.items() if v}
            j.evidence.append(
                Evidence(f.field, f.kind, text, role, r.decision, cats, f.count, f.context)
            )
            if f.kind == "tag":
                tags.append((f, role, weight))
            elif role == "minor_sexual":
                if f.kind in DELIBERATE:
                    j.raise_to("block", f"{f.field} {text!r} is blocked by the prompt guard")
                else:
                    j.raise_to("review", f"{f.field} text is blocked by the prompt guard")
        self._names_together(j, names, cache)
        self._weigh_tags(j, tags, images)
        if pickle_risk == "dangerous":
            j.raise_to("block", "pickle imports code-execution callables (never unpickle it)")
        elif pickle_risk == "unknown":
            j.raise_to("review", "pickle imports callables outside the torch/numpy set")
        j.evidence.sort(key=lambda e: (_SEVERITY[e.role], -(e.count or 0), e.field, e.text))
        j.stats["fields_checked"] = len(cache)
        j.stats["adult_fields"] = sum(e.role in ("sexual", "adult") for e in j.evidence)
        return j

    def _names_together(self, j: Judgement, names: list[str], cache: dict[str, Any]) -> None:
        uniq = list(dict.fromkeys(names))[:40]
        if len(uniq) < 2:
            return
        joined = ", ".join(uniq)[:10_000]
        r = self._check(joined, cache)
        if r is not None and self._role(r)[0] == "minor_sexual" and j.decision != "block":
            j.raise_to("block", "the model's names and trigger words together are blocked")

    def _weigh_tags(
        self, j: Judgement, tags: list[tuple[TextField, str, float]], images: int | None
    ) -> None:
        if not tags:
            return
        top = max((f.count or 1) for f, _, _ in tags)
        n = max(images or 0, top, 1)
        ms = sum((f.count or 1) for f, role, _ in tags if role == "minor_sexual")
        minor = max(((f.count or 1) * w for f, role, w in tags if role == "minor"), default=0.0)
        sexual = max(((f.count or 1) * w for f, role, w in tags if role == "sexual"), default=0.0)
        overlap = max(0.0, minor + sexual - n)
        j.stats.update(
            images=n,
            minor_sexual_tag_images=ms,
            minor_tag_images=round(minor, 1),
            sexual_tag_images=round(sexual, 1),
            proven_overlap_images=round(overlap, 1),
        )
        t = self.t
        if ms:
            if ms >= t.ms_block_images and ms / n >= t.ms_block_fraction:
                j.raise_to(
                    "block", f"{ms} of {n} training images carry tags the prompt guard blocks"
                )
            else:
                j.raise_to("review", f"{ms} of {n} training images carry a blocked tag")
        if minor and sexual:
            if overlap >= t.overlap_block_images and overlap / n >= t.overlap_block_fraction:
                j.raise_to(
                    "block",
                    f"at least {overlap:.0f} of {n} training images carry both a minor tag "
                    "and a sexual or nudity tag",
                )
            elif (
                min(minor, sexual) >= t.copresent_review_images
                and min(minor, sexual) / n >= t.copresent_review_fraction
            ):
                j.raise_to(
                    "review",
                    f"minor tags ({minor:.0f} images) and sexual or nudity tags "
                    f"({sexual:.0f} images) in one training set of {n}",
                )
