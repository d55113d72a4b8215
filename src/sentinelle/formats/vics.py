"""``vics``: Project VIC VICS 2.0 JSON (OData).

Shape (as written by forensic tools exporting VICS 2.0)::

    {"@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/CUSTOM/$metadata#Media",
     "value": [{"Media": [{"MediaID": 1, "Category": 1, "MD5": "...", "SHA1": "...",
                           "AlternativeHashes": [{"HashName": "PDQ", "HashValue": "..."}],
                           ...}],
                "Case No.": "...", ...}]}

Older files use ``"odata.metadata"`` instead of ``"@odata.context"``; both are
accepted. ``value`` items are either case wrappers holding a ``Media`` array or
Media objects themselves (both occur in the wild).

Each Media yields one entry per recognised hash: ``MD5``, ``SHA1``, ``SHA256``
fields and ``AlternativeHashes`` named ``MD5``/``SHA1``/``SHA256``/``PDQ``
(case-insensitive). Other alternative hashes (PhotoDNA, ...) are ignored and
counted in :data:`ParseStats.ignored_hashes`. ``external_id`` is ``MediaID``,
``category`` is ``Category`` (as text), ``media_ref`` is ``vics:<MediaID>`` so
the hashes of one Media stay linked. Error "line numbers" are the 1-based
position of the Media in file order (``Media #N``); JSON syntax errors report
the text line (and column in the message).

Export groups entries by ``media_ref`` (or ``external_id``) into Media objects;
``vpdq`` entries and non-``plain`` variants are skipped (VICS cannot hold them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from ..errors import BankImportError, InvalidHashError, LineError
from ..signals.signal_types import by_vics_name, find_signal_type, signal_types
from ._io import DEFAULT_INPUT_LIMITS, InputLimits, read_all_bytes, text_out
from .entry import EntryIn, normalize_signal_hash, parse_flag

NAME = "vics"
CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/CUSTOM/$metadata#Media"
# VICS names of each signal type: ``SignalType.vics_field`` (``MD5``, ``SHA1``, ``SHA256``)
# and ``SignalType.vics_names`` (``AlternativeHashes`` ``HashName`` values, e.g. ``PDQ``).


@dataclass
class ParseStats:
    media: int = 0
    ignored_hashes: int = 0


def _load(stream: IO[Any], limits: InputLimits) -> Any:
    data = read_all_bytes(stream, limits)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise BankImportError(
            "VICS JSON rejected", [LineError(line, f"not valid UTF-8 (byte {e.start})")]
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BankImportError(
            "VICS JSON rejected: syntax error",
            [LineError(e.lineno, f"column {e.colno}: {e.msg}")],
        ) from None
    except RecursionError:
        # CPython's json module guards its recursion: absurd nesting ends here
        raise BankImportError("VICS JSON rejected: nesting too deep") from None
    except ValueError as e:  # e.g. an integer with too many digits
        raise BankImportError(f"VICS JSON rejected: {e}") from None


def _media_list(doc: Any) -> list[Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("value"), list):
        raise BankImportError(
            "VICS JSON rejected: top level must be an object with a 'value' array"
        )
    media: list[Any] = []
    for i, item in enumerate(doc["value"]):
        if isinstance(item, dict) and "Media" in item:
            if not isinstance(item["Media"], list):
                raise BankImportError(f"VICS JSON rejected: value[{i}].Media must be an array")
            media.extend(item["Media"])
        else:
            media.append(item)
    return media


def _text(v: Any) -> str | None:
    if v is None or isinstance(v, dict | list):
        return None
    if isinstance(v, bool):
        return str(v).lower()
    s = str(v)
    return s if s else None


#: VICS Media field -> :class:`EntryIn` field, for the victim-identification facts.
FACT_FIELDS = {
    "VictimIdentified": "victim_identified",
    "OffenderIdentified": "offender_identified",
    "IsDistributed": "is_distributed",
}
MAX_SERIES = 512


def media_facts(m: dict[str, Any]) -> dict[str, Any]:
    """``series`` and the three flags of one VICS Media (absent ones omitted).

    ``Series`` is kept verbatim (a string; a number is taken as its text); flags
    are booleans (or the yes/no words and 0/1 other tools write). ValueError
    names the field on a wrong type.
    """
    out: dict[str, Any] = {}
    series = m.get("Series")
    if series is not None:
        if isinstance(series, bool) or not isinstance(series, str | int):
            raise ValueError(f"Series must be a string, got a {type(series).__name__}")
        text = str(series)
        if len(text) > MAX_SERIES or "\x00" in text:
            raise ValueError(f"Series must be at most {MAX_SERIES} characters, without NUL")
        if text.strip():
            out["series"] = text
    for vics_name, field_name in FACT_FIELDS.items():
        flag = parse_flag(m.get(vics_name), vics_name)
        if flag is not None:
            out[field_name] = flag
    return out


def parse(
    stream: IO[Any],
    limits: InputLimits = DEFAULT_INPUT_LIMITS,
    stats: ParseStats | None = None,
) -> list[EntryIn]:
    stats = stats if stats is not None else ParseStats()
    media = _media_list(_load(stream, limits))
    if len(media) > limits.max_lines:
        raise BankImportError(f"VICS JSON rejected: more than {limits.max_lines} Media")
    bad: list[LineError] = []
    out: list[EntryIn] = []
    for n, m in enumerate(media, start=1):
        stats.media += 1
        if not isinstance(m, dict):
            bad.append(LineError(n, f"Media #{n} is not an object"))
            continue
        found: list[tuple[str, Any]] = []
        for sig in signal_types():
            if sig.vics_field is not None and m.get(sig.vics_field) not in (None, ""):
                found.append((sig.name, m[sig.vics_field]))
        alts = m.get("AlternativeHashes") or []
        if not isinstance(alts, list):
            bad.append(LineError(n, f"Media #{n}: AlternativeHashes must be an array"))
            continue
        alt_ok = True
        for a in alts:
            if not isinstance(a, dict) or not isinstance(a.get("HashName"), str):
                bad.append(LineError(n, f"Media #{n}: AlternativeHashes item needs a HashName"))
                alt_ok = False
                break
            alt = by_vics_name(a["HashName"])
            if alt is None:
                stats.ignored_hashes += 1
                continue
            found.append((alt.name, a.get("HashValue")))
        if not alt_ok:
            continue
        if not found:
            bad.append(LineError(n, f"Media #{n}: no MD5, SHA1, SHA256 or PDQ hash"))
            continue
        media_id = _text(m.get("MediaID"))
        category = _text(m.get("Category"))
        try:
            facts = media_facts(m)
        except ValueError as e:
            bad.append(LineError(n, f"Media #{n}: {e}"))
            continue
        seen: set[tuple[str, str]] = set()
        for st, value in found:
            if not isinstance(value, str):
                bad.append(LineError(n, f"Media #{n}: {st} hash must be a string"))
                continue
            try:
                st2, h = normalize_signal_hash(st, value)
            except InvalidHashError as e:
                bad.append(LineError(n, f"Media #{n}: {e.message}"))
                continue
            if (st2, h) in seen:
                continue
            seen.add((st2, h))
            out.append(
                EntryIn(
                    st2,
                    h,
                    media_ref=f"vics:{media_id}" if media_id is not None else None,
                    external_id=media_id,
                    category=category,
                    line=n,
                    **facts,
                )
            )
    if bad:
        raise BankImportError(f"VICS JSON rejected: {len(bad)} bad Media", bad)
    return out


def _category_out(category: str) -> int | str:
    """VICS categories are integers; bank categories that are not (``A1``) stay text."""
    return int(category) if category.isdigit() and len(category) < 10 else category


def write(entries: Iterable[EntryIn], stream: IO[Any]) -> int:
    groups: dict[str, dict[str, Any]] = {}
    n = 0
    for e in entries:
        sig = find_signal_type(e.signal_type)
        if sig is None or not (sig.vics_field or sig.vics_names) or e.variant != "plain":
            continue
        key = e.media_ref or (f"ext:{e.external_id}" if e.external_id else f"hash:{e.hash}")
        m = groups.get(key)
        if m is None:
            mid = e.external_id
            if mid is None and e.media_ref and e.media_ref.startswith("vics:"):
                mid = e.media_ref[5:]
            m = {"MediaID": mid if mid is not None else str(len(groups) + 1)}
            if e.category is not None:
                m["Category"] = _category_out(e.category)
            if e.series is not None:
                m["Series"] = e.series
            for vics_name, field_name in FACT_FIELDS.items():
                if getattr(e, field_name) is not None:
                    m[vics_name] = getattr(e, field_name)
            m["AlternativeHashes"] = []
            groups[key] = m
        field_name = sig.vics_field
        if field_name and field_name not in m:
            m[field_name] = e.hash
        else:
            m["AlternativeHashes"].append({"HashName": e.signal_type.upper(), "HashValue": e.hash})
        n += 1
    doc = {
        "@odata.context": CONTEXT,
        "value": [{"Media": list(groups.values()), "SourceApplicationName": "sentinelle"}],
    }
    with text_out(stream) as out:
        json.dump(doc, out, indent=1)
        out.write("\n")
    return n
