"""One triage run: hash -> group and match -> series -> priority, all in the database."""

from __future__ import annotations

import ctypes
import gc
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from .grouping import GroupingResult, group_case
from .hashing import HashOptions
from .pipeline import HashSummary, hash_sources
from .priority import weights_from
from .series import SeriesOptions, SeriesResult, build_series, snapshot
from .sources import DEFAULT_SOURCE_LIMITS, SourceLimits, read_bytes
from .store import Case, create_case, media_files, update_case


@dataclass
class TriageSummary:
    case: Case
    hashing: HashSummary
    grouping: GroupingResult
    series: SeriesResult
    tiers: dict[str, int]
    weights: dict[str, float]
    faces: str = "not installed"
    seconds: dict[str, float] = field(default_factory=dict)


def media_reader(
    engine: Engine, limits: SourceLimits = DEFAULT_SOURCE_LIMITS
) -> Callable[[int], bytes]:
    """``reader(media_id) -> bytes``: the first readable copy of a content."""

    def read(media_id: int) -> bytes:
        last: Exception | None = None
        for f in media_files(engine, media_id):
            try:
                return read_bytes(f.source_path, f.member_path, limits)
            except (OSError, KeyError, ValueError) as e:
                last = e
        raise KeyError(f"no readable copy of media {media_id}: {last}")

    return read


def _faces(
    engine: Engine, case_id: int
) -> tuple[str, list[tuple[int, int, float, str]], dict[int, str]]:
    """The optional face hook (:mod:`sentinelle.triage.faces`, another part's module):
    (state, face links between media, apparent-age cues by media id)."""
    try:
        from . import faces
    except ImportError:
        return "not installed", [], {}
    try:
        if not faces.available():
            why = getattr(faces, "unavailable_reason", lambda: None)() or "unavailable"
            return f"unavailable: {why}", [], {}
        pairs = list(faces.face_links(engine, case_id))
        ages = dict(faces.age_cues(engine, case_id)) if hasattr(faces, "age_cues") else {}
    except Exception as e:  # noqa: BLE001 - an optional cue never stops a triage
        return f"failed: {type(e).__name__}", [], {}
    return f"{len(pairs)} face link(s)", pairs, ages


def release_memory() -> None:
    """Hand the memory a finished stage freed back to the operating system: glibc keeps
    freed heap pages mapped, so the next stage's peak would sit on top of them."""
    gc.collect()
    try:
        trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:  # pragma: no cover - no C library to ask
        return
    if trim is not None:  # glibc only
        trim(0)


def run_triage(
    engine: Engine,
    case_name: str,
    sources: Iterable[str | os.PathLike[str]],
    *,
    workers: int = 2,
    matcher: Any = None,
    hash_options: HashOptions = HashOptions(),
    source_limits: SourceLimits = DEFAULT_SOURCE_LIMITS,
    series_options: SeriesOptions | None = None,
    weights: dict[str, float] | None = None,
    near_threshold: int = 31,
    rescan: bool = False,
    faces: bool = False,
    on_file: Callable[[HashSummary], None] | None = None,
    on_disk_file: Callable[[str], None] | None = None,
) -> TriageSummary:
    """Triage ``sources`` into case ``case_name`` (created if new; resumed if not).

    ``faces``: run the face hook (slow: about 0.2 s per image; opt-in per case).
    """
    from .priority import prioritise

    sources = [str(s) for s in sources]
    w = weights_from(weights)
    so = series_options or SeriesOptions(threads=workers)
    case = create_case(engine, case_name)
    settings = dict(case.settings)
    settings.update(
        {
            "weights": w,
            "near_threshold": near_threshold,
            "series": {
                "series_pdq": so.series_pdq,
                "burst_s": so.burst_s,
                "gps_m": so.gps_m,
                "scene": so.scene,
                "clip_threshold": so.clip_threshold,
            },
            "sources": sorted(set(settings.get("sources", [])) | set(sources)),
        }
    )
    update_case(engine, case.id, settings=settings, state="hashing")
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    hs = hash_sources(
        engine,
        case.id,
        sources,
        workers=workers,
        options=hash_options,
        source_limits=source_limits,
        rescan=rescan,
        on_file=on_file,
        on_disk_file=on_disk_file,
    )
    secs["hash"] = time.perf_counter() - t0
    release_memory()
    t0 = time.perf_counter()
    previous = snapshot(engine, case.id)
    reader = media_reader(engine, source_limits)
    gr = group_case(
        engine,
        case.id,
        matcher=matcher,
        near_threshold=near_threshold,
        reader=lambda s, m: read_bytes(s, m, source_limits),
        workers=workers,
        limits=source_limits,
    )
    secs["group"] = time.perf_counter() - t0
    release_memory()
    t0 = time.perf_counter()
    faces_state, pairs, ages = _faces(engine, case.id) if faces else ("off", [], {})
    sr = build_series(engine, case.id, so, previous=previous, reader=reader, face_pairs=pairs)
    secs["series"] = time.perf_counter() - t0
    release_memory()
    t0 = time.perf_counter()
    tiers = prioritise(engine, case.id, w, face_links=sr.face_links, age_cues=ages)
    secs["priority"] = time.perf_counter() - t0
    update_case(engine, case.id, state="grouped")
    return TriageSummary(case, hs, gr, sr, tiers, w, faces_state, secs)
