"""``sentinelle provenance detector fit``: embed an operator's labelled images, fit, write.

::

    from sentinelle.provenance.detector_train import train_head
    report = train_head(real_paths, ai_paths, "head.json", name="ops-2026-12")
    report.fit.cv_auc, report.fit.table, report.skipped

Images are decoded exactly as the detector source decodes them at analysis time
(:meth:`SourceContext.image`, the shared safe decoder), so the head sees the same pixels
when fitted and when used. Files that are not decodable images are skipped and counted,
never fatal. The encoder is the pinned one (:mod:`.clip_encoder`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .analyze import DEFAULT_MAX_BYTES, media_type_of
from .clip_encoder import PINNED, ClipEncoder, get_encoder
from .detector_fit import HeadFit, fit_head
from .detector_head import write_head
from .evidence import SourceContext

Progress = Callable[[int], None]


def decode_for_detector(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Image.Image | None:
    """The image the detector source would see for this file (None: not an image)."""
    try:
        if path.stat().st_size > max_bytes:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if not data:
        return None
    ctx = SourceContext(media_type=media_type_of(data), max_bytes=max_bytes).bind(data)
    return ctx.image()


@dataclass
class EmbeddedSet:
    embeddings: np.ndarray
    used: list[Path]
    skipped: list[Path] = field(default_factory=list)


def embed_paths(
    paths: Iterable[Path], encoder: ClipEncoder, progress: Progress | None = None
) -> EmbeddedSet:
    """Embed every decodable image in ``paths`` (in the given order)."""
    rows: list[np.ndarray] = []
    used: list[Path] = []
    skipped: list[Path] = []
    batch: list[Image.Image] = []

    def flush() -> None:
        if batch:
            rows.append(encoder.embed(batch))
            if progress:
                progress(len(batch))
            batch.clear()

    for p in paths:
        image = decode_for_detector(p)
        if image is None:
            skipped.append(p)
            if progress:
                progress(1)
            continue
        batch.append(image)
        used.append(p)
        if len(batch) == 8:
            flush()
    flush()
    emb = np.concatenate(rows) if rows else np.zeros((0, 512), np.float32)
    return EmbeddedSet(emb, used, skipped)


@dataclass
class TrainReport:
    fit: HeadFit
    out: Path
    skipped: list[Path]


def train_head(
    real: Iterable[Path],
    ai: Iterable[Path],
    out: str | Path,
    *,
    name: str | None = None,
    max_fpr: float = 0.01,
    seed: int = 0,
    threads: int = 1,
    progress: Progress | None = None,
) -> TrainReport:
    """Embed both sets, fit the head (:func:`fit_head`) and write the head file."""
    encoder = get_encoder(PINNED, threads)
    real_set = embed_paths(real, encoder, progress)
    ai_set = embed_paths(ai, encoder, progress)
    X = np.concatenate([real_set.embeddings, ai_set.embeddings])
    y = np.concatenate([np.zeros(len(real_set.used)), np.ones(len(ai_set.used))])
    fit = fit_head(X, y, max_fpr=max_fpr, seed=seed)
    out = Path(out)
    training = fit.training_summary()
    training["skipped_files"] = len(real_set.skipped) + len(ai_set.skipped)
    write_head(
        out,
        name=name or out.stem,
        weights=fit.weights,
        bias=fit.bias,
        threshold=fit.threshold,
        spec=PINNED,
        training=training,
    )
    return TrainReport(fit, out, real_set.skipped + ai_set.skipped)
