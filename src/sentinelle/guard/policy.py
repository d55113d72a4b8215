"""The prompt guard's decision policy: how category scores become allow/review/block.

Fixed rules (not configurable, they are the point of the guard):

* a minor signal (a minor term, an apparent-minor descriptor or an age under 18) together
  with any sexual or nudity signal -> ``block``;
* a term that by itself means sexual content involving minors (``pthc``, ``lolicon``...)
  -> ``block``.

Configurable by the operator, because services differ (an adult-content platform, a
general-purpose image generator, a children's app):

* ``adult_sexual``: what explicit sexual content without any minor signal gets;
* ``adult_nudity``: what nudity without any minor signal gets.

Environment: ``SENTINELLE_GUARD_PROMPT_ADULT_SEXUAL`` and
``SENTINELLE_GUARD_PROMPT_ADULT_NUDITY`` (``allow``, ``review`` or ``block``; default
``review``). The ``policy_id`` names the exact rules and lexicon version that produced a
decision, so a decision logged today can be explained later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .config import GuardConfigError

DECISIONS = ("allow", "review", "block")
POLICY_VERSION = "sg-prompt-1"


@dataclass(frozen=True)
class GuardPolicy:
    """Operator-configurable part of the prompt policy (see the module docstring).

    ``minor_threshold``: minimum minor score that counts as a minor signal (ambiguous
    words like ``girl`` score 0.6, so they count). ``adult_threshold``: minimum sexual or
    nudity score for the adult rules (suggestive words like ``sexy`` score 0.6 and so only
    matter next to a minor signal).
    """

    adult_sexual: str = "review"
    adult_nudity: str = "review"
    minor_threshold: float = 0.5
    adult_threshold: float = 0.8

    def __post_init__(self) -> None:
        for name in ("adult_sexual", "adult_nudity"):
            if getattr(self, name) not in DECISIONS:
                raise GuardConfigError(
                    f"{name} must be one of {', '.join(DECISIONS)}, not {getattr(self, name)!r}"
                )
        for name in ("minor_threshold", "adult_threshold"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 < value <= 1.0:
                raise GuardConfigError(f"{name} must be a number in (0, 1], not {value!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GuardPolicy:
        """Policy from ``SENTINELLE_GUARD_PROMPT_ADULT_SEXUAL`` / ``..._ADULT_NUDITY``."""
        env = os.environ if env is None else env
        d = cls()
        return cls(
            adult_sexual=env.get("SENTINELLE_GUARD_PROMPT_ADULT_SEXUAL", "").strip().lower()
            or d.adult_sexual,
            adult_nudity=env.get("SENTINELLE_GUARD_PROMPT_ADULT_NUDITY", "").strip().lower()
            or d.adult_nudity,
        )

    def policy_id(self, lexicon_version: str) -> str:
        """Stable identifier of these rules applied with lexicons ``lexicon_version``."""
        return (
            f"{POLICY_VERSION};adult_sexual={self.adult_sexual};adult_nudity={self.adult_nudity}"
            f";minor>={self.minor_threshold:g};adult>={self.adult_threshold:g}"
            f";lex={lexicon_version}"
        )

    def decide(self, categories: Mapping[str, float]) -> str:
        """``allow``, ``review`` or ``block`` for the given category scores."""
        t = self.minor_threshold
        if categories["minor_sexual"] >= t or categories["minor_nudity"] >= t:
            return "block"
        decision = "allow"
        if categories["minor_sexual"] > 0 or categories["minor_nudity"] > 0:
            decision = "review"
        if categories["sexual_adult"] >= self.adult_threshold:
            decision = most_severe(decision, self.adult_sexual)
        if categories["nudity_adult"] >= self.adult_threshold:
            decision = most_severe(decision, self.adult_nudity)
        return decision


def most_severe(*decisions: str) -> str:
    """The strictest of several decisions (block > review > allow)."""
    return max(decisions, key=DECISIONS.index)
