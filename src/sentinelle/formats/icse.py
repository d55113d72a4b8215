"""``icse``: INTERPOL ICSE (International Child Sexual Exploitation database) CSV.

ICSE hash exports are ``;``-delimited CSV with a header row; the header as
open-source forensic tools (IPED's ``HashDBTool``) declare it::

    MD5;SHA1;PhotoDNA;Image ID;Is distributed;Victim identified;Offender identified;
    Series name;Number of submissions;File Available;Media Type;Baseline

Header names are matched case-insensitively, surrounding spaces ignored; columns
may come in any order and unknown columns are ignored, but the header must name
``MD5`` or ``SHA1``. Each row yields one entry per hash it carries (MD5, SHA1);
``PhotoDNA`` values are not stored and are counted in
:data:`ParseStats.ignored_hashes`. ``Image ID`` becomes ``external_id`` and
``media_ref`` ``icse:<Image ID>`` (so a row's hashes stay linked); ``Series name``
is kept verbatim as ``series``; the yes/no columns ``Victim identified``,
``Offender identified`` and ``Is distributed`` (y/yes/t/true, n/no/f/false, 0/1;
empty = not stated) become the entry's flags, so known material splits into
identified and unidentified victims. Errors name the physical line; nothing is
returned unless every row is valid.

Export writes the same header, one row per ``media_ref`` (MD5 and SHA1 of a
media on one row); other signal types and non-``plain`` variants are skipped.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from ..errors import BankImportError, InvalidHashError, LineError
from ._io import (
    DEFAULT_INPUT_LIMITS,
    InputLimits,
    iter_lines,
    reject_if,
    spreadsheet_safe,
    spreadsheet_unquote,
    text_out,
)
from .entry import MAX_TEXT_FIELD, EntryIn, normalize_entry, parse_flag

NAME = "icse"
DELIMITER = ";"
HEADER = (
    "MD5",
    "SHA1",
    "PhotoDNA",
    "Image ID",
    "Is distributed",
    "Victim identified",
    "Offender identified",
    "Series name",
    "Number of submissions",
    "File Available",
    "Media Type",
    "Baseline",
)
#: ICSE column (lowercase) -> :class:`EntryIn` flag field.
FLAG_COLUMNS = {
    "victim identified": "victim_identified",
    "offender identified": "offender_identified",
    "is distributed": "is_distributed",
}
HASH_COLUMNS = {"md5": "md5", "sha1": "sha1"}


@dataclass
class ParseStats:
    media: int = 0
    ignored_hashes: int = 0


def parse(
    stream: IO[Any],
    limits: InputLimits = DEFAULT_INPUT_LIMITS,
    stats: ParseStats | None = None,
) -> list[EntryIn]:
    stats = stats if stats is not None else ParseStats()
    bad: list[LineError] = []
    out: list[EntryIn] = []
    lines = iter_lines(stream, limits, bad)
    current = [0]

    def feed() -> Iterator[str]:
        for no, text in lines:
            current[0] = no
            yield text + "\n"

    old_limit = csv.field_size_limit()
    csv.field_size_limit(limits.max_line_bytes)
    try:
        reader = csv.reader(feed(), delimiter=DELIMITER, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as e:
            raise BankImportError("ICSE CSV header unreadable", [LineError(1, str(e))]) from None
        if header is None:
            reject_if(bad, "ICSE CSV rejected")
            raise BankImportError("ICSE CSV rejected: empty file (a header row is required)")
        cols = [h.strip().lower() for h in header]
        if len(set(cols)) != len(cols):
            raise BankImportError(
                "ICSE CSV rejected", [LineError(1, "duplicate column name in header")]
            )
        idx = {c: i for i, c in enumerate(cols)}
        if not any(c in idx for c in HASH_COLUMNS):
            raise BankImportError(
                "ICSE CSV rejected",
                [
                    LineError(
                        1,
                        "header must name an MD5 or SHA1 column "
                        f"(ICSE header: {DELIMITER.join(HEADER)})",
                    )
                ],
            )
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                bad.append(LineError(current[0], f"CSV syntax error: {e}"))
                continue
            no = current[0]
            if not row or all(not f.strip() for f in row):
                continue
            if len(row) != len(cols):
                bad.append(LineError(no, f"expected {len(cols)} fields, got {len(row)}"))
                continue
            stats.media += 1
            try:
                out.extend(_row_entries(row, idx, no, stats))
            except (InvalidHashError, ValueError) as e:
                bad.append(LineError(no, e.message if isinstance(e, InvalidHashError) else str(e)))
    finally:
        csv.field_size_limit(old_limit)
    reject_if(bad, "ICSE CSV rejected")
    return out


def _cell(row: list[str], idx: dict[str, int], col: str) -> str:
    i = idx.get(col)
    return row[i].strip() if i is not None else ""


def _row_entries(row: list[str], idx: dict[str, int], no: int, stats: ParseStats) -> list[EntryIn]:
    image_id = spreadsheet_unquote(_cell(row, idx, "image id")) or None
    series = spreadsheet_unquote(_cell(row, idx, "series name")) or None
    if series is not None and len(series) > MAX_TEXT_FIELD:
        raise ValueError(f"Series name longer than {MAX_TEXT_FIELD} characters")
    flags = {f: parse_flag(_cell(row, idx, col), row_name(col)) for col, f in FLAG_COLUMNS.items()}
    if _cell(row, idx, "photodna"):
        stats.ignored_hashes += 1
    hashes = [(st, _cell(row, idx, col)) for col, st in HASH_COLUMNS.items()]
    hashes = [(st, h) for st, h in hashes if h]
    if not hashes:
        raise ValueError("no MD5 or SHA1 hash in this row")
    # the row's hashes stay linked: by Image ID, else by the row's first hash
    ref = f"icse:{image_id}" if image_id else f"icse:{hashes[0][0]}:{hashes[0][1].lower()}"
    return [
        normalize_entry(
            EntryIn(
                st,
                h,
                media_ref=ref,
                external_id=image_id,
                series=series,
                line=no,
                **flags,
            )
        )
        for st, h in hashes
    ]


def row_name(col: str) -> str:
    """The ICSE spelling of a lowercase column name (for messages)."""
    for h in HEADER:
        if h.lower() == col:
            return h
    return col


def _yes_no(v: bool | None) -> str:
    return "" if v is None else ("Yes" if v else "No")


def write(entries: Iterable[EntryIn], stream: IO[Any]) -> int:
    rows: dict[str, dict[str, Any]] = {}
    n = 0
    for e in entries:
        if e.signal_type not in ("md5", "sha1") or e.variant != "plain":
            continue
        key = e.media_ref or (f"ext:{e.external_id}" if e.external_id else f"hash:{e.hash}")
        r = rows.setdefault(key, {"id": e.external_id, "entry": e})
        if e.signal_type in r:
            continue  # one MD5 and one SHA1 per row
        r[e.signal_type] = e.hash
        n += 1
    with text_out(stream) as out:
        w = csv.writer(out, delimiter=DELIMITER, lineterminator="\n")
        w.writerow(HEADER)
        for r in rows.values():
            e = r["entry"]
            w.writerow(
                [
                    r.get("md5", ""),
                    r.get("sha1", ""),
                    "",
                    spreadsheet_safe(r["id"]),
                    _yes_no(e.is_distributed),
                    _yes_no(e.victim_identified),
                    _yes_no(e.offender_identified),
                    spreadsheet_safe(e.series),
                    "",
                    "",
                    "",
                    "",
                ]
            )
    return n
