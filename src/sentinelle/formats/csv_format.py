"""``csv``: one hash per row, with a required header row.

Columns (header names are case-insensitive, surrounding spaces ignored):

* ``signal_type`` (alias ``type``) and ``hash`` -- required; or instead a single
  column named after a signal type (``md5``, ``sha1``, ``sha256``, ``pdq``,
  ``vpdq``), meaning every row is a hash of that type;
* optional metadata: ``variant`` (default ``plain``), ``media_ref``,
  ``source_org``, ``external_id``, ``category``, ``note``, ``added_at`` and
  ``disabled_until`` (ISO-8601; naive = UTC), ``enabled`` (true/false/1/0/yes/no;
  default true); ``series`` (a VICS/ICSE series name, verbatim) and the flags
  ``victim_identified``, ``offender_identified``, ``is_distributed``
  (true/false; empty = not stated).

Unknown columns are **ignored** (vendor exports often carry extra columns such as
file names or sizes), but a header that names neither the hash columns nor a
signal type is rejected, as is a duplicated column name. Rows with a different
number of fields than the header, empty hashes, bad values, NUL bytes or invalid
UTF-8 are errors; line numbers are physical lines (a quoted field may span lines;
the error names the line where its row ends). Fields are limited to
``InputLimits.max_line_bytes``.

Spreadsheet safety: on export, a text field that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return is prefixed with ``'`` so that opening the file
in a spreadsheet cannot run a formula (CSV injection); on import a leading ``'``
before one of those characters is removed again, so exports round-trip.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import IO, Any

from ..errors import BankImportError, InvalidHashError, LineError
from ..signals.signal_types import signal_type_names
from ._io import (
    DEFAULT_INPUT_LIMITS,
    InputLimits,
    iter_lines,
    reject_if,
    spreadsheet_safe,
    spreadsheet_unquote,
    text_out,
)
from .entry import FLAG_FIELDS, EntryIn, normalize_entry, parse_datetime, parse_flag

NAME = "csv"

TEXT_COLUMNS = ("variant", "media_ref", "source_org", "external_id", "category", "note")
DATE_COLUMNS = ("added_at", "disabled_until")
#: Victim-identification facts (from VICS / ICSE data): ``series`` and three flags.
FACT_COLUMNS = ("series", *FLAG_FIELDS)
WRITE_COLUMNS = (
    "signal_type",
    "hash",
    *TEXT_COLUMNS,
    "added_at",
    "enabled",
    "disabled_until",
    *FACT_COLUMNS,
)
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


def _parse_bool(v: str) -> bool:
    s = v.strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"enabled must be true/false, got {v[:20]!r}")


def parse(stream: IO[Any], limits: InputLimits = DEFAULT_INPUT_LIMITS) -> list[EntryIn]:
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
        reader = csv.reader(feed(), strict=True)
        try:
            header = next(reader, None)
        except csv.Error as e:
            raise BankImportError("CSV header unreadable", [LineError(current[0], str(e))]) from e
        if header is None:
            reject_if(bad, "CSV rejected")
            raise BankImportError("CSV rejected: empty file (a header row is required)")
        cols = [h.strip().lower() for h in header]
        if len(set(cols)) != len(cols):
            raise BankImportError("CSV rejected", [LineError(1, "duplicate column name in header")])
        idx = {c: i for i, c in enumerate(cols)}
        fixed_type: str | None = None
        if "hash" in idx and ("signal_type" in idx or "type" in idx):
            type_col = idx.get("signal_type", idx.get("type"))
            hash_col = idx["hash"]
        else:
            named = [c for c in cols if c in signal_type_names()]
            if len(named) != 1:
                raise BankImportError(
                    "CSV rejected",
                    [
                        LineError(
                            1,
                            "header must have 'signal_type' (or 'type') and 'hash' columns, "
                            "or exactly one column named after a signal type (e.g. 'md5', 'pdq')",
                        )
                    ],
                )
            fixed_type = named[0]
            type_col = None
            hash_col = idx[fixed_type]
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
                continue  # blank line
            if len(row) != len(cols):
                bad.append(LineError(no, f"expected {len(cols)} fields, got {len(row)}"))
                continue
            try:
                out.append(_row_to_entry(row, idx, type_col, hash_col, fixed_type, no))
            except (InvalidHashError, ValueError) as e:
                msg = e.message if isinstance(e, InvalidHashError) else str(e)
                bad.append(LineError(no, msg))
    finally:
        csv.field_size_limit(old_limit)
    reject_if(bad, "CSV rejected")
    return out


def _row_to_entry(
    row: list[str],
    idx: dict[str, int],
    type_col: int | None,
    hash_col: int,
    fixed_type: str | None,
    no: int,
) -> EntryIn:
    st = fixed_type if fixed_type is not None else row[type_col]  # type: ignore[index]
    kw: dict[str, Any] = {}
    for c in TEXT_COLUMNS:
        if c in idx and row[idx[c]].strip() != "":
            kw[c] = row[idx[c]].strip() if c == "variant" else spreadsheet_unquote(row[idx[c]])
    for c in DATE_COLUMNS:
        if c in idx and row[idx[c]].strip():
            try:
                kw[c] = parse_datetime(row[idx[c]])
            except ValueError:
                raise ValueError(f"{c} is not an ISO-8601 date: {row[idx[c]][:40]!r}") from None
    if "enabled" in idx and row[idx["enabled"]].strip():
        kw["enabled"] = _parse_bool(row[idx["enabled"]])
    if "series" in idx and row[idx["series"]].strip():
        kw["series"] = spreadsheet_unquote(row[idx["series"]])
    for c in FLAG_FIELDS:
        if c in idx:
            kw[c] = parse_flag(row[idx[c]], c)
    return normalize_entry(EntryIn(signal_type=st, hash=row[hash_col], line=no, **kw))


def _flag_text(v: bool | None) -> str:
    return "" if v is None else ("true" if v else "false")


def write(entries: Iterable[EntryIn], stream: IO[Any]) -> int:
    n = 0
    with text_out(stream) as out:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(WRITE_COLUMNS)
        for e in entries:
            w.writerow(
                [
                    e.signal_type,
                    e.hash,
                    *[spreadsheet_safe(getattr(e, c) or "") for c in TEXT_COLUMNS],
                    e.added_at.isoformat() if e.added_at else "",
                    "true" if e.enabled else "false",
                    e.disabled_until.isoformat() if e.disabled_until else "",
                    spreadsheet_safe(e.series or ""),
                    *[_flag_text(getattr(e, c)) for c in FLAG_FIELDS],
                ]
            )
            n += 1
    return n
