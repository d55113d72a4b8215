"""VICS / ICSE victim facts survive a bank import into real SQLite and PostgreSQL,
exports, and entry edits; a bad file imports nothing (issue 12)."""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path

import pytest

from sentinelle.banks import BankStore
from sentinelle.errors import BankError, BankImportError
from sentinelle.formats import icse
from sentinelle.store.db import open_engine

CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases"


@pytest.fixture()
def store(db_url: str) -> BankStore:
    s = BankStore(open_engine(db_url))
    s.create_bank("known")
    yield s
    s.engine.dispose()


def case_file(tmp_path: Path, media: list[dict]) -> Path:
    p = tmp_path / "case.json"
    p.write_text(json.dumps({"@odata.context": CONTEXT, "value": [{"Media": media}]}))
    return p


def test_vics_import_keeps_series_and_flags(store: BankStore, tmp_path: Path) -> None:
    md5 = [secrets.token_hex(16) for _ in range(3)]
    media = [
        {
            "MediaID": 1,
            "Category": 1,
            "MD5": md5[0],
            "Series": "Lake",
            "VictimIdentified": True,
            "OffenderIdentified": True,
            "IsDistributed": True,
        },
        {
            "MediaID": 2,
            "Category": 1,
            "MD5": md5[1],
            "Series": "Lake",
            "VictimIdentified": False,
            "AlternativeHashes": [{"HashName": "PDQ", "HashValue": secrets.token_hex(32)}],
        },
        {"MediaID": 3, "Category": 2, "MD5": md5[2]},
    ]
    report = store.import_file("known", case_file(tmp_path, media), "vics")
    assert report.added == 4
    got = {e.hash: e for e in store.iter_entries("known")}
    a, b, c = got[md5[0]], got[md5[1]], got[md5[2]]
    assert (a.series, a.victim_identified, a.offender_identified, a.is_distributed) == (
        "Lake",
        True,
        True,
        True,
    )
    assert (b.series, b.victim_identified, b.offender_identified, b.is_distributed) == (
        "Lake",
        False,
        None,
        None,
    )
    assert (c.series, c.victim_identified) == (None, None)
    pdq = next(e for e in got.values() if e.signal_type == "pdq")
    assert pdq.series == "Lake" and pdq.victim_identified is False and pdq.media_ref == "vics:2"
    # known material splits into identified / unidentified / unknown victims
    split = {e.media_ref: e.victim_identified for e in got.values()}
    assert split == {"vics:1": True, "vics:2": False, "vics:3": None}
    # and the bank's VICS export carries them back out
    out = io.StringIO()
    store.export("known", "vics", out)
    by_id = {m["MediaID"]: m for m in json.loads(out.getvalue())["value"][0]["Media"]}
    assert by_id["1"]["Series"] == "Lake" and by_id["1"]["VictimIdentified"] is True
    assert by_id["2"]["VictimIdentified"] is False and "OffenderIdentified" not in by_id["2"]
    assert "Series" not in by_id["3"]


def test_icse_import_and_export(store: BankStore, tmp_path: Path) -> None:
    md5, sha1 = secrets.token_hex(16), secrets.token_hex(20)
    p = tmp_path / "icse.csv"
    p.write_text(
        ";".join(icse.HEADER) + f"\n{md5};{sha1};AAAA;55;Yes;No;Yes;Garden;4;Yes;Image;No\n"
    )
    report = store.import_file("known", p, "icse")
    assert (report.added, report.ignored) == (2, 1)
    got = list(store.iter_entries("known"))
    assert {e.signal_type for e in got} == {"md5", "sha1"}
    for e in got:
        assert (e.series, e.victim_identified, e.offender_identified, e.is_distributed) == (
            "Garden",
            False,
            True,
            True,
        )
        assert e.external_id == "55" and e.media_ref == "icse:55"
    out = io.StringIO()
    store.export("known", "icse", out)
    assert out.getvalue().splitlines()[1] == f"{md5};{sha1};;55;Yes;No;Yes;Garden;;;;"


def test_bad_media_imports_nothing(store: BankStore, tmp_path: Path) -> None:
    good = {"MediaID": 1, "MD5": secrets.token_hex(16), "Series": "S"}
    bad = {"MediaID": 2, "MD5": secrets.token_hex(16), "VictimIdentified": "unknown"}
    with pytest.raises(BankImportError) as ei:
        store.import_file("known", case_file(tmp_path, [good, bad]), "vics")
    assert ei.value.errors[0].line == 2 and "VictimIdentified" in ei.value.errors[0].message
    assert list(store.iter_entries("known")) == []
    p = tmp_path / "bad.csv"
    p.write_text(
        ";".join(icse.HEADER)
        + "\n"
        + f"{secrets.token_hex(16)};"
        + ";" * 10
        + "\n"
        + "nothex;"
        + ";" * 10
        + "\n"
    )
    with pytest.raises(BankImportError):
        store.import_file("known", p, "icse")
    assert list(store.iter_entries("known")) == []
    truncated = tmp_path / "t.json"
    truncated.write_bytes(case_file(tmp_path, [good]).read_bytes()[:-10])
    with pytest.raises(BankImportError, match="syntax error"):
        store.import_file("known", truncated, "vics")
    assert list(store.iter_entries("known")) == []


def test_entry_edit_of_the_facts(store: BankStore, tmp_path: Path) -> None:
    md5 = secrets.token_hex(16)
    store.import_file(
        "known", case_file(tmp_path, [{"MediaID": 9, "MD5": md5, "Series": "X"}]), "vics"
    )
    (e,) = store.iter_entries("known")
    e2 = store.update_entry(e.id, victim_identified=True, series="X (renamed)")
    assert (e2.series, e2.victim_identified) == ("X (renamed)", True)
    e3 = store.update_entry(e.id, victim_identified=None)
    assert e3.victim_identified is None
    with pytest.raises(BankError, match="victim_identified must be"):
        store.update_entry(e.id, victim_identified="yes")
