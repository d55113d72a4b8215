"""A triage case as a VICS 2.0 JSON case file, and a VICS case file back into a case.

**Export** (:func:`write_case`) writes the shape Project VIC-compatible tools read
(see ``../shared/notes/vics-and-icse.md``)::

    {"@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/CUSTOM/$metadata#Cases",
     "value": [{"CaseID": "<GUID>", "CaseNumber": "<case name>",
                "SourceApplicationName": "Sentinelle", "SourceApplicationVersion": "...",
                "Media": [{"MediaID": 1, "MD5": "...", "SHA1": "...", "SHA256": "...",
                           "Category": 1, "IsPrecategorized": true, "Series": "...",
                           "VictimIdentified": false, ...,
                           "AlternativeHashes": [{"HashName": "PDQ", "HashValue": "..."}],
                           "MediaFiles": [{"MD5": "...", "FileName": "x.jpg", "FilePath": "...",
                                           "Written": "...", ...}],
                           "MediaMetadata": [{"PropertyName": "SentinelleGroup",
                                              "PropertyValue": "G-..."}, ...],
                           "Comments": "..."}]}]}

One ``Media`` per distinct content (SHA-256) that has an MD5, with every copy's
path in ``MediaFiles`` (an archive member's ``FilePath`` is ``outer.zip!/dir/x.jpg``,
its ``ParentFilePath`` the archive on disk). ``Category`` is written only when it is
known (a bank match whose category is a VICS integer, or a reviewer's / imported
decision): material nobody reviewed has no ``Category``, never 0 (0 is
"Non-Pertinent"). Industry categories (``A1``...) that are not VICS integers go to
``MediaMetadata`` as ``IndustryCategory``. ``Series`` is the series' name, else its
stable key (``S-...``); ``VictimIdentified``/``OffenderIdentified``/``IsDistributed``
come from the bank entries the group matched. The triage group, tier, rank, priority
and reasons go to ``MediaMetadata``/``Comments`` so a reader sees why it ranks where.
The file is streamed: memory does not grow with the number of media.

**Import** (:func:`read_case`, :func:`import_case`) reads a VICS 1.3/2.0 case or
hash-set file (hostile input: bounded size, every bad Media reported at once, as
:class:`~sentinelle.errors.BankImportError`), matches its Media to the case's
media by MD5, SHA1 or SHA-256, and in **one transaction** names the matched
groups' series after the VICS ``Series`` verbatim (a matched group without a
series gets an imported series of that name) and records the VICS ``Category``
of each matched group as an imported review decision.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, insert, select, update

from .. import __version__
from ..errors import BankImportError, InvalidHashError, LineError
from ..formats import vics
from ..formats._io import DEFAULT_INPUT_LIMITS, InputLimits, text_out
from ..formats.entry import normalize_signal_hash
from . import store
from .tables import triage_files, triage_groups, triage_media, triage_series

CASES_CONTEXT = (
    "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{profile}/$metadata#Cases"
)
PROFILES = ("CUSTOM", "US", "UK", "Default")
SOURCE_APPLICATION = "Sentinelle"
MAX_FILES_PER_MEDIA = 100_000
_BATCH = 500
_CASE_NS = uuid.UUID("6c3e1b0a-8f3e-4c1e-9a55-53656e74696e")  # CaseID namespace (uuid5)
FACTS = ("victim_identified", "offender_identified", "is_distributed")
VICS_FACT = {v: k for k, v in vics.FACT_FIELDS.items()}  # victim_identified -> VictimIdentified


# ---------------------------------------------------------------------- export
def case_guid(case: store.Case) -> str:
    """A stable VICS ``CaseID`` for a case (the same on every export)."""
    return str(uuid.uuid5(_CASE_NS, f"{case.id}:{case.name}"))


def vics_category(value: str | int | None) -> int | None:
    """A VICS integer category from a bank / review category, or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 1000 else None
    text = str(value).strip()
    return int(text) if text.isdigit() and len(text) < 4 else None


def _iso(ns: int | None) -> str | None:
    if not ns:
        return None
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


def _posix_name(path: str) -> str:
    """``PurePosixPath(path).name`` without pathlib, which interns every part of a
    path it parses: the interpreter's table of interned strings would then grow with
    the number of files exported."""
    for part in reversed(path.split("/")):
        if part and part != ".":
            return part
    return ""


def _file_name(path: str) -> str:
    """``Path(path).name`` (the platform's rules), without pathlib on POSIX."""
    return _posix_name(path) if os.sep == "/" and not os.altsep else Path(path).name


def _basename(path: str) -> str:
    last = path.rsplit("!/", 1)[-1]
    return _posix_name(last.replace("\\", "/")) or last


def media_file(f: store.File, md5: str) -> dict[str, Any]:
    """One VICS ``MediaFiles`` item for a physical copy."""
    out: dict[str, Any] = {"MD5": md5, "FileName": _basename(f.path), "FilePath": f.path}
    written = _iso(f.mtime_ns)
    if written:
        out["Written"] = written
    if f.member_path:  # inside an archive: the archive on disk is the parent
        out["ParentFileName"] = _file_name(f.source_path)
        out["ParentFilePath"] = f.source_path
    return out


def match_facts(matches: list[dict[str, Any]]) -> dict[str, Any]:
    """Series and victim flags from a group's bank matches (first stated value wins;
    a victim is identified only if some match says so)."""
    out: dict[str, Any] = {}
    for m in matches:
        s = m.get("series")
        if isinstance(s, str) and s and "series" not in out:
            out["series"] = s
        for k in FACTS:
            v = m.get(k)
            if isinstance(v, bool):
                out[k] = out.get(k, False) or v
    return out


def _bank_entries(engine: Engine, entry_ids: Iterable[int]) -> dict[int, Any]:
    """The bank entries that exist among ``entry_ids``, by id (as
    :meth:`~sentinelle.banks.BankStore.get_entries`, with padded ``IN`` lists)."""
    from ..banks.records import row_to_entry
    from ..store.models import BankEntry

    e = BankEntry.__table__
    ids = sorted(set(entry_ids))
    out: dict[int, Any] = {}
    with engine.connect() as c:
        for k in range(0, len(ids), _BATCH):
            rows = c.execute(select(e).where(e.c.id.in_(store.id_list(ids[k : k + _BATCH]))))
            for r in rows:
                out[int(r.id)] = row_to_entry(r)
    return out


def _fill_match_facts(engine: Engine, groups: dict[int, store.Group]) -> dict[int, dict[str, Any]]:
    """Facts of each known group: from its matches, or the matched bank entries."""
    facts: dict[int, dict[str, Any]] = {}
    need: dict[int, list[int]] = {}
    for g in groups.values():
        if not g.matches:
            continue
        f = match_facts(g.matches)
        if f:
            facts[g.id] = f
            continue
        ids = [int(m["entry_id"]) for m in g.matches if isinstance(m.get("entry_id"), int)]
        if ids:
            need[g.id] = ids
    if need:
        entries = _bank_entries(engine, (i for ids in need.values() for i in ids))
        for gid, ids in need.items():
            rows = [
                {k: getattr(entries[i], k) for k in ("series", *FACTS)} for i in ids if i in entries
            ]
            f = match_facts(rows)
            if f:
                facts[gid] = f
    return facts


def _media_object(
    m: store.Media,
    files: list[store.File],
    group: store.Group | None,
    series: store.Series | None,
    facts: dict[str, Any],
    review: Any,
) -> dict[str, Any]:
    assert m.md5 is not None
    obj: dict[str, Any] = {"MediaID": m.id, "MD5": m.md5}
    if m.sha1:
        obj["SHA1"] = m.sha1
    obj["SHA256"] = m.sha256
    category: int | None = None
    industry: str | None = None
    if review is not None and getattr(review, "category", None):
        category = vics_category(review.category)
        industry = None if category is not None else review.category
    elif group is not None and group.bank_category:
        category = vics_category(group.bank_category)
        industry = None if category is not None else group.bank_category
    if category is not None:
        obj["Category"] = category
    obj["IsPrecategorized"] = bool(group is not None and group.status == "known")
    name = facts.get("series") or (series.name or series.key if series is not None else None)
    if name:
        obj["Series"] = name
    for k in FACTS:
        if k in facts:
            obj[VICS_FACT[k]] = facts[k]
    if m.pdq:
        obj["AlternativeHashes"] = [{"HashName": "PDQ", "HashValue": m.pdq}]
    obj["MediaFiles"] = [media_file(f, m.md5) for f in files[:MAX_FILES_PER_MEDIA]]
    meta: list[tuple[str, Any]] = [("MediaType", m.media_type), ("Format", m.format)]
    if m.width and m.height:
        meta.append(("Dimensions", f"{m.width}x{m.height}"))
    if industry:
        meta.append(("IndustryCategory", industry))
    if group is not None:
        meta += [
            ("SentinelleGroup", group.key),
            ("SentinelleTier", group.tier),
            ("SentinelleRank", group.rank),
            ("SentinellePriority", round(group.priority, 4)),
        ]
    if series is not None:
        meta.append(("SentinelleSeries", series.key))
    if m.provenance_verdict:
        meta.append(("Provenance", m.provenance_verdict))
    if m.error_code:  # hashed but not decodable: still a file of the seizure
        meta.append(("SentinelleError", m.error_code))
    if review is not None:
        meta.append(("ReviewDecision", review.decision))
    obj["MediaMetadata"] = [
        {"PropertyName": k, "PropertyValue": str(v)} for k, v in meta if v not in (None, "")
    ]
    if group is not None and group.reasons:
        obj["Comments"] = f"triage rank {group.rank} ({group.tier}): " + "; ".join(
            str(r.get("detail") or r.get("cue")) for r in group.reasons
        )
    return obj


def _files_by_media(engine: Engine, case_id: int, ids: list[int]) -> dict[int, list[store.File]]:
    out: dict[int, list[store.File]] = defaultdict(list)
    with engine.connect() as c:
        rows = c.execute(
            select(triage_files)
            .where(
                triage_files.c.case_id == case_id, triage_files.c.media_id.in_(store.id_list(ids))
            )
            .order_by(triage_files.c.path)
        )
        for r in rows:
            out[int(r.media_id)].append(store._file(r))
    return out


def _reviews_of(engine: Engine, case_id: int, group_ids: Iterable[int]) -> dict[int, Any]:
    """Latest review decision of each of ``group_ids`` that has one."""
    want = store.id_list(group_ids)
    if not want:
        return {}
    try:
        from . import reviews
        from .tables import triage_reviews
    except ImportError:  # pragma: no cover - reviews ship with the console queue
        return {}
    t = triage_reviews
    with engine.connect() as c:
        rows = c.execute(select(t).where(t.c.case_id == case_id, t.c.group_id.in_(want)))
        return {int(r.group_id): reviews._review(r) for r in rows}


def iter_case_media(
    engine: Engine, case: store.Case, *, batch: int | None = None
) -> Iterator[dict[str, Any]]:
    """The case's VICS ``Media`` objects, one distinct content at a time, by media id.

    Media are read ``batch`` at a time with their groups, series, bank facts and
    reviews (memory does not grow with the case)."""
    batch = batch or _BATCH
    pending: list[store.Media] = []

    def flush() -> Iterator[dict[str, Any]]:
        ids = [m.id for m in pending]
        files = _files_by_media(engine, case.id, ids)
        groups = store.groups_by_id(
            engine, case.id, (m.group_id for m in pending if m.group_id is not None)
        )
        series = store.series_by_id(
            engine, case.id, (g.series_id for g in groups.values() if g.series_id is not None)
        )
        facts = _fill_match_facts(engine, groups)
        reviews = _reviews_of(engine, case.id, groups)
        for m in pending:
            g = groups.get(m.group_id) if m.group_id is not None else None
            s = series.get(g.series_id) if g is not None and g.series_id is not None else None
            yield _media_object(
                m,
                files.get(m.id, []),
                g,
                s,
                facts.get(g.id, {}) if g else {},
                reviews.get(g.id) if g else None,
            )
        pending.clear()

    for m in store.iter_media(engine, case.id, batch=4 * batch):
        if not m.md5:  # unreadable media: no hash VICS can carry (listed as file errors)
            continue
        pending.append(m)
        if len(pending) >= batch:
            yield from flush()
    if pending:
        yield from flush()


def write_case(engine: Engine, case_name: str, stream: IO[Any], *, profile: str = "CUSTOM") -> int:
    """Write case ``case_name`` as a VICS 2.0 case file; returns the number of Media."""
    if profile not in PROFILES:
        raise store.TriageError(
            f"unknown VICS profile {profile!r} (expected one of {', '.join(PROFILES)})",
            "bad_profile",
        )
    case = store.get_case(engine, case_name)
    if case is None:
        raise store.TriageError(f"no triage case named {case_name!r}", "unknown_case")
    head = {
        "CaseID": case_guid(case),
        "CaseNumber": case.name,
        "SourceApplicationName": SOURCE_APPLICATION,
        "SourceApplicationVersion": __version__,
    }
    n = 0
    with text_out(stream) as out:
        out.write('{"@odata.context": ')
        out.write(json.dumps(CASES_CONTEXT.format(profile=profile)))
        out.write(', "value": [')
        body = json.dumps(head, ensure_ascii=False)
        out.write(body[:-1] + ', "Media": [')
        for obj in iter_case_media(engine, case):
            out.write(",\n" if n else "\n")
            out.write(json.dumps(obj, ensure_ascii=False))
            n += 1
        out.write("\n]}]}\n")
    return n


def export_case(engine: Engine, case_name: str, path: str | Path, **kw: Any) -> int:
    """:func:`write_case` into ``path`` atomically (a temporary file renamed at the end)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            n = write_case(engine, case_name, f, **kw)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return n


# ---------------------------------------------------------------------- import
@dataclass(frozen=True)
class VicsFile:
    path: str
    file_name: str | None
    md5: str | None


@dataclass(frozen=True)
class VicsMedia:
    """One Media of a VICS case file, validated."""

    index: int  # 1-based position in file order (the "line" of errors)
    media_id: str | None
    md5: str | None
    sha1: str | None
    sha256: str | None
    pdq: str | None
    category: int | None
    series: str | None = None
    victim_identified: bool | None = None
    offender_identified: bool | None = None
    is_distributed: bool | None = None
    files: tuple[VicsFile, ...] = ()


@dataclass
class VicsCaseDoc:
    context: str | None
    case_number: str | None
    media: list[VicsMedia] = field(default_factory=list)


def _category(v: Any) -> int | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise ValueError("Category must be an integer")
    if isinstance(v, int) and 0 <= v < 1000:
        return v
    if isinstance(v, str) and v.strip().isdigit() and len(v.strip()) < 4:
        return int(v.strip())
    raise ValueError(f"Category must be an integer 0-999, got {str(v)[:20]!r}")


def _hash(v: Any, st: str) -> str | None:
    if v in (None, ""):
        return None
    if not isinstance(v, str):
        raise ValueError(f"{st.upper()} must be a string")
    try:
        return normalize_signal_hash(st, v)[1]
    except InvalidHashError as e:
        raise ValueError(e.message) from None


def _files(v: Any) -> tuple[VicsFile, ...]:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise ValueError("MediaFiles must be an array")
    if len(v) > MAX_FILES_PER_MEDIA:
        raise ValueError(f"more than {MAX_FILES_PER_MEDIA} MediaFiles")
    out = []
    for i, f in enumerate(v, start=1):
        if not isinstance(f, dict):
            raise ValueError(f"MediaFiles item {i} is not an object")
        p = f.get("FilePath")
        if not isinstance(p, str) or not p or len(p) > 4096 or "\x00" in p:
            raise ValueError(f"MediaFiles item {i} needs a FilePath (text, 1-4096 characters)")
        name = f.get("FileName")
        out.append(VicsFile(p, name if isinstance(name, str) else None, _hash(f.get("MD5"), "md5")))
    return tuple(out)


def _vics_media(n: int, m: Any) -> VicsMedia:
    if not isinstance(m, dict):
        raise ValueError("is not an object")
    pdq = None
    alts = m.get("AlternativeHashes") or []
    if not isinstance(alts, list):
        raise ValueError("AlternativeHashes must be an array")
    for a in alts:
        if not isinstance(a, dict) or not isinstance(a.get("HashName"), str):
            raise ValueError("AlternativeHashes item needs a HashName")
        if a["HashName"].strip().upper() == "PDQ":
            pdq = _hash(a.get("HashValue"), "pdq")
    md5, sha1, sha256 = (_hash(m.get(k), k.lower()) for k in ("MD5", "SHA1", "SHA256"))
    if not (md5 or sha1 or sha256):
        raise ValueError("no MD5, SHA1 or SHA256 hash")
    mid = m.get("MediaID")
    if mid is not None and (isinstance(mid, bool) or not isinstance(mid, int | str)):
        raise ValueError("MediaID must be an integer")
    facts = vics.media_facts(m)
    return VicsMedia(
        index=n,
        media_id=None if mid is None else str(mid),
        md5=md5,
        sha1=sha1,
        sha256=sha256,
        pdq=pdq,
        category=_category(m.get("Category")),
        files=_files(m.get("MediaFiles")),
        **facts,
    )


def read_case(stream: IO[Any], limits: InputLimits = DEFAULT_INPUT_LIMITS) -> VicsCaseDoc:
    """Parse and validate a VICS case (or hash-set) file; every bad Media is reported
    at once in a :class:`BankImportError` (``errors[i].line`` = Media position)."""
    doc = vics._load(stream, limits)
    media = vics._media_list(doc)
    if len(media) > limits.max_lines:
        raise BankImportError(f"VICS JSON rejected: more than {limits.max_lines} Media")
    context = doc.get("@odata.context", doc.get("odata.metadata"))
    if context is not None and not isinstance(context, str):
        raise BankImportError("VICS JSON rejected: @odata.context must be a string")
    case_number = None
    for item in doc["value"]:
        if isinstance(item, dict) and "Media" in item and isinstance(item.get("CaseNumber"), str):
            case_number = item["CaseNumber"]
            break
    out = VicsCaseDoc(context=context, case_number=case_number)
    bad: list[LineError] = []
    for n, m in enumerate(media, start=1):
        try:
            out.media.append(_vics_media(n, m))
        except ValueError as e:
            bad.append(LineError(n, f"Media #{n}: {e}"))
    if bad:
        raise BankImportError(f"VICS case rejected: {len(bad)} bad Media, nothing imported", bad)
    return out


@dataclass
class ImportReport:
    media: int = 0  # Media in the file
    matched: int = 0  # of them, found in the case (by MD5, SHA1 or SHA-256)
    unmatched: int = 0
    groups: int = 0  # case groups touched
    series_named: int = 0  # existing series given a VICS name
    series_created: int = 0  # imported series made for groups that had none
    categorized: int = 0  # groups given the VICS category
    conflicts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def series_key(case_id: int, name: str) -> str:
    return "S-" + hashlib.sha256(f"{case_id}:{name}".encode()).hexdigest()[:12]


def _match_media(
    engine: Engine, case_id: int, media: list[VicsMedia]
) -> dict[int, tuple[int, int | None]]:
    """VICS media index -> (case media id, group id), by MD5, then SHA1, then SHA-256."""
    found: dict[int, tuple[int, int | None]] = {}
    for col, attr in (
        (triage_media.c.md5, "md5"),
        (triage_media.c.sha1, "sha1"),
        (triage_media.c.sha256, "sha256"),
    ):
        want: dict[str, list[int]] = defaultdict(list)
        for m in media:
            h = getattr(m, attr)
            if h and m.index not in found:
                want[h].append(m.index)
        keys = list(want)
        with engine.connect() as c:
            for k in range(0, len(keys), _BATCH):
                chunk = keys[k : k + _BATCH]
                q = select(col, triage_media.c.id, triage_media.c.group_id).where(
                    triage_media.c.case_id == case_id, col.in_(chunk)
                )
                for h, mid, gid in c.execute(q):
                    for i in want.get(h, []):
                        found.setdefault(i, (int(mid), None if gid is None else int(gid)))
    return found


def import_case(
    engine: Engine,
    case_name: str,
    source: str | Path | IO[Any],
    *,
    actor: str = "system",
    limits: InputLimits = DEFAULT_INPUT_LIMITS,
) -> ImportReport:
    """Import a VICS case file into the existing triage case ``case_name``.

    Validates the whole file first (nothing is written if any Media is bad), then in
    one transaction: series names from VICS are kept verbatim on the matched groups'
    series (a group without a series gets an imported one), and each matched group's
    VICS ``Category`` becomes an imported review decision. Audited as
    ``triage.vics_import`` (counts only).
    """
    case = store.get_case(engine, case_name)
    if case is None:
        raise store.TriageError(f"no triage case named {case_name!r}", "unknown_case")
    if isinstance(source, str | Path):
        try:
            with open(source, "rb") as f:
                doc = read_case(f, limits)
        except OSError as e:
            raise BankImportError(f"cannot read {source}: {e.strerror}") from None
    else:
        doc = read_case(source, limits)
    report = ImportReport(media=len(doc.media))
    found = _match_media(engine, case.id, doc.media)
    report.matched = len(found)
    report.unmatched = report.media - report.matched
    names: dict[int, Counter[str]] = defaultdict(Counter)  # group -> VICS series names
    cats: dict[int, Counter[int]] = defaultdict(Counter)
    for m in doc.media:
        hit = found.get(m.index)
        if hit is None or hit[1] is None:
            continue
        gid = hit[1]
        if m.series:
            names[gid][m.series] += 1
        if m.category is not None:
            cats[gid][m.category] += 1
    touched = set(names) | set(cats)
    report.groups = len(touched)
    now = store.now()
    with engine.begin() as c:
        gseries = (
            {
                int(r.id): r.series_id
                for r in c.execute(
                    select(triage_groups.c.id, triage_groups.c.series_id).where(
                        triage_groups.c.case_id == case.id, triage_groups.c.id.in_(list(touched))
                    )
                )
            }
            if touched
            else {}
        )
        # one name per existing series: the name most of its matched media carry
        per_series: dict[int, Counter[str]] = defaultdict(Counter)
        orphans: dict[str, list[int]] = defaultdict(list)
        for gid, counter in names.items():
            if gid not in gseries:
                continue
            name = counter.most_common(1)[0][0]
            if len(counter) > 1:
                report.conflicts.append(
                    f"group {gid}: VICS names {', '.join(sorted(counter))}; kept {name!r}"
                )
            sid = gseries[gid]
            if sid is None:
                orphans[name].append(gid)
            else:
                per_series[int(sid)].update(counter)
        for sid, counter in per_series.items():
            name = counter.most_common(1)[0][0]
            if len(counter) > 1:
                report.conflicts.append(
                    f"series {sid}: VICS names {', '.join(sorted(counter))}; kept {name!r}"
                )
            c.execute(
                update(triage_series)
                .where(triage_series.c.id == sid, triage_series.c.case_id == case.id)
                .values(name=name, imported=True)
            )
            report.series_named += 1
        for name, gids in orphans.items():
            key = series_key(case.id, name)
            sid = c.execute(
                select(triage_series.c.id).where(
                    triage_series.c.case_id == case.id, triage_series.c.key == key
                )
            ).scalar()
            if sid is None:
                c.execute(
                    insert(triage_series).values(
                        case_id=case.id,
                        key=key,
                        name=name,
                        imported=True,
                        n_groups=0,
                        priority=0.0,
                        cues=json.dumps({"vics": len(gids)}),
                    )
                )
                sid = c.execute(
                    select(triage_series.c.id).where(
                        triage_series.c.case_id == case.id, triage_series.c.key == key
                    )
                ).scalar_one()
                report.series_created += 1
            c.execute(
                update(triage_groups).where(triage_groups.c.id.in_(gids)).values(series_id=sid)
            )
            n_groups = c.execute(
                select(triage_groups.c.id).where(
                    triage_groups.c.case_id == case.id, triage_groups.c.series_id == sid
                )
            ).all()
            c.execute(
                update(triage_series)
                .where(triage_series.c.id == sid)
                .values(n_groups=len(n_groups))
            )
        if cats:
            from . import reviews

            for gid, counter in cats.items():
                if gid not in gseries:
                    continue
                reviews.record(
                    c,
                    case_id=case.id,
                    group_id=gid,
                    decision="imported",
                    category=str(counter.most_common(1)[0][0]),
                    source="vics",
                    actor=actor,
                    at=now,
                )
                report.categorized += 1
        from ..audit import record_event

        record_event(
            c,
            actor=actor,
            action="triage.vics_import",
            target=f"triage_case:{case.id}",
            details={k: v for k, v in report.to_dict().items() if k != "conflicts"},
        )
    return report


def iter_series_names(doc: VicsCaseDoc) -> Iterable[str]:
    """The distinct series names of a VICS file, in first-seen order."""
    seen: dict[str, None] = {}
    for m in doc.media:
        if m.series:
            seen.setdefault(m.series)
    return list(seen)
