"""A self-contained HTML triage report: priority queue, series view, file errors.

One file, nothing fetched: every thumbnail is embedded as a ``data:`` URI and a
Content-Security-Policy in the page forbids any network access (``default-src
'none'``; only ``data:`` images, the inline style and the one inline script, pinned by
its SHA-256, are allowed), so opening it from a seized-media workstation leaks nothing.

**Reviewer protection, as in the console** (:mod:`sentinelle.console.blur`): the
thumbnail *shown* is rendered blurred and grayscale by Pillow when the report is
written (it is not a CSS blur over a sharp picture: print, a reader view or a
browser without CSS shows the same protected image). The sharp thumbnail of a group
is embedded once, not displayed; clicking "reveal" swaps it in for that one group
(still grayscale unless "colour" is pressed), and revealing another, pressing Esc or
waiting :data:`REVEAL_SECONDS` hides it again: **one at a time**. With
``revealable=False`` no sharp thumbnail is written at all (a report to share).

Layout, readable at a glance: summary cards (files, distinct media, groups per tier,
known material split into identified / unidentified victims, file errors), the
priority weights, the **priority queue** (groups by rank with tier, priority and every
reason), the **series view** (each series with its groups and the cues that link
them) and the per-file errors. Sizes are bounded: thumbnails for the first
``max_thumbnails`` groups, at most ``max_paths`` copies listed per group.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image, ImageFilter, ImageOps
from sqlalchemy import Engine, select

from .. import __version__
from ..errors import MediaError
from ..media.detect import HEAD_BYTES, detect
from ..media.image import open_image
from ..media.limits import Limits
from . import store
from .tables import triage_files, triage_media
from .vics_case import _fill_match_facts, _reviews

THUMB_SIDE = 160
DEFAULT_BLUR_LEVEL = 24  # as the console's default (sentinelle.console.blur)
MIN_BLUR_LEVEL = 8  # the console's lightest preview blur: a shown thumbnail is never sharp
THUMB_LIMITS = Limits(max_file_bytes=512 * 1024**2, max_pixels=100_000_000, decode_timeout_s=20)
VIDEO_FRAME = 10  # a video's thumbnail is its 10th frame (or its last, if shorter)
REVEAL_SECONDS = 20
DEFAULT_MAX_THUMBNAILS = 2000
DEFAULT_MAX_PATHS = 50
DEFAULT_MAX_ERRORS = 1000
DEFAULT_MAX_ROWS = 5000  # groups listed in the queue (the VICS export and CSV list them all)
TIER_LABELS = {
    "camera_new": "New, camera evidence: possible real victim",
    "unknown_new": "New, origin unknown",
    "ai_new": "New, AI-generated or AI-edited",
    "known": "Known material",
}
TIER_ORDER = ("camera_new", "unknown_new", "ai_new", "known")

SCRIPT_FILE = Path(__file__).resolve().parent.parent / "static" / "triage_report.js"


@dataclass
class Thumb:
    blurred: str  # data: URI, always shown
    sharp: str | None  # data: URI, only swapped in on reveal


@dataclass
class GroupView:
    group: store.Group
    tier_label: str
    thumb: Thumb | None
    thumb_note: str | None
    paths: list[str]
    more_paths: int
    series_key: str | None
    series_name: str | None
    facts: dict[str, Any]
    review: Any
    media_type: str | None


@dataclass
class SeriesView:
    series: store.Series
    groups: list[GroupView]
    links: list[dict[str, Any]]


@dataclass
class ReportData:
    case: store.Case
    summary: dict[str, Any]
    weights: dict[str, Any]
    queue: list[GroupView] = field(default_factory=list)
    series: list[SeriesView] = field(default_factory=list)
    errors: list[store.File] = field(default_factory=list)
    error_codes: list[tuple[str, int]] = field(default_factory=list)
    victims: dict[str, int] = field(default_factory=dict)
    sharp: dict[str, str] = field(default_factory=dict)
    more_rows: int = 0  # groups beyond max_rows, counted but not listed


def _data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def protect(im: Image.Image, *, blur_level: int, grayscale: bool) -> Image.Image:
    """Scale down to :data:`THUMB_SIDE`, then grayscale and blur (the console's method,
    :func:`sentinelle.console.blur.protect`: blur a reduced copy and scale back up, so
    fine detail never reaches the output)."""
    im = ImageOps.exif_transpose(im).convert("RGB")
    im.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    if grayscale:
        im = ImageOps.grayscale(im)
    radius = min(im.size) * max(0, min(100, blur_level)) / 1000.0
    if radius > 0:
        factor = max(1.0, radius / 2.0)
        small = im.resize(
            (max(1, round(im.width / factor)), max(1, round(im.height / factor))),
            Image.Resampling.BOX,
        )
        small = small.filter(ImageFilter.GaussianBlur(2.0))
        im = small.resize(im.size, Image.Resampling.BICUBIC)
        im = im.filter(ImageFilter.GaussianBlur(radius / 4.0))
    return im


def _jpeg(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def _picture(data: bytes) -> Image.Image:
    """The image, or a frame of the video, in ``data`` (MediaError if neither)."""
    if not data:
        raise MediaError("empty file", "empty_file")
    found = detect(data[:HEAD_BYTES])
    if found is None:
        raise MediaError("not a supported image or video", "unsupported_type")
    kind, fmt = found
    if kind == "image":
        return open_image(data, fmt, THUMB_LIMITS, min_side=THUMB_SIDE).image
    from ..media.video import iter_frames

    last = None
    for frame in iter_frames(data, fmt, THUMB_LIMITS, max_side=THUMB_SIDE * 2):
        last = frame
        if frame.index >= VIDEO_FRAME:
            break
    if last is None:
        raise MediaError("the video has no decodable frame", "no_frames")
    return Image.fromarray(last.pixels)


def make_thumb(
    data: bytes, *, blur_level: int = DEFAULT_BLUR_LEVEL, revealable: bool = True
) -> Thumb:
    """Blurred-grayscale and (if ``revealable``) sharp thumbnails of an image or video."""
    im = _picture(data)
    b = protect(im, blur_level=max(blur_level, MIN_BLUR_LEVEL), grayscale=True)
    s = protect(im, blur_level=0, grayscale=False) if revealable else None
    return Thumb(_data_uri(_jpeg(b, 70)), _data_uri(_jpeg(s, 80)) if s is not None else None)


def _group_thumb(
    engine: Engine, g: store.Group, *, blur_level: int, revealable: bool
) -> tuple[Thumb | None, str | None]:
    from .sources import read_bytes

    if g.representative_media_id is None:
        return None, "no preview"
    for f in store.media_files(engine, g.representative_media_id)[:3]:
        try:
            data = read_bytes(f.source_path, f.member_path)
            return make_thumb(data, blur_level=blur_level, revealable=revealable), None
        except MediaError as e:
            return None, f"no preview ({e.code})"
        except (OSError, KeyError, ValueError):
            continue  # that copy is gone; try another
    return None, "no preview (file not readable)"


def _files_by_group(
    engine: Engine, case_id: int, group_ids: list[int], batch: int = 500
) -> dict[int, list[store.File]]:
    """Every copy of each group, by group, in a few indexed queries (case, group)."""
    out: dict[int, list[store.File]] = {}
    j = triage_files.join(triage_media, triage_files.c.media_id == triage_media.c.id)
    with engine.connect() as c:
        for k in range(0, len(group_ids), batch):
            chunk = group_ids[k : k + batch]
            rows = c.execute(
                select(triage_files, triage_media.c.group_id.label("gid"))
                .select_from(j)
                .where(
                    triage_media.c.case_id == case_id,
                    triage_media.c.group_id.in_(chunk),
                    triage_files.c.case_id == case_id,
                )
                .order_by(triage_files.c.path)
            )
            for r in rows:
                out.setdefault(int(r.gid), []).append(store._file(r))
    return out


def collect(
    engine: Engine,
    case_name: str,
    *,
    thumbnails: bool = True,
    revealable: bool = True,
    known_thumbnails: bool = False,
    blur_level: int = DEFAULT_BLUR_LEVEL,
    max_thumbnails: int = DEFAULT_MAX_THUMBNAILS,
    max_paths: int = DEFAULT_MAX_PATHS,
    max_errors: int = DEFAULT_MAX_ERRORS,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> ReportData:
    case = store.get_case(engine, case_name)
    if case is None:
        raise store.TriageError(f"no triage case named {case_name!r}", "unknown_case")
    groups = store.list_groups(engine, case.id)
    series = {s.id: s for s in store.list_series(engine, case.id)}
    facts = _fill_match_facts(engine, {g.id: g for g in groups})
    reviews = _reviews(engine, case.id)
    data = ReportData(
        case=case,
        summary=store.case_summary(engine, case.id),
        weights=dict(case.settings.get("weights") or {}),
    )
    views: dict[int, GroupView] = {}
    n_thumbs = 0
    victims: Counter[str] = Counter()
    shown_files = _files_by_group(engine, case.id, [g.id for g in groups[:max_rows]])
    for i, g in enumerate(groups):
        f = facts.get(g.id, {})
        if g.status == "known":
            v = f.get("victim_identified")
            victims["identified" if v is True else "unidentified" if v is False else "unknown"] += 1
        if i >= max_rows:
            data.more_rows += 1
            continue
        thumb, note = None, None
        want = thumbnails and (g.status != "known" or known_thumbnails)
        if want and n_thumbs < max_thumbnails:
            thumb, note = _group_thumb(engine, g, blur_level=blur_level, revealable=revealable)
            n_thumbs += thumb is not None
        elif want:
            note = f"no preview (over the {max_thumbnails} thumbnail limit)"
        elif g.status == "known":
            note = "known: not shown"
        files = shown_files.get(g.id, [])
        s = series.get(g.series_id) if g.series_id is not None else None
        media_type = g.media_type
        view = GroupView(
            group=g,
            tier_label=TIER_LABELS.get(g.tier, g.tier),
            thumb=thumb,
            thumb_note=note,
            paths=[x.path for x in files[:max_paths]],
            more_paths=max(0, len(files) - max_paths),
            series_key=s.key if s else None,
            series_name=(s.name if s else None) or f.get("series"),
            facts=f,
            review=reviews.get(g.id),
            media_type=media_type,
        )
        if thumb is not None and thumb.sharp:
            data.sharp[g.key] = thumb.sharp
        views[g.id] = view
        data.queue.append(view)
    data.victims = dict(victims)
    for s in series.values():
        members = [views[g.id] for g in store.series_groups(engine, s.id) if g.id in views]
        links = [
            {
                "a": views[ln.group_a].group.rank if ln.group_a in views else None,
                "b": views[ln.group_b].group.rank if ln.group_b in views else None,
                "a_key": views[ln.group_a].group.key if ln.group_a in views else "?",
                "b_key": views[ln.group_b].group.key if ln.group_b in views else "?",
                "cue": ln.cue,
                "score": ln.score,
                "detail": ln.detail,
            }
            for ln in store.series_links(engine, s.id)
        ]
        data.series.append(SeriesView(s, members, links))
    errors = store.file_errors(engine, case.id)
    data.error_codes = sorted(
        Counter(e.error_code or "?" for e in errors).items(), key=lambda kv: (-kv[1], kv[0])
    )
    data.errors = errors[:max_errors]
    return data


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("sentinelle", "templates"),
        autoescape=select_autoescape(["html"]),
    )


def render_report(engine: Engine, case_name: str, **kw: Any) -> str:
    """The report as one HTML string (see :func:`collect` for the options)."""
    data = collect(engine, case_name, **kw)
    script = SCRIPT_FILE.read_text(encoding="utf-8")
    script_hash = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return (
        _env()
        .get_template("triage_report.html")
        .render(
            d=data,
            title=f"Triage report: {data.case.name}",
            version=__version__,
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            tier_labels=TIER_LABELS,
            tier_order=TIER_ORDER,
            script=script,
            script_hash=script_hash,
            reveal_seconds=REVEAL_SECONDS,
            revealable=bool(data.sharp),
        )
    )


def write_report(engine: Engine, case_name: str, out: str | os.PathLike[str], **kw: Any) -> Path:
    """Write the report to ``out`` atomically (temporary file, then rename)."""
    html = render_report(engine, case_name, **kw)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
