"""Weigh evidence items into one verdict, a confidence and the reasons.

The rules, applied in order (they are deliberately few, so an analyst can check them):

1. **Tampering.** A *strong* ``tampered`` item (the file's own C2PA manifest, or the
   manifest of any ingredient it carries, fails its data-hash, signature or hashed-URI
   checks) gives ``conflicting`` with ``tampered=True``: the file contradicts signed claims
   it carries, so none of them may be trusted and the file needs a human. (Claims of a
   tampered manifest are already demoted to ``weak``.) The explanation says whether the
   file's own manifest or only an ingredient failed.
2. **Levels.** Each side (AI: ``ai_generated``/``ai_edited``; camera: ``camera``) gets the
   level of its best item: strong = 3, moderate = 2, weak = 1. ``none`` and ``error``
   items are informational and never decide.
3. **Both sides at moderate or above with equal levels** -> ``conflicting``.
   With unequal levels the stronger side wins, with its confidence lowered by 0.3 and the
   counter-evidence named in the explanation.
4. **AI wins** (level >= 2) -> ``ai_generated`` or ``ai_edited``: the kind of the best AI
   item (C2PA claims win ties against other sources, then ``ai_generated``). A signed,
   trusted C2PA claim or a watermark far above threshold is *strong* -> confidence 0.95;
   generator metadata or an untrusted C2PA claim is *moderate* -> 0.7. Each further
   independent source that agrees adds 0.05 (max 0.99).
5. **Camera wins** only through a C2PA capture claim (``camera`` item from ``c2pa`` with
   level >= 2) -> ``camera_signed``: 0.9 with a trusted signer, 0.6 otherwise. EXIF and
   quantisation-table hints alone are weak and forgeable, so they never make
   ``camera_signed``.
6. Otherwise ``no_evidence``; weak hints are listed in the explanation. Its confidence is
   0.9 when every source could read the file, 0.5 when some could not (error items).

Asymmetry on purpose: a wrong ``ai_generated`` could push a real victim down a review
queue, so AI verdicts need at least moderate evidence, while a camera claim with an
untrusted signer still yields ``camera_signed`` (low confidence) - the cautious side.
"""

from __future__ import annotations

from dataclasses import dataclass

from .evidence import Evidence, ProvenanceResult

LEVEL = {"strong": 3, "moderate": 2, "weak": 1}
AI_KINDS = ("ai_generated", "ai_edited")


@dataclass(frozen=True)
class Weighing:
    """The outcome of :func:`weigh` (merged into a :class:`ProvenanceResult`)."""

    verdict: str
    confidence: float
    tampered: bool
    explanation: list[str]


def _family(source: str) -> str:
    return source.split(".", 1)[0]


def _best(items: list[Evidence]) -> Evidence | None:
    if not items:
        return None
    return max(
        items,
        key=lambda e: (
            LEVEL[e.strength],
            _family(e.source) == "c2pa",
            e.indicates == "ai_generated",
        ),
    )


def _level(items: list[Evidence]) -> int:
    return max((LEVEL[e.strength] for e in items), default=0)


def _short(e: Evidence) -> str:
    return f"{e.source} ({e.strength}): {e.finding}"


def _agreeing_bonus(items: list[Evidence], best: Evidence) -> float:
    families = {_family(e.source) for e in items if LEVEL[e.strength] >= 2}
    families.discard(_family(best.source))
    return 0.05 * len(families)


def weigh(evidence: list[Evidence]) -> Weighing:
    """Apply the rules above to ``evidence``."""
    ai = [e for e in evidence if e.indicates in AI_KINDS]
    cam = [e for e in evidence if e.indicates == "camera"]
    signed_cam = [e for e in cam if _family(e.source) == "c2pa"]
    tamper = [e for e in evidence if e.indicates == "tampered"]
    errors = [e for e in evidence if e.indicates == "error"]
    why: list[str] = []

    strong_tamper = [e for e in tamper if e.strength == "strong"]
    if strong_tamper:
        why.append("tampered: " + strong_tamper[0].finding)
        if all(e.details.get("role", "active") != "active" for e in strong_tamper):
            why.append("the file's own manifest is intact, but an ingredient's is not")
        why.append("the file's signed claims cannot be relied on; a human must review it")
        why.extend("also present: " + _short(e) for e in ai + cam)
        return Weighing("conflicting", 0.9, True, why)
    why.extend("note: " + _short(e) for e in tamper)

    ai_level, cam_level = _level(ai), _level(cam)
    if ai_level >= 2 and cam_level >= 2:
        best_ai, best_cam = _best(ai), _best(cam)
        assert best_ai is not None and best_cam is not None
        if ai_level == cam_level:
            why.append("AI evidence: " + _short(best_ai))
            why.append("camera evidence: " + _short(best_cam))
            return Weighing("conflicting", 0.8 if ai_level == 3 else 0.6, False, why)
        penalty = 0.3
    else:
        penalty = 0.0

    if ai_level >= 2 and ai_level > cam_level:
        best = _best(ai)
        assert best is not None
        base = 0.95 if best.strength == "strong" else 0.7
        conf = min(0.99, base + _agreeing_bonus(ai, best)) - penalty
        why.append(_short(best))
        why.extend("agrees: " + _short(e) for e in ai if e is not best)
        why.extend("against: " + _short(e) for e in cam)
        return Weighing(best.indicates, round(max(conf, 0.05), 3), False, why)

    if _level(signed_cam) >= 2 and cam_level > ai_level:
        best = _best(signed_cam)
        assert best is not None
        trusted = bool(best.details.get("trusted")) and best.strength == "strong"
        conf = (0.9 if trusted else 0.6) - penalty
        why.append(_short(best))
        why.extend("agrees: " + _short(e) for e in cam if e is not best)
        why.extend("against: " + _short(e) for e in ai)
        return Weighing("camera_signed", round(max(conf, 0.05), 3), False, why)

    hints = ai + cam
    why.extend("unreadable: " + _short(e) for e in errors)
    if hints:
        why.extend("weak hint: " + _short(e) for e in hints)
    elif not errors:
        why.append("no source found provenance evidence")
    return Weighing("no_evidence", 0.5 if errors else 0.9, False, why)


def decide(path: str | None, evidence: list[Evidence]) -> ProvenanceResult:
    """A :class:`ProvenanceResult` for ``evidence`` (no file-level error)."""
    w = weigh(evidence)
    return ProvenanceResult(
        path=path,
        verdict=w.verdict,  # type: ignore[arg-type]
        confidence=w.confidence,
        evidence=list(evidence),
        error=None,
        tampered=w.tampered,
        explanation=w.explanation,
    )
