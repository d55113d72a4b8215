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
import sqlite3
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup
from PIL import Image, ImageFilter, ImageOps
from sqlalchemy import Engine

from .. import __version__
from ..errors import MediaError
from ..media.detect import HEAD_BYTES, detect
from ..media.image import open_image
from ..media.limits import Limits
from . import store
from .vics_case import _fill_match_facts, _reviews_of

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
CHUNK = 500  # groups read at a time
FILES_BUDGET = 2000  # copies read at a time (a group with more: alone)
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
    """What the template shows. ``queue`` and ``series`` are read from the database
    as the template walks them (see :func:`collect`), so they are iterables that
    can be walked once, and ``sharp`` is a function yielding the ``{group key: sharp
    thumbnail}`` JSON (``|tojson``'s bytes) piece by piece."""

    case: store.Case
    summary: dict[str, Any]
    weights: dict[str, Any]
    queue: Iterable[GroupView] = ()
    series: Iterable[SeriesView] = ()
    n_queue: int = 0  # groups listed in the queue
    n_series: int = 0
    errors: list[store.File] = field(default_factory=list)
    error_codes: list[tuple[str, int]] = field(default_factory=list)
    victims: dict[str, int] = field(default_factory=dict)
    sharp: Callable[[], Iterator[Markup]] = lambda: iter((Markup("{}"),))
    revealable: bool = False  # some sharp thumbnail was written
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


def _json_html(value: Any) -> str:
    """``value`` as the ``|tojson`` filter writes it (HTML-safe JSON)."""
    return str(htmlsafe_json_dumps(value))


class _Previews:
    """The listed groups' rank, key and preview (thumbnail or note), in a private
    temporary SQLite database on disk: the series view and the sharp-thumbnail map
    read them back after the queue, without holding them in memory."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("")  # "": a private temporary file, removed on close
        self.db.execute(
            "CREATE TABLE p (gid INTEGER PRIMARY KEY, seq INTEGER NOT NULL, rank INTEGER,"
            " key TEXT NOT NULL, blurred TEXT, sharp TEXT, note TEXT)"
        )
        self.sharp = 0

    def put(self, rows: list[tuple[int, int, int, str, Thumb | None, str | None]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO p VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (gid, seq, rank, key, t.blurred if t else None, t.sharp if t else None, note)
                for gid, seq, rank, key, t, note in rows
            ],
        )
        self.db.commit()
        self.sharp += sum(1 for r in rows if r[4] is not None and r[4].sharp)

    def get(self, gids: Iterable[int]) -> dict[int, tuple[int, str, Thumb | None, str | None]]:
        """gid -> (rank, key, thumb, note) of the listed groups among ``gids``."""
        out: dict[int, tuple[int, str, Thumb | None, str | None]] = {}
        ids = sorted(set(gids))
        for k in range(0, len(ids), 500):
            part = store.id_list(ids[k : k + 500])
            qs = ",".join("?" * len(part))
            sql = f"SELECT gid, rank, key, blurred, sharp, note FROM p WHERE gid IN ({qs})"
            for gid, rank, key, blurred, sharp, note in self.db.execute(sql, part):
                thumb = Thumb(blurred, sharp) if blurred is not None else None
                out[int(gid)] = (rank, key, thumb, note)
        return out

    def sharp_json(self) -> Iterator[Markup]:
        """``{key: sharp thumbnail}`` of every listed group, as ``|tojson`` writes the
        dict (keys sorted; a key listed twice keeps its later thumbnail)."""
        yield Markup("{")
        cur = self.db.execute(
            "SELECT key, sharp FROM p WHERE sharp IS NOT NULL ORDER BY key, seq DESC"
        )
        last: str | None = None
        first = True
        while rows := cur.fetchmany(50):
            for key, sharp in rows:
                if key == last:
                    continue
                last = key
                yield Markup(("" if first else ", ") + _json_html(key) + ": " + _json_html(sharp))
                first = False
        yield Markup("}")

    def close(self) -> None:
        self.db.close()


def _previews(
    engine: Engine,
    case_id: int,
    previews: _Previews,
    *,
    thumbnails: bool,
    revealable: bool,
    known_thumbnails: bool,
    blur_level: int,
    max_thumbnails: int,
    max_rows: int,
) -> None:
    """Thumbnails (or why none) of the first ``max_rows`` groups, in queue order, into
    ``previews``: at most ``max_thumbnails`` made, one at a time."""
    n_thumbs = 0
    seq = 0
    for page in store.iter_groups(engine, case_id, batch=CHUNK):
        rows: list[tuple[int, int, int, str, Thumb | None, str | None]] = []
        for g in page[: max_rows - seq]:
            thumb, note = None, None
            want = thumbnails and (g.status != "known" or known_thumbnails)
            if want and n_thumbs < max_thumbnails:
                thumb, note = _group_thumb(engine, g, blur_level=blur_level, revealable=revealable)
                n_thumbs += thumb is not None
            elif want:
                note = f"no preview (over the {max_thumbnails} thumbnail limit)"
            elif g.status == "known":
                note = "known: not shown"
            rows.append((g.id, seq, g.rank, g.key, thumb, note))
            seq += 1
        previews.put(rows)
        if seq >= max_rows:
            return


def _victims(engine: Engine, case_id: int) -> dict[str, int]:
    """Known groups by whether their bank entries say the victim is identified."""
    victims: Counter[str] = Counter()
    for page in store.iter_groups(engine, case_id, status="known", batch=CHUNK):
        facts = _fill_match_facts(engine, {g.id: g for g in page})
        for g in page:
            v = facts.get(g.id, {}).get("victim_identified")
            victims["identified" if v is True else "unidentified" if v is False else "unknown"] += 1
    return dict(victims)


def _queue(
    engine: Engine, case_id: int, previews: _Previews, *, max_rows: int, max_paths: int
) -> Iterator[GroupView]:
    """The first ``max_rows`` groups by rank, read :data:`CHUNK` at a time (their
    copies :data:`FILES_BUDGET` files at a time)."""
    n = 0
    for page in store.iter_groups(engine, case_id, batch=CHUNK):
        page = page[: max_rows - n]
        if not page:
            return
        n += len(page)
        series = store.series_by_id(
            engine, case_id, (g.series_id for g in page if g.series_id is not None)
        )
        facts = _fill_match_facts(engine, {g.id: g for g in page})
        reviews = _reviews_of(engine, case_id, (g.id for g in page))
        for run in store.by_files(page, FILES_BUDGET):
            files = store.files_by_group(engine, case_id, [g.id for g in run])
            shown = previews.get(g.id for g in run)
            for g in run:
                f = facts.get(g.id, {})
                _r, _k, thumb, note = shown.get(g.id, (g.rank, g.key, None, None))
                copies = files.get(g.id, [])
                s = series.get(g.series_id) if g.series_id is not None else None
                yield GroupView(
                    group=g,
                    tier_label=TIER_LABELS.get(g.tier, g.tier),
                    thumb=thumb,
                    thumb_note=note,
                    paths=[x.path for x in copies[:max_paths]],
                    more_paths=max(0, len(copies) - max_paths),
                    series_key=s.key if s else None,
                    series_name=(s.name if s else None) or f.get("series"),
                    facts=f,
                    review=reviews.get(g.id),
                    media_type=g.media_type,
                )
            del files
        if n >= max_rows:
            return


def _series_views(engine: Engine, case_id: int, previews: _Previews) -> Iterator[SeriesView]:
    """Every series (:func:`store.list_series` order), one at a time: its groups
    listed in the queue and the links between its groups."""
    for page in store.iter_series(engine, case_id):
        for s in page:
            groups = store.series_groups(engine, s.id)
            links = store.series_links(engine, s.id)
            shown = previews.get(
                [g.id for g in groups] + [i for ln in links for i in (ln.group_a, ln.group_b)]
            )
            members = []
            for g in groups:
                if g.id in shown:
                    _r, _k, thumb, note = shown[g.id]
                    members.append(
                        GroupView(
                            group=g,
                            tier_label=TIER_LABELS.get(g.tier, g.tier),
                            thumb=thumb,
                            thumb_note=note,
                            paths=[],
                            more_paths=0,
                            series_key=s.key,
                            series_name=s.name,
                            facts={},
                            review=None,
                            media_type=g.media_type,
                        )
                    )
            views = [
                {
                    "a": shown[ln.group_a][0] if ln.group_a in shown else None,
                    "b": shown[ln.group_b][0] if ln.group_b in shown else None,
                    "a_key": shown[ln.group_a][1] if ln.group_a in shown else "?",
                    "b_key": shown[ln.group_b][1] if ln.group_b in shown else "?",
                    "cue": ln.cue,
                    "score": ln.score,
                    "detail": ln.detail,
                }
                for ln in links
            ]
            yield SeriesView(s, members, views)


@contextmanager
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
) -> Iterator[ReportData]:
    """The report's data, for the time of the ``with`` block.

    Memory does not grow with the case: the thumbnails are made first (the queue's
    first ``max_thumbnails`` wanted groups, one at a time) and kept in a temporary
    file with each listed group's rank and key; the queue and the series are then
    read chunk by chunk while the template walks them; counts come from SQL.
    """
    case = store.get_case(engine, case_name)
    if case is None:
        raise store.TriageError(f"no triage case named {case_name!r}", "unknown_case")
    summary = store.case_summary(engine, case.id)
    previews = _Previews()
    try:
        _previews(
            engine,
            case.id,
            previews,
            thumbnails=thumbnails,
            revealable=revealable,
            known_thumbnails=known_thumbnails,
            blur_level=blur_level,
            max_thumbnails=max_thumbnails,
            max_rows=max_rows,
        )
        yield ReportData(
            case=case,
            summary=summary,
            weights=dict(case.settings.get("weights") or {}),
            queue=_queue(engine, case.id, previews, max_rows=max_rows, max_paths=max_paths),
            series=_series_views(engine, case.id, previews),
            n_queue=min(summary["groups"], max_rows),
            n_series=summary["series"],
            errors=store.file_errors(engine, case.id, limit=max_errors),
            error_codes=store.file_error_counts(engine, case.id),
            victims=_victims(engine, case.id),
            sharp=previews.sharp_json,
            revealable=previews.sharp > 0,
            more_rows=max(0, summary["groups"] - max_rows),
        )
    finally:
        previews.close()


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("sentinelle", "templates"),
        autoescape=select_autoescape(["html"]),
    )


def generate_report(engine: Engine, case_name: str, **kw: Any) -> Generator[str, None, None]:
    """The report's HTML, piece by piece (see :func:`collect` for the options). An
    unknown case raises here, before any piece."""
    if store.get_case(engine, case_name) is None:
        raise store.TriageError(f"no triage case named {case_name!r}", "unknown_case")
    return _pieces(engine, case_name, **kw)


def _pieces(engine: Engine, case_name: str, **kw: Any) -> Generator[str, None, None]:
    script = SCRIPT_FILE.read_text(encoding="utf-8")
    script_hash = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    with collect(engine, case_name, **kw) as data:
        yield from (
            _env()
            .get_template("triage_report.html")
            .generate(
                d=data,
                title=f"Triage report: {data.case.name}",
                version=__version__,
                generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                tier_labels=TIER_LABELS,
                tier_order=TIER_ORDER,
                script=script,
                script_hash=script_hash,
                reveal_seconds=REVEAL_SECONDS,
                revealable=data.revealable,
            )
        )


def render_report(engine: Engine, case_name: str, **kw: Any) -> str:
    """The report as one HTML string (see :func:`collect` for the options)."""
    return "".join(generate_report(engine, case_name, **kw))


def write_report(engine: Engine, case_name: str, out: str | os.PathLike[str], **kw: Any) -> Path:
    """Write the report to ``out`` atomically (temporary file, then rename), as it is
    rendered: memory does not grow with the case."""
    pieces = generate_report(engine, case_name, **kw)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for piece in pieces:
                f.write(piece)
        os.replace(tmp, out)
    finally:
        pieces.close()
        tmp.unlink(missing_ok=True)
    return out
