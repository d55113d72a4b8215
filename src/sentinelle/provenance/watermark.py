"""Invisible watermarks of Stable Diffusion: detect them, and embed the SDXL one.

Stable Diffusion's reference code marks every image with the ``dwtDct`` watermark of
the ``invisible-watermark`` package (re-implemented, bit-exact, in :mod:`.dwtdct`):

==========  ================================  ======  ===============================
mark        message                           bits    who embeds it
==========  ================================  ======  ===============================
``sd1``     the bytes ``StableDiffusionV1``   136     CompVis SD 1.x ``txt2img.py``
``sd2``     the bytes ``SDV2``                32      Stability SD 2.x ``txt2img.py``
``sdxl``    ``0xB3EC907BB19E``                48      ``generative-models`` (SDXL),
                                                      diffusers' SDXL pipelines
==========  ================================  ======  ===============================

**How we decide.** The published SDXL rule (Stability ``scripts/demo/detect.py``) counts
matching bits: <= 27 none, 28-33 partial, >= 34 "likely", >= 36 "very likely". Counting
bits has two weaknesses that our measurements on benign photos showed (see
``bench/RESULTS.md``, "Issue 5: provenance"): one of 524 unmarked photos reached 36/48,
and about a third of freshly marked photos decode below 34 because the per-bit votes are
biased (dark or saturated images clip the chroma the mark lives in, pushing every vote the
same way). We therefore decide on the **Pearson correlation** between the message bits
and the mean block vote of each bit, which ignores such a bias: freshly marked photos
score 0.79-1.0, unmarked photos at most 0.28 (SD 1.x), 0.42 (SDXL) and 0.53 (SD 2.x,
only 32 bits). The evidence sentence says so (:meth:`MarkScore.finding`): it leads with the
correlation and its thresholds, and gives the published bit count second, explaining a
disagreement ("27/48 bits, 'no watermark'" on a marked photo whose votes all lean one
way); ``details`` holds both (``decided_by``, ``published_label``, ``published_agrees``).

Diffusers' first SDXL releases passed RGB arrays where the encoder expects BGR, so the
SDXL mark is also looked for with the channels swapped (``details["channel_order"]``).

What it misses: the mark lives in the chroma of 4x4 blocks at the image's original scale,
so JPEG re-encoding (q90 already erases most of it), resizing, cropping by a non-multiple
of 8 pixels and screenshots remove it; anyone can embed it in any image (the algorithm is
public; :func:`embed_sdxl` does it), so it is forgeable; and most generators other than
Stable Diffusion's reference scripts do not embed it at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from . import dwtdct
from .evidence import Evidence

if TYPE_CHECKING:  # pragma: no cover
    from .evidence import SourceContext

SOURCE = "watermark"
MAX_CHECK_PIXELS = 40_000_000  # larger images are not SD outputs at native size


def _bits_of_bytes(data: bytes) -> tuple[int, ...]:
    return tuple(int(b) for b in np.unpackbits(np.frombuffer(data, dtype=np.uint8)))


@dataclass(frozen=True)
class KnownMark:
    """A watermark message and the thresholds used to call it present.

    ``published_likely`` / ``published_very_likely`` are matching-bit counts (the SDXL ones
    are Stability's published values; SD 1.x/2.x have no published values, so ours sit at
    the same binomial tail probabilities, 2.8e-3 and 3.6e-4). ``min_corr`` /
    ``strong_corr`` are the correlation thresholds we decide on (see the module docstring).
    """

    name: str
    label: str
    bits: tuple[int, ...]
    published_likely: int
    published_very_likely: int
    min_corr: float
    strong_corr: float
    try_swapped: bool = False


SD1 = KnownMark(
    "sd1", "Stable Diffusion 1.x", _bits_of_bytes(b"StableDiffusionV1"), 85, 89, 0.5, 0.7
)
SD2 = KnownMark("sd2", "Stable Diffusion 2.x", _bits_of_bytes(b"SDV2"), 24, 26, 0.75, 0.9)
SDXL = KnownMark(
    "sdxl",
    "Stable Diffusion XL",
    tuple(int(b) for b in bin(0xB3EC907BB19E)[2:]),
    34,
    36,
    0.6,
    0.8,
    try_swapped=True,
)
KNOWN_MARKS: tuple[KnownMark, ...] = (SD1, SD2, SDXL)


@dataclass(frozen=True)
class MarkScore:
    """How well one image matches one known mark (in one channel order)."""

    mark: KnownMark
    channel_order: str  # "BGR" (the encoder's) or "RGB" (channels swapped)
    matched_bits: int
    correlation: float

    @property
    def published_label(self) -> str:
        """The label the published bit-count rule gives (SDXL wording for all marks)."""
        if self.matched_bits >= self.mark.published_very_likely:
            return "very likely watermarked"
        if self.matched_bits >= self.mark.published_likely:
            return "likely watermarked"
        if self.matched_bits > len(self.mark.bits) * 28 // 48:
            return "partial match"
        return "no watermark"

    @property
    def detected(self) -> bool:
        return self.correlation >= self.mark.min_corr

    @property
    def strong(self) -> bool:
        return self.correlation >= self.mark.strong_corr

    @property
    def published_agrees(self) -> bool:
        """Whether the published bit-count rule alone would also call the mark present."""
        return self.matched_bits >= self.mark.published_likely

    def to_details(self) -> dict[str, Any]:
        """Machine-readable figures: ``decided_by`` names the rule that decided (always
        ``"correlation"``); the ``published_*`` keys are the secondary bit-count rule."""
        return {
            "mark": self.mark.name,
            "algorithm": "imwatermark dwtDct",
            "decided_by": "correlation",
            "correlation": round(self.correlation, 3),
            "min_correlation": self.mark.min_corr,
            "strong_correlation": self.mark.strong_corr,
            "matched_bits": self.matched_bits,
            "total_bits": len(self.mark.bits),
            "published_label": self.published_label,
            "published_likely_bits": self.mark.published_likely,
            "published_agrees": self.published_agrees,
            "channel_order": self.channel_order,
        }

    def finding(self) -> str:
        """The analyst's sentence: what decided first, the published bit count second.

        The correlation rule decides; the published bit-count rule is only reported, and
        when it disagrees the sentence says why (biased votes), so that "27/48 bits" next
        to a detection does not read as a contradiction.
        """
        mark, n = self.mark, len(self.mark.bits)
        level = "strong" if self.strong else "present"
        text = (
            f"{mark.label} invisible watermark detected (imwatermark dwtDct) by the "
            f"correlation rule: the bit votes correlate {self.correlation:.2f} with the "
            f"{n}-bit message ({level}: the rule calls a mark present from "
            f"{mark.min_corr:.2f} and strong from {mark.strong_corr:.2f})"
        )
        if self.channel_order == "RGB":
            text += ", with red and blue swapped as early diffusers SDXL releases wrote it"
        if self.published_agrees:
            text += (
                f". The published bit-count rule agrees: {self.matched_bits}/{n} bits match "
                f"({self.published_label})"
            )
        else:
            text += (
                f". Secondary, not used to decide: the published bit-count rule gives "
                f"{self.matched_bits}/{n} bits ('{self.published_label}', it needs "
                f"{mark.published_likely}) because the bit votes lean one way (typically dark "
                f"or saturated colours clipping the chroma), a bias the correlation ignores"
            )
        return text


def _correlation(message: np.ndarray, mean_votes: np.ndarray) -> float:
    """Pearson correlation of message bits and mean votes (0 when either is constant)."""
    if mean_votes.std() == 0.0 or message.std() == 0.0:
        return 0.0
    return float(np.corrcoef(message, mean_votes)[0, 1])


def _to_bgr(image: Image.Image) -> np.ndarray:
    if image.mode == "P":  # palette with transparency: Pillow wants RGBA first
        image = image.convert("RGBA")
    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def score_marks(image: Image.Image, marks: tuple[KnownMark, ...] = KNOWN_MARKS) -> list[MarkScore]:
    """Score every known mark on ``image`` (best channel order per mark).

    Raises ``ValueError`` when the image is too small for the algorithm (fewer than
    256x256 pixels, the reference's own limit).
    """
    bgr = _to_bgr(image)
    votes = {"BGR": dwtdct.block_votes(bgr)}
    if any(m.try_swapped for m in marks):
        votes["RGB"] = dwtdct.block_votes(np.ascontiguousarray(bgr[:, :, ::-1]))
    scores: list[MarkScore] = []
    for mark in marks:
        message = np.asarray(mark.bits, dtype=np.float64)
        best: MarkScore | None = None
        for order in ("BGR", "RGB") if mark.try_swapped else ("BGR",):
            mean_votes = dwtdct.votes_for_length(votes[order], len(mark.bits))
            decoded = dwtdct.bits_from_votes(mean_votes)
            score = MarkScore(
                mark,
                order,
                int(np.sum(decoded == message.astype(bool))),
                _correlation(message, mean_votes),
            )
            if best is None or score.correlation > best.correlation:
                best = score
        assert best is not None
        scores.append(best)
    return scores


def embed(image: Image.Image, mark: KnownMark = SDXL) -> Image.Image:
    """Return a copy of ``image`` carrying ``mark``, exactly as imwatermark embeds it.

    The result is RGB (or RGBA when the input has alpha, which is kept). Save it
    losslessly (PNG) or at high JPEG quality: the mark does not survive strong
    compression. Raises ``ValueError`` for images under 256x256 pixels.
    """
    alpha = image.getchannel("A") if "A" in image.getbands() else None
    marked = dwtdct.encode(_to_bgr(image), list(mark.bits))
    out = Image.fromarray(np.ascontiguousarray(marked[:, :, ::-1]), "RGB")
    if alpha is not None:
        out.putalpha(alpha)
    return out


def embed_sdxl(image: Image.Image) -> Image.Image:
    """Embed the SDXL watermark (``0xB3EC907BB19E``), as SDXL's reference code does."""
    return embed(image, SDXL)


def _evidence(score: MarkScore) -> Evidence:
    strength = "strong" if score.strong else "moderate"
    return Evidence(
        source=SOURCE,
        finding=score.finding(),
        strength=strength,
        indicates="ai_generated",
        forgeable=True,  # the algorithm is public: anyone can mark any image
        strippable=True,  # re-encoding, resizing or cropping erase it
        details=score.to_details(),
    )


def collect(data: bytes, ctx: SourceContext) -> list[Evidence]:
    """Evidence source: Stable Diffusion invisible watermarks in the decoded image.

    Returns one ``ai_generated`` item per mark found (usually none); nothing for
    non-images and images too small to carry a mark; an ``error`` item when an image
    cannot be decoded.
    """
    image = ctx.image()
    if image is None:
        if ctx.media_type and ctx.media_type.startswith("image/"):
            return [
                Evidence.error(
                    SOURCE, "undecodable_image", f"cannot decode image: {ctx.image_error}"
                )
            ]
        return []
    width, height = image.size
    if width * height < dwtdct.MIN_PIXELS:
        return []
    if width * height > MAX_CHECK_PIXELS:
        return [
            Evidence(
                source=SOURCE,
                finding=f"not checked for watermarks: {width}x{height} is over the size limit",
                strength="weak",
                indicates="none",
                forgeable=False,
                strippable=False,
                details={"skipped": "too_large", "max_pixels": MAX_CHECK_PIXELS},
            )
        ]
    try:
        scores = score_marks(image)
    except ValueError as e:  # too few blocks for a message: cannot carry the mark
        return [
            Evidence(
                source=SOURCE,
                finding=f"not checked for watermarks: {e}",
                strength="weak",
                indicates="none",
                forgeable=False,
                strippable=False,
                details={"skipped": "too_small"},
            )
        ]
    return [_evidence(s) for s in scores if s.detected]
