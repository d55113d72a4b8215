"""VICS 2.0 case export of a triage case and import of a VICS case back (issue 12)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from triage_cases import CASE, TriageWorld, build_case

from sentinelle.errors import BankImportError
from sentinelle.formats import vics
from sentinelle.formats._io import InputLimits
from sentinelle.store.db import open_engine
from sentinelle.triage import store
from sentinelle.triage.store import TriageError
from sentinelle.triage.vics_case import (
    export_case,
    import_case,
    read_case,
    series_key,
    write_case,
)


@pytest.fixture()
def world(db_url: str, tmp_path: Path) -> TriageWorld:
    eng = open_engine(db_url)  # SQLite file and PostgreSQL schema
    yield build_case(eng, tmp_path)
    eng.dispose()


def export(world: TriageWorld, **kw: object) -> dict:
    buf = io.StringIO()
    n = write_case(world.engine, CASE, buf, **kw)
    doc = json.loads(buf.getvalue())
    assert n == len(doc["value"][0]["Media"])
    return doc


def test_export_shape_project_vic_tools_read(world: TriageWorld) -> None:
    doc = export(world)
    assert doc["@odata.context"] == (
        "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/CUSTOM/$metadata#Cases"
    )
    (case,) = doc["value"]
    assert case["CaseNumber"] == CASE and case["SourceApplicationName"] == "Sentinelle"
    assert len(case["CaseID"]) == 36 and export(world)["value"][0]["CaseID"] == case["CaseID"]
    media = case["Media"]
    assert len(media) == 5  # the unreadable file has no Media
    ids = [m["MediaID"] for m in media]
    assert len(set(ids)) == 5 and all(isinstance(i, int) for i in ids)
    for m, md5, sha1, pdq in zip(media, world.md5, world.sha1, world.pdq, strict=True):
        assert (m["MD5"], m["SHA1"]) == (md5, sha1)
        assert m["AlternativeHashes"] == [{"HashName": "PDQ", "HashValue": pdq}]
        for f in m["MediaFiles"]:
            assert {"MD5", "FileName", "FilePath"} <= set(f) and f["MD5"] == md5
    # every copy's path, archive members included
    first = media[0]
    paths = sorted(f["FilePath"] for f in first["MediaFiles"])
    assert paths == sorted([str(world.root / "photo1.jpg"), f"{world.zip_path}!/DCIM/IMG_0001.jpg"])
    member = next(f for f in first["MediaFiles"] if "!/" in f["FilePath"])
    assert member["FileName"] == "IMG_0001.jpg"
    assert member["ParentFilePath"] == str(world.zip_path)
    assert member["Written"].endswith("Z")
    # series ids: the two camera groups share the stable series key
    assert first["Series"] == media[1]["Series"] == "S-lake"
    assert "Series" not in media[2]
    # unreviewed new material has no Category (0 would mean Non-Pertinent)
    assert all("Category" not in m for m in media[:4])
    assert all(m["IsPrecategorized"] is False for m in media[:4])
    meta = {p["PropertyName"]: p["PropertyValue"] for p in first["MediaMetadata"]}
    assert meta["SentinelleTier"] == "camera_new" and meta["SentinelleRank"] == "1"
    assert meta["SentinelleSeries"] == "S-lake" and meta["Provenance"] == "camera"
    assert "EXIF camera" in first["Comments"]


def test_known_material_carries_bank_category_series_and_victim_flags(world: TriageWorld) -> None:
    known = export(world)["value"][0]["Media"][4]
    assert known["Category"] == 1 and known["IsPrecategorized"] is True
    assert known["Series"] == "Harbour"  # the bank's series, from the matched entry
    assert known["VictimIdentified"] is False  # an unidentified victim
    assert known["IsDistributed"] is True
    assert "OffenderIdentified" not in known


def test_series_names_are_written_and_profiles_checked(world: TriageWorld) -> None:
    store.set_series_name(world.engine, world.case.id, "S-lake", "Lake house")
    media = export(world, profile="US")["value"][0]["Media"]
    assert media[0]["Series"] == "Lake house"
    with pytest.raises(TriageError, match="unknown VICS profile"):
        write_case(world.engine, CASE, io.StringIO(), profile="XX")
    with pytest.raises(TriageError, match="no triage case"):
        write_case(world.engine, "nope", io.StringIO())


def test_export_file_is_readable_by_the_bank_vics_reader(
    world: TriageWorld, tmp_path: Path
) -> None:
    out = tmp_path / "case.json"
    assert export_case(world.engine, CASE, out) == 5
    assert not list(tmp_path.glob(".case.json.tmp"))
    entries = vics.parse(io.BytesIO(out.read_bytes()))
    md5s = {e.hash for e in entries if e.signal_type == "md5"}
    assert md5s == set(world.md5)
    harbour = [e for e in entries if e.series == "Harbour"]
    assert harbour and all(e.victim_identified is False for e in harbour)
    doc = read_case(io.BytesIO(out.read_bytes()))
    assert doc.case_number == CASE and len(doc.media) == 5
    assert len(doc.media[0].files) == 2


def test_round_trip_into_the_case_keeps_vics_series_names(
    world: TriageWorld, tmp_path: Path
) -> None:
    doc = export(world)
    media = doc["value"][0]["Media"]
    # a reviewer in another tool named the series and put the unknown photo in one
    media[0]["Series"] = media[1]["Series"] = "Lake house (2019)"
    media[2]["Series"] = "Attic"
    media[2]["Category"] = 2  # and categorised the unknown-origin photo
    p = tmp_path / "back.json"
    p.write_text(json.dumps(doc))
    rep = import_case(world.engine, CASE, p)
    assert (rep.media, rep.matched, rep.unmatched) == (5, 5, 0)
    # S-lake named; new imported series for Attic and for the known group's Harbour
    assert (rep.series_named, rep.series_created) == (1, 2)
    assert rep.categorized == 2  # the known group's Category 1 and the reviewer's 2
    harbour = store.get_series(world.engine, world.case.id, series_key(world.case.id, "Harbour"))
    assert harbour is not None and harbour.n_groups == 1
    lake = store.get_series(world.engine, world.case.id, "S-lake")
    assert lake is not None and lake.name == "Lake house (2019)" and lake.imported
    attic = store.get_series(world.engine, world.case.id, series_key(world.case.id, "Attic"))
    assert attic is not None and attic.name == "Attic" and attic.imported
    assert store.get_group(world.engine, world.group_ids[2]).series_id == attic.id
    # the names come back out verbatim
    again = export(world)["value"][0]["Media"]
    assert [m.get("Series") for m in again[:3]] == ["Lake house (2019)"] * 2 + ["Attic"]
    assert again[2]["Category"] == 2 and "Category" not in again[0]
    meta = {p["PropertyName"]: p["PropertyValue"] for p in again[2]["MediaMetadata"]}
    assert meta["ReviewDecision"] == "imported"
    # idempotent
    rep2 = import_case(world.engine, CASE, p)
    assert rep2.series_created == 0


def test_import_matches_by_sha1_and_counts_unmatched(world: TriageWorld) -> None:
    doc = {
        "odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media",
        "value": [
            {"MediaID": 1, "SHA1": world.sha1[3], "Series": "Studio"},
            {"MediaID": 2, "MD5": "0" * 32, "Series": "Elsewhere"},
        ],
    }
    rep = import_case(world.engine, CASE, io.BytesIO(json.dumps(doc).encode()))
    assert (rep.matched, rep.unmatched, rep.series_created) == (1, 1, 1)
    names = {s.name for s in store.list_series(world.engine, world.case.id)}
    assert "Studio" in names and "Elsewhere" not in names


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b'{"value": [', "syntax error"),
        (b'{"value": 3}', "'value' array"),
        (b'{"@odata.context": 5, "value": []}', "must be a string"),
        (b'{"value": [{"MediaID": 1, "MD5": "xyz"}]}', "Media #1"),
        (b'{"value": [{"MediaID": true, "MD5": "' + b"0" * 32 + b'"}]}', "MediaID"),
        (b'{"value": [{"MD5": "' + b"0" * 32 + b'", "Category": "A1"}]}', "Category"),
        (b'{"value": [{"MD5": "' + b"0" * 32 + b'", "MediaFiles": {}}]}', "MediaFiles"),
        (
            b'{"value": [{"MD5": "' + b"0" * 32 + b'", "MediaFiles": [{"FileName": "x"}]}]}',
            "FilePath",
        ),
        (b'{"value": [{"MD5": "' + b"0" * 32 + b'", "Series": {"a": 1}}]}', "Series"),
        (
            b'{"value": [{"MD5": "' + b"0" * 32 + b'", "VictimIdentified": "?"}]}',
            "VictimIdentified",
        ),
        (b'{"value": [{"Category": 1}]}', "no MD5"),
    ],
)
def test_hostile_vics_case_is_rejected_whole(world: TriageWorld, data: bytes, needle: str) -> None:
    before = store.list_series(world.engine, world.case.id)
    with pytest.raises(BankImportError) as ei:
        import_case(world.engine, CASE, io.BytesIO(data))
    assert needle in str(ei.value)
    assert store.list_series(world.engine, world.case.id) == before


def test_every_bad_media_is_listed_and_size_bounded(world: TriageWorld) -> None:
    doc = {"value": [{"MD5": "bad"}, {"MD5": world.md5[0], "Series": "ok"}, {"SHA1": 3}]}
    with pytest.raises(BankImportError) as ei:
        read_case(io.BytesIO(json.dumps(doc).encode()))
    assert [e.line for e in ei.value.errors] == [1, 3]
    big = json.dumps({"value": [{"MD5": world.md5[0]}] * 100}).encode()
    with pytest.raises(BankImportError, match="input too large"):
        read_case(io.BytesIO(big), InputLimits(max_bytes=500))
    with pytest.raises(BankImportError, match="more than 10 Media"):
        read_case(io.BytesIO(big), InputLimits(max_lines=10))
    with pytest.raises(TriageError, match="no triage case"):
        import_case(world.engine, "missing", io.BytesIO(big))
    with pytest.raises(BankImportError, match="cannot read"):
        import_case(world.engine, CASE, "/nonexistent/case.json")
